#!/usr/bin/env bash
# Regenerates the README's pictures from a checkpoint, with fixed seeds:
#   docs/samples.png        samples at T = 0, 0.5, 0.7, 1.0 (one row per temperature)
#   docs/interpolation.png  Fashion-MNIST test images 0 -> 1, spherical interpolation
#   docs/inpainting.png     test images 0-3: masked input / completion / original
# Usage: bash scripts/make_docs_images.sh [CKPT] (default: the quickstart's
# checkpoints/glow_fashion_mnist/last.ckpt). Set DOCS_SCALE (default 3) to change the nearest-
# neighbour upscaling that makes the 28x28 images legible on a web page.
set -euo pipefail
cd "$(dirname "$0")/.."
ckpt=${1:-checkpoints/glow_fashion_mnist/last.ckpt}
scale=${DOCS_SCALE:-3}
python=.venv/bin/python
glowapp=.venv/bin/glowapp
if [ ! -f "$ckpt" ]; then
    echo "make_docs_images: checkpoint not found: $ckpt (train one with: bash scripts/quickstart.sh 30)" >&2
    exit 1
fi
examples=$(mktemp -d)
trap 'rm -rf "$examples"' EXIT
mkdir -p docs

echo "==> four Fashion-MNIST test images"
"$python" scripts/export_examples.py "$examples" --count 4 >/dev/null

echo "==> pictures from $ckpt"
"$glowapp" sample --ckpt "$ckpt" --num 8 --nrow 8 --temperature 0 0.5 0.7 1.0 --seed 0 \
    --out docs/samples.png
"$glowapp" interpolate --ckpt "$ckpt" "$examples/test_0.png" "$examples/test_1.png" --steps 8 \
    --mode spherical --out docs/interpolation.png
"$glowapp" inpaint --ckpt "$ckpt" "$examples"/test_{0,1,2,3}.png --mask center \
    --seed 0 --out docs/inpainting.png

"$python" - "$ckpt" "$scale" docs/samples.png docs/interpolation.png docs/inpainting.png <<'PY'
import sys

import torch
from PIL import Image

ckpt, scale, *pngs = sys.argv[1:]
for png in pngs:
    image = Image.open(png)
    image.resize((image.width * int(scale), image.height * int(scale)), Image.NEAREST).save(png, optimize=True)
step = torch.load(ckpt, map_location="cpu", weights_only=False).get("global_step")
print(f"Done: {', '.join(pngs)} (x{scale}) from {ckpt}, trained for {step} steps.")
PY
