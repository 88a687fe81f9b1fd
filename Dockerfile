# Instruct Studio for Hugging Face Spaces (Docker SDK) or any container host: serves on 0.0.0.0:7860.
FROM python:3.11-slim

# Spaces run the container as uid 1000; give that user a home and a writable app folder.
RUN useradd -m -u 1000 user
USER user
ENV HOME=/home/user PATH=/home/user/.local/bin:$PATH \
    GRADIO_ANALYTICS_ENABLED=False HF_HUB_DISABLE_TELEMETRY=1 PYTHONUNBUFFERED=1
WORKDIR /home/user/app

COPY --chown=user requirements.txt .
RUN pip install --no-cache-dir --user -r requirements.txt

COPY --chown=user . .
EXPOSE 7860
# The SQLite file lives under ./data; set DATABASE_URL for PostgreSQL.
CMD ["python", "app.py", "--host", "0.0.0.0", "--port", "7860"]
