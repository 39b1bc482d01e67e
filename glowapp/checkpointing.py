"""Crash-safe checkpoint files."""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint to a temporary file in the target folder, fsyncs it, then renames it.

    ``os.replace`` is atomic on POSIX, so a crash (or SIGKILL, or a full disk) mid-write leaves the
    previous file of that name intact; the partial temporary file is removed on error.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None
    ) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO does not take storage_options")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


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
