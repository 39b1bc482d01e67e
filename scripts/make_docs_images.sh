#!/usr/bin/env bash
# Regenerates the README's pictures from a checkpoint, with fixed seeds:
#   docs/samples.png        samples at T = 0.5, 0.7, 0.8, 1.0 (one row per temperature: the
#                           temperatures `glowapp evaluate` reports FID/KID for)
#   docs/interpolation.png  Fashion-MNIST test images 0 -> 1, spherical interpolation
#   docs/inpainting.png     test images 0-3, one row each: masked input / completion / original
# Usage: bash scripts/make_docs_images.sh [CKPT] (a path or a shipped model's name; default: the
# shipped fashion-mnist model). Set DOCS_SCALE (default 3; auto = the tools' own
# default, 4 for 28x28) to change the tools' --scale, the nearest-neighbour enlargement that makes
# the 28x28 images legible on a web page.
set -euo pipefail
cd "$(dirname "$0")/.."
ckpt=${1:-fashion-mnist}
scale=${DOCS_SCALE:-3}
python=.venv/bin/python
glowapp=.venv/bin/glowapp
# A name or a path -> the file (one clear line and exit 1 when it is missing).
ckpt=$("$python" - "$ckpt" <<'PY'
import sys

from glowapp.pretrained import resolve_checkpoint

try:
    print(resolve_checkpoint(sys.argv[1]))
except ValueError as err:
    sys.exit(f"make_docs_images: {err}")
PY
)
examples=$(mktemp -d)
trap 'rm -rf "$examples"' EXIT
mkdir -p docs

echo "==> four Fashion-MNIST test images"
"$python" scripts/export_examples.py "$examples" --count 4 >/dev/null

echo "==> pictures from $ckpt"
"$glowapp" sample --ckpt "$ckpt" --num 8 --temperature 0.5 0.7 0.8 1.0 --seed 0 \
    --scale "$scale" --out docs/samples.png
"$glowapp" interpolate --ckpt "$ckpt" "$examples/test_0.png" "$examples/test_1.png" --steps 8 \
    --mode spherical --scale "$scale" --out docs/interpolation.png
"$glowapp" inpaint --ckpt "$ckpt" "$examples"/test_{0,1,2,3}.png --mask center \
    --seed 0 --scale "$scale" --out docs/inpainting.png

"$python" - "$ckpt" "$scale" <<'PY'
import sys

import torch

ckpt, scale = sys.argv[1:]
step = torch.load(ckpt, map_location="cpu", weights_only=True).get("global_step")
pngs = "docs/samples.png, docs/interpolation.png, docs/inpainting.png"
print(f"Done: {pngs} (--scale {scale}) from {ckpt}, trained for {step} steps.")
PY
