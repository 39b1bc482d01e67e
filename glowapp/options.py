"""The small typed options of :class:`~glowapp.ImageFlow` (and so of :class:`~glowapp.GlowModule`):
how pixels become the flow's input, and how the trained model samples by default.

In a config they are nested groups (``model.preprocessing.n_bits: 5``,
``--model.dequantization.kind variational``, ``--model.sampling.guidance 2``); in checkpoints,
plain dicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from glowapp.flows.dequantization import (
    GaussianNoise,
    UniformDequantization,
    VariationalDequantization,
    make_dequantization,
)
from glowapp.flows.preprocess import Preprocessor


@dataclass(frozen=True)
class Preprocessing:
    """Pixels → the flow's input ``x``.

    Args:
        n_bits: bits per sub-pixel the data is quantised to (8 normally, 5 for Glow's CelebA-HQ);
            bits/dim includes the ``−D log 2^n_bits`` discretisation term.
        logit_alpha: ``x = logit(α + (1 − 2α) y)`` (RealNVP: 0.05), or ``None`` for Glow's
            ``x = y − ½``; the logit's log-det is counted in bits/dim.
    """

    n_bits: int = 8
    logit_alpha: float | None = None

    def build(self) -> Preprocessor:
        return Preprocessor(self.n_bits, self.logit_alpha)


@dataclass(frozen=True)
class Dequantization:
    """Discrete levels ``k`` → continuous ``y = (k + u) / 2^n_bits`` (or noisy images).

    Args:
        kind: ``"uniform"`` (``u ~ U[0, 1)``, the papers' estimate), ``"variational"`` (a learned
            flow ``q(u | k)``, Ho et al. 2019; bits/dim is then the variational bound, see
            :mod:`glowapp.flows.dequantization`) or ``"gaussian"`` (noise augmentation: bin
            centres plus ``N(0, sigma²)`` noise; the model is then a density over noisy images
            and its bits/dim are *noisy-image* bits/dim, not the papers').
        steps: couplings of the variational dequantisation flow.
        hidden: width of its networks.
        sigma: std of the Gaussian noise on the ``[0, 1]`` pixel scale (``kind="gaussian"``).
    """

    kind: Literal["uniform", "variational", "gaussian"] = "uniform"
    steps: int = 4
    hidden: int = 32
    sigma: float = 0.05

    @property
    def noisy(self) -> bool:
        """Whether the model is trained on noisy images (its bits/dim are not the papers')."""
        return self.kind == "gaussian"

    def build(
        self, in_channels: int, n_bits: int
    ) -> UniformDequantization | VariationalDequantization | GaussianNoise:
        return make_dequantization(
            self.kind, in_channels, n_bits, self.hidden, self.steps, self.sigma
        )


@dataclass(frozen=True)
class Sampling:
    """How a trained model samples when a tool or a call does not say: stored in checkpoints.

    Args:
        temperature: std scale of every prior (Glow: 0.7 is the visual sweet spot; 1 samples
            the model's own density).
        guidance: classifier-free guidance weight ``w`` of a class-conditional model trained
            with label dropout (0: plain conditional sampling; see
            :mod:`glowapp.flows.conditioning`).
        denoise: one Tweedie step with the model's score after sampling; ``None``: on exactly
            for models trained with Gaussian noise.
    """

    temperature: float = 0.7
    guidance: float = 0.0
    denoise: bool | None = None


def as_option(value: Any, cls: type) -> Any:
    """``value`` as an instance of the dataclass ``cls`` (a checkpoint stores it as a dict)."""
    if isinstance(value, cls):
        return value
    if isinstance(value, Mapping):
        try:
            return cls(**value)
        except TypeError as err:
            raise ValueError(f"invalid {cls.__name__} options {dict(value)}: {err}") from None
    raise TypeError(f"expected {cls.__name__} or a dict of its fields, got {value!r}")


def as_dict(option: Preprocessing | Dequantization | Sampling) -> dict[str, Any]:
    """Plain-data form of an option, as checkpoints store it."""
    return asdict(option)
