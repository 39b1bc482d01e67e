#!/usr/bin/env bash
# Regenerates the README's pictures from a checkpoint, with fixed seeds:
#   docs/samples.png        samples at the model's default temperature, one row per guidance
#                           weight W = 0, 1, the model's default and 3 for a model trained with
#                           label dropout (the shipped ones), else one row per temperature 0.5,
#                           0.7, 0.8, 1.0
#   docs/samples_conditional.png  with a class-conditional model (CONDITIONAL, default: the
#                           shipped fashion-mnist-conditional): every class, one column each, at
#                           that model's default settings
#   docs/interpolation.png  Fashion-MNIST test images 0 -> 1, spherical interpolation
#   docs/inpainting.png     test images 0-3, one row each: masked input / completion / original
# Usage: bash scripts/make_docs_images.sh [CKPT [CONDITIONAL]] (paths or shipped models' names;
# default: the shipped fashion-mnist and fashion-mnist-conditional models). Set DOCS_SCALE (default 3; auto = the tools' own
# default, 4 for 28x28) to change the tools' --scale, the nearest-neighbour enlargement that makes
# the 28x28 images legible on a web page.
set -euo pipefail
cd "$(dirname "$0")/.."
ckpt=${1:-fashion-mnist}
conditional=${2:-fashion-mnist-conditional}
scale=${DOCS_SCALE:-3}
python=.venv/bin/python
glowapp=.venv/bin/glowapp
# A name or a path -> the file (one clear line and exit 1 when it is missing).
resolve() {
    "$python" - "$1" <<'PY'
import sys

from glowapp.pretrained import resolve_checkpoint

try:
    print(resolve_checkpoint(sys.argv[1]))
except ValueError as err:
    sys.exit(f"make_docs_images: {err}")
PY
}
ckpt=$(resolve "$ckpt")
conditional=$(resolve "$conditional")
# Rows of docs/samples.png: guidance weights for a model that can guide, else temperatures.
rows=$("$python" - "$ckpt" <<'PY'
import sys

import glowapp

model = glowapp.load(sys.argv[1])
weights = sorted({0.0, 1.0, model.sampling.guidance, 3.0})
print("--guidance " + " ".join(f"{w:g}" for w in weights) if model.can_guide else "--temperature 0.5 0.7 0.8 1.0")
PY
)
examples=$(mktemp -d)
trap 'rm -rf "$examples"' EXIT
mkdir -p docs

echo "==> four Fashion-MNIST test images"
"$python" scripts/export_examples.py "$examples" --count 4 >/dev/null

echo "==> pictures from $ckpt"
# shellcheck disable=SC2086  # $rows is two words or more on purpose
"$glowapp" sample --ckpt "$ckpt" --num 10 $rows --seed 0 --scale "$scale" --out docs/samples.png
"$glowapp" sample --ckpt "$conditional" --num 60 --nrow 10 --seed 0 --scale "$scale" \
    --out docs/samples_conditional.png
"$glowapp" interpolate --ckpt "$ckpt" "$examples/test_0.png" "$examples/test_1.png" --steps 8 \
    --mode spherical --scale "$scale" --out docs/interpolation.png
"$glowapp" inpaint --ckpt "$ckpt" "$examples"/test_{0,1,2,3}.png --mask center \
    --seed 0 --scale "$scale" --out docs/inpainting.png

"$python" - "$ckpt" "$scale" <<'PY'
import sys

import torch

ckpt, scale = sys.argv[1:]
step = torch.load(ckpt, map_location="cpu", weights_only=True).get("global_step")
pngs = "docs/samples.png, docs/samples_conditional.png, docs/interpolation.png, docs/inpainting.png"
print(f"Done: {pngs} (--scale {scale}) from {ckpt}, trained for {step} steps.")
PY
