"""Interpolation measured: how likely are the images along a latent path, and are its ends exact?

``python -m bench.interpolation --ckpt P [--pairs N] [--steps S] [--quick]`` takes ``2N``
Fashion-MNIST *test* images (never seen in training), pairs image ``2i`` with image ``2i + 1``,
and runs :func:`glowapp.generate.interpolate` on every pair with each mode (``linear`` and
``spherical``), at ``S`` evenly spaced positions ``t ∈ [0, 1]``. As a reference that never goes
through the latent space, a ``pixel`` row cross-fades the two images, ``(1 − t) a + t b``,
quantised to the model's levels.

The measure of log p: bits/dim of each *decoded, quantised* image under the model at the bin
centres (:func:`glowapp.generate.score`, ``noise_samples=0``), i.e. ``−log₂ P(x) / D`` of the
discrete image up to the bin-centre approximation; lower bits/dim = higher log p. Per mode and
``t`` the table gives the mean and spread (standard deviation, and the 10th/90th percentiles)
over pairs, and the excess over the pair's endpoints, ``bpd(t) − ½ (bpd(0) + bpd(1))``. Per
mode: the worst point of each path relative to its endpoints, ``max_t bpd(t) − max(bpd(0),
bpd(1))`` (≥ 0; 0 when the path never becomes less likely than its less likely end), and how
often a path dips below both endpoints; the decoded endpoints against the inputs (largest
absolute difference in 8-bit levels, share of images reproduced bit for bit, PSNR with peak 255
— ``null`` when exact); and seconds per pair. Prints a table and writes JSON (default
``docs/results/interpolation.json``, ``schema_version`` 1).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table
from torch import Tensor

from bench.timing import load_average, log, machine_info
from glowapp.data import FashionMNISTDataModule
from glowapp.evaluation.data import load_split, to_uint8
from glowapp.generate import INTERPOLATION_MODES, interpolate, load_module, score
from glowapp.generate.interpolation import mix_latents
from glowapp.images import write_atomically
from glowapp.module import GlowModule

SCHEMA_VERSION = 1
REFERENCE_MODE = "pixel"
"""The cross-fade in pixel space, measured alongside the latent modes for comparison."""


def held_out_pairs(root: str, pairs: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The first ``2 · pairs`` test images as pairs ``(2i, 2i + 1)``: uint8 ``a, b``
    ``[pairs, 1, 28, 28]`` and their labels.

    Raises:
        ValueError: the test split holds fewer than ``2 · pairs`` images.
    """
    data = FashionMNISTDataModule(root=root, download=False, hflip=False)
    data.setup("test")
    images, labels = load_split(data.test_dataset)
    if len(images) < 2 * pairs:
        raise ValueError(f"{pairs} pairs need {2 * pairs} test images, the split has {len(images)}")
    images, labels = images[: 2 * pairs], labels[: 2 * pairs]
    return images[0::2], images[1::2], labels[0::2], labels[1::2]


def crossfade(module: GlowModule, a: Tensor, b: Tensor, steps: int) -> Tensor:
    """``(1 − t) a + t b`` in pixel space, quantised like the model's output: ``[P, S, C, H, W]``."""
    t = torch.linspace(0.0, 1.0, steps)[None, :, None, None, None]
    fa, fb = a.float()[:, None] / 255, b.float()[:, None] / 255
    levels = 2**module.preprocess.n_bits - 1
    return (((1 - t) * fa + t * fb) * levels).round() / levels


@torch.no_grad()
def latent_norm_ratio(module: GlowModule, a: Tensor, b: Tensor, steps: int, mode: str) -> Tensor:
    """``‖z(t)‖ / ½ (‖z(0)‖ + ‖z(1)‖)`` ``[P, S]`` of the path's whole latent (all levels), mixed
    by the interpolation's own ``mix_latents``: why a linear path's middle has a higher prior density."""
    t = torch.linspace(0.0, 1.0, steps)
    squares = torch.zeros(len(a), steps)
    for za, zb in zip(module.encode(a), module.encode(b), strict=True):
        squares += mix_latents(za.flatten(1).cpu(), zb.flatten(1).cpu(), t, mode).pow(2).sum(-1)
    norm = squares.sqrt()
    return norm / (0.5 * (norm[:, :1] + norm[:, -1:]))


def endpoint_error(decoded: Tensor, inputs: Tensor) -> dict[str, Any]:
    """Decoded endpoints (``[0, 1]``) against the uint8 inputs, in 8-bit levels."""
    diff = to_uint8(decoded.cpu()).float() - inputs.float()
    mse = diff.pow(2).flatten(1).mean(1)
    exact = (diff == 0).flatten(1).all(1)
    worst_mse = float(mse.max())
    return {
        "max_abs_levels": float(diff.abs().max()),
        "mean_abs_levels": float(diff.abs().mean()),
        "exact_share": float(exact.float().mean()),
        "mse_levels": float(mse.mean()),
        "psnr_db_worst_image": None if worst_mse == 0 else 10 * math.log10(255**2 / worst_mse),
    }


def summarize(
    bpd: Tensor, steps: int, norm: Tensor | None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Per-``t`` rows and the per-path summary of bits/dim ``[P, S]``."""
    ends = bpd[:, [0, -1]]
    excess = bpd - ends.mean(1, keepdim=True)
    worse_than_both = bpd > ends.max(1, keepdim=True).values
    rows = []
    for j, t in enumerate(torch.linspace(0.0, 1.0, steps).tolist()):
        column = bpd[:, j]
        q10, q90 = torch.quantile(column, torch.tensor([0.1, 0.9])).tolist()
        rows.append(
            {
                "t": round(t, 6),
                "bpd_mean": float(column.mean()),
                "bpd_std": float(column.std()) if len(column) > 1 else 0.0,
                "bpd_p10": q10,
                "bpd_p90": q90,
                "excess_over_endpoints_bpd_mean": float(excess[:, j].mean()),
                "share_worse_than_both_endpoints": float(worse_than_both[:, j].float().mean()),
                "latent_norm_ratio_mean": None if norm is None else float(norm[:, j].mean()),
            }
        )
    worst = bpd.max(1)
    gap = worst.values - ends.max(1).values
    interior = bpd[:, 1:-1] if steps > 2 else bpd[:, :0]
    dips = (interior > ends.max(1, keepdim=True).values).any(1)
    positions = torch.linspace(0.0, 1.0, steps)[worst.indices]
    summary = {
        "path_worst_minus_worse_endpoint_bpd_mean": float(gap.mean()),
        "path_worst_minus_worse_endpoint_bpd_median": float(gap.median()),
        "path_worst_bpd_mean": float(worst.values.mean()),
        "endpoints_bpd_mean": float(ends.mean()),
        "share_of_paths_below_both_endpoints": float(dips.float().mean()),
        "worst_t_mean": float(positions.mean()),
        "path_mean_bpd": float(bpd.mean()),
    }
    return rows, summary


def measure_mode(
    module: GlowModule, a: Tensor, b: Tensor, steps: int, mode: str, batch: int
) -> tuple[Tensor, Tensor, float, float]:
    """Bits/dim ``[P, S]`` and images ``[P, S, C, H, W]`` of every path of ``mode``, and the
    seconds per pair of building the paths and of scoring them."""
    build = scoring = 0.0
    paths, bpds = [], []
    for ca, cb in zip(a.split(batch), b.split(batch), strict=True):
        start = time.perf_counter()
        if mode == REFERENCE_MODE:
            path = crossfade(module, ca, cb, steps)
        else:
            path = interpolate(module, ca, cb, steps=steps, mode=mode)
        build += time.perf_counter() - start
        start = time.perf_counter()
        bpds.append(score(module, path.flatten(0, 1)).view(len(ca), steps).cpu())
        scoring += time.perf_counter() - start
        paths.append(path.cpu())
    return torch.cat(bpds), torch.cat(paths), build / len(a), scoring / len(a)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Run the protocol; the JSON document of the results."""
    pairs = 4 if args.quick else args.pairs
    steps = 5 if args.quick else args.steps
    if pairs < 1 or steps < 2:
        raise ValueError(f"need pairs >= 1 and steps >= 2, got {pairs} and {steps}")
    module = load_module(args.ckpt)
    module.requires_grad_(False)
    a, b, label_a, label_b = held_out_pairs(args.data_root, pairs)
    modes: dict[str, dict[str, Any]] = {}
    bpd_by_mode: dict[str, Tensor] = {}
    for mode in (*INTERPOLATION_MODES, REFERENCE_MODE):
        log(f"{mode}: {pairs} pairs × {steps} steps …")
        bpd, paths, build, scoring = measure_mode(module, a, b, steps, mode, args.batch)
        if not torch.isfinite(bpd).all():
            log(f"warning: {int((~torch.isfinite(bpd)).sum())} non-finite bits/dim in {mode}")
        latent = mode != REFERENCE_MODE
        norm = latent_norm_ratio(module, a, b, steps, mode) if latent else None
        rows, summary = summarize(bpd, steps, norm)
        modes[mode] = {
            "latent": latent,
            "rows": rows,
            "summary": summary,
            "endpoint_error": endpoint_error(
                torch.cat([paths[:, 0], paths[:, -1]]), torch.cat([a, b])
            ),
            "seconds_per_pair": build,
            "seconds_per_pair_scoring": scoring,
        }
        bpd_by_mode[mode] = bpd
    spherical, linear = bpd_by_mode["spherical"], bpd_by_mode["linear"]
    difference = spherical - linear
    comparison = {
        "spherical_minus_linear_bpd_mean_by_t": [float(d) for d in difference.mean(0)],
        "share_of_pairs_spherical_worst_point_strictly_more_likely": float(
            (spherical.max(1).values < linear.max(1).values).float().mean()
        ),
        "share_of_pairs_spherical_midpoint_more_likely": float(
            (difference[:, steps // 2] < 0).float().mean()
        ),
    }
    return {
        "schema_version": SCHEMA_VERSION,
        "checkpoint": str(args.ckpt),
        "quick": args.quick,
        "pairs": pairs,
        "steps": steps,
        "pairing": "test images 2i and 2i+1 for i < pairs (the first 2·pairs of the test split)",
        "same_class_pairs": int((label_a == label_b).sum()),
        "measure": (
            "bits/dim of each decoded, quantised image under the model at the bin centres "
            "(glowapp.generate.score, noise_samples=0): -log2 P(x)/D, lower = higher log p"
        ),
        "excess_over_endpoints": "bpd(t) - (bpd(0) + bpd(1)) / 2, per pair, averaged",
        "endpoint_error": (
            "decoded t=0 and t=1 against the input images, in 8-bit levels 0..255; "
            "psnr_db_worst_image is null when every endpoint is reproduced exactly"
        ),
        "reference": "'pixel': (1-t) a + t b in pixel space, quantised; not a latent path",
        "n_bits": module.preprocess.n_bits,
        "modes": modes,
        "comparison": comparison,
        "machine": machine_info(args.threads),
        "load_average": load_average(),
    }


def print_table(report: dict[str, Any]) -> None:
    """One table of the rows (mode × t) and one of the per-mode summaries."""
    table = Table(
        title=f"interpolation, {report['pairs']} pairs of Fashion-MNIST test images",
        caption="bits/dim of the decoded images at the bin centres (lower = higher log p); "
        "Δ vs ends: bpd(t) − mean of the pair's endpoints",
    )
    for column in (
        "mode",
        "t",
        "bpd mean",
        "bpd std",
        "p10",
        "p90",
        "Δ vs ends",
        "> both ends",
        "‖z‖ ratio",
    ):
        table.add_column(column, justify="left" if column == "mode" else "right")
    for mode, result in report["modes"].items():
        for row in result["rows"]:
            ratio = row["latent_norm_ratio_mean"]
            table.add_row(
                mode,
                f"{row['t']:.3f}",
                f"{row['bpd_mean']:.3f}",
                f"{row['bpd_std']:.3f}",
                f"{row['bpd_p10']:.3f}",
                f"{row['bpd_p90']:.3f}",
                f"{row['excess_over_endpoints_bpd_mean']:+.3f}",
                f"{row['share_worse_than_both_endpoints']:.0%}",
                "—" if ratio is None else f"{ratio:.3f}",
            )
        table.add_section()
    summary = Table(
        title="per path: worst point (bpd) and decoded endpoints (8-bit levels)",
        caption="worst − worse end: max_t bpd(t) − max(bpd(0), bpd(1)), averaged; dips below "
        "ends: share of paths with a point less likely than both ends; end PSNR: the worst "
        "endpoint image's, peak 255",
    )
    for column in (
        "mode",
        "worst − worse end",
        "dips below ends",
        "worst t",
        "end max |Δ|",
        "ends exact",
        "end PSNR",
        "s/pair",
        "s/pair score",
    ):
        summary.add_column(column, justify="left" if column == "mode" else "right")
    for mode, result in report["modes"].items():
        s, e = result["summary"], result["endpoint_error"]
        psnr = e["psnr_db_worst_image"]
        summary.add_row(
            mode,
            f"{s['path_worst_minus_worse_endpoint_bpd_mean']:.3f}",
            f"{s['share_of_paths_below_both_endpoints']:.0%}",
            f"{s['worst_t_mean']:.2f}",
            f"{e['max_abs_levels']:.0f}",
            f"{e['exact_share']:.0%}",
            "exact" if psnr is None else f"{psnr:.1f}",
            f"{result['seconds_per_pair']:.4f}",
            f"{result['seconds_per_pair_scoring']:.4f}",
        )
    console = Console(width=120)
    console.print(table)
    console.print(summary)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.interpolation", description=__doc__)
    parser.add_argument("--ckpt", type=Path, required=True, help="a glowapp checkpoint")
    parser.add_argument("--data-root", default="data", help="Fashion-MNIST's root folder")
    parser.add_argument("--pairs", type=int, default=100, help="pairs of test images (default 100)")
    parser.add_argument(
        "--steps", type=int, default=9, help="positions along each path, ends included (default 9)"
    )
    parser.add_argument("--batch", type=int, default=25, help="pairs per call (default 25)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument(
        "--out", type=Path, default=Path("docs/results/interpolation.json"), help="JSON report"
    )
    parser.add_argument("--quick", action="store_true", help="smoke test: 4 pairs, 5 steps")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    torch.set_num_threads(args.threads)
    report = measure(args)
    print_table(report)
    write_atomically(args.out, (json.dumps(report, indent=2) + "\n").encode())
    log(f"wrote {args.out}")
    finite = all(
        math.isfinite(row["bpd_mean"]) for mode in report["modes"].values() for row in mode["rows"]
    )
    return 0 if finite else 1


if __name__ == "__main__":
    sys.exit(main())
