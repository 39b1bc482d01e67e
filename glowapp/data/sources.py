"""Finding data sets on disk, and the error raised when one cannot be found.

The parsing itself is always torchvision's; this module only makes sure torchvision finds the
files where it expects them (e.g. the Debian package ``dataset-fashion-mnist`` ships gzipped IDX
files in ``/usr/share/datasets/fashion-mnist``, while torchvision reads uncompressed files from
``ROOT/FashionMNIST/raw``).
"""

from __future__ import annotations

import gzip
import os
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "IDX_FILES",
    "DatasetNotFoundError",
    "install_idx_files",
    "not_found_message",
]

IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
"""The four files of an MNIST-style data set, as torchvision reads them (uncompressed)."""


class DatasetNotFoundError(RuntimeError):
    """A data set is not on disk (or unreadable there) and could not be downloaded.

    The message names the data set, every place that was searched and the ways to provide it.
    """


def not_found_message(
    dataset: str,
    looked_in: Sequence[str],
    ways: Sequence[str],
    reason: str | None = None,
) -> str:
    """Format the message of a :class:`DatasetNotFoundError`."""
    lines = [f"{dataset} data set not found."]
    if reason:
        lines[0] = f"{dataset} data set not found: {reason}"
    lines.append("Looked in:")
    lines.extend(f"  - {place}" for place in looked_in)
    lines.append("To provide it, do one of:")
    lines.extend(f"  - {way}" for way in ways)
    return "\n".join(lines)


def _idx_source(directory: Path, name: str) -> Path | None:
    """``directory/name`` if present, else ``directory/name.gz`` if present, else None."""
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _copy_atomically(source: Path, target: Path) -> None:
    """Write ``source`` (decompressing ``.gz``) to ``target`` via a temporary file and rename.

    Concurrent processes (several DDP ranks, two runs sharing a data root) therefore never see a
    half-written file.
    """
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        opener = gzip.open if source.suffix == ".gz" else open
        with opener(source, "rb") as src, open(tmp, "xb") as dst:
            shutil.copyfileobj(src, dst, length=1 << 20)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def install_idx_files(raw_dir: Path, sources: Sequence[Path]) -> Path | None:
    """Make ``raw_dir`` hold the four uncompressed IDX files torchvision's MNIST classes read.

    ``raw_dir`` itself is searched first (plain or ``.gz`` files), then each directory of
    ``sources`` in order; the first directory holding all four files is used, and its files are
    decompressed or copied into ``raw_dir``. Returns that directory, or None if none has them.

    Raises:
        OSError: a file could not be read, decompressed or written.
    """
    for directory in (raw_dir, *sources):
        found = {name: _idx_source(directory, name) for name in IDX_FILES}
        if any(path is None for path in found.values()):
            continue
        for name, path in found.items():
            target = raw_dir / name
            if path is None or path == target:
                continue
            try:
                raw_dir.mkdir(parents=True, exist_ok=True)
                _copy_atomically(path, target)
            except (OSError, EOFError) as err:  # EOFError: truncated .gz
                raise OSError(f"could not unpack {path} into {target} ({err})") from err
        return directory
    return None
