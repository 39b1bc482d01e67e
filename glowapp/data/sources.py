"""Finding data set files on disk, and the error raised when a data set cannot be found.

The parsing itself is always torchvision's; this module only checks that the files are where
torchvision expects them, and puts them there from a compressed or system-wide copy (e.g. the
Debian package ``dataset-fashion-mnist`` ships gzipped IDX files in
``/usr/share/datasets/fashion-mnist``, while torchvision reads uncompressed files from
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
    "DatasetNotFoundError",
    "has_files",
    "not_found_message",
    "unpack_files",
]


class DatasetNotFoundError(RuntimeError):
    """A data set is not on disk (or unreadable there) and could not be downloaded.

    The message (see :func:`not_found_message`) names the data set, every place that was
    searched and the ways to provide it.
    """


def not_found_message(
    dataset: str,
    looked_in: Sequence[str],
    ways: Sequence[str],
    reason: str | None = None,
) -> str:
    """The one format of a :class:`DatasetNotFoundError` message: what, where, how to fix."""
    lines = [
        f"{dataset} data set not found: {reason}" if reason else f"{dataset} data set not found."
    ]
    lines.append("Looked in:")
    lines.extend(f"  - {place}" for place in looked_in)
    lines.append("To provide it, do one of:")
    lines.extend(f"  - {way}" for way in ways)
    return "\n".join(lines)


def has_files(directory: Path, names: Sequence[str]) -> bool:
    """Whether ``directory`` holds every entry of ``names`` (``"name/"``: a folder, else a file)."""
    for name in names:
        path = directory / name
        if not (path.is_dir() if name.endswith("/") else path.is_file()):
            return False
    return True


def _plain_or_gz(directory: Path, name: str) -> Path | None:
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


def unpack_files(names: Sequence[str], target: Path, sources: Sequence[Path]) -> Path | None:
    """Make ``target`` hold the files ``names`` uncompressed, as torchvision reads them.

    ``target`` itself is searched first (plain or ``.gz`` files), then each directory of
    ``sources`` in order; the first directory holding all of them (each plain or ``.gz``) is
    used, and its files are decompressed or copied into ``target``. Returns that directory, or
    None if none has them all.

    Raises:
        OSError: a file could not be read, decompressed or written.
    """
    for directory in (target, *sources):
        found = [(name, _plain_or_gz(directory, name)) for name in names]
        if any(path is None for _, path in found):
            continue
        for name, path in found:
            if path is None or path == target / name:
                continue
            try:
                target.mkdir(parents=True, exist_ok=True)
                _copy_atomically(path, target / name)
            except (OSError, EOFError) as err:  # EOFError: truncated .gz
                raise OSError(f"could not unpack {path} into {target / name} ({err})") from err
        return directory
    return None
