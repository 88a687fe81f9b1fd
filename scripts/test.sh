#!/usr/bin/env bash
# The whole test suite: creates .venv and installs requirements.txt when needed, then runs pytest offline.
# Extra arguments go to pytest (e.g. scripts/test.sh -k formats).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh

# Tests never reach a network: no model, dataset or telemetry downloads.
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 HF_HUB_DISABLE_UPDATE_CHECK=1 HF_HUB_DISABLE_TELEMETRY=1
export GRADIO_ANALYTICS_ENABLED=False TOKENIZERS_PARALLELISM=false PYTHONDONTWRITEBYTECODE=1

# Three test processes (TEST_WORKERS=0 for one): most slow tests wait on a browser, a server or a job, so three share
# two cores well (a whole run on this 2-core machine: 1,288 s with two, 1,133 s with three); a module stays in one
# process (--dist loadfile), as its module-scoped fixtures expect. --no-loadscope-reorder keeps the order of
# tests/conftest.py (the longest modules first): by default xdist sorts modules by their number of tests, which
# left the long one-test browser modules for the end, all at once, while the other processes had nothing to do.
workers=${TEST_WORKERS:-3}
if [ "$workers" != "0" ]; then
  set -- -n "$workers" --dist loadfile --no-loadscope-reorder "$@"
fi
exec .venv/bin/python -m pytest "$@"
