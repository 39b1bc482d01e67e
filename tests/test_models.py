"""Correctness of the Glow, RealNVP and NICE assemblies (:mod:`glowapp.models`).

Every model is perturbed away from its identity initialisation and data-initialised before it
is checked: exact ``decode(encode(x))``, the log-det against the float64 autograd Jacobian of
``x -> (ε_1, …, ε_L)``, ``log_prob``, sampling and temperature, shape handling, and (for 2-D
models) that the density integrates to one.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode

from glowapp.flows import ActNorm, BatchNormFlow, InvConv1x1, InvConv1x1LU
from glowapp.models import NICE, Glow, MultiScaleFlow, RealNVP

pytestmark = pytest.mark.usefixtures("single_thread")

LOG_2PI = math.log(2 * math.pi)


# ---- helpers ------------------------------------------------------------------------------------
def perturb(module: nn.Module, scale: float) -> None:
    """Add ``N(0, scale²)`` noise to every parameter (conditioners and priors start at zero)."""
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn_like(p))


def images(
    n: int, channels: int, h: int, w: int | None = None, dtype: torch.dtype = torch.float32
) -> Tensor:
    """Center-shifted dequantised images in ``[-½, ½)``, the flows' usual input."""
    return torch.rand(n, channels, h, w or h, dtype=dtype) - 0.5


def prepare(model: MultiScaleFlow, x: Tensor, scale: float = 0.05) -> MultiScaleFlow:
    """Perturb, data-initialise ActNorms / warm BatchNorm statistics on ``x``, perturb those, eval.

    The 1×1 convolutions start as random rotations (already non-trivial) and get a smaller
    perturbation, so their condition number stays near 1 as in a trained model.
    """
    with torch.no_grad():
        for module in model.modules():
            small = isinstance(module, InvConv1x1 | InvConv1x1LU)
            for p in module.parameters(recurse=False):
                p.add_((0.2 * scale if small else scale) * torch.randn_like(p))
    norms = [m for m in model.modules() if isinstance(m, ActNorm | BatchNormFlow)]
    model.train()
    with torch.no_grad():
        for _ in range(5 if any(isinstance(m, BatchNormFlow) for m in norms) else 1):
            model.encode(x + 0.05 * torch.randn_like(x))
    for m in norms:
        perturb(m, scale)
    return model.eval()


def flat_latents(latents: list[Tensor]) -> Tensor:
    """``[ε_1, …, ε_L] -> [B, D]``."""
    return torch.cat([eps.flatten(1) for eps in latents], dim=1)


def unflatten(model: MultiScaleFlow, z: Tensor) -> list[Tensor]:
    """Inverse of :func:`flat_latents` for ``model``'s latent shapes."""
    out, i = [], 0
    for shape in model.latent_shapes():
        d = math.prod(shape)
        out.append(z[:, i : i + d].reshape(-1, *shape))
        i += d
    return out


def jacobian_logdets(fn: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """Per-sample ``log|det J|`` (float64) of a batch map; cross-sample blocks must be zero."""
    b, d = x.shape[0], x[0].numel()
    jac = torch.autograd.functional.jacobian(lambda inp: fn(inp).reshape(b, -1).double(), x)
    jac = jac.reshape(b, d, b, d)
    blocks = torch.stack([jac[i, :, i] for i in range(b)])
    for i in range(b):
        jac[i, :, i] = 0
    assert float(jac.abs().max()) == 0.0, "samples of a batch interact"
    return torch.linalg.slogdet(blocks)[1]


def assert_rel_close(actual: Tensor, expected: Tensor, rtol: float) -> None:
    """``|actual − expected| ≤ rtol · max(1, |expected|)`` elementwise."""
    actual, expected = actual.detach().double(), expected.detach().double()
    err = (actual - expected).abs() / expected.abs().clamp_min(1.0)
    assert float(err.max()) < rtol, f"relative error {float(err.max()):.3g}: {actual} vs {expected}"


# ---- default-size models ------------------------------------------------------------------------
ModelCase = tuple[str, Callable[[], MultiScaleFlow], tuple[int, int, int]]

MODELS: list[ModelCase] = [
    *(
        (
            f"glow-{coupling}-{perm}",
            lambda c=coupling, p=perm: Glow(
                3, levels=3, steps=4, hidden=32, coupling=c, permutation=p
            ),
            (3, 32, 32),
        )
        for coupling in ("affine", "additive")
        for perm in ("lu", "conv", "shuffle", "reverse")
    ),
    ("glow-grey-28", lambda: Glow(1, levels=2, steps=4, hidden=32), (1, 28, 28)),
    ("glow-spline", lambda: Glow(1, levels=2, steps=4, hidden=32, coupling="spline"), (1, 28, 28)),
    ("realnvp", lambda: RealNVP(1, scales=2, hidden=16, blocks=2), (1, 28, 28)),
    (
        "realnvp-spline",
        lambda: RealNVP(1, scales=2, hidden=16, blocks=1, coupling="spline"),
        (1, 28, 28),
    ),
    ("realnvp-bn", lambda: RealNVP(1, scales=2, hidden=16, blocks=2, batch_norm=True), (1, 28, 28)),
    (
        "realnvp-additive-rgb",
        lambda: RealNVP(3, scales=2, hidden=16, blocks=1, coupling="additive"),
        (3, 16, 16),
    ),
    ("nice", lambda: NICE(1, image_size=28, couplings=4, hidden=32), (1, 28, 28)),
]


@pytest.fixture(scope="module", params=MODELS, ids=[m[0] for m in MODELS])
def model_and_data(request: pytest.FixtureRequest) -> tuple[MultiScaleFlow, Tensor]:
    """A prepared model and a test batch, built once per module (the tests do not modify it)."""
    _, make, (c, h, w) = request.param
    torch.manual_seed(0)
    model = prepare(make(), images(8, c, h, w))
    return model, images(4, c, h, w)


def test_decode_inverts_encode(model_and_data: tuple[MultiScaleFlow, Tensor]) -> None:
    """``decode(encode(x)) == x`` to 1e-5 (float32), latents are non-trivial, log-dets negate."""
    model, x = model_and_data
    with torch.no_grad():
        latents, logdet = model.encode(x)
        x2, logdet_dec = model.decode_with_logdet(latents)
    assert x2.shape == x.shape
    assert float((x2 - x).abs().max()) < 1e-5
    assert all(torch.isfinite(eps).all() for eps in latents) and torch.isfinite(logdet).all()
    # Each log-det is a float32 sum of hundreds of per-element terms that largely cancel, so its
    # rounding error scales with the terms, not with the (small) total: 1e-4 relative.
    assert_rel_close(logdet_dec, -logdet, 1e-4)
    assert float(logdet.abs().min()) > 1.0, (
        "the model is (nearly) volume preserving: not perturbed?"
    )


def test_channels_last_changes_nothing_but_the_layout(
    model_and_data: tuple[MultiScaleFlow, Tensor],
) -> None:
    """The same weights in NHWC: the same log p, gradients and inverse (to rounding)."""
    model, x = model_and_data
    nchw, nhwc = copy.deepcopy(model), copy.deepcopy(model).use_channels_last()
    assert nchw.memory_format == torch.contiguous_format
    assert all(
        p.is_contiguous(memory_format=torch.channels_last) for p in nhwc.parameters() if p.ndim == 4
    )
    results = []
    for flow in (nchw, nhwc):
        flow.zero_grad(set_to_none=True)
        flow.log_prob(x).sum().backward()
        with torch.no_grad():
            latents, _ = flow.encode(x)
            results.append((flow.log_prob(x), [p.grad for p in flow.parameters()], latents))
            assert float((flow.decode(latents) - x).abs().max()) < 1e-5
    (lp_a, grads_a, lat_a), (lp_b, grads_b, lat_b) = results
    assert_rel_close(lp_b, lp_a, 1e-5)
    for eps_a, eps_b in zip(lat_a, lat_b, strict=True):
        torch.testing.assert_close(eps_b, eps_a, rtol=1e-4, atol=1e-4)
    scale = max(float(g.abs().max()) for g in grads_a if g is not None)
    for g_a, g_b in zip(grads_a, grads_b, strict=True):
        if g_a is not None:
            assert float((g_a - g_b).abs().max()) <= 1e-4 * scale


class _NCHWKernelInputs(TorchDispatchMode):
    """Records the heavy kernels (convolutions, matrix products, ReLU backward) that receive a
    4-D NCHW-contiguous tensor with more than one channel and pixel: in a channels-last flow
    each one is a layout conversion, or a kernel mixing layouts (up to 17× slower on CPU)."""

    KERNELS = {"convolution", "convolution_backward", "threshold_backward", "mm", "addmm"}

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        if func.__name__.split(".")[0] in self.KERNELS:
            for t in args:
                if (
                    isinstance(t, Tensor)
                    and t.ndim == 4
                    and t.shape[1] > 1
                    and t.shape[2] * t.shape[3] > 1
                    and t.is_contiguous()
                    and not t.is_contiguous(memory_format=torch.channels_last)
                ):
                    self.seen.append(f"{func.__name__} {tuple(t.shape)}")
        return func(*args, **(kwargs or {}))


def test_channels_last_glow_stays_channels_last() -> None:
    """Training (forward and backward) and sampling a channels-last Glow never hand an NCHW
    activation or gradient to a convolution, matrix product or ReLU backward."""
    torch.manual_seed(0)
    model = prepare(Glow(3, levels=3, steps=2, hidden=16), images(8, 3, 16, 16)).use_channels_last()
    x = images(4, 3, 16, 16)
    with _NCHWKernelInputs() as mode:
        model.log_prob(x).sum().backward()
        with torch.no_grad():
            model.decode(model.sample_latents(2, 0.7))
    assert not mode.seen, f"NCHW tensors reached kernels: {sorted(set(mode.seen))}"


def test_latent_shapes_match_encode(model_and_data: tuple[MultiScaleFlow, Tensor]) -> None:
    """``latent_shapes()`` lists the shapes ``encode`` returns; they add up to ``C·H·W``."""
    model, x = model_and_data
    with torch.no_grad():
        latents, _ = model.encode(x)
    assert [tuple(eps.shape[1:]) for eps in latents] == model.latent_shapes()
    assert sum(math.prod(s) for s in model.latent_shapes()) == x[0].numel()


def test_log_prob_is_logdet_plus_prior(model_and_data: tuple[MultiScaleFlow, Tensor]) -> None:
    """``log_prob(x) = logdet + Σ log N(ε; 0, I)``, written out by hand."""
    model, x = model_and_data
    with torch.no_grad():
        latents, logdet = model.encode(x)
        log_p = model.log_prob(x)
    z = flat_latents(latents).double()
    ref = logdet.double() - 0.5 * (z * z).sum(1) - 0.5 * z.shape[1] * LOG_2PI
    assert log_p.shape == (x.shape[0],)
    assert_rel_close(log_p, ref, 1e-6)


def test_sampling(model_and_data: tuple[MultiScaleFlow, Tensor]) -> None:
    """Samples have image shape; ``T = 0`` gives ``decode(0)``; seeded samples re-encode exactly."""
    model, x = model_and_data
    n = 3
    samples = model.sample(n, 0.7)
    assert samples.shape == (n, *x.shape[1:]) and torch.isfinite(samples).all()
    mode = model.sample(n, 0.0)
    with torch.no_grad():
        zeros = [torch.zeros(n, *s) for s in model.latent_shapes()]
        assert torch.equal(mode, model.decode(zeros))
    assert torch.equal(mode, model.sample(n, 0.0))
    assert torch.equal(mode[0], mode[1])
    latents = model.sample_latents(n, 0.7, generator=torch.Generator().manual_seed(3))
    seeded = model.sample(n, 0.7, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.equal(seeded, model.decode(latents))
        recovered, _ = model.encode(seeded)
    assert float((flat_latents(recovered) - flat_latents(latents)).abs().max()) < 1e-4


def test_temperature_scales_latents() -> None:
    """``sample_latents(n, T)`` are ``N(0, T²)`` per latent."""
    model = Glow(1, levels=2, steps=1, hidden=8, image_size=16)
    for temperature in (0.3, 1.0, 1.5):
        for eps in model.sample_latents(256, temperature):
            assert abs(float(eps.mean())) < 0.02 * temperature
            assert abs(float(eps.std()) - temperature) < 0.02 * temperature


# ---- tiny models: exact log-determinants --------------------------------------------------------
TINY: list[tuple[str, Callable[[], MultiScaleFlow]]] = [
    (
        "glow-affine-lu",
        lambda: Glow(1, levels=2, steps=2, hidden=8, coupling="affine", permutation="lu"),
    ),
    (
        "glow-additive-conv",
        lambda: Glow(1, levels=2, steps=2, hidden=8, coupling="additive", permutation="conv"),
    ),
    (
        "glow-spline-shuffle",
        lambda: Glow(1, levels=2, steps=2, hidden=8, coupling="spline", permutation="shuffle"),
    ),
    ("realnvp", lambda: RealNVP(1, scales=2, hidden=8, blocks=1)),
    ("realnvp-bn", lambda: RealNVP(1, scales=2, hidden=8, blocks=1, batch_norm=True)),
    ("nice", lambda: NICE(1, image_size=4, couplings=4, hidden=8)),
]


@pytest.mark.parametrize("make", [t[1] for t in TINY], ids=[t[0] for t in TINY])
def test_logdet_matches_jacobian(make: Callable[[], MultiScaleFlow]) -> None:
    """encode's log-det is ``log|det ∂(ε_1..ε_L)/∂x|`` and decode's that of the inverse (float64)."""
    model = prepare(make(), images(16, 1, 4), scale=0.2).double()
    x = images(2, 1, 4, dtype=torch.float64)
    latents, logdet = model.encode(x)
    ref = jacobian_logdets(lambda inp: flat_latents(model.encode(inp)[0]), x)
    assert_rel_close(logdet, ref, 1e-4)
    assert float(ref.abs().min()) > 0.1, "tiny model is (nearly) volume preserving"

    z = flat_latents(latents).detach()
    _, logdet_dec = model.decode_with_logdet(unflatten(model, z))
    ref_dec = jacobian_logdets(lambda inp: model.decode(unflatten(model, inp)), z)
    assert_rel_close(logdet_dec, ref_dec, 1e-4)


# ---- 2-D models: the density integrates to one --------------------------------------------------
TWO_D: list[tuple[str, Callable[[], MultiScaleFlow]]] = [
    ("nice", lambda: NICE(1, image_size=(1, 2), couplings=4, hidden=4)),
    ("realnvp", lambda: RealNVP(1, scales=1, hidden=4, blocks=1, image_size=(1, 2))),
]


@pytest.mark.parametrize("make", [t[1] for t in TWO_D], ids=[t[0] for t in TWO_D])
def test_two_dim_model_density_integrates_to_one(make: Callable[[], MultiScaleFlow]) -> None:
    """``exp(log_prob)`` of a 1×1×2 "image" model integrates to 1 (trapezoid, 400×400)."""
    model = make()
    perturb(model, 0.1)
    model.eval().double()
    with torch.no_grad():
        pts = model.sample(4000, 1.0).reshape(-1, 2).double()
    lo, hi = pts.min(0).values, pts.max(0).values
    lo, hi = lo - (hi - lo), hi + (hi - lo)
    n = 400
    u = torch.linspace(float(lo[0]), float(hi[0]), n, dtype=torch.float64)
    v = torch.linspace(float(lo[1]), float(hi[1]), n, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(u, v, indexing="ij"), dim=-1).reshape(-1, 1, 1, 2)
    with torch.no_grad():
        dens = model.log_prob(grid).double().exp().reshape(n, n)
    edge = torch.cat([dens[0], dens[-1], dens[:, 0], dens[:, -1]]).max()
    assert float(edge) < 1e-6 * float(dens.max()), "box too small"
    mass = float(torch.trapezoid(torch.trapezoid(dens, v, dim=1), u))
    assert abs(mass - 1.0) < 1e-5, mass  # measured: 2e-7 (NICE), 9e-7 (RealNVP)


# ---- shapes and validation ----------------------------------------------------------------------
def test_image_size_is_learnt_from_first_batch() -> None:
    """Without ``image_size`` the first batch fixes it; it is checked afterwards and checkpointed."""
    makers: list[Callable[[], MultiScaleFlow]] = [
        lambda: Glow(1, levels=2, steps=1, hidden=8),
        lambda: RealNVP(1, scales=2, hidden=8, blocks=1),
    ]
    for make in makers:
        model = make()
        with pytest.raises(RuntimeError, match="image size"):
            model.latent_shapes()
        model.encode(images(2, 1, 12, 8))
        assert model.image_size == (12, 8)
        assert model.latent_shapes()[-1][1:] == (12 // model.divisor, 8 // model.divisor)
        with pytest.raises(ValueError, match="built for 12x8 images, got 8x8"):
            model.encode(images(2, 1, 8))
        clone = make()
        clone.load_state_dict(model.state_dict())
        assert clone.image_size == (12, 8)


def test_input_validation() -> None:
    """Wrong channels, sizes not divisible by ``2**levels`` and non-4-D inputs raise ValueError."""
    glow = Glow(3, levels=3, steps=1, hidden=8)
    with pytest.raises(ValueError, match="expects 3 channels, got 1"):
        glow.encode(images(2, 1, 32))
    with pytest.raises(ValueError, match="multiples of 8"):
        glow.encode(images(2, 3, 28))
    assert not glow.has_image_size  # a rejected batch does not fix the size
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        glow.encode(torch.zeros(3, 32, 32))
    with pytest.raises(ValueError, match="multiples of 4"):
        Glow(1, levels=2, steps=1, hidden=8, image_size=30)
    with pytest.raises(ValueError, match="multiples of 2"):
        RealNVP(1, scales=2, hidden=8, blocks=1, image_size=(28, 27))
    with pytest.raises(ValueError, match="1 channels, got 3"):
        NICE(1, image_size=4, hidden=8).encode(images(2, 3, 4))
    with pytest.raises(ValueError, match="built for 4x4 images, got 8x8"):
        NICE(1, image_size=4, hidden=8).encode(images(2, 1, 8))
    with pytest.raises(ValueError, match="expected 2 latents"):
        Glow(1, levels=2, steps=1, hidden=8, image_size=8).decode([torch.zeros(1, 8, 1, 1)])


def test_constructor_validation() -> None:
    """Nonsensical hyper-parameters raise ValueError naming the problem."""
    with pytest.raises(ValueError, match="levels and steps"):
        Glow(3, levels=0)
    with pytest.raises(ValueError, match="permutation"):
        Glow(3, levels=1, steps=1, hidden=8, permutation="sort")
    with pytest.raises(ValueError, match="coupling"):
        Glow(3, levels=1, steps=1, hidden=8, coupling="cubic")
    with pytest.raises(ValueError, match="scales"):
        RealNVP(3, scales=0)
    with pytest.raises(ValueError, match="couplings"):
        NICE(1, image_size=4, couplings=0)
    with pytest.raises(ValueError, match="image_size"):
        NICE(1, image_size=0)
    with pytest.raises(ValueError, match="channels"):
        Glow(0, levels=1, steps=1, hidden=8)


def test_public_imports() -> None:
    """The package exposes the three assemblies."""
    from glowapp.models import NICE as NICE_
    from glowapp.models import Glow as Glow_
    from glowapp.models import RealNVP as RealNVP_

    assert all(issubclass(cls, MultiScaleFlow) for cls in (Glow_, RealNVP_, NICE_))
