"""2-D point data sets for maximum-likelihood fits, drawn with torch from a seed.

Each sampler maps ``(n, generator) -> [n, 2]`` float32 points, most of the mass inside
``[−3, 3]²`` (so one plotting grid fits all and spline transformers' intervals cover the data).
The same seed gives the same points on every machine.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

Sampler = Callable[[int, torch.Generator], Tensor]


def _uniform(n: int, generator: torch.Generator) -> Tensor:
    return torch.rand(n, generator=generator)


def two_moons(n: int, generator: torch.Generator, noise: float = 0.1) -> Tensor:
    """Two interleaved half circles of radius 1 (upper: centre (0, 0); lower: centre (1, 0.5),
    flipped), with ``N(0, noise²)`` jitter, centred and scaled ×1.6: ``[n, 2]``."""
    t = math.pi * _uniform(n, generator)
    lower = torch.rand(n, generator=generator) < 0.5
    x = torch.where(lower, 1 - torch.cos(t), torch.cos(t))
    y = torch.where(lower, 0.5 - torch.sin(t), torch.sin(t))
    points = torch.stack([x, y], dim=1) + noise * torch.randn(n, 2, generator=generator)
    return 1.6 * (points - torch.tensor([0.5, 0.25]))


def rings(
    n: int,
    generator: torch.Generator,
    radii: tuple[float, ...] = (0.8, 1.6, 2.4),
    noise: float = 0.08,
) -> Tensor:
    """Concentric circles, uniform along their length (a ring is picked with probability ∝ its
    radius), with radial ``N(0, noise²)`` jitter: ``[n, 2]``."""
    r = torch.tensor(radii)
    ring = torch.multinomial(r / r.sum(), n, replacement=True, generator=generator)
    angle = 2 * math.pi * _uniform(n, generator)
    radius = r[ring] + noise * torch.randn(n, generator=generator)
    return radius[:, None] * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)


def checkerboard(n: int, generator: torch.Generator, squares: int = 4, size: float = 4.0) -> Tensor:
    """Uniform on the dark squares of a ``squares × squares`` board of side ``size`` centred at
    the origin (squares with even row + column; ``squares`` even): ``[n, 2]``."""
    if squares < 2 or squares % 2:
        raise ValueError(f"the board needs an even number of squares per side, got {squares}")
    cell = size / squares
    column = torch.randint(0, squares, (n,), generator=generator)
    # Rows of the same parity as the column: every other one, starting at column % 2.
    row = 2 * torch.randint(0, squares // 2, (n,), generator=generator) + column % 2
    offset = torch.rand(n, 2, generator=generator)
    corner = torch.stack([column, row], dim=1).float()
    return cell * (corner + offset) - size / 2


def pinwheel(
    n: int,
    generator: torch.Generator,
    arms: int = 5,
    radial_std: float = 0.3,
    tangential_std: float = 0.1,
    twist: float = 0.25,
    scale: float = 1.5,
) -> Tensor:
    """Spiral arms (Johnson et al. 2016): a point ``(1 + radial_std·ε₁, tangential_std·ε₂)``
    rotated by its arm's angle ``2πk/arms`` plus ``twist·exp(1 + radial_std·ε₁)`` (farther
    points turn more), scaled by ``scale``: ``[n, 2]``."""
    arm = torch.randint(0, arms, (n,), generator=generator)
    eps = torch.randn(n, 2, generator=generator)
    radial = 1 + radial_std * eps[:, 0]
    tangential = tangential_std * eps[:, 1]
    angle = 2 * math.pi * arm / arms + twist * torch.exp(radial)
    cos, sin = torch.cos(angle), torch.sin(angle)
    x = cos * radial - sin * tangential
    y = sin * radial + cos * tangential
    return scale * torch.stack([x, y], dim=1)


DATASETS: dict[str, Sampler] = {
    "moons": two_moons,
    "rings": rings,
    "checkerboard": checkerboard,
    "pinwheel": pinwheel,
}


def sample_dataset(name: str, n: int, seed: int) -> Tensor:
    """``n`` points of the data set ``name`` drawn from ``seed``: ``[n, 2]`` float32."""
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}: choose one of {sorted(DATASETS)}")
    return DATASETS[name](n, torch.Generator().manual_seed(seed))
