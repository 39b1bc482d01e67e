"""Self-attention for coupling networks (:mod:`glowapp.flows.attention`): identity at
initialisation, global mixing once trained, any layout, bf16 autocast, position codes."""

from __future__ import annotations

import pytest
import torch
from helpers.bijections import perturb

from glowapp.flows.attention import SelfAttention2d, sinusoidal_positions
from glowapp.flows.nets import ConvNet

pytestmark = pytest.mark.usefixtures("single_thread")


def test_starts_as_the_identity() -> None:
    block = SelfAttention2d(16, 4)
    x = torch.randn(2, 16, 5, 3)
    assert torch.equal(block(x), x)


def test_every_output_reads_every_position() -> None:
    """Changing one pixel changes the outputs at all positions (a 3×3 conv reaches 9)."""
    block = perturb(SelfAttention2d(8, 2), 0.3)
    x = torch.randn(1, 8, 6, 6)
    x2 = x.clone()
    x2[0, :, 0, 0] += torch.randn(8)  # not a constant: LayerNorm would remove that
    with torch.no_grad():
        change = (block(x2) - block(x)).abs().sum(dim=1)[0]
    change[0, 0] = 1.0  # the changed pixel itself
    assert float(change.min()) > 0


def test_channels_last_in_channels_last_out_same_numbers() -> None:
    block = perturb(SelfAttention2d(12, 3), 0.3)
    x = torch.randn(3, 12, 4, 6)
    with torch.no_grad():
        y = block(x)
        y_cl = block(x.contiguous(memory_format=torch.channels_last))
    assert y_cl.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(y_cl, y, rtol=1e-5, atol=1e-5)


def test_bf16_autocast_on_cpu_runs_forward_and_backward() -> None:
    block = perturb(SelfAttention2d(16, 2), 0.3)
    x = torch.randn(2, 16, 4, 4).contiguous(memory_format=torch.channels_last).requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = block(x)
    assert torch.isfinite(y).all()
    y.float().square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in block.parameters())
    with torch.no_grad():
        reference = block(x)
        assert float((y.float() - reference).abs().max()) < 0.1 * float(reference.abs().max())


def test_heads_must_divide_the_width() -> None:
    with pytest.raises(ValueError, match="3 heads for 16 channels"):
        SelfAttention2d(16, 3)
    with pytest.raises(ValueError, match="heads >= 1"):
        SelfAttention2d(16, 0)


def test_position_codes() -> None:
    """One distinct code per pixel, in ``[−1, 1]``; channels beyond a multiple of 4 are zero."""
    codes = sinusoidal_positions(3, 5, 10, torch.device("cpu"), torch.float32)
    assert codes.shape == (15, 10)
    assert float(codes.abs().max()) <= 1.0
    assert torch.equal(codes[:, 8:], torch.zeros(15, 2))
    assert len({tuple(row.tolist()) for row in codes}) == 15
    # Row codes depend on the row only, column codes on the column only.
    grid = codes.view(3, 5, 10)
    assert torch.equal(grid[:, :1, :4].expand(3, 5, 4), grid[:, :, :4])
    assert torch.equal(grid[:1, :, 4:8].expand(3, 5, 4), grid[:, :, 4:8])


def test_conv_net_options_keep_the_default_keys() -> None:
    """Attention and conditioning add their own keys and leave the default network's alone."""
    plain = set(ConvNet(4, 8, 16).state_dict())
    assert plain == {f"net.{i}.{n}" for i in (0, 2) for n in ("weight", "bias")} | {
        "net.4.conv.weight",
        "net.4.conv.bias",
        "net.4.logs",
    }
    both = set(ConvNet(4, 8, 16, cond_dim=3, attention_heads=2).state_dict())
    assert plain < both
    assert {k.split(".")[0] for k in both - plain} == {"attention", "cond_proj"}
