"""ActNorm (:mod:`glowapp.flows.actnorm`): data-dependent initialisation, kept in the state dict
and shared by all DDP ranks. The generic bijection checks are in ``test_bijections.py``."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from helpers.bijections import assert_rel_close
from helpers.distributed import actnorm_ddp_worker
from torch import Tensor

from glowapp.flows import ActNorm

pytestmark = pytest.mark.usefixtures("single_thread")


def channel_data(n: int = 16, channels: int = 4) -> Tensor:
    """Data whose channels have clearly different means and scales (one with |mean| = 200·std)."""
    loc = torch.linspace(-3.0, 20.0, channels).view(1, channels, 1, 1)
    scale = torch.linspace(4.0, 0.1, channels).view(1, channels, 1, 1)
    return loc + scale * torch.randn(n, channels, 8, 8)


def test_data_init_normalises() -> None:
    """After init on a batch, that batch's outputs have zero mean and unit variance per channel."""
    layer = ActNorm(4).train()
    x = channel_data()
    with torch.no_grad():
        y, ld = layer(x)
    assert bool(layer.initialized)
    assert float(y.mean(dim=(0, 2, 3)).abs().max()) < 1e-5
    assert float((y.var(dim=(0, 2, 3), unbiased=False) - 1).abs().max()) < 1e-4
    ref = -64 * (x.double().std(dim=(0, 2, 3), unbiased=False) + layer.eps).log().sum()
    assert_rel_close(ld, ref.expand(16), 1e-6)
    # A second training batch does not re-initialise.
    before = [p.detach().clone() for p in layer.parameters()]
    layer(channel_data() * 3.0)
    assert all(torch.equal(a, b) for a, b in zip(before, layer.parameters(), strict=True))


def test_eval_mode_does_not_initialise() -> None:
    """Eval-mode forwards leave an uninitialised ActNorm the identity; training initialises it."""
    layer = ActNorm(4).eval()
    x = channel_data()
    y, ld = layer(x)
    assert torch.equal(y, x) and torch.equal(ld, torch.zeros(16))
    assert not bool(layer.initialized)
    layer.train()
    layer(x)
    assert bool(layer.initialized) and float(layer.log_scale.detach().abs().max()) > 0.1


def test_initialisation_survives_state_dict() -> None:
    """A loaded initialised ActNorm is not re-initialised by the next training batch."""
    trained = ActNorm(4).train()
    trained(channel_data())
    with torch.no_grad():
        trained.bias.add_(0.5)  # as after some optimiser steps
    loaded = ActNorm(4)
    loaded.load_state_dict(trained.state_dict())
    loaded.train()
    loaded(channel_data() * 5.0 + 1.0)
    assert torch.equal(loaded.bias, trained.bias)
    assert torch.equal(loaded.log_scale, trained.log_scale)


def test_loading_uninitialised_state_reenables_init() -> None:
    """Loading a never-initialised state into a used ActNorm makes the next batch initialise it."""
    layer = ActNorm(4).train()
    layer(channel_data())
    layer.load_state_dict(ActNorm(4).state_dict())
    assert not bool(layer.initialized)
    x = channel_data() + 2.0
    with torch.no_grad():
        y, _ = layer(x)
    assert bool(layer.initialized)
    assert float(y.mean(dim=(0, 2, 3)).abs().max()) < 1e-5


def test_ddp_initialises_from_all_ranks(tmp_path: Path) -> None:
    """Two gloo ranks with different batches end with identical parameters = init on the union."""
    batches = [channel_data(n=3), channel_data(n=5) * 2.0 + 1.0]  # different sizes and stats
    mp.spawn(
        actnorm_ddp_worker,
        args=(2, str(tmp_path / "store"), batches, str(tmp_path)),
        nprocs=2,
        join=True,
    )
    ranks = [torch.load(tmp_path / f"{r}.pt") for r in range(2)]
    reference = ActNorm(4).train()
    reference(torch.cat(batches))
    for name in ("bias", "log_scale"):
        assert torch.equal(ranks[0][name], ranks[1][name])
        torch.testing.assert_close(
            ranks[0][name], getattr(reference, name).detach(), rtol=0, atol=1e-5
        )
    # And the union's statistics differ from either rank's own, so the all-reduce mattered.
    alone = ActNorm(4).train()
    alone(batches[0])
    assert float((alone.bias.detach() - ranks[0]["bias"]).abs().max()) > 0.1
