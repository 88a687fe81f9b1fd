#!/usr/bin/env bash
# Start Instruct Studio on 127.0.0.1:7860 with the SQLite file under ./data (DATABASE_URL overrides).
# Creates .venv on first run and, on a terminal, offers to create the first admin of an empty database.
# Arguments go to app.py (e.g. --port 7861).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
export GRADIO_ANALYTICS_ENABLED=False HF_HUB_DISABLE_TELEMETRY=1

if [ -t 0 ] && .venv/bin/python -m curation users list | grep -q '^no users yet'; then
  read -rp "No users yet. Name of the first admin [admin]: " admin
  .venv/bin/python -m curation users add "${admin:-admin}" --role admin
fi
exec .venv/bin/python app.py "$@"
