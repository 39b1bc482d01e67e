"""Emerging convolutions (:mod:`glowapp.flows.emerging`) on their own and inside Glow.

The registry runs the generic checks (k = 3 and 5); here: each masked factor is triangular in
its (pixel, channel) order with the centre diagonal on the diagonal, the composition reads the
whole k×k window ("emerging"), the wavefront inverse is exact on odd-sized and non-square tiny
images for every kernel size, and ``Glow(permutation="emerging")`` round-trips and its log-det
matches the Jacobian.
"""

from __future__ import annotations

import pytest
import torch
from helpers.bijections import jacobian_logdets, perturb
from helpers.models import flat_latents, images, prepare
from torch import Tensor

from glowapp.flows import EmergingConv2d, FlowSequential, InvConv1x1LU
from glowapp.flows.emerging import AutoregressiveConv2d
from glowapp.models import Glow

pytestmark = pytest.mark.usefixtures("single_thread")


def pixel_major(jac: Tensor, c: int, h: int, w: int) -> Tensor:
    """A ``[C·H·W]²`` Jacobian of one sample reordered from ``(c, i, j)`` to the order
    ``(raster pixel, channel)``."""
    order = torch.arange(c * h * w).view(c, h, w).permute(1, 2, 0).reshape(-1)
    return jac[order][:, order]


@pytest.mark.parametrize("reverse", [False, True])
def test_each_factor_is_triangular_with_the_centre_diagonal(reverse: bool) -> None:
    """In (pixel, channel) order the Jacobian is lower (reverse: upper) triangular with
    ``exp(log_diag)`` on the diagonal, so ``log|det| = H·W·Σ log_diag``."""
    c, h, w = 3, 4, 5
    layer = perturb(AutoregressiveConv2d(c, 3, reverse=reverse), 0.5).double()
    x = torch.randn(1, c, h, w, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda v: layer(v)[0], x).reshape(c * h * w, -1)
    jac = pixel_major(jac, c, h, w)
    off = torch.triu(jac, 1) if not reverse else torch.tril(jac, -1)
    assert float(off.abs().max()) == 0.0
    assert (
        float(torch.tril(jac, -1).abs().max() if not reverse else torch.triu(jac, 1).abs().max())
        > 0
    )
    torch.testing.assert_close(torch.diagonal(jac), layer.log_diag.exp().detach().repeat(h * w))


def test_composition_reads_the_whole_window() -> None:
    """Every output of the emerging conv depends on every input of its k×k window, all channels
    (neither triangular factor does), and on nothing beyond the (2k − 1)×(2k − 1) square of two
    stacked k×k convolutions."""
    c, k = 2, 3
    layer = perturb(EmergingConv2d(c, k), 0.5).double()
    x = torch.randn(1, c, 9, 9, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda v: layer(v)[0][0, :, 4, 4], x)[:, 0]
    reads = jac.abs() > 0  # (C_out, C_in, H, W) for the output pixel (4, 4)
    assert bool(reads[:, :, 3:6, 3:6].all())
    outside = torch.ones(9, 9, dtype=torch.bool)
    outside[2:7, 2:7] = False
    assert not bool(reads[:, :, outside].any())


@pytest.mark.parametrize("kernel_size", [1, 3, 5])
@pytest.mark.parametrize("shape", [(2, 3, 5, 4), (1, 1, 3, 3), (2, 2, 1, 6)])
def test_inverse_and_logdet_on_tiny_images(kernel_size: int, shape: tuple[int, ...]) -> None:
    """Sequential substitution inverts exactly (float64) for every kernel size, odd and
    non-square images included, and both log-dets match the autograd Jacobian."""
    layer = perturb(EmergingConv2d(shape[1], kernel_size), 0.3).double()
    x = torch.randn(shape, dtype=torch.float64)
    y, ld = layer(x)
    x2, ld_inv = layer.inverse(y.detach())
    torch.testing.assert_close(x2, x, rtol=0, atol=1e-12)
    torch.testing.assert_close(ld, jacobian_logdets(lambda v: layer(v)[0], x))
    torch.testing.assert_close(ld_inv, jacobian_logdets(lambda v: layer.inverse(v)[0], y.detach()))


def test_kernel_size_is_validated() -> None:
    with pytest.raises(ValueError, match="odd kernel_size"):
        EmergingConv2d(3, kernel_size=4)


def tiny_emerging_glow() -> Glow:
    """A float64 ``Glow(permutation="emerging")`` on 1×4×4 images, perturbed off its init."""
    torch.manual_seed(0)
    glow = Glow(1, levels=2, steps=2, hidden=8, permutation="emerging", image_size=4)
    return prepare(glow.double(), images(8, 1, 4, dtype=torch.float64), scale=0.1)


def test_glow_step_is_emerging_then_1x1() -> None:
    """Each step mixes channels with an emerging 3×3 conv followed by an LU 1×1 conv."""
    glow = tiny_emerging_glow()
    mixers = [m for m in glow.modules() if isinstance(m, EmergingConv2d)]
    assert len(mixers) == 4  # 2 levels × 2 steps
    step_mixer = glow.levels[0].layers[1].layers[1]
    assert isinstance(step_mixer, FlowSequential)
    assert [type(m) for m in step_mixer.layers] == [EmergingConv2d, InvConv1x1LU]


def test_glow_emerging_round_trip_and_logdet() -> None:
    """``decode(encode(x)) = x`` and the encode log-det = ``log|det ∂(ε₁, ε₂)/∂x|`` (float64)."""
    glow = tiny_emerging_glow()
    x = images(2, 1, 4, dtype=torch.float64)
    latents, logdet = glow.encode(x)
    x2 = glow.decode([eps.detach() for eps in latents])
    torch.testing.assert_close(x2, x, rtol=0, atol=1e-12)

    def encode_flat(v: Tensor) -> Tensor:
        return flat_latents(glow.encode(v)[0])

    torch.testing.assert_close(logdet, jacobian_logdets(encode_flat, x), rtol=1e-9, atol=1e-9)
