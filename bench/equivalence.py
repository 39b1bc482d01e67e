"""Do the speed and memory options change the result? Bits/dim and gradients against the plain model."""

from __future__ import annotations

import copy
import math
from typing import Any

import torch

from bench.configs import Config, make_batch
from bench.workload import build_module, compile_flow
from glowapp import GlowModule


def perturb_(model: torch.nn.Module, scale: float = 0.05, seed: int = 123) -> None:
    """Move every parameter off its initial value (zero-initialised couplings are the identity).

    Noise of std ``scale / sqrt(fan_in)`` for weights (``scale`` for vectors), so deep and wide
    configurations stay in a finite, realistic range.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            fan_in = p[0].numel() if p.dim() > 1 and p.shape[0] > 1 else 1
            p.add_(scale / math.sqrt(fan_in) * torch.randn(p.shape, generator=g))


def _grads(model: torch.nn.Module) -> list[torch.Tensor]:
    return [
        p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p)
        for p in model.parameters()
    ]


def max_rel_grad_diff(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    """``max |a − b|`` over every gradient, relative to the largest ``|a|``."""
    scale = max(float(g.abs().max()) for g in a) or 1.0
    return max(float((x - y).abs().max()) for x, y in zip(a, b, strict=True)) / scale


def _evaluate(
    module: GlowModule, images: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """Bin-centre bits/dim ``[B]`` in training mode (with its gradients) and in eval mode."""
    module.train()
    module.zero_grad(set_to_none=True)
    bpd_train = module.bits_per_dim(images, noise=False)
    bpd_train.mean().backward()
    grads = _grads(module)
    module.eval()
    with torch.no_grad():
        bpd_eval = module.bits_per_dim(images, noise=False)
    return bpd_train.detach(), bpd_eval, grads


def equivalence(cfg: Config, options: list[str]) -> dict[str, Any]:
    """max |Δ bits/dim| (and gradients) of each option against the plain model, same weights and batch.

    Bin-centre dequantisation (no noise), ActNorm initialised, parameters perturbed. Training-mode
    bits/dim with gradients (where memory-saving backprop is active) and eval-mode bits/dim. The
    reference is the plain contiguous (NCHW) module; each option (``memory_saving``,
    ``channels_last``, ``compile``) is applied alone to a copy of it.
    """
    module = build_module(cfg, channels_last=False)
    images = make_batch(cfg, seed=7)[0]
    module.train()
    with torch.no_grad():
        module.bits_per_dim(images)  # ActNorm's data-dependent initialisation
    perturb_(module)
    ref_train, ref_eval, ref_grads = _evaluate(module, images)
    out: dict[str, Any] = {"reference_bpd": float(ref_eval.mean())}
    if not (torch.isfinite(ref_eval).all() and all(torch.isfinite(g).all() for g in ref_grads)):
        out["error"] = "non-finite reference bits/dim or gradients after perturbation"
    for option in options:
        try:
            variant = copy.deepcopy(module)
            if option == "memory_saving":
                variant.flow.use_memory_saving(True)
            elif option == "channels_last":
                variant.flow.use_channels_last(True)
            elif option == "compile":
                compile_flow(variant)
            else:
                raise ValueError(f"unknown option {option!r}")
            bpd_train, bpd_eval, grads = _evaluate(variant, images)
            out[option] = {
                "max_abs_bpd_diff_train": float((bpd_train - ref_train).abs().max()),
                "max_abs_bpd_diff_eval": float((bpd_eval - ref_eval).abs().max()),
                "max_rel_grad_diff": max_rel_grad_diff(ref_grads, grads),
            }
            out[option]["max_abs_bpd_diff"] = max(
                out[option]["max_abs_bpd_diff_train"], out[option]["max_abs_bpd_diff_eval"]
            )
        except Exception as exc:  # noqa: BLE001 - report, don't abort the whole run
            out[option] = {"error": f"{type(exc).__name__}: {exc}"}
    return out
