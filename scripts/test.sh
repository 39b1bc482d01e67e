#!/usr/bin/env bash
# Installs everything (scripts/setup.sh) and runs the whole test suite. Usage: bash scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
export WANDB_MODE=offline
echo "==> pytest"
.venv/bin/python -m pytest -q "$@"
