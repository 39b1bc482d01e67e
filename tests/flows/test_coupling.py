"""Coupling layers (:mod:`glowapp.flows.coupling`): the affine scale bound, argument checks, and
class conditioning (label-independent at initialisation, the label as a hidden bias, guidance).
The generic bijection checks (every transform, both partitions, conditional and guided ones,
with attention) are in ``test_bijections.py``."""

from __future__ import annotations

import pytest
import torch
from helpers.bijections import perturb
from torch import Tensor

from glowapp.flows import ChannelCoupling, CheckerboardCoupling
from glowapp.flows.conditioning import Condition


def test_affine_coupling_scale_is_bounded() -> None:
    """Huge conditioner outputs still give ``|log s| < 2`` per element, so inversion stays finite."""
    layer = ChannelCoupling(4, 8, "affine")
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(10.0 * torch.randn_like(p))
    x = torch.randn(2, 4, 4, 4)
    with torch.no_grad():
        y, ld = layer(x)
        x2, _ = layer.inverse(y)
    assert float(ld.abs().max()) <= 2.0 * 2 * 4 * 4
    assert torch.isfinite(x2).all()


def test_argument_validation() -> None:
    """Bad constructor arguments and a missing context raise ValueError naming the problem."""
    with pytest.raises(ValueError, match="at least 2 channels"):
        ChannelCoupling(1, 8)
    with pytest.raises(ValueError, match="affine"):
        ChannelCoupling(4, 8, transform="cubic")
    with pytest.raises(ValueError, match="positive"):
        CheckerboardCoupling(4, 0)
    coupling = CheckerboardCoupling(1, 8, context_channels=4)
    with pytest.raises(ValueError, match="context_channels=4"):
        coupling(torch.zeros(1, 1, 2, 2))


def _labels_embedded(n: int, dim: int = 3) -> tuple[Tensor, Tensor]:
    """Two different batches of label embeddings ``[n, dim]``."""
    return torch.randn(n, dim), torch.randn(n, dim)


def test_fresh_conditional_coupling_ignores_the_label() -> None:
    """The label's projection starts at zero: any two labels give the same map (the network's
    other weights perturbed, so the map itself is not the identity)."""
    layer = ChannelCoupling(4, 8, "affine", cond_dim=3)
    with torch.no_grad():
        for name, p in layer.named_parameters():
            if "cond_proj" not in name:
                p.add_(0.3 * torch.randn_like(p))
    x = torch.randn(2, 4, 4, 4)
    e1, e2 = _labels_embedded(2)
    with torch.no_grad():
        y1, ld1 = layer(x, Condition(e1))
        y2, ld2 = layer(x, Condition(e2))
    assert torch.equal(y1, y2) and torch.equal(ld1, ld2)
    assert not torch.allclose(y1, x)


def test_label_enters_as_a_bias_of_the_first_hidden_layer() -> None:
    """``NN(x_a, e)``: conv3×3(x_a) + (W e)[:, :, None, None] before the first ReLU."""
    layer = perturb(ChannelCoupling(4, 8, "affine", cond_dim=3), 0.3)
    net = layer.net
    a = torch.randn(2, 2, 4, 4)
    e = torch.randn(2, 3)
    with torch.no_grad():
        hidden = torch.relu(net.net[0](a) + (e @ net.cond_proj.weight.T)[:, :, None, None])
        expected = net.net[4](torch.relu(net.net[2](hidden)))
        torch.testing.assert_close(net(a, e), expected)


def test_guided_coupling_uses_the_mixed_parameters() -> None:
    """Guided inverse = inverse with ``θ_w = (1 + w)·NN(y_a, c) − w·NN(y_a, ∅)``; still exactly
    inverted by the guided forward."""
    layer = perturb(ChannelCoupling(4, 8, "additive", cond_dim=3), 0.3)
    y = torch.randn(2, 4, 4, 4)
    c, null = _labels_embedded(2)
    guided = Condition(c, null, 2.0)
    with torch.no_grad():
        x, ld = layer.inverse(y, guided)
        shift = 3.0 * layer.net(y[:, :2], c) - 2.0 * layer.net(y[:, :2], null)
        torch.testing.assert_close(x, torch.cat([y[:, :2], y[:, 2:] - shift], dim=1))
        y2, _ = layer(x, guided)
    torch.testing.assert_close(y2, y)
    assert torch.equal(ld, torch.zeros(2))


def test_condition_checks() -> None:
    conditional = ChannelCoupling(4, 8, cond_dim=3)
    plain = ChannelCoupling(4, 8)
    assert conditional.conditional and not plain.conditional
    x = torch.randn(2, 4, 2, 2)
    with pytest.raises(ValueError, match="cond_dim=3"):
        conditional(x)
    with pytest.raises(ValueError, match="without label embeddings"):
        plain(x, Condition(torch.zeros(2, 3)))
    with pytest.raises(ValueError, match=r"\[2, 3\]"):
        conditional.inverse(x, Condition(torch.zeros(2, 5)))
    with pytest.raises(ValueError, match="only available in Glow's ConvNet"):
        ChannelCoupling(4, 8, blocks=1, attention_heads=2)


def test_default_coupling_keeps_its_state_dict_keys() -> None:
    """Without conditioning and attention the network has exactly its former parameters."""
    keys = set(ChannelCoupling(4, 8).state_dict())
    assert keys == {
        "net.net.0.weight",
        "net.net.0.bias",
        "net.net.2.weight",
        "net.net.2.bias",
        "net.net.4.conv.weight",
        "net.net.4.conv.bias",
        "net.net.4.logs",
    }
