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

from glowapp.data.catalog import DEBIAN_FASHION_MNIST

__all__ = ["EXAMPLE_SETS", "FASHION_MNIST_EXAMPLES", "write_example_sets", "write_examples"]

FASHION_MNIST_EXAMPLES = 4
"""How many Fashion-MNIST test images are offered."""

_PHOTOS = ("astronaut", "coffee", "chelsea", "camera")
"""scikit-image photos, by their ``skimage.data`` function name."""

EXAMPLE_SETS = {"sneaker": 7, "ankle_boot": 9}
"""The Manipulate tab's example sets: Fashion-MNIST test images of these classes, by name."""

_IDX_HEADER_BYTES = 16  # magic, count, rows, columns: four big-endian int32
_IDX_LABEL_HEADER_BYTES = 8  # magic, count
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


def write_example_sets(
    directory: Path, per_set: int = 16, fashion_mnist_dir: str = DEBIAN_FASHION_MNIST
) -> dict[str, list[Path]]:
    """Write the first ``per_set`` test images of each :data:`EXAMPLE_SETS` class into
    ``directory`` as ``<set>_<i>.png``; returns each set's paths (none when the files are absent).

    The images come from after the :data:`FASHION_MNIST_EXAMPLES` offered elsewhere, so that a
    manipulated example is not in the sets that give the direction.
    """
    labels_path = Path(fashion_mnist_dir) / "t10k-labels-idx1-ubyte.gz"
    if not labels_path.is_file():
        return {}
    with gzip.open(labels_path, "rb") as f:
        labels = np.frombuffer(f.read()[_IDX_LABEL_HEADER_BYTES:], dtype=np.uint8)
    wanted = {
        name: np.flatnonzero(labels[FASHION_MNIST_EXAMPLES:] == k)[:per_set]
        + FASHION_MNIST_EXAMPLES
        for name, k in EXAMPLE_SETS.items()
    }
    images = _fashion_mnist(1 + max(int(i.max()) for i in wanted.values()), fashion_mnist_dir)
    directory.mkdir(parents=True, exist_ok=True)
    sets = {}
    for name, indices in wanted.items():
        sets[name] = [directory / f"{name}_{i}.png" for i in range(len(indices))]
        for path, index in zip(sets[name], indices, strict=True):
            Image.fromarray(images[index]).save(path)
    return sets
