"""The example photos offered by the web demo, written as PNG files at start-up.

Two sources, both read locally: the first few Fashion-MNIST test images from the Debian package
``dataset-fashion-mnist`` (skipped when it is not installed), and four of scikit-image's bundled
photos (astronaut, coffee, cat, camera man), which the ``demo`` extra installs.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image

from glowapp.data.datamodules import DEBIAN_FASHION_MNIST

__all__ = ["FASHION_MNIST_EXAMPLES", "write_examples"]

FASHION_MNIST_EXAMPLES = 4
"""How many Fashion-MNIST test images are offered."""

_PHOTOS = ("astronaut", "coffee", "chelsea", "camera")
"""scikit-image photos, by their ``skimage.data`` function name."""

_IDX_HEADER_BYTES = 16  # magic, count, rows, columns: four big-endian int32
_SIDE = 28


def _fashion_mnist(count: int, directory: str) -> list[np.ndarray]:
    """The first ``count`` test images ``[28, 28]`` uint8, or none when the files are absent."""
    path = Path(directory) / "t10k-images-idx3-ubyte.gz"
    if not path.is_file():
        return []
    with gzip.open(path, "rb") as f:
        data = f.read(_IDX_HEADER_BYTES + count * _SIDE * _SIDE)[_IDX_HEADER_BYTES:]
    return list(np.frombuffer(data, dtype=np.uint8).reshape(-1, _SIDE, _SIDE))


def write_examples(directory: Path, fashion_mnist_dir: str = DEBIAN_FASHION_MNIST) -> list[Path]:
    """Write the example photos into ``directory``; returns their paths, Fashion-MNIST first."""
    directory.mkdir(parents=True, exist_ok=True)
    images = {
        f"fashion_mnist_{i}": array
        for i, array in enumerate(_fashion_mnist(FASHION_MNIST_EXAMPLES, fashion_mnist_dir))
    }
    images.update({name: getattr(skimage.data, name)() for name in _PHOTOS})
    paths = []
    for name, array in images.items():
        path = directory / f"{name}.png"
        Image.fromarray(array).save(path)
        paths.append(path)
    return paths
