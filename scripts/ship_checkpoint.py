#!/usr/bin/env python
"""Turn a training run's checkpoint into a shippable weights-only file.

Keeps what loading needs — ``state_dict`` (the averaged weights when the run used
``glowapp.callbacks.EMA``), ``hyper_parameters`` (old-format runs translated to the current
format), the Lightning version, ``global_step`` and ``epoch`` — and drops the optimizer, LR
scheduler, loops and callback states. ``--temperature``, ``--guidance`` and ``--denoise`` set
the default sampling settings the file records (what every tool uses when not told otherwise).
The file is written atomically, then loaded back with ``glowapp.load`` to prove it works; its
size and sha256 are printed (the model card in ``checkpoints/README.md`` records both).

    .venv/bin/python scripts/ship_checkpoint.py checkpoints/fashion-mnist-conditional/last.ckpt \\
        checkpoints/fashion-mnist-conditional.ckpt --guidance 1
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
from pathlib import Path

import torch

import glowapp
from glowapp.atomic import atomic_file
from glowapp.checkpointing import read_checkpoint, upgrade_hparams
from glowapp.options import Sampling, as_dict, as_option

KEPT = ("pytorch-lightning_version", "global_step", "epoch")


def weights_only(source: Path, sampling: dict[str, object] | None = None) -> dict[str, object]:
    """The shippable subset of the checkpoint at ``source``; ``sampling`` overrides fields of
    its default sampling settings (:class:`glowapp.options.Sampling`)."""
    _, checkpoint = read_checkpoint(source)
    hparams = upgrade_hparams(checkpoint["hyper_parameters"])
    defaults = as_option(hparams.get("sampling") or {}, Sampling)
    hparams["sampling"] = as_dict(as_option({**as_dict(defaults), **(sampling or {})}, Sampling))
    shipped: dict[str, object] = {
        "state_dict": checkpoint["state_dict"],
        "hyper_parameters": hparams,
    }
    shipped.update({key: checkpoint[key] for key in KEPT if key in checkpoint})
    return shipped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="a run's checkpoint (e.g. last.ckpt)")
    parser.add_argument("target", type=Path, help="the weights-only file to write")
    parser.add_argument("--temperature", type=float, help="default sampling temperature")
    parser.add_argument("--guidance", type=float, help="default classifier-free guidance weight")
    parser.add_argument(
        "--denoise",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="default denoising (models trained with Gaussian noise)",
    )
    parser.add_argument(
        "--unconditional",
        action="store_true",
        help="ship a model trained with label dropout as the unconditional model p(x | ∅) "
        "(it then takes no labels)",
    )
    args = parser.parse_args(argv)
    overrides = {
        name: getattr(args, name)
        for name in ("temperature", "guidance", "denoise")
        if getattr(args, name) is not None
    }
    shipped = weights_only(args.source, overrides)
    if args.unconditional:
        shipped["hyper_parameters"]["unconditional"] = True
    buffer = io.BytesIO()
    torch.save(shipped, buffer)
    with atomic_file(args.target) as handle:
        handle.write(buffer.getvalue())
    model = glowapp.load(args.target)  # raises if the file does not load as a model
    digest = hashlib.sha256(args.target.read_bytes()).hexdigest()
    size = args.target.stat().st_size / 2**20
    print(
        f"wrote {args.target}: step {shipped.get('global_step')}, {size:.1f} MiB, sha256 {digest}; "
        f"sampling defaults {as_dict(model.sampling)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
