"""Wall-clock cost of a flow's two directions: drawing samples and evaluating the density."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from glowapp.playground.flow import VectorFlow


def fastest_seconds(fn: Callable[[], object], repeats: int = 3) -> float:
    """The fastest of ``repeats`` timed calls of ``fn``, after one untimed warm-up call.

    The minimum is the least disturbed by other processes on a shared machine.
    """
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


@dataclass
class Cost:
    """Seconds to draw ``n`` samples and to evaluate ``log p`` at ``n`` points of dimension ``dim``."""

    flow: str
    dim: int
    n: int
    sample_seconds: float
    density_seconds: float


def measure_cost(
    name: str, flow: VectorFlow, n: int = 10_000, repeats: int = 3, seed: int = 0
) -> Cost:
    """Time ``flow.sample(n)`` and ``flow.log_prob`` on ``n`` standard-normal points (one batch)."""
    generator = torch.Generator().manual_seed(seed)
    points = torch.randn(n, flow.dim, generator=generator)
    flow.eval()

    def density() -> None:
        with torch.no_grad():
            flow.log_prob(points)

    return Cost(
        flow=name,
        dim=flow.dim,
        n=n,
        sample_seconds=fastest_seconds(lambda: flow.sample(n, generator), repeats),
        density_seconds=fastest_seconds(density, repeats),
    )
