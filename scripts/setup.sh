#!/usr/bin/env bash
# Installs glowapp into ./.venv (with the test extras) and the offline Fashion-MNIST data.
# Idempotent: re-running only installs what is missing. Usage: bash scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
# Debian packages: the built-in dataset (Fashion-MNIST's IDX files, offline).
apt_packages=()
[ -d /usr/share/datasets/fashion-mnist ] || apt_packages+=(dataset-fashion-mnist)
if [ ${#apt_packages[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1; then
    sudo_cmd=""
    [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
    echo "==> apt-get install ${apt_packages[*]}"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${apt_packages[@]}"
fi

if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv"
    "$PYTHON" -m venv .venv
fi
echo "==> pip install -e .[dev]"
# (This machine's pip config points at local wheel folders that may be absent; hide that noise only.)
.venv/bin/python -m pip install -q -e ".[dev]" 2> >(grep -v "^WARNING: Location" >&2)
.venv/bin/python -c "import glowapp, torch, pytorch_lightning; print('glowapp ready: torch', torch.__version__, '| lightning', pytorch_lightning.__version__)"
