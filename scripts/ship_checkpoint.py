#!/usr/bin/env python
"""Turn a training run's checkpoint into a shippable weights-only file.

Keeps what loading needs — ``state_dict`` (the averaged weights when the run used
``glowapp.callbacks.EMA``), ``hyper_parameters`` (old-format runs translated to the current
format), the Lightning version, ``global_step`` and ``epoch`` — and drops the optimizer, LR
scheduler, loops and callback states. The file is written atomically, then loaded back with
``glowapp.generate.load_module`` to prove it works; its size and sha256 are printed (the model
card in ``checkpoints/README.md`` records both).

    .venv/bin/python scripts/ship_checkpoint.py checkpoints/fashion-mnist-conditional/last.ckpt \\
        checkpoints/fashion-mnist-conditional.ckpt
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
from pathlib import Path

import torch

from glowapp.checkpointing import atomic_file, load_module, read_checkpoint, upgrade_hparams

KEPT = ("pytorch-lightning_version", "global_step", "epoch")


def weights_only(source: Path) -> dict[str, object]:
    """The shippable subset of the checkpoint at ``source``."""
    _, checkpoint = read_checkpoint(source)
    shipped: dict[str, object] = {
        "state_dict": checkpoint["state_dict"],
        "hyper_parameters": upgrade_hparams(checkpoint["hyper_parameters"]),
    }
    shipped.update({key: checkpoint[key] for key in KEPT if key in checkpoint})
    return shipped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="a run's checkpoint (e.g. last.ckpt)")
    parser.add_argument("target", type=Path, help="the weights-only file to write")
    args = parser.parse_args(argv)
    shipped = weights_only(args.source)
    buffer = io.BytesIO()
    torch.save(shipped, buffer)
    with atomic_file(args.target) as handle:
        handle.write(buffer.getvalue())
    load_module(args.target)  # raises if the file does not load as a model
    digest = hashlib.sha256(args.target.read_bytes()).hexdigest()
    size = args.target.stat().st_size / 2**20
    print(
        f"wrote {args.target}: step {shipped.get('global_step')}, {size:.1f} MiB, sha256 {digest}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
