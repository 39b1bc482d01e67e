"""Correctness of every bijection in :mod:`glowapp.flows`.

One registry (:data:`CASES`) runs every layer through the same checks, nflows-style: shapes,
finiteness, exact inversion, ``forward`` log-det = −``inverse`` log-det, and both log-dets
against ``log|det J|`` of the autograd Jacobian in float64. Conditioner networks and priors are
zero-initialised (the identity at init), so every layer is perturbed before it is tested.
Layer-specific behaviour (ActNorm's data-dependent init under DDP, the 1×1 conv's eval cache
and autocast, Split's signature) and "the density integrates to one" follow.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import Tensor, nn

from glowapp.flows import (
    ActNorm,
    BatchNormFlow,
    Bijection,
    CenterShift,
    ChannelCoupling,
    ChannelPermutation,
    CheckerboardCoupling,
    DiagonalScaling,
    FlowSequential,
    InvConv1x1,
    InvConv1x1LU,
    Inverse,
    LogitTransform,
    Split,
    Squeeze,
    TopPrior,
    standard_normal_log_prob,
)
from glowapp.flows.base import channel_linear
from glowapp.flows.nets import PointwiseConv2d

pytestmark = pytest.mark.usefixtures("single_thread")

Shape = tuple[int, int, int, int]
LOG_2PI = math.log(2 * math.pi)


# ---- helpers ------------------------------------------------------------------------------------
def perturb(module: nn.Module, scale: float = 0.1) -> nn.Module:
    """Add ``N(0, scale²)`` noise to every parameter, so zero-initialised nets are not the identity."""
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn_like(p))
    return module


def init_actnorms(module: nn.Module, x: Tensor) -> None:
    """Run one training-mode forward so every ActNorm inside ``module`` is data-initialised."""
    module.train()
    with torch.no_grad():
        module(x)


def assert_rel_close(actual: Tensor, expected: Tensor, rtol: float) -> None:
    """``|actual − expected| ≤ rtol · max(1, |expected|)`` elementwise (relative, absolute near 0)."""
    actual, expected = actual.detach().double(), expected.detach().double()
    err = (actual - expected).abs() / expected.abs().clamp_min(1.0)
    assert float(err.max()) < rtol, (
        f"relative error {float(err.max()):.3g} ≥ {rtol}: {actual} vs {expected}"
    )


def jacobian_logdets(fn: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """``log|det ∂fn(x)_b/∂x_b|`` for each sample ``b`` (float64), via the full autograd Jacobian.

    ``fn`` maps a batch ``[B, ...]`` to a batch with as many elements per sample. The Jacobian of
    the whole batch is computed and its off-diagonal (cross-sample) blocks are checked to be zero:
    samples must not interact.
    """
    b, d = x.shape[0], x[0].numel()
    jac = torch.autograd.functional.jacobian(lambda inp: fn(inp).reshape(b, -1).double(), x)
    jac = jac.reshape(b, d, b, d)
    blocks = torch.stack([jac[i, :, i] for i in range(b)])
    cross = jac.clone()
    for i in range(b):
        cross[i, :, i] = 0
    assert float(cross.abs().max()) == 0.0, "samples of a batch interact"
    return torch.linalg.slogdet(blocks)[1]


class SplitBijection(Bijection):
    """:class:`Split` as a same-shape bijection ``x -> cat(h, ε)``, so the shared checks apply."""

    def __init__(self, num_channels: int) -> None:
        super().__init__()
        self.split = Split(num_channels)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h, eps, ld = self.split(x)
        return torch.cat([h, eps.to(h.dtype)], dim=1), ld

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        kept = self.split.kept
        return self.split.inverse(y[:, :kept], y[:, kept:])


class LabelledTopPrior(Bijection):
    """A class-conditional :class:`TopPrior` with labels ``b % num_classes`` for sample ``b``."""

    def __init__(self, num_channels: int, num_classes: int = 3) -> None:
        super().__init__()
        self.prior = TopPrior(num_channels, num_classes)

    def _labels(self, x: Tensor) -> Tensor:
        return torch.arange(x.shape[0]) % self.prior.num_classes

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.prior(x, self._labels(x))

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        return self.prior.inverse(y, self._labels(y))


# ---- the registry -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """A bijection to check: how to build it for an input shape, and its input domain."""

    name: str
    build: Callable[[Shape], Bijection]
    shape: Shape = (4, 4, 8, 8)  # default-size checks (float32)
    tiny: Shape = (2, 4, 2, 2)  # Jacobian checks (float64)
    unit_interval: bool = False  # inputs must lie in (0, 1)

    def sample(self, shape: Shape, dtype: torch.dtype = torch.float32) -> Tensor:
        if self.unit_interval:
            return 0.01 + 0.98 * torch.rand(shape, dtype=dtype)
        return torch.randn(shape, dtype=dtype)


def _actnorm(shape: Shape, scale: float) -> Bijection:
    layer = ActNorm(shape[1])
    init_actnorms(layer, 2.0 * torch.randn(16, *shape[1:]) + 1.0)
    return perturb(layer, scale) if scale else layer


def _batchnorm(shape: Shape) -> Bijection:
    layer = perturb(BatchNormFlow(shape[1]))
    layer.train()
    with torch.no_grad():
        for _ in range(20):  # non-trivial running statistics
            layer(3.0 * torch.randn(8, *shape[1:]) + 2.0)
    return layer


def _sequential(shape: Shape) -> Bijection:
    c = shape[1]
    flow = FlowSequential(
        [
            ActNorm(c),
            InvConv1x1LU(c),
            ChannelCoupling(c, hidden=16, transform="affine"),
            Squeeze(),
            CheckerboardCoupling(4 * c, hidden=16, transform="affine", parity=1),
            ChannelPermutation(4 * c, "shuffle"),
            TopPrior(4 * c),
        ]
    )
    perturb(flow)
    init_actnorms(flow, torch.randn(16, *shape[1:]))
    perturb(flow.layers[0])
    return flow


# A spline's slope can get close to its minimum (1e-3) where bins are narrow and tall, and there
# the float32 inverse is ill-conditioned (x error ≈ rounding error of y / slope): spline couplings
# get smaller perturbations, which keep slopes moderate. tests/test_spline.py checks large
# parameters in float64.
SCALE = {"spline": 0.03}


def _coupling(transform: str, swap: bool, channels: int = 4, blocks: int = 0) -> Case:
    def build(shape: Shape) -> Bijection:
        coupling = ChannelCoupling(shape[1], 16, transform=transform, swap=swap, blocks=blocks)
        return perturb(coupling, SCALE.get(transform, 0.1))

    name = f"channel-coupling-{transform}-swap{int(swap)}-c{channels}-blocks{blocks}"
    return Case(name, build, shape=(4, channels, 8, 8), tiny=(2, channels, 2, 2))


def _checkerboard(transform: str, parity: int) -> Case:
    def build(shape: Shape) -> Bijection:
        coupling = CheckerboardCoupling(shape[1], 16, transform=transform, parity=parity)
        return perturb(coupling, SCALE.get(transform, 0.1))

    return Case(
        f"checkerboard-{transform}-parity{parity}", build, shape=(4, 3, 8, 8), tiny=(2, 3, 4, 2)
    )


CASES: list[Case] = [
    Case("squeeze", lambda s: Squeeze(), tiny=(2, 2, 4, 2)),
    Case("actnorm-data-init", lambda s: _actnorm(s, 0.0)),
    Case("actnorm-perturbed", lambda s: _actnorm(s, 0.3)),
    Case("invconv1x1", lambda s: perturb(InvConv1x1(s[1]))),
    Case("invconv1x1-lu", lambda s: perturb(InvConv1x1LU(s[1]))),
    Case("permutation-reverse", lambda s: ChannelPermutation(s[1], "reverse")),
    Case("permutation-shuffle", lambda s: ChannelPermutation(s[1], "shuffle")),
    _coupling("affine", False),
    _coupling("affine", True),
    _coupling("additive", False),
    _coupling("additive", True),
    _coupling("affine", False, channels=5),
    _coupling("affine", True, channels=5),
    _coupling("additive", True, channels=3),
    _coupling("affine", False, blocks=2),
    _coupling("additive", True, channels=5, blocks=1),
    _coupling("spline", False),
    _coupling("spline", True, channels=5),
    _coupling("spline", False, blocks=1),
    _checkerboard("affine", 0),
    _checkerboard("affine", 1),
    _checkerboard("additive", 0),
    _checkerboard("additive", 1),
    _checkerboard("spline", 1),
    Case(
        "checkerboard-affine-resnet",
        lambda s: perturb(CheckerboardCoupling(s[1], 16, "affine", parity=1, blocks=2)),
    ),
    Case("diagonal-scaling", lambda s: perturb(DiagonalScaling(s[1:]), 0.5)),
    Case("batchnorm-eval", _batchnorm),
    Case("top-prior", lambda s: perturb(TopPrior(s[1]), 0.5)),
    Case("top-prior-class-conditional", lambda s: perturb(LabelledTopPrior(s[1]), 0.5)),
    Case("logit", lambda s: LogitTransform(0.05), unit_interval=True),
    Case("logit-alpha0", lambda s: LogitTransform(0.0), unit_interval=True),
    Case("center-shift", lambda s: CenterShift()),
    Case("split", lambda s: perturb(SplitBijection(s[1]), 0.2)),
    Case(
        "split-odd",
        lambda s: perturb(SplitBijection(s[1]), 0.2),
        shape=(4, 5, 8, 8),
        tiny=(2, 5, 2, 2),
    ),
    Case("sequential", _sequential, tiny=(2, 2, 2, 2)),
    Case("inverse-coupling", lambda s: Inverse(perturb(ChannelCoupling(s[1], 16, "affine")))),
    Case("inverse-logit", lambda s: Inverse(LogitTransform(0.05))),
    Case(
        "inverse-sequential",  # its inputs live in the sequential's output space [B, 4C, H/2, W/2]
        lambda s: Inverse(_sequential((s[0], s[1] // 4, 2 * s[2], 2 * s[3]))),
        shape=(4, 16, 4, 4),
        tiny=(2, 8, 1, 1),
    ),
]


def build(case: Case, shape: Shape, dtype: torch.dtype = torch.float32) -> Bijection:
    """The case's layer for ``shape``, in eval mode and ``dtype``."""
    return case.build(shape).eval().to(dtype)


@pytest.fixture(params=CASES, ids=[c.name for c in CASES])
def case(request: pytest.FixtureRequest) -> Case:
    return request.param


# ---- the shared checks --------------------------------------------------------------------------
def test_shapes_and_finite(case: Case) -> None:
    """Outputs have the expected shapes, a ``[B]`` log-det, and are finite both ways."""
    layer = build(case, case.shape)
    x = case.sample(case.shape)
    with torch.no_grad():
        y, ld = layer(x)
        x2, ld_inv = layer.inverse(y)
    assert y.numel() == x.numel() and y.shape[0] == x.shape[0]
    assert x2.shape == x.shape
    assert ld.shape == ld_inv.shape == (x.shape[0],)
    for t in (y, ld, x2, ld_inv):
        assert torch.isfinite(t).all()


def test_inverse_of_forward(case: Case) -> None:
    """``inverse(forward(x)) == x`` to 1e-5 in float32, and the layer is not the identity."""
    layer = build(case, case.shape)
    x = case.sample(case.shape)
    with torch.no_grad():
        y, _ = layer(x)
        x2, _ = layer.inverse(y)
    assert float((x2.float() - x).abs().max()) < 1e-5
    if not isinstance(layer, CenterShift):
        assert y.shape != x.shape or not torch.allclose(y.float(), x, atol=1e-3), "layer is trivial"


def test_forward_logdet_is_minus_inverse_logdet(case: Case) -> None:
    """``log|det ∂y/∂x|(x) = −log|det ∂x/∂y|(y)`` at ``y = f(x)``."""
    layer = build(case, case.shape)
    x = case.sample(case.shape)
    with torch.no_grad():
        y, ld = layer(x)
        _, ld_inv = layer.inverse(y)
    assert_rel_close(ld, -ld_inv, 1e-5)


def test_forward_logdet_matches_jacobian(case: Case) -> None:
    """The forward log-det equals ``log|det J|`` of the autograd Jacobian (float64)."""
    layer = build(case, case.tiny, torch.float64)
    x = case.sample(case.tiny, torch.float64)
    _, ld = layer(x)
    ref = jacobian_logdets(lambda inp: layer(inp)[0], x)
    assert_rel_close(ld.detach(), ref, 1e-4)


def test_inverse_logdet_matches_jacobian(case: Case) -> None:
    """The inverse log-det equals ``log|det J|`` of the inverse's autograd Jacobian (float64)."""
    layer = build(case, case.tiny, torch.float64)
    with torch.no_grad():
        y, _ = layer(case.sample(case.tiny, torch.float64))
    y = y.double()
    _, ld_inv = layer.inverse(y)
    ref = jacobian_logdets(lambda inp: layer.inverse(inp)[0], y)
    assert_rel_close(ld_inv.detach(), ref, 1e-4)


def test_gradients_are_finite(case: Case) -> None:
    """Backpropagating through output and log-det reaches every parameter with finite values."""
    layer = build(case, case.shape)
    params = list(layer.parameters())
    if not params:
        return
    x = case.sample(case.shape)
    y, ld = layer(x)
    (y.float().square().mean() + ld.mean()).backward()
    grads = [p.grad for p in params]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(float(g.abs().max()) > 0 for g in grads if g is not None)


def test_channels_last_input_gives_the_same_maps(case: Case) -> None:
    """An NHWC input gives the NCHW results both ways (layers may pick other kernels for it)."""
    layer = build(case, case.shape)
    x = case.sample(case.shape)
    with torch.no_grad():
        y, ld = layer(x)
        y_cl, ld_cl = layer(x.contiguous(memory_format=torch.channels_last))
        x_back = layer.inverse(y_cl.contiguous(memory_format=torch.channels_last))[0]
    torch.testing.assert_close(y_cl, y, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ld_cl, ld, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(x_back, x, rtol=1e-5, atol=1e-5)


# ---- layer-specific behaviour -------------------------------------------------------------------
def test_squeeze_keeps_channels_last() -> None:
    """On NHWC inputs both directions return NHWC tensors holding the NCHW path's values."""
    x = torch.randn(2, 3, 4, 6)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    y, y_cl = Squeeze()(x)[0], Squeeze()(x_cl)[0]
    assert y_cl.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(y_cl, y)
    back = Squeeze().inverse(y_cl)[0]
    assert back.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(back, x)


def test_channel_linear_is_a_1x1_convolution() -> None:
    """``channel_linear`` equals ``conv2d`` with a 1×1 kernel (values and gradients), and keeps
    a channels-last input channels-last."""
    torch.manual_seed(0)
    weight = torch.randn(5, 3, requires_grad=True)
    bias = torch.randn(5, requires_grad=True)
    x = torch.randn(2, 3, 4, 4)
    for layout in (torch.contiguous_format, torch.channels_last):
        xl = x.contiguous(memory_format=layout).requires_grad_()
        y = channel_linear(xl, weight, bias)
        y_ref = F.conv2d(x, weight[:, :, None, None], bias)
        torch.testing.assert_close(y, y_ref, rtol=1e-6, atol=1e-6)
        assert y.is_contiguous(memory_format=layout)
        g = torch.randn_like(y_ref)
        grads = torch.autograd.grad(y, (xl, weight, bias), g)
        x_ref = x.clone().requires_grad_()
        refs = torch.autograd.grad(
            F.conv2d(x_ref, weight[:, :, None, None], bias), (x_ref, weight, bias), g
        )
        for got, want in zip(grads, refs, strict=True):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_pointwise_conv_has_conv2d_parameters() -> None:
    """``PointwiseConv2d`` loads ``nn.Conv2d(c_in, c_out, 1)`` state dicts and computes the same."""
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 5, 1)
    pointwise = PointwiseConv2d(3, 5)
    pointwise.load_state_dict(conv.state_dict())
    x = torch.randn(2, 3, 4, 4)
    with torch.no_grad():
        torch.testing.assert_close(pointwise(x), conv(x))
        x_cl = x.contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(pointwise(x_cl), conv(x), rtol=1e-6, atol=1e-6)


def test_squeeze_layout() -> None:
    """Squeeze moves each 2×2 block into channels (c-major) and rejects odd sizes."""
    x = torch.arange(2 * 4 * 4, dtype=torch.float32).view(1, 2, 4, 4)
    y, ld = Squeeze()(x)
    assert y.shape == (1, 8, 2, 2)
    assert torch.equal(y[0, :4, 0, 0], torch.tensor([0.0, 1.0, 4.0, 5.0]))
    assert torch.equal(y[0, 4:, 1, 1], torch.tensor([26.0, 27.0, 30.0, 31.0]))
    assert torch.equal(ld, torch.zeros(1))
    with pytest.raises(ValueError, match="even"):
        Squeeze()(torch.zeros(1, 1, 3, 4))
    with pytest.raises(ValueError, match="divisible by 4"):
        Squeeze().inverse(torch.zeros(1, 3, 2, 2))


def test_layer_argument_validation() -> None:
    """Bad constructor arguments and mismatched shapes raise ValueError."""
    with pytest.raises(ValueError, match="at least 2 channels"):
        ChannelCoupling(1, 8)
    with pytest.raises(ValueError, match="at least 2 channels"):
        Split(1)
    with pytest.raises(ValueError, match="affine"):
        ChannelCoupling(4, 8, transform="cubic")
    with pytest.raises(ValueError, match="positive"):
        CheckerboardCoupling(4, 0)
    with pytest.raises(ValueError, match="reverse"):
        ChannelPermutation(4, "rotate")
    with pytest.raises(ValueError, match="alpha"):
        LogitTransform(0.5)
    with pytest.raises(ValueError, match="shape"):
        DiagonalScaling((1, 4, 4))(torch.zeros(2, 1, 4, 2))


def test_split_signature_and_values() -> None:
    """``Split``: ``x -> (h, ε, logdet)`` with ``ε = (z − μ)/σ`` from the prior on ``h``, and back."""
    split = perturb(Split(5), 0.2).eval()
    x = torch.randn(3, 5, 4, 4)
    h, eps, ld = split(x)
    assert h.shape == (3, 2, 4, 4) and eps.shape == (3, 3, 4, 4) and ld.shape == (3,)
    assert eps.dtype == torch.float32 and torch.equal(h, x[:, :2])
    mean, log_std = split.prior(h).chunk(2, dim=1)
    torch.testing.assert_close(eps, (x[:, 2:] - mean) * (-log_std).exp(), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(ld, -log_std.flatten(1).sum(1), rtol=1e-6, atol=1e-5)
    with torch.no_grad():
        x2, ld_inv = split.inverse(h, eps)
    assert float((x2 - x).abs().max()) < 1e-5
    assert_rel_close(ld_inv, -ld, 1e-6)


def test_top_prior_is_standardising_gaussian() -> None:
    """``log N(ε; 0, I) + logdet`` equals the log-density of ``N(μ, σ²)`` at ``h``."""
    prior = perturb(TopPrior(3), 0.5)
    h = torch.randn(4, 3, 2, 2, dtype=torch.float64)
    eps, ld = prior(h)
    mean, std = prior.mean.double(), prior.log_std.double().exp()
    ref = torch.distributions.Normal(mean, std).log_prob(h).flatten(1).sum(1)
    torch.testing.assert_close(
        (standard_normal_log_prob(eps) + ld).double(), ref, rtol=1e-5, atol=1e-5
    )


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


# ---- ActNorm ------------------------------------------------------------------------------------
def _channel_data(n: int = 16, channels: int = 4) -> Tensor:
    """Data whose channels have clearly different means and scales (one with |mean| = 200·std)."""
    loc = torch.linspace(-3.0, 20.0, channels).view(1, channels, 1, 1)
    scale = torch.linspace(4.0, 0.1, channels).view(1, channels, 1, 1)
    return loc + scale * torch.randn(n, channels, 8, 8)


def test_actnorm_data_init_normalises() -> None:
    """After init on a batch, that batch's outputs have zero mean and unit variance per channel."""
    layer = ActNorm(4).train()
    x = _channel_data()
    with torch.no_grad():
        y, ld = layer(x)
    assert bool(layer.initialized)
    assert float(y.mean(dim=(0, 2, 3)).abs().max()) < 1e-5
    assert float((y.var(dim=(0, 2, 3), unbiased=False) - 1).abs().max()) < 1e-4
    ref = -64 * (x.double().std(dim=(0, 2, 3), unbiased=False) + layer.eps).log().sum()
    assert_rel_close(ld, ref.expand(16), 1e-6)
    # A second training batch does not re-initialise.
    before = [p.detach().clone() for p in layer.parameters()]
    layer(_channel_data() * 3.0)
    assert all(torch.equal(a, b) for a, b in zip(before, layer.parameters(), strict=True))


def test_actnorm_eval_mode_does_not_initialise() -> None:
    """Eval-mode forwards leave an uninitialised ActNorm the identity; training initialises it."""
    layer = ActNorm(4).eval()
    x = _channel_data()
    y, ld = layer(x)
    assert torch.equal(y, x) and torch.equal(ld, torch.zeros(16))
    assert not bool(layer.initialized)
    layer.train()
    layer(x)
    assert bool(layer.initialized) and float(layer.log_scale.detach().abs().max()) > 0.1


def test_actnorm_initialisation_survives_state_dict() -> None:
    """A loaded initialised ActNorm is not re-initialised by the next training batch."""
    trained = ActNorm(4).train()
    trained(_channel_data())
    with torch.no_grad():
        trained.bias.add_(0.5)  # as after some optimiser steps
    loaded = ActNorm(4)
    loaded.load_state_dict(trained.state_dict())
    loaded.train()
    loaded(_channel_data() * 5.0 + 1.0)
    assert torch.equal(loaded.bias, trained.bias)
    assert torch.equal(loaded.log_scale, trained.log_scale)


def test_actnorm_loading_uninitialised_state_reenables_init() -> None:
    """Loading a never-initialised state into a used ActNorm makes the next batch initialise it."""
    layer = ActNorm(4).train()
    layer(_channel_data())
    layer.load_state_dict(ActNorm(4).state_dict())
    assert not bool(layer.initialized)
    x = _channel_data() + 2.0
    with torch.no_grad():
        y, _ = layer(x)
    assert bool(layer.initialized)
    assert float(y.mean(dim=(0, 2, 3)).abs().max()) < 1e-5


def _actnorm_ddp_worker(
    rank: int, world: int, init_file: str, batches: list[Tensor], out: str
) -> None:
    """One DDP rank: initialise an ActNorm on this rank's batch and save its parameters."""
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


def test_actnorm_ddp_initialises_from_all_ranks(tmp_path: Path) -> None:
    """Two gloo ranks with different batches end with identical parameters = init on the union."""
    batches = [_channel_data(n=3), _channel_data(n=5) * 2.0 + 1.0]  # different sizes and stats
    mp.spawn(
        _actnorm_ddp_worker,
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


# ---- invertible 1×1 convolutions ----------------------------------------------------------------
@pytest.mark.parametrize("cls", [InvConv1x1, InvConv1x1LU])
def test_conv1x1_eval_cache_sees_in_place_updates(cls: type[Bijection]) -> None:
    """After an in-place parameter update (an optimiser step) eval mode uses the new W and W⁻¹."""
    layer = perturb(cls(6)).eval()
    x = torch.randn(4, 6, 5, 5)
    with torch.no_grad():
        y_old, _ = layer(x)
        layer.inverse(y_old)  # fill the caches
        for p in layer.parameters():
            p.add_(0.2 * torch.randn_like(p))
        y, ld = layer(x)
        x2, ld_inv = layer.inverse(y)
    assert float((y - y_old).abs().max()) > 1e-2, "forward still uses the old weight"
    assert float((x2 - x).abs().max()) < 1e-5
    fresh = torch.linalg.slogdet(layer.matrix())[1] * 25
    assert_rel_close(ld, fresh.expand(4), 1e-6)
    assert_rel_close(ld_inv, -fresh.expand(4), 1e-6)
    torch.testing.assert_close(y, torch.einsum("ij,bjhw->bihw", layer.matrix().float(), x))


@pytest.mark.parametrize("cls", [InvConv1x1, InvConv1x1LU])
def test_conv1x1_logdet_under_autocast(cls: type[Bijection]) -> None:
    """Under bf16 autocast the log-det is float32 and equals the float32 log-det."""
    layer = perturb(cls(8))
    x = torch.randn(2, 8, 4, 4)
    y32, ld32 = layer(x)
    _, ld_inv32 = layer.inverse(y32)
    for grad in (True, False):
        with torch.set_grad_enabled(grad), torch.autocast("cpu", dtype=torch.bfloat16):
            y, ld = layer(x)
            _, ld_inv = layer.inverse(y32)
        assert ld.dtype == ld_inv.dtype == torch.float32
        assert torch.equal(ld, ld32) and torch.equal(ld_inv, ld_inv32)
        # The mixing itself also stays in float32 (only conditioner nets run in bf16).
        assert y.dtype == torch.float32
        torch.testing.assert_close(y, y32, rtol=1e-6, atol=1e-6)
    _, ld16 = layer(x.bfloat16())
    assert ld16.dtype == torch.float32 and torch.equal(ld16, ld32)


# ---- densities integrate to one -----------------------------------------------------------------
def trapezoid_2d(log_density: Callable[[Tensor], Tensor], lo: Tensor, hi: Tensor, n: int) -> float:
    """Trapezoid rule for ``∫∫ exp(log_density(x)) dx`` over the box ``[lo, hi]`` on an n×n grid."""
    u = torch.linspace(float(lo[0]), float(hi[0]), n, dtype=torch.float64)
    v = torch.linspace(float(lo[1]), float(hi[1]), n, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(u, v, indexing="ij"), dim=-1).reshape(-1, 2)
    with torch.no_grad():
        dens = log_density(grid).double().exp().reshape(n, n)
    edge = max(
        float(dens[0].max()),
        float(dens[-1].max()),
        float(dens[:, 0].max()),
        float(dens[:, -1].max()),
    )
    assert edge < 1e-6 * float(dens.max()), "box too small: density not negligible at its edge"
    return float(torch.trapezoid(torch.trapezoid(dens, u, dim=1), v))


def sample_box(decode: Callable[[Tensor], Tensor], margin: float = 1.0) -> tuple[Tensor, Tensor]:
    """A box holding the flow's mass: the range of 4000 decoded samples, widened by ``margin``."""
    with torch.no_grad():
        pts = decode(torch.randn(4000, 2, dtype=torch.float64)).double()
    lo, hi = pts.min(0).values, pts.max(0).values
    return lo - margin * (hi - lo), hi + margin * (hi - lo)


def test_layer_flow_density_integrates_to_one() -> None:
    """A 2-D flow built from our layers defines a normalised density (trapezoid, 400×400)."""
    act = ActNorm(2)
    init_actnorms(act, torch.randn(256, 2, 1, 1) * torch.tensor([2.0, 0.5]).view(1, 2, 1, 1) + 1.0)
    flow = FlowSequential([act, InvConv1x1(2), ChannelCoupling(2, 16, "affine"), TopPrior(2)])
    perturb(flow, 0.3)
    flow.eval().double()

    def log_density(x: Tensor) -> Tensor:
        eps, ld = flow(x.view(-1, 2, 1, 1))
        return standard_normal_log_prob(eps) + ld

    def decode(eps: Tensor) -> Tensor:
        return flow.inverse(eps.view(-1, 2, 1, 1))[0].view(-1, 2)

    lo, hi = sample_box(decode)
    mass = trapezoid_2d(log_density, lo, hi, 400)
    assert abs(mass - 1.0) < 1e-5, mass  # measured: 6e-7


@pytest.mark.parametrize("alpha", [0.0, 0.05])
def test_logit_density_integrates_over_unit_interval(alpha: float) -> None:
    """``N(logit(α + (1−2α)y)) · |dx/dy|`` integrates over (0, 1) to the normal mass of the image.

    The logit maps (0, 1) onto ``(logit α, logit(1−α))``, so the mass is 1 for α = 0 and
    ``Φ(logit(1−α)) − Φ(logit α)`` otherwise.
    """
    n = 20_001
    y = torch.linspace(0.0, 1.0, n, dtype=torch.float64).view(1, -1)
    x, _ = LogitTransform(alpha)(y)
    p = alpha + (1 - 2 * alpha) * y
    ld = math.log(1 - 2 * alpha) - p.log() - (-p).log1p()  # elementwise log|dx/dy|
    dens = (-0.5 * x * x - 0.5 * LOG_2PI + ld).exp().view(-1)
    if alpha == 0:  # the end points map to ±∞, where the density's limit is 0
        dens[0] = dens[-1] = 0.0
    assert torch.isfinite(dens).all()
    mass = float(torch.trapezoid(dens, y.view(-1)))
    expected = math.erf(math.log((1 - alpha) / alpha) / math.sqrt(2)) if alpha else 1.0
    assert abs(mass - expected) < 1e-8, (mass, expected)  # measured: 1.6e-9
    # The layer's per-sample log-det is the sum of the elementwise one used above.
    _, ld_layer = LogitTransform(alpha)(y[:, 1:1001].view(1, 1, 1, -1))
    torch.testing.assert_close(ld_layer, ld[:, 1:1001].sum(1), rtol=1e-12, atol=1e-9)
