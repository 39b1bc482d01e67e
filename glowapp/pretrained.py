"""The trained models that ship with glowapp, by name, and where their files are found.

``glowapp sample --ckpt fashion-mnist`` (or no ``--ckpt`` at all: :data:`DEFAULT_MODEL`) loads
``fashion-mnist.ckpt`` from the first of :func:`checkpoint_dirs` that holds it: the folders in
the environment variable ``GLOWAPP_CHECKPOINTS``, the installed package's
``glowapp/checkpoints/`` (where a wheel puts the files: ``setup.py``), then the source tree's
``checkpoints/`` (a clone, or an editable install). The Fashion-MNIST feature classifier
(:func:`glowapp.evaluation.classifier.feature_classifier_paths`) is looked up in the same places.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from glowapp.checkpointing import CheckpointError

__all__ = [
    "DEFAULT_MODEL",
    "ENV_VAR",
    "SHIPPED",
    "checkpoint_dirs",
    "display_path",
    "find_shipped",
    "resolve_checkpoint",
]

SHIPPED: dict[str, str] = {
    "fashion-mnist": "fashion-mnist.ckpt",
    "fashion-mnist-conditional": "fashion-mnist-conditional.ckpt",
    "fashion-mnist-background": "fashion-mnist-background.ckpt",
    "fashion-mnist-tarflow": "fashion-mnist-tarflow.ckpt",
}
"""Name of each shipped model -> its file name (model cards: ``checkpoints/README.md``)."""

DEFAULT_MODEL = "fashion-mnist"
"""The model the generation commands use when no ``--ckpt`` is given."""

ENV_VAR = "GLOWAPP_CHECKPOINTS"
"""Environment variable: folders (``os.pathsep``-separated) searched before the built-in ones."""

PACKAGE_DIR = Path(__file__).resolve().parent
"""The ``glowapp`` package folder (installed, or in the source tree)."""

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def checkpoint_dirs() -> list[Path]:
    """The folders searched for shipped files, in order: ``$GLOWAPP_CHECKPOINTS`` (if set), the
    package's ``glowapp/checkpoints/``, the source tree's ``checkpoints/`` beside the package."""
    extra = [Path(p).expanduser() for p in os.environ.get(ENV_VAR, "").split(os.pathsep) if p]
    return [*extra, PACKAGE_DIR / "checkpoints", PACKAGE_DIR.parent / "checkpoints"]


def display_path(path: str | os.PathLike[str]) -> str:
    """``path`` relative to the working directory when it lies below it, else absolute."""
    absolute = Path(path).absolute()
    try:
        return str(absolute.relative_to(Path.cwd()))
    except ValueError:
        return str(absolute)


def find_shipped(name: str) -> Path:
    """The file of the shipped model ``name``: the first of :func:`checkpoint_dirs` holding it.

    Raises:
        CheckpointError: ``name`` is not a shipped model, or its file is in none of the places
            (the message lists them in order and says how to get the file).
    """
    if name not in SHIPPED:
        raise CheckpointError(f"not a shipped model; shipped: {', '.join(SHIPPED)}", name)
    file_name = SHIPPED[name]
    dirs = checkpoint_dirs()
    found = next((d / file_name for d in dirs if (d / file_name).is_file()), None)
    if found is not None:
        return found
    env = "" if os.environ.get(ENV_VAR) else f" ({ENV_VAR} is not set)"
    raise CheckpointError(
        f"the shipped model's file {file_name} is missing: looked in "
        f"{', '.join(str(d) for d in dirs)}{env}. A fresh clone of the glowapp repository has "
        f"it in checkpoints/ (or `git pull` an older one); or set {ENV_VAR} to a folder holding "
        "it; or pass the checkpoint's path",
        name,
    )


def resolve_checkpoint(name_or_path: str | os.PathLike[str]) -> Path:
    """The checkpoint file meant by a path or a shipped model's name (:data:`SHIPPED`).

    An existing file is returned as is; then a shipped name resolves with :func:`find_shipped`
    (before a folder of the same name); any other existing path is returned as is (reading it
    says what is wrong with it).

    Raises:
        CheckpointError: ``"<path>: no such checkpoint file"`` (naming the shipped models when
            the text looks like a name rather than a path), or :func:`find_shipped`'s error.
    """
    text = os.fspath(name_or_path)
    path = Path(text)
    if path.is_file():
        return path
    if text in SHIPPED:
        return find_shipped(text)
    if path.exists():
        return path
    if _NAME.fullmatch(text):
        raise CheckpointError(
            f"no such checkpoint file, nor the name of a shipped model ({', '.join(SHIPPED)})",
            text,
        )
    raise CheckpointError("no such checkpoint file", path)
