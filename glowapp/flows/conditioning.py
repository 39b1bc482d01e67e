"""Class conditioning shared by every conditional layer, with classifier-free guidance.

A class-conditional flow embeds its labels once (:class:`LabelEmbedding`) and hands the
embedding, wrapped in a :class:`Condition`, to each layer that takes one (a coupling's network,
a split's prior, a transformer block). The embedding table has one row more than there are
classes: row ``K`` means "no label". Training with label dropout (Ho & Salimans 2022) replaces a
share of the labels by ``K``, so the same network is also an unconditional model
``p(x | ∅)``.

Classifier-free guidance at sampling (as TarFlow and STARFlow apply it to flows): every
conditional layer computes its parameters ``θ`` twice, for the label and for "no label", and uses

``θ_w = θ(c) + w · (θ(c) − θ(∅))``

in the sampling direction. ``w = 0`` is plain conditional sampling. The guided map is still
invertible (each layer with fixed parameters is), but its samples follow a sharpened
distribution, not ``p(x | y)``; densities are always computed without guidance.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn


class LabelEmbedding(nn.Module):
    """Labels ``y ∈ {0..K}`` ``[B]`` → vectors ``[B, dim]``; ``y = K`` (:attr:`null_label`) is "no label".

    Initialised ``N(0, 1)`` per entry (layers that consume it map it through their own
    zero-initialised projections, so a fresh conditional layer starts label-independent).
    """

    def __init__(self, num_classes: int, dim: int) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"a label embedding needs num_classes >= 1, got {num_classes}")
        if dim < 1:
            raise ValueError(f"the label embedding's dim must be >= 1, got {dim}")
        self.num_classes = num_classes
        self.dim = dim
        self.table = nn.Embedding(num_classes + 1, dim)
        nn.init.normal_(self.table.weight)

    @property
    def null_label(self) -> int:
        """The label index meaning "no label" (``K``)."""
        return self.num_classes

    def forward(self, labels: Tensor) -> Tensor:
        return self.table(labels)


@dataclass(frozen=True)
class Condition:
    """What a conditional layer receives: label embeddings, and how to guide.

    Attributes:
        embedding: ``[B, E]``, the embedding of each sample's label (or of "no label").
        null: ``[B, E]`` embedding of "no label", present only when guiding.
        weight: the guidance weight ``w`` (used only with ``null``).
    """

    embedding: Tensor
    null: Tensor | None = None
    weight: float = 0.0

    @property
    def guided(self) -> bool:
        return self.null is not None and self.weight != 0.0

    def unguided(self) -> Condition:
        """The same labels without guidance (densities, the encoding direction)."""
        return Condition(self.embedding)

    def params(self, fn: Callable[[Tensor, Tensor], Tensor], inputs: Tensor) -> Tensor:
        """``fn(inputs, embedding)``, guided if asked: ``(1 + w)·fn(x, c) − w·fn(x, ∅)``.

        With guidance both branches run in one batched call of ``fn`` (``inputs`` and the
        embeddings are stacked along the batch). ``fn`` maps ``[B, ...]`` inputs and ``[B, E]``
        embeddings to ``[B, ...]`` parameters.
        """
        if not self.guided:
            return fn(inputs, self.embedding)
        assert self.null is not None
        both = fn(torch.cat([inputs, inputs]), torch.cat([self.embedding, self.null]))
        return self._mix(both)

    def label_params(self, fn: Callable[[Tensor], Tensor]) -> Tensor:
        """:meth:`params` for parameters that depend on the label alone: ``fn(embedding)``, or
        ``(1 + w)·fn(c) − w·fn(∅)`` in one batched call when guided.

        A term that depends on the layer's input but not on the label is the same in both
        branches, so it can be added outside: ``g(x) + label_params(fn)`` equals
        ``params(lambda x, e: g(x) + fn(e), x)`` at half the cost of ``g``.
        """
        if not self.guided:
            return fn(self.embedding)
        assert self.null is not None
        return self._mix(fn(torch.cat([self.embedding, self.null])))

    def _mix(self, both: Tensor) -> Tensor:
        """``[2B, ...]`` (conditional branch, then "no label") -> the guided ``[B, ...]``."""
        cond, uncond = both.chunk(2)
        return cond + self.weight * (cond - uncond)


def check_condition(
    cond: Condition | None, cond_dim: int, layer: str, batch: int | None = None
) -> None:
    """Raise a ValueError unless ``layer`` (built with ``cond_dim``) gets a condition exactly
    when ``cond_dim > 0``, with ``[batch, cond_dim]`` embeddings (any batch if None)."""
    if cond_dim and cond is None:
        raise ValueError(
            f"{layer} is class-conditional (cond_dim={cond_dim}): pass a Condition with the "
            "labels' embeddings"
        )
    if not cond_dim and cond is not None:
        raise ValueError(
            f"a Condition was given to {layer}, which was built without label embeddings "
            "(cond_dim=0)"
        )
    if cond is None:
        return
    rows = cond.embedding.shape[0] if batch is None else batch
    if tuple(cond.embedding.shape) != (rows, cond_dim):
        raise ValueError(
            f"{layer} expects label embeddings [{rows}, {cond_dim}] for a batch of {rows}, "
            f"got {tuple(cond.embedding.shape)}"
        )
