"""Atomic file writing: a file appears at its path only once it is complete.

Used for everything glowapp writes — checkpoints, PNGs, JSON reports, saved directions — so a
crash, a kill or a full disk mid-write never leaves a half-written file or destroys the previous
one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_file", "write_atomically"]


@contextmanager
def atomic_file(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """A binary file that appears at ``path`` only once it is complete.

    It is written to a temporary file in the same folder, fsynced, then renamed over ``path``
    (``os.replace``: atomic on POSIX), so a crash, SIGKILL or full disk mid-write leaves any
    previous ``path`` intact; on error the temporary file is removed. Parent folders are
    created. The file gets the permissions a plain ``open`` would give (0666 minus the umask),
    not the temporary file's private 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomically(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` through :func:`atomic_file`: readers never see a half-written
    file. Parent folders are created. Returns ``path``.

    Raises:
        OSError: naming ``path`` and the reason (no permission, disk full...).
    """
    path = Path(path)
    try:
        with atomic_file(path) as f:
            f.write(data)
    except OSError as err:
        raise OSError(f"cannot write {path}: {err.strerror or err}") from err
    return path
