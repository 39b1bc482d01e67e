"""Turning arbitrary image files into the model's uint8 ``[C, H, W]`` tensors.

The resize + center-crop logic lives here, once: :class:`ImageFolderDataModule`, the CelebA
pipeline and :func:`load_image` (used by the command-line tools) all go through
:func:`fit_image`, so a photo given to ``glowapp`` is preprocessed exactly like the training data.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image, ImageOps

__all__ = [
    "ImageLoadError",
    "LoadedImage",
    "center_crop",
    "channels_to_mode",
    "covering_size",
    "fit_image",
    "load_image",
    "open_image",
    "pil_to_tensor",
    "to_mode",
]

RESAMPLE = Image.Resampling.BICUBIC
"""Resampling filter for every resize (Pillow's bicubic is antialiased when downscaling)."""

_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")


class ImageLoadError(ValueError):
    """A file could not be read as an image (missing, not an image, truncated, corrupt...)."""


def channels_to_mode(channels: int) -> str:
    """The Pillow mode for a channel count: 1 → ``"L"``, 3 → ``"RGB"``."""
    if channels == 1:
        return "L"
    if channels == 3:
        return "RGB"
    raise ValueError(f"images must have 1 (grayscale) or 3 (RGB) channels, got {channels}")


def open_image(path: str | os.PathLike[str]) -> Image.Image:
    """Open and fully decode an image file, applying its EXIF orientation.

    Raises :class:`ImageLoadError` (one line, naming the path) for anything that is not a
    complete, readable image.
    """
    try:
        with Image.open(path) as img:
            img.load()
            return ImageOps.exif_transpose(img)
    except FileNotFoundError:
        raise ImageLoadError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImageLoadError(f"{path}: is a directory, not an image file") from None
    except Image.UnidentifiedImageError:
        raise ImageLoadError(f"{path}: not an image file (Pillow cannot identify it)") from None
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ImageLoadError(f"{path}: unreadable or corrupt image ({reason})") from None


def to_mode(img: Image.Image, mode: str) -> Image.Image:
    """Convert ``img`` to ``"L"`` or ``"RGB"``.

    Transparent images are composited onto white (rather than letting the hidden colour of
    transparent pixels show), and 16-bit grayscale is scaled down instead of clipped.
    """
    if img.mode == mode:
        return img
    if img.mode in _SIXTEEN_BIT_MODES:
        scaled = (np.asarray(img, dtype=np.float64) / 257.0).round().astype(np.uint8)
        img = Image.fromarray(scaled)
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return img.convert(mode)


def fit_image(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Resize ``img`` so it covers ``size`` = (H, W), then center-crop to exactly that size.

    For a square target this is "resize the shorter side, center-crop the longer one"; the aspect
    ratio is never distorted.
    """
    height, width = size
    new_w, new_h = covering_size(img.size, size)
    if (new_w, new_h) != img.size:
        img = img.resize((new_w, new_h), RESAMPLE)
    if (new_w, new_h) != (width, height):
        left = (new_w - width) // 2
        top = (new_h - height) // 2
        img = img.crop((left, top, left + width, top + height))
    return img


def covering_size(image_size: tuple[int, int], size: tuple[int, int]) -> tuple[int, int]:
    """The (W, H) that :func:`fit_image` resizes a (W, H) image to before cropping to ``size``."""
    height, width = size
    w, h = image_size
    if (w, h) == (width, height):
        return w, h
    scale = max(width / w, height / h)
    return max(width, round(w * scale)), max(height, round(h * scale))


def center_crop(img: Image.Image, side: int) -> Image.Image:
    """Center-crop a ``side`` x ``side`` square (no resize; the image must be at least that big)."""
    w, h = img.size
    left = (w - side) // 2
    top = (h - side) // 2
    return img.crop((left, top, left + side, top + side))


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """An ``"L"`` or ``"RGB"`` Pillow image as a uint8 tensor ``[C, H, W]``."""
    array = np.asarray(img, dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


class LoadedImage(NamedTuple):
    """What :func:`load_image` returns: the tensor plus a record of what was done to the file."""

    image: torch.Tensor
    """uint8 tensor ``[C, H, W]`` with values 0..255."""
    changes: tuple[str, ...]
    """Human-readable steps, e.g. ``("converted RGB→L", "resized 512x512→28x28")``; empty if none."""

    @property
    def changed(self) -> bool:
        """Whether the file had to be converted, resized or cropped."""
        return bool(self.changes)

    @property
    def description(self) -> str:
        """The changes as one phrase (``"converted RGB→L and resized 512x512→28x28"``)."""
        if not self.changes:
            return "unchanged"
        if len(self.changes) == 1:
            return self.changes[0]
        return ", ".join(self.changes[:-1]) + " and " + self.changes[-1]


def load_image(path: str | os.PathLike[str], image_shape: tuple[int, int, int]) -> LoadedImage:
    """Load an image file as the model's input: uint8 ``[C, H, W]`` matching ``image_shape``.

    The image is converted to grayscale (C=1) or RGB (C=3), resized so that it covers (H, W) and
    center-cropped, with the same code the training data goes through. Sizes in the change
    descriptions are written WIDTHxHEIGHT, like image viewers do.

    Raises:
        ImageLoadError: the file is missing, not an image, truncated or otherwise unreadable.
        ValueError: ``image_shape`` has a channel count other than 1 or 3.
    """
    channels, height, width = image_shape
    mode = channels_to_mode(channels)
    img = open_image(path)
    changes: list[str] = []
    if img.mode != mode:
        changes.append(f"converted {img.mode}→{mode}")
        img = to_mode(img, mode)
    w, h = img.size
    resized = covering_size((w, h), (height, width))
    if resized != (w, h):
        changes.append(f"resized {w}x{h}→{resized[0]}x{resized[1]}")
    if resized != (width, height):
        changes.append(f"center-cropped to {width}x{height}")
    img = fit_image(img, (height, width))
    return LoadedImage(pil_to_tensor(img), tuple(changes))
