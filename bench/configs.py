"""The benchmark configurations and their fixed input batch (no Lightning import, so that
:mod:`bench.compare_reference`'s reference processes stay light)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from glowapp.models import Glow

MODES = ("train", "eval", "sample")
TEMPERATURE = 0.7
#: Peak learning rate and warm-up of the Adam every benchmark builds: the module's
#: (``GlowModule(lr=LR, warmup_steps=WARMUP_STEPS)``) and the reference's alike.
LR = 1e-3
WARMUP_STEPS = 200


@dataclass(frozen=True)
class Config:
    """One benchmark configuration: a Glow on ``channels × size × size`` images, float32."""

    name: str
    channels: int
    size: int
    levels: int
    steps: int
    hidden: int
    batch: int
    coupling: str = "affine"
    permutation: str = "lu"

    @property
    def num_dims(self) -> int:
        return self.channels * self.size * self.size

    def flow(self) -> Glow:
        """The config's Glow, built for its image size as the CLI builds it from a config."""
        return Glow(
            in_channels=self.channels,
            image_size=self.size,
            levels=self.levels,
            steps=self.steps,
            hidden=self.hidden,
            coupling=self.coupling,
            permutation=self.permutation,
        )


CONFIGS = {
    "S": Config("S", channels=1, size=32, levels=3, steps=8, hidden=128, batch=32),
    "C": Config("C", channels=3, size=32, levels=3, steps=16, hidden=256, batch=16),
}
# --quick: same structure, tiny sizes (a smoke test of the whole pipeline, not a measurement).
QUICK_CONFIGS = {
    "S": Config("S", channels=1, size=16, levels=2, steps=2, hidden=16, batch=4),
    "C": Config("C", channels=3, size=16, levels=2, steps=2, hidden=24, batch=4),
}


def configs(quick: bool) -> dict[str, Config]:
    """The full configurations, or ``--quick``'s tiny ones."""
    return QUICK_CONFIGS if quick else CONFIGS


def make_batch(cfg: Config, seed: int = 0) -> tuple[Tensor, Tensor]:
    """A fixed batch as the DataModules yield it: uint8 images ``[B, C, H, W]``, labels ``[B]``
    (random values: they do not change the cost)."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (cfg.batch, cfg.channels, cfg.size, cfg.size), generator=g)
    return images.to(torch.uint8), torch.zeros(cfg.batch, dtype=torch.long)
