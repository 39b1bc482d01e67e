"""Write the first Fashion-MNIST test images as PNGs, the inputs of the interpolate/inpaint examples.

Used by scripts/quickstart.sh and scripts/make_docs_images.sh, so both show the same images.
Needs the data on disk (data/ or the Debian package dataset-fashion-mnist); never downloads.

Usage: python scripts/export_examples.py OUT_DIR [--count N] [--root data]
Writes OUT_DIR/test_0.png ... OUT_DIR/test_{N-1}.png (28x28 grayscale) and prints their paths.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

from glowapp.data import FashionMNISTDataModule


def export_examples(out_dir: Path, count: int = 2, root: str = "data") -> list[Path]:
    """Save test images ``0 .. count-1`` as ``out_dir/test_{i}.png``; returns the paths."""
    datamodule = FashionMNISTDataModule(root=root, test_limit=count, download=False)
    datamodule.setup("test")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        image, _ = datamodule.test_dataset[i]  # uint8 [1, 28, 28]
        path = out_dir / f"test_{i}.png"
        Image.fromarray(image[0].numpy()).save(path)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path, help="folder for the PNGs (created if needed)")
    parser.add_argument("--count", type=int, default=2, help="how many images (default: 2)")
    parser.add_argument(
        "--root", default="data", help="data root, as in the configs (default: data)"
    )
    args = parser.parse_args()
    for path in export_examples(args.out_dir, args.count, args.root):
        print(path)


if __name__ == "__main__":
    main()
