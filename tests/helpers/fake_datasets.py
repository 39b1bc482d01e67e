"""Tiny data sets written in the real on-disk formats, for tests.

Each ``make_*`` function writes a few dozen random images where torchvision (or the Debian
package ``dataset-fashion-mnist``) would put them, and returns what it wrote so tests can compare
loaded batches with the source arrays. torchvision then parses them with its own code.

torchvision verifies the md5 sums of CIFAR-10, SVHN and CelebA files, which fakes cannot match;
wrap their use in :func:`skip_md5_checks` (only the checksum comparison is skipped, everything
else, file existence checks included, runs as usual). MNIST-style sets need no such help.
"""

from __future__ import annotations

import contextlib
import gzip
import pickle
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import numpy as np
from PIL import Image

__all__ = [
    "FakeSplits",
    "make_celeba",
    "make_cifar10",
    "make_fashion_mnist",
    "make_fashion_mnist_debian",
    "make_idx_set",
    "make_image_folder",
    "make_mnist",
    "make_svhn",
    "skip_md5_checks",
    "write_idx",
]

CELEBA_ATTRIBUTES = [
    "5_o_Clock_Shadow",
    "Arched_Eyebrows",
    "Attractive",
    "Bags_Under_Eyes",
    "Bald",
    "Bangs",
    "Big_Lips",
    "Big_Nose",
    "Black_Hair",
    "Blond_Hair",
    "Blurry",
    "Brown_Hair",
    "Bushy_Eyebrows",
    "Chubby",
    "Double_Chin",
    "Eyeglasses",
    "Goatee",
    "Gray_Hair",
    "Heavy_Makeup",
    "High_Cheekbones",
    "Male",
    "Mouth_Slightly_Open",
    "Mustache",
    "Narrow_Eyes",
    "No_Beard",
    "Oval_Face",
    "Pale_Skin",
    "Pointy_Nose",
    "Receding_Hairline",
    "Rosy_Cheeks",
    "Sideburns",
    "Smiling",
    "Straight_Hair",
    "Wavy_Hair",
    "Wearing_Earrings",
    "Wearing_Hat",
    "Wearing_Lipstick",
    "Wearing_Necklace",
    "Wearing_Necktie",
    "Young",
]


@dataclass
class FakeSplits:
    """Arrays written for a fake data set (images as the model sees them: uint8 ``[N,C,H,W]``)."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


@contextlib.contextmanager
def skip_md5_checks() -> Iterator[None]:
    """Within this block torchvision accepts files whatever their md5 sum (for fake data)."""
    with mock.patch("torchvision.datasets.utils.check_md5", return_value=True):
        yield


def _random_splits(
    n_train: int, n_test: int, shape: tuple[int, int, int], seed: int, num_classes: int = 10
) -> FakeSplits:
    rng = np.random.default_rng(seed)
    return FakeSplits(
        train_images=rng.integers(0, 256, size=(n_train, *shape), dtype=np.uint8),
        train_labels=(np.arange(n_train) % num_classes).astype(np.uint8),
        test_images=rng.integers(0, 256, size=(n_test, *shape), dtype=np.uint8),
        test_labels=((np.arange(n_test) + 3) % num_classes).astype(np.uint8),
    )


# -- MNIST family: IDX files --------------------------------------------------------------------


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file (the MNIST format), gzip-compressed if path ends .gz.

    Header: two zero bytes, type code 0x08 (unsigned byte), number of dimensions, then each
    dimension as a big-endian uint32; the data follows in C order.
    """
    if array.dtype != np.uint8:
        raise ValueError("IDX writer only handles uint8")
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + np.ascontiguousarray(array).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)


def make_idx_set(
    directory: Path, n_train: int = 40, n_test: int = 20, seed: int = 0, compress: bool = True
) -> FakeSplits:
    """The four IDX files of an MNIST-style set (1x28x28, 10 classes) in ``directory``."""
    splits = _random_splits(n_train, n_test, (1, 28, 28), seed)
    ext = ".gz" if compress else ""
    write_idx(directory / f"train-images-idx3-ubyte{ext}", splits.train_images[:, 0])
    write_idx(directory / f"train-labels-idx1-ubyte{ext}", splits.train_labels)
    write_idx(directory / f"t10k-images-idx3-ubyte{ext}", splits.test_images[:, 0])
    write_idx(directory / f"t10k-labels-idx1-ubyte{ext}", splits.test_labels)
    return splits


def make_mnist(root: Path, seed: int = 0, compress: bool = True) -> FakeSplits:
    """MNIST in torchvision's layout: ``root/MNIST/raw/*-ubyte[.gz]``, 40 train, 20 test."""
    return make_idx_set(Path(root) / "MNIST" / "raw", seed=seed, compress=compress)


def make_fashion_mnist(root: Path, seed: int = 1, compress: bool = True) -> FakeSplits:
    """Fashion-MNIST in torchvision's layout: ``root/FashionMNIST/raw/*-ubyte[.gz]``."""
    return make_idx_set(Path(root) / "FashionMNIST" / "raw", seed=seed, compress=compress)


def make_fashion_mnist_debian(directory: Path, seed: int = 2) -> FakeSplits:
    """Fashion-MNIST as the Debian package lays it out: four ``.gz`` files in one directory."""
    return make_idx_set(Path(directory), seed=seed)


# -- CIFAR-10: python pickles -------------------------------------------------------------------


def make_cifar10(root: Path, n_per_batch: int = 6, n_test: int = 12, seed: int = 3) -> FakeSplits:
    """CIFAR-10 "python version": ``root/cifar-10-batches-py/{data_batch_1..5,test_batch,...}``.

    Each batch is a pickled dict with ``data`` (uint8 ``[N, 3072]``, channel-major rows) and
    ``labels``; ``batches.meta`` holds ``label_names``. Needs :func:`skip_md5_checks`.
    """
    splits = _random_splits(5 * n_per_batch, n_test, (3, 32, 32), seed)
    directory = Path(root) / "cifar-10-batches-py"
    directory.mkdir(parents=True, exist_ok=True)

    def dump(name: str, images: np.ndarray, labels: np.ndarray) -> None:
        entry = {
            "batch_label": name,
            "labels": [int(label) for label in labels],
            "data": images.reshape(len(images), -1),
            "filenames": [f"img_{i}.png" for i in range(len(images))],
        }
        with open(directory / name, "wb") as f:
            pickle.dump(entry, f, protocol=2)

    for b in range(5):
        part = slice(b * n_per_batch, (b + 1) * n_per_batch)
        dump(f"data_batch_{b + 1}", splits.train_images[part], splits.train_labels[part])
    dump("test_batch", splits.test_images, splits.test_labels)
    meta = {
        "label_names": [
            "airplane",
            "automobile",
            "bird",
            "cat",
            "deer",
            "dog",
            "frog",
            "horse",
            "ship",
            "truck",
        ],
        "num_cases_per_batch": n_per_batch,
        "num_vis": 3072,
    }
    with open(directory / "batches.meta", "wb") as f:
        pickle.dump(meta, f, protocol=2)
    return splits


# -- SVHN: MATLAB files ---------------------------------------------------------------------------


def make_svhn(
    root: Path, n_train: int = 30, n_test: int = 12, seed: int = 4, subdir: str = "SVHN"
) -> FakeSplits:
    """SVHN format 2: ``root/SVHN/{train,test}_32x32.mat`` with ``X`` [32,32,3,N] and ``y`` [N,1].

    As in the real files, digit 0 is stored as label 10 (torchvision maps it back to 0); the
    returned labels are the 0..9 ones. Needs :func:`skip_md5_checks`.
    """
    import scipy.io

    splits = _random_splits(n_train, n_test, (3, 32, 32), seed)
    directory = Path(root) / subdir if subdir else Path(root)
    directory.mkdir(parents=True, exist_ok=True)
    for name, images, labels in (
        ("train_32x32.mat", splits.train_images, splits.train_labels),
        ("test_32x32.mat", splits.test_images, splits.test_labels),
    ):
        stored = np.where(labels == 0, 10, labels).astype(np.uint8).reshape(-1, 1)
        scipy.io.savemat(directory / name, {"X": images.transpose(2, 3, 1, 0), "y": stored})
    return splits


# -- CelebA: JPEGs and annotation text files ------------------------------------------------------


def make_celeba(root: Path, partitions: Sequence[int] = (0,) * 20 + (1,) * 6 + (2,) * 8) -> Path:
    """CelebA aligned faces: ``root/celeba/img_align_celeba/NNNNNN.jpg`` (178x218) + annotations.

    ``partitions[i]`` is image i's official split (0 train, 1 valid, 2 test), as in
    ``list_eval_partition.txt``. Returns ``root/celeba``. Needs :func:`skip_md5_checks`.
    """
    rng = np.random.default_rng(5)
    base = Path(root) / "celeba"
    images = base / "img_align_celeba"
    images.mkdir(parents=True, exist_ok=True)
    names = [f"{i + 1:06d}.jpg" for i in range(len(partitions))]
    for name in names:
        pixels = rng.integers(0, 256, size=(218, 178, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(images / name, quality=90)
    n = len(names)

    def table(filename: str, rows: list[str], header: str | None = None) -> None:
        lines = [str(n), header] if header is not None else []
        (base / filename).write_text("\n".join([*lines, *rows]) + "\n")

    table("list_eval_partition.txt", [f"{m} {p}" for m, p in zip(names, partitions, strict=True)])
    table("identity_CelebA.txt", [f"{m} {rng.integers(1, 10000)}" for m in names])
    table(
        "list_bbox_celeba.txt",
        [f"{m}    95  71 226 313" for m in names],
        header="image_id x_1 y_1 width height",
    )
    landmarks = "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y "
    landmarks += "leftmouth_x leftmouth_y rightmouth_x rightmouth_y"
    table(
        "list_landmarks_align_celeba.txt",
        [f"{m}  69  109  106  113   77  142   73  152  108  154" for m in names],
        header=landmarks,
    )
    attr_rows = [
        m + " " + " ".join(f"{v:2d}" for v in rng.choice([-1, 1], size=len(CELEBA_ATTRIBUTES)))
        for m in names
    ]
    table("list_attr_celeba.txt", attr_rows, header=" ".join(CELEBA_ATTRIBUTES) + " ")
    return base


# -- a folder of PNGs -------------------------------------------------------------------------------


def make_image_folder(
    path: Path,
    classes: Sequence[str] | None = ("cats", "dogs"),
    per_class: int = 10,
    size: tuple[int, int] = (40, 30),
    mode: str = "RGB",
    seed: int = 6,
) -> list[Path]:
    """PNG images of ``size`` (W, H): ``path/<class>/img_K.png``, or flat ``path/img_K.png``.

    ``classes=None`` writes a flat folder of ``per_class`` images. Returns the files, in order.
    """
    rng = np.random.default_rng(seed)
    channels = {"L": (), "RGB": (3,), "RGBA": (4,)}[mode]
    folders = [Path(path) / c for c in classes] if classes is not None else [Path(path)]
    files = []
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(per_class):
            pixels = rng.integers(0, 256, size=(size[1], size[0], *channels), dtype=np.uint8)
            file = folder / f"img_{k:03d}.png"
            Image.fromarray(pixels).save(file)
            files.append(file)
    return files
