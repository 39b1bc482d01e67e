"""A normalizing flow on ``[B, D]`` points: a standard normal base and one bijection."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from glowapp.flows import Bijection, standard_normal_log_prob


class VectorFlow(nn.Module):
    """The density ``p(x) = N(f(x); 0, I) · |det ∂f/∂x|`` of a bijection ``f`` from data to noise.

    ``to_noise`` is ``f``: its ``forward`` maps data ``x`` to noise ``z`` (the density's
    direction), its ``inverse`` maps noise to data (the sampling direction). Which of the two is
    a layer's cheap direction is the layer's business: a flow trained by sampling (reverse KL)
    wraps its layers in :class:`~glowapp.flows.Inverse` so that sampling is their ``forward``.

    * ``log_prob(x)``: ``log N(f(x)) + log|det ∂f/∂x|``, ``[B, D] -> [B]`` nats;
    * ``sample_with_log_prob(n)``: ``z ~ N(0, I)``, ``x = f⁻¹(z)`` and
      ``log p(x) = log N(z) − log|det ∂x/∂z|``, without running ``f`` itself.
    """

    def __init__(self, to_noise: Bijection, dim: int) -> None:
        super().__init__()
        self.to_noise = to_noise
        self.dim = dim

    def log_prob(self, x: Tensor) -> Tensor:
        z, logdet = self.to_noise(x)
        return standard_normal_log_prob(z) + logdet

    def sample_with_log_prob(
        self, n: int, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """``n`` samples ``[n, D]`` and their log-density ``[n]``."""
        z = torch.randn(n, self.dim, generator=generator)  # on the CPU, like the generator
        param = next(self.parameters(), None)
        z = z if param is None else z.to(param)  # the flow's device and dtype
        x, logdet = self.to_noise.inverse(z)  # logdet = log|det ∂x/∂z|
        return x, standard_normal_log_prob(z) - logdet

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` samples ``[n, D]`` (no gradients)."""
        with torch.no_grad():
            return self.sample_with_log_prob(n, generator)[0]
