"""Worker functions for tests that spawn processes (``torch.multiprocessing.spawn`` pickles them
by module and name, so they must live in an importable module, not in a test file)."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor

from glowapp.flows import ActNorm


def actnorm_ddp_worker(
    rank: int, world: int, init_file: str, batches: list[Tensor], out: str
) -> None:
    """One gloo rank: data-initialise an ActNorm on ``batches[rank]`` ``[N_r, C, H, W]`` and save
    its ``bias`` and ``log_scale`` to ``{out}/{rank}.pt``."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        layer = ActNorm(batches[rank].shape[1]).train()
        layer(batches[rank])
        torch.save(
            {"bias": layer.bias.detach(), "log_scale": layer.log_scale.detach()}, f"{out}/{rank}.pt"
        )
    finally:
        dist.destroy_process_group()
