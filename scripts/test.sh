#!/usr/bin/env bash
# The whole test suite: creates .venv and installs requirements.txt when needed, then runs pytest offline.
# Extra arguments go to pytest (e.g. scripts/test.sh -k formats).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh

# Tests never reach a network: no model, dataset or telemetry downloads.
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 HF_HUB_DISABLE_UPDATE_CHECK=1 HF_HUB_DISABLE_TELEMETRY=1
export GRADIO_ANALYTICS_ENABLED=False TOKENIZERS_PARALLELISM=false PYTHONDONTWRITEBYTECODE=1

exec .venv/bin/python -m pytest "$@"
