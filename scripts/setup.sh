#!/usr/bin/env bash
# Installs glowapp into ./.venv and the offline Fashion-MNIST data (Debian's dataset-fashion-mnist).
# With --test, also the test and demo extras and Debian's Chromium (the web demo's browser tests
# drive it with Playwright). Idempotent: re-running only installs what is missing.
# Usage: bash scripts/setup.sh [--test]
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
extras=""
[ "${1:-}" = "--test" ] && extras="[dev,demo,ood]"

apt_packages=()
[ -d /usr/share/datasets/fashion-mnist ] || apt_packages+=(dataset-fashion-mnist)
[ -n "$extras" ] && ! command -v chromium >/dev/null 2>&1 && apt_packages+=(chromium)
if [ ${#apt_packages[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1; then
    sudo_cmd=""
    [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
    echo "==> apt-get install ${apt_packages[*]}"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${apt_packages[@]}"
fi

# The venv with PyTorch's CUDA-enabled wheels takes about 7 GB: say so plainly instead of dying
# halfway through pip with "No space left on device".
if [ ! -x .venv/bin/python ]; then
    need_gb=${GLOWAPP_NEED_DISK_GB:-10}
    free_kb=$(df -Pk . | awk 'NR == 2 {print $4}')
    if [ "$free_kb" -lt $(( need_gb * 1024 * 1024 )) ]; then
        echo "ERROR: only $(( free_kb / 1024 / 1024 )) GB free on the disk holding $PWD; creating .venv needs about ${need_gb} GB" >&2
        exit 1
    fi
    echo "==> creating .venv"
    "$PYTHON" -m venv .venv
fi
echo "==> pip install -e .$extras"
# (This machine's pip config points at local wheel folders that may be absent; hide that noise only.)
.venv/bin/python -m pip install -q -e ".$extras" 2> >(grep -v "^WARNING: Location" >&2)
.venv/bin/python -c "import glowapp, torch, pytorch_lightning; print('glowapp ready: torch', torch.__version__, '| lightning', pytorch_lightning.__version__)"
