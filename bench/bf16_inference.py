"""Does bf16 autocast speed up inference on this machine, and what does it do to the results?

Inference in glowapp runs in float32 on the folded path (:mod:`glowapp.flows.folding`). Under
``torch.autocast(dtype=torch.bfloat16)`` the layers run instead (the folded path steps aside
under autocast): the coupling networks in bf16, the data path, log-dets and 1×1 matrices in
float32 (:mod:`glowapp.flows.conv1x1`). This benchmark measures, for each model, alternating
the two in every round (``--rounds``, median):

* **eval**: ``ImageFlow.bits_per_dim`` of a batch under ``torch.inference_mode``;
* **sample**: ``flow.decode`` of temperature-0.7 latents;
* the largest bits/dim difference (same dequantisation draw) and the largest difference of
  the decoded values (flow space, ``x ∈ [−½, ½]``), bf16 against float32.

Models: the benchmark configs S and C (:mod:`bench.configs`; ActNorm data-initialised, the
zero-initialised last layers given ``N(0, 0.002²)`` weights so the couplings are not the
identity) and a trained checkpoint (``--ckpt``, default the shipped ``fashion-mnist``, on test
images). The CPU's model name and flags (``avx512_bf16``, ``amx_bf16``) go into the JSON.

    .venv/bin/python -m bench.bf16_inference --rounds 5 --json docs/results/bf16_inference.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table
from torch import Tensor

from bench.configs import CONFIGS, TEMPERATURE, make_batch
from bench.timing import log, machine_info, setup_process
from glowapp.atomic import write_atomically
from glowapp.data import load_named_split
from glowapp.flows.nets import ZeroConv2d
from glowapp.image_flow import ImageFlow
from glowapp.loading import load


def config_model(name: str) -> tuple[ImageFlow, Tensor]:
    """Config ``name``'s Glow (ActNorm initialised on its batch, last layers perturbed)."""
    cfg = CONFIGS[name]
    torch.manual_seed(0)
    model = ImageFlow(cfg.flow())
    images, _ = make_batch(cfg)
    model.train().bits_per_dim(images)
    with torch.no_grad():
        for layer in model.modules():
            if isinstance(layer, ZeroConv2d):
                layer.conv.weight.normal_(0.0, 0.002)
                layer.conv.bias.normal_(0.0, 0.01)
    model.flow.clear_caches()
    return model.eval(), images


def checkpoint_model(ckpt: str, batch: int) -> tuple[ImageFlow, Tensor]:
    """A trained model and ``batch`` of its data set's test images."""
    model = load(ckpt).eval()
    images, _ = load_named_split("fashion-mnist", "test", limit=batch)
    return model, images


def compare(model: ImageFlow, images: Tensor, rounds: int, repeats: int) -> dict[str, Any]:
    """Seconds per call (median over rounds) of eval and sample in float32 and bf16, and the
    largest bits/dim and decoded-value differences."""
    n = len(images)
    g = torch.Generator().manual_seed(1)
    latents = [TEMPERATURE * torch.randn(n, *s, generator=g) for s in model.flow.latent_shapes()]
    labels = model.draw_labels(n, torch.Generator().manual_seed(2))
    flow_labels = model.flow_labels(labels, n)

    def run(call: Callable[[], Tensor], bf16: bool) -> Callable[[], Tensor]:
        def timed_call() -> Tensor:
            with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
                return call()

        return timed_call

    def evaluate() -> Tensor:
        return model.bits_per_dim(images, generator=torch.Generator().manual_seed(0))

    def decode() -> Tensor:
        return model.flow.decode(latents, flow_labels)

    calls = {
        (mode, bf16): run(fn, bf16)
        for mode, fn in (("eval", evaluate), ("sample", decode))
        for bf16 in (False, True)
    }
    bpd = {bf16: calls["eval", bf16]().double() for bf16 in (False, True)}
    decoded = {bf16: calls["sample", bf16]().double() for bf16 in (False, True)}
    seconds: dict[tuple[str, bool], list[float]] = {key: [] for key in calls}
    for _ in range(rounds):
        for key, call in calls.items():
            call()
            start = time.perf_counter()
            for _ in range(repeats):
                call()
            seconds[key].append((time.perf_counter() - start) / repeats)
    out: dict[str, Any] = {"batch": n}
    for mode in ("eval", "sample"):
        fp32, bf16 = (statistics.median(seconds[mode, b]) for b in (False, True))
        out[mode] = {"float32_s": fp32, "bf16_s": bf16, "speedup": fp32 / bf16}
    out["max_abs_bpd_diff"] = float((bpd[True] - bpd[False]).abs().max())
    out["mean_bpd_float32"] = float(bpd[False].mean())
    out["max_abs_decoded_diff"] = float((decoded[True] - decoded[False]).abs().max())
    return out


def print_table(rows: dict[str, dict[str, Any]]) -> None:
    table = Table(title="bf16 autocast against float32 (the folded path), median of rounds")
    for name in ("model", "eval fp32", "eval bf16", "×", "sample fp32", "sample bf16", "×"):
        table.add_column(name, justify="left" if name == "model" else "right")
    table.add_column("max |Δ bpd|", justify="right")
    table.add_column("max |Δ x|", justify="right")
    for name, r in rows.items():
        table.add_row(
            name,
            *(
                value
                for mode in ("eval", "sample")
                for value in (
                    f"{1e3 * r[mode]['float32_s']:.1f} ms",
                    f"{1e3 * r[mode]['bf16_s']:.1f} ms",
                    f"×{r[mode]['speedup']:.2f}",
                )
            ),
            f"{r['max_abs_bpd_diff']:.2g}",
            f"{r['max_abs_decoded_diff']:.2g}",
        )
    Console().print(table)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", nargs="*", choices=sorted(CONFIGS), default=["S", "C"])
    p.add_argument("--ckpt", default="fashion-mnist", help="a trained model ('' for none)")
    p.add_argument("--ckpt-batch", type=int, default=64)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    setup_process(args.threads)
    models = {f"config {c}": lambda c=c: config_model(c) for c in args.configs}
    if args.ckpt:
        models[args.ckpt] = lambda: checkpoint_model(args.ckpt, args.ckpt_batch)
    rows = {}
    for name, build in models.items():
        log(f"{name} …")
        rows[name] = compare(*build(), args.rounds, args.repeats)
    print_table(rows)
    report = {
        "machine": machine_info(args.threads),
        "rounds": args.rounds,
        "repeats": args.repeats,
        "temperature": TEMPERATURE,
        "rows": rows,
    }
    if args.json:
        write_atomically(args.json, (json.dumps(report, indent=2) + "\n").encode())
        print(f"wrote {args.json}")
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
