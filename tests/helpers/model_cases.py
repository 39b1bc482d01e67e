"""THE registry of model cases (:data:`MODELS`) and the helpers that build, prepare and feed them.

Every model-level check runs on every case that can take it, as the bijection registry
(``tests/helpers/bijections.py``) does for layers. A model joins all of them with ONE entry:

* ``tests/models/test_invertibility.py``: ``decode(encode(x)) = x`` (float32), latent shapes,
  decode's log-det = −encode's, ``log_prob`` = log-det + prior, the labels matter;
* ``tests/models/test_sampling.py``: sample shapes, the mode at ``T = 0``, seeded samples
  that re-encode;
* ``tests/models/test_channels_last.py``: NHWC gives NCHW's log-densities, gradients, inverse;
* ``tests/models/test_logdet.py``: encode's and decode's log-dets against ``log|det J|`` of the
  brute-force float64 autograd Jacobian, at the case's tiny size (and guided decoding's for
  models with a null label);
* ``tests/models/test_density.py``: ``exp(log p)`` integrates to one on the plane, for every
  case with a 2-D form (``plane``);
* ``tests/models/test_spec.py``: ``flow_spec`` is plain data and ``build_flow`` rebuilds the
  same model (the same spec; the model's state dict loads strictly; the same log-densities);
* ``tests/module/test_float64.py``: in a :class:`~glowapp.GlowModule`, float64 bits/dim agree
  with float32 and ``decode(encode(x))`` returns the images exactly; cases with ``fit=True``
  also train two steps with ``precision="64-true"`` on Fashion-MNIST.

How to add a case
-----------------
Append ``ModelCase(name, build, shape, tiny, tiny_shape, ...)`` to :data:`MODELS`:

* ``build() -> MultiScaleFlow`` builds the model at its default test size, WITH ``image_size``
  (a :class:`~glowapp.GlowModule` needs it); ``shape`` is that ``(C, H, W)``. Keep it small:
  every check builds it, the channels-last check runs a backward pass, the float64 check runs
  it in float64. ``tiny() -> MultiScaleFlow`` builds the same architecture on ``tiny_shape``
  images for the Jacobian check, whose cost grows as ``(C·H·W)²`` (``1×4×4`` … ``3×4×8``).
  A consistency test checks that both builds have the shapes the case states.
* ``conditional=True`` for a class-conditional model (``num_classes > 0``; also checked): the
  checks pass labels, :func:`labels_for` (the null label too where the model has one), and
  check that other labels change the density (and, with label embeddings, every latent);
  guided decoding's log-det is checked where the model has a null label.
* ``plane``: optional, the model's 2-D form as a :class:`PlaneDensity`, whose ``exp(log p)``
  is integrated over the plane: an image model on a two-pixel ``1×1×2`` image
  (:func:`image_plane`), or a vector flow's :class:`~glowapp.playground.VectorFlow`
  (:func:`vector_plane`). A *plane-only* case (``build=None``: the 2-D flows of the family)
  takes only that check.
* ``tiny_scale``: the tiny model's perturbation (default 0.2), only with a reason.
* ``fit=True`` also trains the case for two steps in float64 (1×28×28 cases only; one or two
  per family keeps the suite fast).
* Tolerances, only with a reason in a comment: ``inverse_atol`` (float32 round trip),
  ``inverse_logdet_rtol`` (decode's vs −encode's log-det, float32), ``jacobian_rtol`` (log-dets
  against the float64 Jacobian), ``float64_rtol`` (float64 vs float32 bits/dim); a plane's
  ``atol`` (``|∫p − 1|``) and ``grid`` go in its :class:`PlaneDensity`.

Using the registry (in any test, e.g. ``tests/models/test_inference_path.py``)
----------------------------------------------------------------------------
:data:`IMAGE_MODELS` (the image models) and :data:`PLANES` (the cases with a 2-D form) to
parametrize over, with ``ids=ids(...)``; :func:`case` finds one by name. :func:`shared` gives a
case's prepared model with a test batch and its labels, built once per session (do not modify
it); :func:`prepared` builds a fresh one (``tiny=True``: the tiny model); :func:`labels_for` the
labels to pass a model (None if it is unconditional).

Models are prepared away from their identity initialisation before any check
(:func:`prepare`): every parameter perturbed (the zero-initialised label projections and top
prior included), ActNorms data-initialised on labelled images, BatchNorm statistics warmed.

i-ResNet: its default ``logdet="series"`` is a stochastic (Hutchinson) estimate, so a check
comparing two calls, or a call with the Jacobian, could not pass or could not fail. The
registry holds the ``logdet="exact"`` model (the map, its fixed-point inverse and the shared
machinery are the same); the estimate is checked against that exact log-det, averaged over
draws, in ``tests/models/test_iresnet_flow.py`` (the model) and ``tests/flows/test_iresnet.py``
(the block, within its bias and variance bounds).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch
from helpers.bijections import perturb
from helpers.models import images, prepare, unflatten
from torch import Tensor

from glowapp.flows import (
    Bijection,
    Inverse,
    InverseAutoregressiveFlow,
    InvertibleResidualBlock,
    MaskedAutoregressiveFlow,
    PlanarFlow,
    RadialFlow,
)
from glowapp.models import NICE, Glow, IResNetFlow, MultiScaleFlow, RealNVP, TarFlow
from glowapp.playground.flow import VectorFlow

Shape = tuple[int, int, int]


@dataclass(frozen=True)
class PlaneDensity:
    """A density on the plane: ``log_prob`` of points ``[N, 2]`` (float64) → ``[N]`` nats, and
    ``to_data``, standard-normal latents ``[N, 2]`` → points (to find a box holding the mass).

    Its integral on a ``grid × grid`` trapezoid must be within ``atol`` of one.
    """

    log_prob: Callable[[Tensor], Tensor]
    to_data: Callable[[Tensor], Tensor]
    grid: int = 400
    atol: float = 1e-5


@dataclass(frozen=True)
class ModelCase:
    """A model to check: how to build it at its default and tiny sizes, its inputs, its
    tolerances. See the module docstring for every field."""

    name: str
    build: Callable[[], MultiScaleFlow] | None
    shape: Shape | None = None
    tiny: Callable[[], MultiScaleFlow] | None = None
    tiny_shape: Shape | None = None
    conditional: bool = False
    plane: Callable[[], PlaneDensity] | None = None
    fit: bool = False
    tiny_scale: float = 0.2
    inverse_atol: float = 1e-5
    inverse_logdet_rtol: float = 1e-4
    jacobian_rtol: float = 1e-8
    float64_rtol: float = 1e-5

    def __post_init__(self) -> None:
        if self.build is None:
            if self.plane is None or self.tiny is not None:
                raise ValueError(f"case {self.name!r}: a plane-only case has a plane and no tiny")
            return
        if self.shape is None or self.tiny is None or self.tiny_shape is None:
            raise ValueError(f"case {self.name!r}: an image model needs shape, tiny, tiny_shape")
        if self.fit and self.shape != (1, 28, 28):
            raise ValueError(f"case {self.name!r}: fit=True trains on 1x28x28 Fashion-MNIST")

    @property
    def is_image_model(self) -> bool:
        """A :class:`MultiScaleFlow` on images (not a plane-only 2-D flow)."""
        return self.build is not None


# ---- inputs and preparation ---------------------------------------------------------------------
def labels_for(model: MultiScaleFlow, n: int) -> Tensor | None:
    """Labels ``[n]`` for a class-conditional model: the classes ``0, 1, …`` in turn, and the
    last sample (of two or more) gets the null label if the model has one; None for an
    unconditional model."""
    if not model.num_classes:
        return None
    labels = torch.arange(n) % model.num_classes
    if model.null_label is not None and n > 1:
        labels[-1] = model.null_label
    return labels


def other_labels(model: MultiScaleFlow, labels: Tensor) -> Tensor:
    """A different accepted label for every sample (the next one, cyclically)."""
    accepted = model.num_classes + (model.null_label is not None)
    return (labels + 1) % accepted


def prepared(case: ModelCase, tiny: bool = False) -> MultiScaleFlow:
    """The case's model (default or tiny size), seeded and :func:`prepare`-d: at the default
    size with a 0.05 perturbation on 8 images, at the tiny size with ``case.tiny_scale`` (0.2:
    stronger, so the tiny model's log-dets are far from 0) on 16."""
    torch.manual_seed(0)
    build, shape = (case.tiny, case.tiny_shape) if tiny else (case.build, case.shape)
    assert build is not None and shape is not None, f"{case.name} is a plane-only case"
    n, scale = (16, case.tiny_scale) if tiny else (8, 0.05)
    model = build()
    return prepare(model, images(n, *shape), scale, labels_for(model, n))


class Prepared(NamedTuple):
    """A case's prepared model at its default size, a batch ``[4, C, H, W]`` and its labels."""

    case: ModelCase
    model: MultiScaleFlow
    x: Tensor
    labels: Tensor | None


_SHARED: dict[str, Prepared] = {}


def shared(case: ModelCase) -> Prepared:
    """:func:`prepared` at the default size with a test batch, built once per session and
    shared by every test: do not modify it (``copy.deepcopy`` it first)."""
    if case.name not in _SHARED:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # as fast on these small models, and immune to oversubscription
        try:
            model = prepared(case)
            x = images(4, *case.shape)  # type: ignore[misc]
        finally:
            torch.set_num_threads(threads)
        _SHARED[case.name] = Prepared(case, model, x, labels_for(model, 4))
    return _SHARED[case.name]


# ---- 2-D forms ------------------------------------------------------------------------------------
def image_plane(
    model: MultiScaleFlow, label: int | None = None, grid: int = 400, atol: float = 1e-5
) -> PlaneDensity:
    """A model of two-pixel ``1×1×2`` images as a density on the plane (given ``label`` if it is
    conditional), perturbed (0.1) away from its initialisation, in float64."""
    perturb(model, 0.1)
    model.eval().double()

    def labels(n: int) -> Tensor | None:
        return None if label is None else torch.full((n,), label, dtype=torch.long)

    def log_prob(x: Tensor) -> Tensor:
        return model.log_prob(x.view(-1, 1, 1, 2), labels(len(x)))

    def to_data(eps: Tensor) -> Tensor:
        return model.decode(unflatten(model, eps), labels(len(eps))).view(-1, 2)

    return PlaneDensity(log_prob, to_data, grid, atol)


def vector_plane(to_noise: Bijection, grid: int = 300, atol: float = 2e-4) -> PlaneDensity:
    """The 2-D :class:`~glowapp.playground.VectorFlow` of a vector flow ``to_noise`` (data →
    noise; wrap a flow whose forward samples, as IAF's, in :class:`~glowapp.flows.Inverse`), in
    float64."""
    flow = VectorFlow(to_noise, 2).double().eval()
    return PlaneDensity(flow.log_prob, lambda z: flow.to_noise.inverse(z)[0], grid, atol)


# ---- the registry -------------------------------------------------------------------------------
def _glow(coupling: str, permutation: str) -> ModelCase:
    """Glow on 3×32×32 (3 levels × 4 steps, width 32) with a coupling and a channel mixing."""
    options = {"coupling": coupling, "permutation": permutation}
    return ModelCase(
        f"glow-{coupling}-{permutation}",
        lambda: Glow(3, levels=3, steps=4, hidden=32, image_size=32, **options),
        (3, 32, 32),
        lambda: Glow(3, levels=2, steps=2, hidden=8, image_size=4, **options),
        (3, 4, 4),
    )


def _tarflow(name: str, shape: Shape, tiny_shape: Shape, patch: int, **options: int) -> ModelCase:
    """TarFlow with 2 blocks of 1 layer (width 32; 8 at the tiny size); conditional options go
    to both sizes."""
    c, h, w = shape
    _, th, tw = tiny_shape
    common = {"patch_size": patch, "blocks": 2, "layers": 1, **options}
    return ModelCase(
        name,
        lambda: TarFlow(c, hidden=32, heads=4, image_size=(h, w), **common),
        shape,
        lambda: TarFlow(c, hidden=8, heads=2, image_size=(th, tw), **common),
        tiny_shape,
        conditional=bool(options.get("num_classes")),
    )


MODELS: list[ModelCase] = [
    # ---- Glow -------------------------------------------------------------------------------
    *(
        _glow(coupling, permutation)
        for coupling in ("affine", "additive")
        for permutation in ("lu", "conv", "shuffle", "reverse")
    ),
    ModelCase(
        "glow-grey-28",
        lambda: Glow(1, levels=2, steps=4, hidden=32, image_size=28),
        (1, 28, 28),
        lambda: Glow(1, levels=2, steps=2, hidden=8, image_size=4),
        (1, 4, 4),
    ),
    ModelCase(
        "glow-spline",
        lambda: Glow(1, levels=2, steps=4, hidden=32, coupling="spline", image_size=28),
        (1, 28, 28),
        lambda: Glow(1, levels=2, steps=2, hidden=8, coupling="spline", image_size=4),
        (1, 4, 4),
        fit=True,
    ),
    # The 3×3 emerging convolution before each LU 1×1 conv; its inverse is sequential, so the
    # default size is small. The tiny size is 8×8 so that the 3×3 kernel mixes pixels at both
    # levels (4×4 and 2×2 positions).
    ModelCase(
        "glow-emerging",
        lambda: Glow(1, levels=2, steps=2, hidden=16, permutation="emerging", image_size=16),
        (1, 16, 16),
        lambda: Glow(1, levels=2, steps=2, hidden=8, permutation="emerging", image_size=8),
        (1, 8, 8),
    ),
    # Self-attention in the couplings (Flow++).
    ModelCase(
        "glow-attention",
        lambda: Glow(
            1, levels=2, steps=2, hidden=16, coupling="spline", attention_heads=2, image_size=28
        ),
        (1, 28, 28),
        lambda: Glow(
            1, levels=2, steps=2, hidden=8, coupling="spline", attention_heads=2, image_size=4
        ),
        (1, 4, 4),
    ),
    # Class-conditional, legacy mode (Kingma & Dhariwal): only the top prior sees the label,
    # plus the classifier head. 10 classes at the default size (Fashion-MNIST's, for the fit).
    ModelCase(
        "glow-conditional",
        lambda: Glow(1, levels=2, steps=1, hidden=8, num_classes=10, image_size=28),
        (1, 28, 28),
        lambda: Glow(1, levels=2, steps=2, hidden=8, num_classes=3, image_size=4),
        (1, 4, 4),
        conditional=True,
        fit=True,
    ),
    # Class-conditional everywhere: a label embedding reaches every coupling, split and prior,
    # with a null label (guidance); with attention on the coarsest level only, so the spec
    # round trip covers every option Glow has. 10 classes at the default size (the fit).
    ModelCase(
        "glow-conditional-embedding",
        lambda: Glow(
            1,
            levels=2,
            steps=2,
            hidden=16,
            num_classes=10,
            label_embedding_dim=4,
            attention_heads=2,
            attention_levels=1,
            image_size=28,
        ),
        (1, 28, 28),
        lambda: Glow(
            1,
            levels=2,
            steps=2,
            hidden=8,
            num_classes=3,
            label_embedding_dim=4,
            attention_heads=2,
            attention_levels=1,
            image_size=4,
        ),
        (1, 4, 4),
        conditional=True,
        fit=True,
    ),
    # ---- RealNVP ----------------------------------------------------------------------------
    ModelCase(
        "realnvp",
        lambda: RealNVP(1, scales=2, hidden=16, blocks=2, image_size=28),
        (1, 28, 28),
        lambda: RealNVP(1, scales=2, hidden=8, blocks=1, image_size=4),
        (1, 4, 4),
        # Measured |∫p − 1|: 6e-7 (trapezoid, 400×400).
        plane=lambda: image_plane(RealNVP(1, scales=1, hidden=4, blocks=1, image_size=(1, 2))),
        fit=True,
    ),
    ModelCase(
        "realnvp-spline",
        lambda: RealNVP(1, scales=2, hidden=16, blocks=1, coupling="spline", image_size=28),
        (1, 28, 28),
        lambda: RealNVP(1, scales=2, hidden=8, blocks=1, coupling="spline", image_size=4),
        (1, 4, 4),
        # At 0.2 the first scale's three spline couplings contract to a log-det of −75 over 16
        # numbers: the whole Jacobian's condition number reaches 1e20 and its float64
        # determinant is lost to rounding (layer by layer the log-dets still agree to 1e-15).
        tiny_scale=0.1,
    ),
    ModelCase(
        "realnvp-bn",
        lambda: RealNVP(1, scales=2, hidden=16, blocks=2, batch_norm=True, image_size=28),
        (1, 28, 28),
        lambda: RealNVP(1, scales=2, hidden=8, blocks=1, batch_norm=True, image_size=4),
        (1, 4, 4),
    ),
    ModelCase(
        "realnvp-additive-rgb",
        lambda: RealNVP(3, scales=2, hidden=16, blocks=1, coupling="additive", image_size=16),
        (3, 16, 16),
        lambda: RealNVP(3, scales=2, hidden=8, blocks=1, coupling="additive", image_size=4),
        (3, 4, 4),
    ),
    # ---- NICE -------------------------------------------------------------------------------
    ModelCase(
        "nice",
        lambda: NICE(1, image_size=28, couplings=4, hidden=32),
        (1, 28, 28),
        lambda: NICE(1, image_size=4, couplings=4, hidden=8),
        (1, 4, 4),
        # Measured |∫p − 1|: 6e-8 (trapezoid, 400×400).
        plane=lambda: image_plane(NICE(1, image_size=(1, 2), couplings=4, hidden=4)),
        fit=True,
    ),
    # ---- i-ResNet (exact log-det: see the module docstring for the series estimate) ----------
    # Its blocks act on each level's whole flattened activation: 8×8 keeps the exact log-det's
    # Jacobian at 64 numbers per block.
    ModelCase(
        "iresnet",
        lambda: IResNetFlow(1, levels=2, steps=2, hidden=16, logdet="exact", image_size=8),
        (1, 8, 8),
        lambda: IResNetFlow(1, levels=2, steps=2, hidden=8, logdet="exact", image_size=4),
        (1, 4, 4),
    ),
    # Class-conditional through the top prior (and the classifier head).
    ModelCase(
        "iresnet-conditional",
        lambda: IResNetFlow(
            1, levels=2, steps=1, hidden=16, logdet="exact", num_classes=3, image_size=8
        ),
        (1, 8, 8),
        lambda: IResNetFlow(
            1, levels=2, steps=2, hidden=8, logdet="exact", num_classes=3, image_size=4
        ),
        (1, 4, 4),
        conditional=True,
    ),
    # ---- TarFlow ------------------------------------------------------------------------------
    # Tiny sizes with several tokens per block (a single token has no context to condition on).
    _tarflow("tarflow-patch4", (1, 28, 28), (1, 8, 8), 4),
    _tarflow("tarflow-patch2", (1, 28, 28), (1, 4, 4), 2),
    _tarflow("tarflow-patch4-rgb", (3, 16, 16), (3, 4, 8), 4),
    # Conditional everywhere (label embedding in every block, null label, guidance).
    _tarflow(
        "tarflow-patch4-conditional",
        (1, 28, 28),
        (1, 8, 8),
        4,
        num_classes=3,
        label_embedding_dim=4,
    ),
    # Conditional through the top prior only (and the classifier head).
    _tarflow("tarflow-patch2-conditional-top", (1, 16, 16), (1, 4, 4), 2, num_classes=3),
    # ---- 2-D forms of the flow family (plane-only: the playground's VectorFlow models) -------
    # Measured |∫p − 1| on 300×300: 2e-16 planar and affine MAF/IAF, 5e-8 i-ResNet, 1e-5 radial,
    # 4e-5 spline MAF, where the trapezoid rule meets kinks (ELU'', the cusp at x₀, the knots):
    # hence atol 2e-4 for them all. Large perturbations, so that a wrong log-det shows (a 10 %
    # error in it moves the mass by 3e-3 to 0.13); the spline's stops at 0.2: larger ones make
    # its bins ~0.01 wide, with density spikes the grid cannot resolve.
    ModelCase("2d-planar", None, plane=lambda: vector_plane(perturb(PlanarFlow(2), 1.0))),
    ModelCase("2d-radial", None, plane=lambda: vector_plane(perturb(RadialFlow(2), 1.0))),
    ModelCase(
        "2d-maf-affine",
        None,
        plane=lambda: vector_plane(perturb(MaskedAutoregressiveFlow(2, 16, "affine"), 0.5)),
    ),
    ModelCase(
        "2d-maf-spline",
        None,
        plane=lambda: vector_plane(perturb(MaskedAutoregressiveFlow(2, 16, "spline"), 0.2)),
    ),
    ModelCase(
        "2d-iaf-affine",
        None,
        plane=lambda: vector_plane(
            Inverse(perturb(InverseAutoregressiveFlow(2, 16, "affine"), 0.5))
        ),
    ),
    ModelCase(
        "2d-iresnet-exact",
        None,
        plane=lambda: vector_plane(perturb(InvertibleResidualBlock(2, 16, logdet="exact"), 0.5)),
    ),
    # TarFlow on a two-pixel image: patch 1 (the only patch a 1×2 image has), two tokens; and its
    # conditional form, p(x | y) for a class and for the null label. Measured |∫p − 1|: 1e-15.
    ModelCase(
        "2d-tarflow",
        None,
        plane=lambda: image_plane(
            TarFlow(1, patch_size=1, blocks=2, layers=1, hidden=8, heads=2, image_size=(1, 2))
        ),
    ),
    *(
        ModelCase(
            f"2d-tarflow-conditional-label{label}",
            None,
            plane=lambda y=label: image_plane(
                TarFlow(
                    1,
                    patch_size=1,
                    blocks=2,
                    layers=1,
                    hidden=8,
                    heads=2,
                    image_size=(1, 2),
                    num_classes=3,
                    label_embedding_dim=4,
                ),
                label=y,
            ),
        )
        for label in (1, 3)  # 3 = the null label
    ),
]
"""Every model case; see the module docstring."""

IMAGE_MODELS: list[ModelCase] = [c for c in MODELS if c.is_image_model]
"""The cases that are image models (every check but the plane's)."""

PLANES: list[ModelCase] = [c for c in MODELS if c.plane is not None]
"""The cases with a 2-D form."""


def case(name: str) -> ModelCase:
    """The case called ``name``."""
    (found,) = [c for c in MODELS if c.name == name]
    return found


def ids(cases: list[ModelCase]) -> list[str]:
    """Test ids: the case names."""
    return [c.name for c in cases]


def log_normal(z: Tensor) -> Tensor:
    """``Σ log N(z; 0, I)`` over all but the first axis (float64)."""
    z = z.flatten(1).double()
    return -0.5 * (z * z).sum(1) - 0.5 * z.shape[1] * math.log(2 * math.pi)
