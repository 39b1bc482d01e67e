"""The folded inference path (:mod:`glowapp.flows.folding`) gives the layers' own results.

* every image model of the registry (:mod:`helpers.model_cases`): log-densities, latents,
  log-dets, decoded images and samples of the fast path equal the plain path's to float
  tolerance, and the fast path is taken where it applies;
* each folded layer against the layer it folds, and its log-det against the brute-force
  float64 Jacobian;
* the shipped ``fashion-mnist`` model: bits/dim of 64 test images and samples before and after
  folding;
* the folded weights follow every change of the weights (in-place writes, ``load_state_dict``,
  an optimizer step, ``.data`` swaps with a cache clear), and are never used in training mode,
  with gradients or under autocast;
* the tools' generation functions take it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator

import pytest
import torch
from helpers.bijections import perturb
from helpers.model_cases import IMAGE_MODELS, ModelCase, case, ids, labels_for, shared
from helpers.models import images, prepare
from torch import Tensor

import glowapp
import glowapp.data
from glowapp import ImageFlow
from glowapp.flows import (
    ActNorm,
    ChannelCoupling,
    InvConv1x1,
    InvConv1x1LU,
    Split,
    Squeeze,
    folding,
)
from glowapp.flows.conv1x1 import ChannelPermutation
from glowapp.flows.folding import (
    FoldedChannelMap,
    FoldedCoupling,
    FoldedSplit,
    FoldedSqueeze,
    InferencePlan,
)
from glowapp.generate import sample_grid
from glowapp.generate.scoring import score
from glowapp.models import Glow, MultiScaleFlow

pytestmark = pytest.mark.usefixtures("single_thread")

# Float32 through a dozen layers: the folded matrices round differently from the layers'
# products (both from float64), so values agree to a few ulps of their size.
RTOL = 1e-5


def assert_close(fast: Tensor, plain: Tensor, rtol: float = RTOL) -> None:
    """``|fast − plain| ≤ rtol · max(1, max|plain|)``."""
    scale = max(1.0, float(plain.abs().max()))
    err = float((fast.double() - plain.double()).abs().max())
    assert err <= rtol * scale, f"max |Δ| = {err:.3g} > {rtol:g} × {scale:.3g}"


def both_paths(model: MultiScaleFlow, fn: Callable[[], object]) -> tuple[object, object]:
    """``fn()`` with the fast path on, then off (no gradients; the model's mode as it is)."""
    with torch.no_grad():
        model.use_fast_inference(True)
        fast = fn()
        model.use_fast_inference(False)
        plain = fn()
        model.use_fast_inference(True)
    return fast, plain


def uses_fast_path(case: ModelCase) -> bool:
    """Whether a pass of the case's model runs folded layers: every model with ActNorms, 1×1
    convolutions, Glow couplings or splits (not NICE and TarFlow, which have none of these).
    Conditional layers run as they are inside the folded levels, with the pass's condition."""
    return not case.name.startswith(("nice", "tarflow"))


@pytest.fixture(params=IMAGE_MODELS, ids=ids(IMAGE_MODELS))
def prepared_case(request: pytest.FixtureRequest) -> Iterator[tuple[ModelCase, MultiScaleFlow]]:
    """A copy of the case's shared prepared model, in eval mode."""
    c: ModelCase = request.param
    model = copy.deepcopy(shared(c).model).eval()
    yield c, model


@pytest.fixture
def plan_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the :class:`InferencePlan` methods called from now on, in order."""
    calls: list[str] = []
    for name in ("encode_levels", "decode_levels"):
        spy(monkeypatch, InferencePlan, name, calls)
    return calls


def spy(monkeypatch: pytest.MonkeyPatch, owner: object, name: str, calls: list[str]) -> list[str]:
    """Replace ``owner.name`` by a wrapper that appends ``name`` to ``calls`` on each call."""
    original = getattr(owner, name)

    def recorded(*args: object, **kwargs: object) -> object:
        calls.append(name)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, recorded)
    return calls


# ---- every model case -------------------------------------------------------------------------
def test_fast_path_is_taken_exactly_where_it_applies(
    prepared_case: tuple[ModelCase, MultiScaleFlow], plan_calls: list[str]
) -> None:
    c, model = prepared_case
    x = shared(c).x
    with torch.no_grad():
        model.log_prob(x, labels_for(model, x.shape[0]))
        model.sample(2, labels=labels_for(model, 2))
    assert plan_calls == (["encode_levels", "decode_levels"] if uses_fast_path(c) else [])


def test_densities_and_latents_equal_the_plain_path(
    prepared_case: tuple[ModelCase, MultiScaleFlow],
) -> None:
    c, model = prepared_case
    x = shared(c).x
    labels = labels_for(model, x.shape[0])
    fast, plain = both_paths(model, lambda: model.log_prob(x, labels))
    assert_close(fast, plain)  # type: ignore[arg-type]
    (lat_f, ld_f), (lat_p, ld_p) = both_paths(model, lambda: model.encode(x, labels))  # type: ignore[misc]
    assert_close(ld_f, ld_p)
    for a, b in zip(lat_f, lat_p, strict=True):
        assert a.shape == b.shape
        assert_close(a, b)


def test_decoding_and_sampling_equal_the_plain_path(
    prepared_case: tuple[ModelCase, MultiScaleFlow],
) -> None:
    _, model = prepared_case
    n = 3
    labels = labels_for(model, n)
    latents = model.sample_latents(n, 0.8, torch.Generator().manual_seed(1))
    (x_f, ld_f), (x_p, ld_p) = both_paths(  # type: ignore[misc]
        model, lambda: model.decode_with_logdet(latents, labels)
    )
    assert_close(x_f, x_p)
    assert_close(ld_f, ld_p)
    decoded, _ = both_paths(model, lambda: model.decode(latents, labels))
    assert torch.equal(decoded, x_f)  # type: ignore[arg-type]

    def sample() -> Tensor:
        return model.sample(n, 0.8, torch.Generator().manual_seed(2), labels=labels)

    fast, plain = both_paths(model, sample)
    assert_close(fast, plain)  # type: ignore[arg-type]


def test_guided_sampling_equals_the_plain_path(plan_calls: list[str]) -> None:
    """Guidance combines the conditional layers' parameters; the folded steps between them do
    not depend on the label."""
    model = copy.deepcopy(shared(case("glow-conditional-embedding")).model).eval()
    labels = torch.tensor([0, 1, 2])

    def sample() -> Tensor:
        return model.sample(3, 0.8, torch.Generator().manual_seed(3), labels, guidance=1.5)

    fast, plain = both_paths(model, sample)
    assert plan_calls == ["decode_levels"]
    assert_close(fast, plain)  # type: ignore[arg-type]
    with torch.no_grad():
        plain_sampling = model.sample(3, 0.8, torch.Generator().manual_seed(3), labels, guidance=0)
    assert not torch.allclose(plain_sampling, fast)  # type: ignore[arg-type]


def test_float64_models_fold_in_float64() -> None:
    model = copy.deepcopy(shared(case("glow-affine-lu")).model).double()
    x = shared(case("glow-affine-lu")).x.double()
    fast, plain = both_paths(model, lambda: model.log_prob(x))
    assert fast.dtype == torch.float64  # type: ignore[union-attr]
    assert_close(fast, plain, rtol=1e-12)  # type: ignore[arg-type]
    latents = model.sample_latents(2, 0.8, torch.Generator().manual_seed(0))
    fast, plain = both_paths(model, lambda: model.decode([z.double() for z in latents]))
    assert_close(fast, plain, rtol=1e-12)  # type: ignore[arg-type]


def test_image_flow_bits_per_dim_and_samples_equal_the_plain_path() -> None:
    torch.manual_seed(0)
    flow = prepare(Glow(3, levels=2, steps=2, hidden=16, image_size=16), images(8, 3, 16))
    model = ImageFlow(flow).eval()
    batch = torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8)

    def bpd() -> Tensor:
        return model.bits_per_dim(batch, generator=torch.Generator().manual_seed(0))

    fast, plain = both_paths(flow, bpd)
    assert_close(fast, plain, rtol=1e-6)  # type: ignore[arg-type]
    fast, plain = both_paths(flow, lambda: model.log_prob(batch))
    assert_close(fast, plain)  # type: ignore[arg-type]
    fast, plain = both_paths(flow, lambda: model.encode(batch))
    for a, b in zip(fast, plain, strict=True):  # type: ignore[call-overload]
        assert_close(a, b)
    fast, plain = both_paths(flow, lambda: model.sample(4, 0.7, torch.Generator().manual_seed(0)))
    # Quantised to 8 bits: equal but for a level where a value sits on a rounding boundary.
    assert float((fast - plain).abs().max()) <= 1 / 255 + 1e-6  # type: ignore[operator]
    assert float((fast != plain).float().mean()) < 0.01  # type: ignore[union-attr]


# ---- the shipped model -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> tuple[ImageFlow, Tensor]:
    model = glowapp.load("fashion-mnist")
    root = tmp_path_factory.mktemp("data")  # never the repository's data/
    batch, _ = glowapp.data.load_named_split("fashion-mnist", "test", root, limit=64)
    return model, batch


def test_shipped_model_bits_per_dim_are_unchanged_by_folding(
    shipped: tuple[ImageFlow, Tensor],
) -> None:
    model, batch = shipped
    assert model.flow._inference_plan(None) is None  # autograd is on here
    with torch.no_grad():
        assert model.flow._inference_plan(None) is not None

    def bpd(noise: bool) -> Callable[[], Tensor]:
        return lambda: model.bits_per_dim(batch, noise, torch.Generator().manual_seed(0))

    for noise in (False, True):
        fast, plain = both_paths(model.flow, bpd(noise))
        # ≈ 3 bits/dim: float32 sums of 32 layers' log-dets over 784 numbers round at ~1e-6.
        assert float((fast - plain).abs().max()) < 2e-5  # type: ignore[operator]


def test_shipped_model_samples_are_unchanged_by_folding(shipped: tuple[ImageFlow, Tensor]) -> None:
    model, _ = shipped
    latents = model.flow.sample_latents(64, 0.7, torch.Generator().manual_seed(0))
    labels = model.flow_labels(None, 64)  # the "no label" branch (a model used unconditionally)
    fast, plain = both_paths(model.flow, lambda: model.flow.decode(latents, labels))
    assert_close(fast, plain)  # type: ignore[arg-type]
    fast, plain = both_paths(model.flow, lambda: model.decode(latents))
    assert float((fast - plain).abs().max()) <= 1 / 255 + 1e-6  # type: ignore[operator]
    assert float((fast != plain).float().mean()) < 1e-3  # type: ignore[union-attr]


# ---- each folded layer ---------------------------------------------------------------------------
def _actnorm(c: int) -> ActNorm:
    layer = ActNorm(c).double().eval()  # eval: no data-dependent initialisation
    perturb(layer, 0.3)
    return layer


def jacobian_logdets(fn: Callable[[Tensor], Tensor], x: Tensor, step: float = 1e-6) -> Tensor:
    """``log|det ∂fn(x)_b/∂x_b|`` per sample (float64) from central differences: the folded
    layers work in place and without autograd, as inference runs them. Coordinate ``j`` of
    every sample moves at once (samples are independent)."""
    b, d = x.shape[0], x[0].numel()
    flat = x.reshape(b, d)
    columns = []
    for j in range(d):
        offset = torch.zeros_like(flat)
        offset[:, j] = step
        up, down = fn((flat + offset).view_as(x)), fn((flat - offset).view_as(x))
        columns.append((up - down).reshape(b, d) / (2 * step))
    return torch.linalg.slogdet(torch.stack(columns, dim=2))[1]


def _chain(*layers: torch.nn.Module) -> Callable[[Tensor], tuple[Tensor, Tensor]]:
    def run(x: Tensor) -> tuple[Tensor, Tensor]:
        total = torch.zeros(x.shape[0], dtype=torch.float64)
        for layer in layers:
            x, ld = layer(x)
            total = total + ld
        return x, total

    return run


@pytest.mark.parametrize(
    ("with_actnorm", "mixer"),
    [*((True, m) for m in ("lu", "conv", "shuffle", None)), (False, "lu"), (False, "shuffle")],
)
@torch.no_grad()
def test_folded_channel_map_is_actnorm_then_mixing(with_actnorm: bool, mixer: str | None) -> None:
    torch.manual_seed(0)
    c = 4
    actnorm = _actnorm(c) if with_actnorm else None
    mixers = {
        "lu": lambda: InvConv1x1LU(c),
        "conv": lambda: InvConv1x1(c),
        "shuffle": lambda: ChannelPermutation(c, "shuffle"),
    }
    mix = None if mixer is None else perturb(mixers[mixer]().double().eval(), 0.1)
    folded = FoldedChannelMap(actnorm, mix)
    layers = [m for m in (actnorm, mix) if m is not None]
    x = torch.randn(2, c, 2, 3, dtype=torch.float64)
    y, ld = folded.forward(x)
    y_ref, ld_ref = _chain(*layers)(x)
    assert torch.allclose(y, y_ref, atol=1e-12) and torch.allclose(ld, ld_ref)
    back, ld_inv = folded.inverse(y)
    assert torch.allclose(back, x, atol=1e-12) and torch.allclose(ld_inv, -ld)
    jac = jacobian_logdets(lambda t: folded.forward(t)[0], x)
    assert torch.allclose(ld, jac, atol=1e-8)


@pytest.mark.parametrize("transform", ["affine", "additive", "spline"])
@pytest.mark.parametrize("swap", [False, True])
@pytest.mark.parametrize(
    ("channels", "size"), [(5, 3), (4, 8)], ids=["direct-conv", "by-taps-where-they-pay"]
)
@torch.no_grad()
def test_folded_coupling_is_the_coupling(
    transform: str, swap: bool, channels: int, size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.manual_seed(0)
    by_taps = spy(monkeypatch, folding, "conv3x3_by_taps", [])
    layer = perturb(ChannelCoupling(channels, 8, transform, swap=swap).double(), 0.3).eval()
    folded = FoldedCoupling(layer)
    x = torch.randn(2, channels, size, size, dtype=torch.float64)
    # 4 channels on 8×8: the affine network has 2 × 2 outputs, the additive 2 (both by taps).
    y, ld = folded.forward(x)
    y_ref, ld_ref = layer(x)
    assert torch.allclose(y, y_ref, atol=1e-12) and torch.allclose(ld, ld_ref, atol=1e-12)
    assert folded.forward(x, with_logdet=False)[1] is None
    back, ld_inv = folded.inverse(y)
    back_ref, ld_inv_ref = layer.inverse(y)
    assert torch.allclose(back, back_ref, atol=1e-12) and torch.allclose(back, x, atol=1e-8)
    assert torch.allclose(ld_inv, ld_inv_ref, atol=1e-12)
    assert torch.allclose(ld, jacobian_logdets(lambda t: folded.forward(t)[0], x), atol=1e-8)
    assert torch.allclose(ld_inv, -ld, atol=1e-10)  # log|det| of the inverse at y = f(x)
    assert bool(by_taps) == (size == 8 and transform != "spline")


@pytest.mark.parametrize(
    "shape",
    [(2, 5, 3, 8, 8), (1, 7, 4, 16, 12), (3, 4, 8, 5, 9), (2, 3, 2, 1, 1)],
    ids=lambda s: "x".join(map(str, s)),
)
@pytest.mark.parametrize("layout", ["channels-last", "nchw"])
def test_conv3x3_by_taps_is_the_convolution(shape: tuple[int, ...], layout: str) -> None:
    """A 3×3, zero-padded convolution: every tap, every border, any batch and image shape."""
    batch, c_in, c_out, h, w = shape
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, c_in, h, w, dtype=torch.float64, generator=g)
    if layout == "channels-last":
        x = x.contiguous(memory_format=torch.channels_last)
    weight = torch.randn(c_out, c_in, 3, 3, dtype=torch.float64, generator=g)
    bias = torch.randn(c_out, dtype=torch.float64, generator=g)
    taps = folding.stacked_taps(weight)
    assert taps is not None
    y = folding.conv3x3_by_taps(x, taps, bias)
    assert y.is_contiguous() and y.shape == (batch, c_out, h, w)
    assert torch.allclose(y, torch.nn.functional.conv2d(x, weight, bias, padding=1), atol=1e-12)
    assert folding.stacked_taps(weight[..., :1, :1]) is None  # only 3×3 kernels


@torch.no_grad()
def test_folded_split_is_the_split() -> None:
    torch.manual_seed(0)
    split = perturb(Split(6).double(), 0.3).eval()
    folded = FoldedSplit(split)
    x = torch.randn(2, 6, 3, 3, dtype=torch.float64)
    h, eps, ld = folded.forward(x)
    h_ref, eps_ref, ld_ref = split(x)
    assert torch.equal(h, h_ref) and torch.allclose(eps, eps_ref, atol=1e-12)
    assert torch.allclose(ld, ld_ref, atol=1e-12)
    back, ld_inv = folded.inverse(h, eps)
    assert torch.allclose(back, x, atol=1e-12) and torch.allclose(ld_inv, -ld, atol=1e-12)
    assert folded.inverse(h, eps, with_logdet=False)[1] is None

    def latent_of(z: Tensor) -> Tensor:  # the map z -> ε for a fixed kept half
        return folded.forward(torch.cat([h, z], dim=1))[1]

    assert torch.allclose(ld, jacobian_logdets(latent_of, x[:, 3:]), atol=1e-8)


@pytest.mark.parametrize("channels", [1, 3])
def test_folded_squeeze_is_the_squeeze_and_channels_last(channels: int) -> None:
    x = torch.randn(2, channels, 4, 6)
    y, _ = FoldedSqueeze().forward(x)
    assert torch.equal(y, Squeeze()(x)[0])
    assert y.is_contiguous(memory_format=torch.channels_last)
    back, _ = FoldedSqueeze().inverse(y)
    assert torch.equal(back, x) and back.is_contiguous(memory_format=torch.channels_last)
    with pytest.raises(ValueError, match="even height and width"):
        FoldedSqueeze().forward(torch.randn(1, 1, 3, 4))


def test_a_glow_folds_every_step() -> None:
    flow = Glow(1, levels=2, steps=3, hidden=8, image_size=8)
    plan = InferencePlan.build(flow.levels, flow.splits)
    assert plan is not None
    kinds = [type(step).__name__ for step in plan.levels[0]]
    assert kinds == ["FoldedSqueeze"] + ["FoldedMap", "FoldedCoupling"] * 3
    assert all(isinstance(s, FoldedSplit) for s in plan.splits)


# ---- the folded weights follow the weights ---------------------------------------------------------
@pytest.fixture
def glow() -> tuple[Glow, Tensor]:
    torch.manual_seed(0)
    model = prepare(Glow(3, levels=2, steps=2, hidden=16, image_size=8), images(8, 3, 8))
    return model, images(4, 3, 8)  # type: ignore[return-value]


def _agree(model: MultiScaleFlow, x: Tensor) -> None:
    fast, plain = both_paths(model, lambda: model.log_prob(x))
    assert_close(fast, plain)  # type: ignore[arg-type]


def test_in_place_writes_and_state_dict_loads_refold(glow: tuple[Glow, Tensor]) -> None:
    model, x = glow
    _agree(model, x)  # folds
    with torch.no_grad():
        model.log_prob(x)  # and uses the cache
        for p in model.parameters():
            p.mul_(1.01)
    _agree(model, x)
    other = copy.deepcopy(model)
    perturb(other, 0.05)
    model.load_state_dict(other.state_dict())
    _agree(model, x)
    with torch.no_grad():
        assert torch.allclose(model.log_prob(x), other.eval().log_prob(x), rtol=1e-6)


def test_an_optimizer_step_refolds(glow: tuple[Glow, Tensor]) -> None:
    model, x = glow
    _agree(model, x)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    (-model.log_prob(x).mean()).backward()
    optimizer.step()
    model.eval()
    _agree(model, x)


def test_data_swaps_refold_after_clear_caches(glow: tuple[Glow, Tensor]) -> None:
    """Weight averaging swaps weights through ``.data`` (no version bump), then clears caches:
    through the flow's clear_caches, or any 1×1 convolution's (what GlowModule.clear_caches
    runs)."""
    model, x = glow
    average = perturb(copy.deepcopy(model), 0.05)

    def swap() -> None:
        for p, q in zip(model.parameters(), average.parameters(), strict=True):
            tmp = p.data.clone()
            p.data.copy_(q.data)
            q.data.copy_(tmp)

    for clear in (
        model.clear_caches,
        lambda: next(m for m in model.modules() if isinstance(m, InvConv1x1LU)).clear_cache(),
    ):
        _agree(model, x)
        swap()
        clear()
        _agree(model, x)


def test_never_used_in_training_mode_with_gradients_or_under_autocast(
    glow: tuple[Glow, Tensor], plan_calls: list[str]
) -> None:
    model, x = glow
    latents = model.sample_latents(2)
    model.log_prob(x)  # eval, gradients on
    with torch.no_grad():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            model.log_prob(x)
        model.use_fast_inference(False)
        model.log_prob(x)
        model.use_fast_inference(True)
        model.train()
        model.decode(latents)
        model.eval()
    assert plan_calls == []
    with torch.inference_mode():
        model.log_prob(x)
    with torch.no_grad():
        model.decode(latents)
    assert plan_calls == ["encode_levels", "decode_levels"]


def test_copies_fold_their_own_weights(glow: tuple[Glow, Tensor]) -> None:
    model, x = glow
    _agree(model, x)
    twin = perturb(copy.deepcopy(model), 0.05)
    _agree(twin, x)
    with torch.no_grad():
        assert not torch.allclose(model.log_prob(x), twin.log_prob(x))


# ---- the tools' functions -------------------------------------------------------------------------
def test_generation_and_scoring_take_the_fast_path(plan_calls: list[str]) -> None:
    """As the tools call them: sampling (sample, evaluate, the demo and the callbacks call
    sample_grid / sample_with_noise) and scoring (score, ood)."""
    torch.manual_seed(0)
    flow = prepare(Glow(1, levels=2, steps=2, hidden=8, image_size=8), images(8, 1, 8))
    model = ImageFlow(flow)
    model.train()  # the generation functions switch to eval mode themselves
    sample_grid(model, [0.7], 4)
    assert plan_calls == ["decode_levels"]
    model.eval()
    score(model, torch.randint(0, 256, (3, 1, 8, 8), dtype=torch.uint8))
    assert plan_calls == ["decode_levels", "encode_levels"]
