"""TarFlow's building block (Zhai et al. 2024): an affine autoregressive flow over a sequence of
tokens, its shifts and scales computed by a causal transformer.

An image ``[B, C, H, W]`` is read as ``T = H·W`` tokens of ``D = C`` values in raster order
(pixel ``(i, j)`` is token ``i·W + j``; after TarFlow's patchifying squeezes each pixel is a patch).
Token ``t`` is transformed with parameters that depend only on the tokens before it, so the
Jacobian is triangular: the density direction takes one parallel transformer pass, the sampling
direction ``T`` sequential ones (cheap with a key/value cache).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from glowapp.flows.base import Bijection
from glowapp.flows.conditioning import Condition
from glowapp.flows.coupling import AffineTransform


def to_tokens(x: Tensor) -> Tensor:
    """``[B, C, H, W] -> [B, H·W, C]``, pixel ``(i, j)`` becoming token ``i·W + j``; no copy for
    NCHW or channels-last inputs (contiguous tokens from channels-last ones)."""
    return x.permute(0, 2, 3, 1).flatten(1, 2)


def from_tokens(tokens: Tensor, like: Tensor) -> Tensor:
    """Inverse of :func:`to_tokens`: ``[B, H·W, C] -> [B, C, H, W]`` with ``like``'s shape and
    memory layout (channels-last stays channels-last, anything else comes back contiguous)."""
    _, _, h, w = like.shape
    x = tokens.unflatten(1, (h, w)).permute(0, 3, 1, 2)  # (B, C, H, W)
    channels_last = (
        like.is_contiguous(memory_format=torch.channels_last) and not like.is_contiguous()
    )
    return x.contiguous(
        memory_format=torch.channels_last if channels_last else torch.contiguous_format
    )


class LayerCache:
    """The keys and values one attention layer has computed so far, ``[B, heads, t, head_dim]``
    each: sampling feeds one token at a time, and each new query attends over all of them."""

    def __init__(self) -> None:
        self.keys: Tensor | None = None
        self.values: Tensor | None = None

    @property
    def length(self) -> int:
        """Positions cached (``t``)."""
        return 0 if self.keys is None else self.keys.shape[2]

    def extend(self, keys: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
        """Append ``[B, heads, S, head_dim]`` new keys and values; return all ``t + S`` of each."""
        if self.keys is None or self.values is None:
            self.keys, self.values = keys, values
        else:
            self.keys = torch.cat([self.keys, keys], dim=2)
            self.values = torch.cat([self.values, values], dim=2)
        return self.keys, self.values


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where position ``s`` attends to positions ``≤ s`` only.

    ``softmax(q kᵀ / √d_head + M) v`` per head, ``M`` the causal mask; with a :class:`LayerCache`,
    the ``S`` new positions also attend to every cached one.
    """

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"the width {width} must be a multiple of the heads {heads}")
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, h: Tensor, cache: LayerCache | None = None) -> Tensor:
        b, s, width = h.shape
        qkv = self.qkv(h).view(b, s, 3, self.heads, width // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # 3 × (B, heads, S, head_dim)
        if cache is None:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            k, v = cache.extend(k, v)  # (B, heads, L, head_dim), L = cached + S
            length = k.shape[2]
            # Query i is position L − S + i: it sees keys j ≤ L − S + i.
            mask = torch.ones(s, length, dtype=torch.bool, device=h.device).tril(length - s)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.proj(out.transpose(1, 2).reshape(b, s, width))  # (B, S, width)


class TransformerLayer(nn.Module):
    """Pre-norm transformer layer: ``h + Attn(LN(h))``, then ``h + MLP(LN(h))`` (GELU, 4× wide)."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.attention_norm = nn.LayerNorm(width)
        self.attention = CausalSelfAttention(width, heads)
        self.mlp_norm = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width)
        )

    def forward(self, h: Tensor, cache: LayerCache | None = None) -> Tensor:
        h = h + self.attention(self.attention_norm(h), cache)
        return h + self.mlp(self.mlp_norm(h))


class CausalTransformer(nn.Module):
    """Sequence ``[B, S, in]`` → outputs ``[B, S, out]``, output ``s`` depending on inputs ``≤ s``.

    ``h_s = W_in u_s + P_s (+ W_c e)``, then ``layers`` :class:`TransformerLayer`, a final
    LayerNorm and a zero-initialised output map (so a fresh network outputs 0). ``P`` are
    learned positional embeddings for at most ``tokens`` positions; ``e`` ``[B, E]`` is a label
    embedding, mapped by the zero-initialised ``W_c`` and added to every position.

    With caches (:meth:`new_caches`) the call continues a sequence: its positions follow the
    cached ones, whose keys and values are reused.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        tokens: int,
        width: int,
        layers: int,
        heads: int,
        cond_dim: int = 0,
    ) -> None:
        super().__init__()
        if tokens < 1 or width < 1 or layers < 1 or heads < 1:
            raise ValueError(
                f"tokens, width, layers and heads must be >= 1, got tokens={tokens}, "
                f"width={width}, layers={layers}, heads={heads}"
            )
        self.embed = nn.Linear(in_features, width)
        self.position = nn.Parameter(0.02 * torch.randn(tokens, width))
        self.label = nn.Linear(cond_dim, width) if cond_dim else None
        self.layers = nn.ModuleList(TransformerLayer(width, heads) for _ in range(layers))
        self.norm = nn.LayerNorm(width)
        self.out = nn.Linear(width, out_features)
        for linear in (self.out, self.label):
            if linear is not None:
                nn.init.zeros_(linear.weight)
                nn.init.zeros_(linear.bias)

    def new_caches(self) -> list[LayerCache]:
        """Empty key/value caches, one per layer, for position-by-position calls."""
        return [LayerCache() for _ in self.layers]

    def forward(
        self,
        inputs: Tensor,
        embedding: Tensor | None = None,
        caches: list[LayerCache] | None = None,
    ) -> Tensor:
        start = 0 if caches is None else caches[0].length
        end = start + inputs.shape[1]
        if end > self.position.shape[0]:
            raise ValueError(
                f"positions {start}..{end - 1} exceed the {self.position.shape[0]} tokens this "
                "transformer was built for"
            )
        h = self.embed(inputs) + self.position[start:end]  # (B, S, width)
        if self.label is not None and embedding is not None:
            h = h + self.label(embedding)[:, None]  # the label reaches every position
        for i, layer in enumerate(self.layers):
            h = layer(h, None if caches is None else caches[i])
        return self.out(self.norm(h))  # (B, S, out)


class TransformerFlowBlock(Bijection):
    """Affine autoregressive flow over ``T`` tokens of ``D`` values (one TarFlow block).

    In the block's order (raster order, or reversed when ``reverse``), with ``(μ_t, a_t)`` the
    outputs of a :class:`CausalTransformer` fed ``[s, x_1, …, x_{T−1}]`` (``s`` a learned start
    token, so position ``t`` sees exactly ``x_{<t}``):

    forward:  ``z_t = (x_t − μ_t(x_{<t})) · exp(−α_t(x_{<t}))`` for all ``t`` in one pass;
    inverse:  ``x_t = z_t · exp(α_t(x_{<t})) + μ_t(x_{<t})`` for ``t = 1..T`` in turn, each
              step one transformer call on the newest token, reusing the cached keys and
              values of the earlier ones (``T`` calls in all);
    log-det:  ``−Σ_t Σ_d α_{t,d}`` (the Jacobian is triangular in the block's order).

    The scales are soft-clipped, ``α = B · tanh(a / B)`` with ``B = scale_bound``, as in the
    couplings' :class:`~glowapp.flows.coupling.AffineTransform` (which computes both directions):
    the identity near 0, and no ``exp`` overflow when sampling at high temperature or early in
    training. TarFlow itself uses a plain ``exp(α)``. The output layer starts at zero, so a new
    block is the identity.

    Images: ``[B, D, H, W]`` in and out, read as ``T = H·W`` tokens (:func:`to_tokens`), in any
    memory layout, which the output keeps.

    Class-conditional (``cond_dim = E > 0``): both directions take a
    :class:`~glowapp.flows.conditioning.Condition` whose ``[B, E]`` embedding is projected
    (zero-initialised) and added to every token. The inverse computes each token's
    ``(μ_t, a_t)`` through ``cond.params``, so classifier-free guidance,
    ``θ_w = θ(c) + w·(θ(c) − θ(∅))``, is applied token by token, both branches reading the same
    generated ``x_{<t}`` (as TarFlow guides); the forward direction never guides.

    Args:
        channels: values per token ``D``.
        tokens: sequence length ``T`` (``H·W`` of the images it will see).
        hidden: transformer width.
        layers: transformer layers.
        heads: attention heads (``hidden`` must be a multiple).
        reverse: run over the tokens in reverse raster order.
        cond_dim: label embedding size ``E`` (0: unconditional).
        scale_bound: ``B``, the bound on ``|α|``.
    """

    conditional = True

    def __init__(
        self,
        channels: int,
        tokens: int,
        hidden: int,
        layers: int,
        heads: int,
        reverse: bool = False,
        cond_dim: int = 0,
        scale_bound: float = 3.0,
    ) -> None:
        super().__init__()
        if channels < 1:
            raise ValueError(f"tokens need at least one value, got channels={channels}")
        if cond_dim < 0:
            raise ValueError(f"cond_dim must be >= 0 (0: unconditional), got {cond_dim}")
        self.channels = channels
        self.tokens = tokens
        self.reverse = reverse
        self.cond_dim = cond_dim
        self.start = nn.Parameter(torch.zeros(channels))
        self.transform = AffineTransform(scale_bound)
        self.net = CausalTransformer(
            channels, 2 * channels, tokens, hidden, layers, heads, cond_dim
        )

    def _ordered(self, tokens: Tensor) -> Tensor:
        """Raster order to the block's order, and back (reversal is its own inverse)."""
        return tokens.flip(1) if self.reverse else tokens

    def _check(self, x: Tensor, cond: Condition | None) -> None:
        _, c, h, w = x.shape
        if c != self.channels or h * w != self.tokens:
            raise ValueError(
                f"this block was built for {self.tokens} tokens of {self.channels} values, got "
                f"{h}x{w} = {h * w} tokens of {c}"
            )
        if self.cond_dim and cond is None:
            raise ValueError(
                "this block is class-conditional (cond_dim > 0): pass a Condition with the "
                "labels' embeddings"
            )
        if not self.cond_dim and cond is not None:
            raise ValueError(
                "a Condition was given to an unconditional block; build it with cond_dim > 0"
            )

    def _params(
        self, inputs: Tensor, embedding: Tensor | None, caches: list[LayerCache] | None
    ) -> Tensor:
        """Transformer outputs ``[B, S, 2D]`` as the affine parameters ``[B, S, 2, D]``
        (``[:, :, 0]`` the shifts ``μ``, ``[:, :, 1]`` the raw scales ``a``)."""
        out = self.net(inputs, embedding, caches)
        return out.unflatten(2, (2, self.channels))

    def token_params(self, tokens: Tensor, embedding: Tensor | None = None) -> Tensor:
        """``(μ_t, a_t)`` of every token from the tokens before it, in one causal pass:
        ``[B, T, D]`` in the block's order → ``[B, T, 2, D]``."""
        start = self.start.expand(tokens.shape[0], 1, self.channels)
        shifted = torch.cat([start, tokens[:, :-1]], dim=1)  # (B, T, D): s, x_1 … x_{T−1}
        return self._params(shifted, embedding, None)

    def forward(self, x: Tensor, cond: Condition | None = None) -> tuple[Tensor, Tensor]:
        self._check(x, cond)
        tokens = self._ordered(to_tokens(x))  # (B, T, D)
        params = self.token_params(tokens, None if cond is None else cond.embedding)
        z, log_scale = self.transform.inverse(tokens, params)  # (x − μ)·exp(−α), −α
        return from_tokens(self._ordered(z), x), log_scale.flatten(1).sum(dim=1)

    def inverse(self, y: Tensor, cond: Condition | None = None) -> tuple[Tensor, Tensor]:
        self._check(y, cond)
        z = self._ordered(to_tokens(y))  # (B, T, D)
        caches = self.net.new_caches()

        def step(newest: Tensor, embedding: Tensor | None) -> Tensor:
            return self._params(newest, embedding, caches)  # (B, 1, 2, D)

        newest = self.start.expand(z.shape[0], 1, self.channels)  # (B, 1, D)
        xs, log_scales = [], []
        for t in range(self.tokens):
            params = step(newest, None) if cond is None else cond.params(step, newest)
            newest, log_scale = self.transform(z[:, t : t + 1], params)  # z·exp(α) + μ, α
            xs.append(newest)
            log_scales.append(log_scale)
        x = torch.cat(xs, dim=1)  # (B, T, D)
        return from_tokens(self._ordered(x), y), torch.cat(log_scales, dim=1).flatten(1).sum(dim=1)
