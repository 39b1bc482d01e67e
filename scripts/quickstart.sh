#!/usr/bin/env bash
# The main job on the built-in default: install glowapp, train a small Glow on Fashion-MNIST
# (configs/glow_fashion_mnist.yaml) for a few minutes, then write a sample grid (one row per
# temperature), an interpolation and an inpainting to outputs/, enlarged x4 by the tools' default
# --scale. Usage: bash scripts/quickstart.sh [MINUTES] (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-${QUICKSTART_MINUTES:-5}}
bash scripts/setup.sh
export WANDB_MODE=offline
glowapp=.venv/bin/glowapp
ckpt=checkpoints/glow_fashion_mnist/last.ckpt
mkdir -p outputs/examples

echo "==> training configs/glow_fashion_mnist.yaml for ${minutes} min (checkpoints in checkpoints/glow_fashion_mnist/)"
resume=()
[ -f "$ckpt" ] && resume=(--ckpt_path "$ckpt") && echo "    resuming from $ckpt"
"$glowapp" fit --config configs/glow_fashion_mnist.yaml --trainer.max_time "00:00:$(printf %02d "$minutes"):00" "${resume[@]}"

echo "==> two Fashion-MNIST test images as PNGs (outputs/examples/)"
.venv/bin/python scripts/export_examples.py outputs/examples --count 2

echo "==> samples, interpolation and inpainting from $ckpt"
"$glowapp" sample --ckpt "$ckpt" --num 8 --temperature 0 0.5 0.7 1.0 --out outputs/samples.png
"$glowapp" interpolate --ckpt "$ckpt" outputs/examples/test_0.png outputs/examples/test_1.png --steps 8 --out outputs/interpolation.png
"$glowapp" inpaint --ckpt "$ckpt" outputs/examples/test_0.png --mask center --out outputs/inpainting.png
"$glowapp" score --ckpt "$ckpt" outputs/examples/test_0.png outputs/examples/test_1.png

echo
echo "Done. Outputs:"
echo "  samples:        $(pwd)/outputs/samples.png"
echo "  interpolation:  $(pwd)/outputs/interpolation.png"
echo "  inpainting:     $(pwd)/outputs/inpainting.png"
echo "  checkpoint:     $(pwd)/$ckpt"
echo "  logs:           $(pwd)/outputs/logs (tensorboard --logdir outputs/logs)"
