"""The small typed options of :class:`~glowapp.GlowModule`: how pixels become the flow's input.

In a config they are nested groups (``model.preprocessing.n_bits: 5``,
``--model.dequantization.kind variational``); in checkpoints, plain dicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from glowapp.flows.dequantization import (
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
    """Discrete levels ``k`` → continuous ``y = (k + u) / 2^n_bits``.

    Args:
        kind: ``"uniform"`` (``u ~ U[0, 1)``, the papers' estimate) or ``"variational"`` (a learned
            flow ``q(u | k)``, Ho et al. 2019; bits/dim is then the variational bound, see
            :mod:`glowapp.flows.dequantization`).
        steps: couplings of the variational dequantisation flow.
        hidden: width of its networks.
    """

    kind: Literal["uniform", "variational"] = "uniform"
    steps: int = 4
    hidden: int = 32

    def build(
        self, in_channels: int, n_bits: int
    ) -> UniformDequantization | VariationalDequantization:
        return make_dequantization(self.kind, in_channels, n_bits, self.hidden, self.steps)


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


def as_dict(option: Preprocessing | Dequantization) -> dict[str, Any]:
    """Plain-data form of an option, as checkpoints store it."""
    return asdict(option)
