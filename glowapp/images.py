"""Image files: reading photos as the model's input, image grids, and atomic PNG writing.

Reading: :func:`load_image` turns any image file into the model's uint8 ``[C, H, W]`` through
:func:`fit_image` (resize to cover, center-crop), the same code the training data goes through
(:class:`~glowapp.data.ImageFolderDataModule`, CelebA), so a photo given to ``glowapp`` is
preprocessed exactly like the training images. Writing: :func:`tile` lays generated images out
in one grid, :func:`masked_view` / :func:`inpainting_rows` make an inpainting figure,
:func:`enlarge` scales a figure up by :func:`display_scale` (nearest neighbour, so every model
pixel stays a sharp square), and :func:`save_png` writes it atomically. The generation math is
in :mod:`glowapp.generate`.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import Tensor

from glowapp.atomic import write_atomically

__all__ = [
    "DISPLAY_CELL",
    "MASK_COLOR",
    "ImageLoadError",
    "LoadedImage",
    "as_float_images",
    "center_crop",
    "channels_to_mode",
    "covering_size",
    "display_scale",
    "enlarge",
    "fit_image",
    "inpainting_rows",
    "load_image",
    "mask_from_image",
    "masked_view",
    "open_image",
    "pil_to_tensor",
    "save_png",
    "tile",
    "to_pil",
    "to_mode",
    "transpose_blocks",
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


def mask_from_image(path: str | os.PathLike[str], size: tuple[int, int]) -> Tensor:
    """A mask image (white = hidden) as a bool ``[H, W]`` mask, resized/cropped like the images.

    Raises :class:`ImageLoadError` for unreadable files.
    """
    return pil_to_tensor(fit_image(to_mode(open_image(path), "L"), size))[0] >= 128


# ---- grids and figures ------------------------------------------------------------------------

MASK_COLOR = (1.0, 0.0, 1.0)
"""RGB colour that marks hidden pixels in :func:`masked_view` (magenta)."""


def as_float_images(images: Tensor) -> Tensor:
    """uint8 ``0..255`` or float ``[0, 1]`` images → float32 in ``[0, 1]`` (same shape)."""
    return images.float() / 255.0 if images.dtype == torch.uint8 else images.float()


def _to_rgb(images: Tensor) -> Tensor:
    """``[B, 1, H, W]`` → ``[B, 3, H, W]`` (a view); 3-channel images are returned as they are."""
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


def tile(blocks: Sequence[Tensor], ncol: int, padding: int = 2, pad_value: float = 1.0) -> Tensor:
    """One RGB image ``[3, H', W']`` of row blocks of images.

    Each block ``[k, C, H, W]`` (uint8 or ``[0, 1]``; 1 or 3 channels) is laid out ``ncol`` per
    row and padded with blank cells to whole rows, so every block starts on a new row. A
    ``[R, k, C, H, W]`` tensor (e.g. from :func:`glowapp.generate.sample_grid` or
    :func:`glowapp.generate.interpolate`) gives ``R`` blocks.
    Size: ``W' = ncol·(W + padding) + padding``, ``H' = rows·(H + padding) + padding``; a single
    image comes back as it is, unpadded (as torchvision's ``make_grid`` does).

    Raises:
        ValueError: ``ncol`` < 1.
    """
    if ncol < 1:
        raise ValueError(f"images per row (ncol) must be at least 1, got {ncol}")
    cells = []
    for block in blocks:
        block = _to_rgb(as_float_images(block).cpu())
        blank = (-len(block)) % ncol
        cells += [block, torch.full((blank, *block.shape[1:]), pad_value)]
    images = torch.cat(cells)  # [N, 3, H, W], N a multiple of ncol
    # As torchvision's make_grid (not used: the inference commands would pay its ~2 s import,
    # and glowapp.images is on every command's path), a single image comes back unpadded.
    if len(images) == 1:
        return images[0]
    n, channels, h, w = images.shape
    rows = n // ncol
    grid = torch.full(
        (channels, rows * (h + padding) + padding, ncol * (w + padding) + padding), pad_value
    )
    for i, image in enumerate(images):
        top, left = padding + (i // ncol) * (h + padding), padding + (i % ncol) * (w + padding)
        grid[:, top : top + h, left : left + w] = image
    return grid


def transpose_blocks(blocks: Sequence[Tensor]) -> Tensor:
    """Swap rows and columns of a figure: ``R`` blocks ``[k, C, H, W]`` → ``[k, R, 3, H, W]``.

    Image ``j`` of every block goes to block ``j`` (converted to RGB, floats in ``[0, 1]``), so
    ``tile(transpose_blocks(blocks), len(blocks))`` shows ``blocks`` as columns. Every block must
    hold the same number of images of the same size.
    """
    return torch.stack([_to_rgb(as_float_images(block).cpu()) for block in blocks], dim=1)


def masked_view(images: Tensor, mask: Tensor) -> Tensor:
    """RGB copies ``[B, 3, H, W]`` of ``images`` with hidden pixels painted :data:`MASK_COLOR`.

    ``mask``: bool, ``True`` = hidden, broadcastable to ``[B, H, W]``.
    """
    rgb = _to_rgb(as_float_images(images))
    hidden = torch.broadcast_to(mask.to(rgb.device, torch.bool), rgb.shape[:1] + rgb.shape[2:])
    color = torch.tensor(MASK_COLOR, device=rgb.device)[None, :, None, None].expand_as(rgb)
    return torch.where(hidden[:, None], color, rgb)


def inpainting_rows(images: Tensor, mask: Tensor, completed: Tensor) -> list[Tensor]:
    """The three row blocks of an inpainting figure: masked input, completion, ground truth.

    ``images`` ``[B, C, H, W]`` and ``mask`` as given to :func:`glowapp.generate.inpaint`, and
    the completed images (its result's ``images``); each row is ``[B, C', H, W]`` in ``[0, 1]``
    (C' = 3 for the masked view).
    """
    images = as_float_images(images).to(completed.device)
    mask = mask.to(completed.device)
    # A per-channel mask shows as hidden wherever any channel is hidden.
    pixel_mask = torch.broadcast_to(mask, images.shape).any(dim=1)
    return [masked_view(images, pixel_mask), completed, images]


DISPLAY_CELL = 96
"""Pixels that :func:`display_scale` enlarges the shorter side of each image to, at least."""


def display_scale(image_size: tuple[int, int], scale: int | None = None) -> int:
    """The integer enlargement of a figure of ``image_size`` = (H, W) images for :func:`enlarge`.

    ``scale`` if given (1 = native size), else the smallest factor that makes every image at
    least :data:`DISPLAY_CELL` pixels on its shorter side: 4 for 28×28 images, 3 for 32×32, 2 for
    64×64, 1 from 96×96 up.

    Raises:
        ValueError: ``scale`` < 1.
    """
    if scale is not None:
        if scale < 1:
            raise ValueError(f"the scale (enlargement factor) must be at least 1, got {scale}")
        return scale
    return max(1, math.ceil(DISPLAY_CELL / min(image_size)))


def enlarge(grid: Tensor, scale: int) -> Tensor:
    """``grid`` ``[..., H, W]`` enlarged ``scale`` times by nearest neighbour: ``[..., H·k, W·k]``.

    Every pixel becomes a ``scale`` × ``scale`` block of its value (no interpolation, no blur);
    ``scale`` 1 returns ``grid`` itself.

    Raises:
        ValueError: ``scale`` < 1.
    """
    display_scale((1, 1), scale)
    if scale == 1:
        return grid
    return grid.repeat_interleave(scale, dim=-2).repeat_interleave(scale, dim=-1)


# ---- writing files ----------------------------------------------------------------------------


def to_pil(image: Tensor) -> Image.Image:
    """One image ``[C, H, W]`` (uint8, or float in ``[0, 1]``; 1 or 3 channels) as a Pillow image,
    rounded to 8 bits as torchvision's ``save_image`` does."""
    if image.dtype != torch.uint8:
        image = (image.detach().float().cpu() * 255 + 0.5).clamp(0, 255).to(torch.uint8)
    pixels = image.cpu().permute(1, 2, 0).numpy()
    return Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)


def save_png(grid: Tensor, path: str | os.PathLike[str]) -> Path:
    """Save one image ``[C, H, W]`` in ``[0, 1]`` (e.g. from :func:`tile`) as a PNG, atomically."""
    buffer = io.BytesIO()
    to_pil(grid).save(buffer, format="png")
    return write_atomically(path, buffer.getvalue())
