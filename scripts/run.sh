#!/usr/bin/env bash
# Start Instruct Studio on 127.0.0.1:7860 with the SQLite file under ./data (DATABASE_URL overrides).
# Creates .venv on first run. Arguments go to app.py (e.g. --port 7861).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
export GRADIO_ANALYTICS_ENABLED=False HF_HUB_DISABLE_TELEMETRY=1
exec .venv/bin/python app.py "$@"
