"""Checkpoint files: read safely, validated with one error type, old formats translated.

:func:`read_checkpoint` checks a file once — missing, a directory, not a PyTorch zip archive,
truncated, unreadable with ``weights_only=True``, not a glowapp checkpoint — for
:func:`glowapp.load`, :func:`glowapp.module.load_module` and the CLI's ``--ckpt_path``
(:func:`check_checkpoint_file`). Every problem is a :class:`CheckpointError` with the message
``"<path>: <problem>"``. :func:`upgrade_hparams` translates the hyper-parameters of glowapp <
0.2 checkpoints; :func:`describe_state_mismatch` and :func:`flow_differences` say why weights do
not fit a model. Writing is :mod:`glowapp.atomic`'s; nothing here imports Lightning.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable, not glowapp's, or does not fit the model.

    The message is ``"<path>: <problem>"``; ``problem`` alone when the path is not known (inside
    Lightning's loading hooks, which see the loaded dictionary only).
    """

    def __init__(self, problem: str, path: str | os.PathLike[str] | None = None) -> None:
        self.problem = problem
        self.path = None if path is None else Path(path)
        super().__init__(problem if path is None else f"{path}: {problem}")


def first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def is_glowapp_checkpoint(checkpoint: object) -> bool:
    """Whether a loaded checkpoint holds a :class:`~glowapp.GlowModule`: weights
    (``state_dict``) and hyper-parameters with the flow spec (``flow``, or ``arch`` before 0.2)."""
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        return False
    hparams = checkpoint.get("hyper_parameters")
    return isinstance(hparams, Mapping) and (
        isinstance(hparams.get("flow"), Mapping) or "arch" in hparams
    )


def read_checkpoint(path: str | os.PathLike[str]) -> tuple[bytes, dict[str, Any]]:
    """Read a glowapp checkpoint file once: its bytes and the loaded dictionary (on the CPU).

    Unpickling is restricted to tensors and plain data (``weights_only=True``), so a checkpoint
    cannot run code.

    Raises:
        CheckpointError: the file is missing, a directory, unreadable, not a PyTorch checkpoint
            (zip archive), truncated, or not a glowapp checkpoint.
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError("is a directory, not a checkpoint file", path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError("no such checkpoint file", path) from None
    except OSError as err:
        raise CheckpointError(f"cannot read the checkpoint ({err.strerror or err})", path) from None
    # torch.save (and so Lightning) writes zip archives: tell garbage from truncated files first.
    if not data.startswith(b"PK\x03\x04"):
        raise CheckpointError("not a PyTorch checkpoint file", path)
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise CheckpointError("truncated or corrupt checkpoint (incomplete zip archive)", path)
    try:
        checkpoint = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:  # torch.load raises many types for bad input (pickle, zip, EOF...)
        raise CheckpointError(f"unreadable checkpoint: {first_line(err)}", path) from None
    if not is_glowapp_checkpoint(checkpoint):
        raise CheckpointError(
            "not a glowapp checkpoint (no GlowModule hyper-parameters and weights); "
            "pass a .ckpt written by `glowapp fit`",
            path,
        )
    return data, checkpoint


def check_checkpoint_file(path: str | os.PathLike[str]) -> Path:
    """``path``, once :func:`read_checkpoint` has found it an intact glowapp checkpoint."""
    read_checkpoint(path)
    return Path(path)


def describe_state_mismatch(
    expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor], limit: int = 5
) -> str:
    """One line naming the missing, unexpected and differently shaped keys (first ``limit`` of each)."""

    def few(keys: list[str]) -> str:
        return ", ".join(keys[:limit]) + (
            f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
        )

    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    shapes = [
        f"{k}: checkpoint {tuple(found[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in sorted(set(expected) & set(found))
        if tuple(found[k].shape) != tuple(expected[k].shape)
    ]
    parts = []
    if missing:
        parts.append(f"missing in checkpoint: {few(missing)}")
    if unexpected:
        parts.append(f"not in model: {few(unexpected)}")
    if shapes:
        parts.append(f"shape differs: {few(shapes)}")
    return "; ".join(parts)


_LEGACY_FLOWS = {
    "glow": ("glowapp.models.glow.Glow", ("levels", "steps", "hidden", "coupling", "permutation")),
    "realnvp": ("glowapp.models.realnvp.RealNVP", ("hidden", "blocks", "coupling", "batch_norm")),
    "nice": ("glowapp.models.nice.NICE", ("hidden",)),
}


def upgrade_hparams(hparams: Mapping[str, Any]) -> dict[str, Any]:
    """The hyper-parameters of a glowapp < 0.2 checkpoint (flat ``arch``, ``levels``, … keys)
    in today's form, with the flow as a :func:`~glowapp.models.flow_spec`. Today's pass through."""
    if "arch" not in hparams:
        return dict(hparams)
    old = dict(hparams)
    class_path, names = _LEGACY_FLOWS[old["arch"]]
    c, h, w = old.get("image_shape", (1, 28, 28))
    init_args = {k: old[k] for k in names if k in old}
    init_args.update(in_channels=c, image_size=[h, w], num_classes=old.get("num_classes", 0))
    if old["arch"] == "realnvp":
        init_args["scales"] = old.get("levels", 3)
    if old["arch"] == "nice":
        init_args.update(couplings=old.get("steps", 4), blocks=old.get("blocks", 0))
    else:
        init_args.update(
            spline_bins=old.get("spline_bins", 8), spline_bound=old.get("spline_bound", 3.0)
        )
    kept = ("lr", "warmup_steps", "lr_schedule", "weight_decay", "class_weight", "noise_seed")
    return {
        "flow": {"class_path": class_path, "init_args": init_args},
        "preprocessing": {"n_bits": old.get("n_bits", 8), "logit_alpha": old.get("logit_alpha")},
        "dequantization": {
            "kind": old.get("dequantization", "uniform"),
            "steps": old.get("dequantization_steps", 4),
            "hidden": old.get("dequantization_hidden", 32),
        },
        **{k: old[k] for k in kept if k in old},
        "memory_saving": old.get("memory_saving", False),
        "channels_last": old.get("channels_last", True),
    }


def flow_differences(ours: Mapping[str, Any], theirs: object) -> list[str]:
    """``name=theirs (model: ours)`` for the class path and each flow argument that differ
    between two :func:`~glowapp.models.flow_spec` specs (``theirs`` may be missing: ``[]``)."""
    if not isinstance(theirs, Mapping):
        return []
    differing = []
    if theirs.get("class_path") != ours["class_path"]:
        differing.append(f"class_path={theirs.get('class_path')!r} (model: {ours['class_path']!r})")
    their_args = theirs.get("init_args") or {}
    for name, value in ours["init_args"].items():
        if name in their_args and their_args[name] != value:
            differing.append(f"{name}={their_args[name]!r} (model: {value!r})")
    return differing
