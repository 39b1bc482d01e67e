"""Crash-safe checkpoint files."""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO


@contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[BinaryIO]:
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


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint through :func:`atomic_file`: a crash mid-write never corrupts the
    previous checkpoint of that name."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None
    ) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO does not take storage_options")
        with atomic_file(path) as f:
            torch.save(checkpoint, f)


def check_writable(directory: str | os.PathLike, min_free_bytes: int = 0) -> None:
    """Fail early, with a clear message, if ``directory`` cannot take files of ``min_free_bytes``."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".write-test-"):
            pass
    except OSError as err:
        raise OSError(
            f"cannot write to {directory}: {err.strerror or err}. Choose another directory."
        ) from err
    free = shutil.disk_usage(directory).free
    if free < min_free_bytes:
        raise OSError(
            f"not enough free disk space in {directory}: {free / 2**20:.1f} MiB free, a checkpoint "
            f"needs about {min_free_bytes / 2**20:.1f} MiB. Free some space or choose another directory."
        )


class CheckpointFileError(ValueError):
    """A checkpoint path that is missing, truncated or not a PyTorch checkpoint."""


def check_checkpoint_file(path: str | os.PathLike) -> Path:
    """Raise :class:`CheckpointFileError` naming the problem unless ``path`` is an intact checkpoint.

    PyTorch checkpoints are zip archives; a truncated file fails the archive's CRC/directory check.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointFileError(f"checkpoint not found: {path}")
    if path.is_dir():
        raise CheckpointFileError(f"checkpoint path is a directory, not a file: {path}")
    if not zipfile.is_zipfile(path):
        raise CheckpointFileError(
            f"{path} is not a PyTorch checkpoint (truncated, or another kind of file)"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise CheckpointFileError(f"{path} is a damaged checkpoint: {err}") from err
    if bad is not None:
        raise CheckpointFileError(f"{path} is a damaged checkpoint (corrupt entry {bad})")
    return path
