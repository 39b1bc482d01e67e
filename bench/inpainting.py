"""Inpainting benchmark: the flow's most likely completion against classical and old baselines.

``python -m bench.inpainting --ckpt P [--num N] [--quick]`` completes Fashion-MNIST *test* images
(never seen in training) under three masks (centre 14×14, a fixed random 50%, the left half)
with four methods:

- ``flow``: :func:`glowapp.generate.inpaint` (Adam on the hidden pixels' logits, from a smooth
  fill, up to its default iteration limit);
- ``gradient ascent``: the projected gradient ascent with a decaying step that ``inpaint`` was
  before (NICE §5.2; from uniform noise, ``α_k = 10⁻³ / (1 + k/100)``), 300 iterations;
- ``biharmonic``: ``skimage.restoration.inpaint_biharmonic``;
- ``mean image``: the hidden pixels of the mean training image.

Per method and mask: PSNR over the hidden pixels (each image's, averaged in dB), SSIM of the
whole image (torchmetrics' ``structural_similarity_index_measure``, data range 1, averaged over
images), the mean bits/dim of the completed images under the model (bin centres; lower = more
likely), and seconds per image when completing one image alone and in batches. Prints a table
and writes JSON (default ``docs/results/inpainting.json``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table
from skimage.restoration import inpaint_biharmonic
from torch import Tensor
from torchmetrics.functional.image import structural_similarity_index_measure

from bench.timing import load_average, log, machine_info
from glowapp.data import FashionMNISTDataModule
from glowapp.flows.preprocess import to_images
from glowapp.generate import inpaint, load_module, make_mask, score
from glowapp.generate.inpainting import ITERATIONS
from glowapp.images import as_float_images, write_atomically
from glowapp.module import GlowModule

Method = Callable[[GlowModule, Tensor, Tensor], Tensor]
"""``(module, images uint8 [B, C, H, W], hidden bool [H, W]) -> completions [B, C, H, W]``."""

MASKS = {"center": 0.25, "random": 0.5, "left": 0.5}
"""The masks of :func:`glowapp.generate.make_mask` and the share of the image each hides."""


def gradient_ascent(
    module: GlowModule, images: Tensor, mask: Tensor, iterations: int = 300, seed: int = 0
) -> Tensor:
    """The old ``inpaint``: from uniform noise, ``y_H ← clamp(y_H + α_k ∇ log p_Y, ε, 1 − ε)``
    with ``α_k = 10⁻³ / (1 + k / 100)``, ``ε = 10⁻⁴``; returns the completed images."""
    module.eval()
    hidden = torch.broadcast_to(mask, images.shape)
    observed = module.preprocess.dequantize(images, noise=False)
    start = torch.rand(images.shape, generator=torch.Generator().manual_seed(seed))
    y = torch.where(hidden, start, observed).clamp(1e-4, 1 - 1e-4)
    with torch.enable_grad():
        for k in range(iterations):
            y.requires_grad_(True)
            (grad,) = torch.autograd.grad(module.log_prob_y(y).sum(), y)
            step = 1e-3 / (1.0 + k / 100.0) * torch.nan_to_num(grad)
            y = torch.where(hidden, y.detach() + step, observed).clamp(1e-4, 1 - 1e-4)
    return to_images(y, module.preprocess.n_bits)


def biharmonic(module: GlowModule, images: Tensor, mask: Tensor) -> Tensor:
    """``skimage.restoration.inpaint_biharmonic`` of each image (channels last)."""
    del module
    filled = [
        inpaint_biharmonic(image.permute(1, 2, 0).numpy(), mask.numpy(), channel_axis=-1)
        for image in as_float_images(images)
    ]
    return torch.stack([torch.from_numpy(f).permute(2, 0, 1).float() for f in filled])


def mean_fill(mean_image: Tensor) -> Method:
    """A method filling hidden pixels with those of ``mean_image`` ``[C, H, W]``."""

    def fill(module: GlowModule, images: Tensor, mask: Tensor) -> Tensor:
        del module
        return torch.where(mask, mean_image, as_float_images(images))

    return fill


def flow(iterations: int) -> Method:
    """:func:`glowapp.generate.inpaint` with iteration limit ``iterations``."""

    def complete(module: GlowModule, images: Tensor, mask: Tensor) -> Tensor:
        return inpaint(module, images, mask, iterations=iterations).images

    return complete


def psnr_hidden(completed: Tensor, truth: Tensor, mask: Tensor) -> Tensor:
    """Each image's PSNR (dB, peak 1) over its hidden pixels, ``[B]``."""
    hidden = torch.broadcast_to(mask, truth.shape).flatten(1).float()
    mse = (((completed - truth) ** 2).flatten(1) * hidden).sum(1) / hidden.sum(1)
    return -10 * torch.log10(mse.clamp(min=1e-10))


def evaluate(
    module: GlowModule,
    method: Method,
    images: Tensor,
    mask: Tensor,
    batch: int,
    single: int,
) -> dict[str, float]:
    """One method on one mask: metrics over ``images`` and the two timings."""
    truth = as_float_images(images)
    start = time.perf_counter()
    completed = torch.cat([method(module, chunk, mask) for chunk in images.split(batch)])
    per_image_batched = (time.perf_counter() - start) / len(images)
    start = time.perf_counter()
    for image in images[:single]:
        method(module, image[None], mask)
    per_image_single = (time.perf_counter() - start) / max(single, 1)
    with torch.no_grad():
        bpd = torch.cat([score(module, to_uint8(chunk)) for chunk in completed.split(batch)])
    return {
        "psnr_hidden_db": float(psnr_hidden(completed, truth, mask).mean()),
        "ssim": float(structural_similarity_index_measure(completed, truth, data_range=1.0)),
        "bits_per_dim": float(bpd.mean()),
        "seconds_per_image_single": per_image_single,
        "seconds_per_image_batched": per_image_batched,
    }


def to_uint8(images: Tensor) -> Tensor:
    """``[0, 1]`` float images to uint8 ``0..255`` (exact for 8-bit quantised values)."""
    return (images * 255).round().to(torch.uint8)


def fashion_mnist(root: str, split: str, num: int) -> Tensor:
    """The first ``num`` uint8 images ``[num, 1, 28, 28]`` of a Fashion-MNIST split (fewer if
    the split is smaller: the training split without its validation share has 54,000)."""
    data = FashionMNISTDataModule(root=root, download=False, hflip=False, batch_size=min(num, 1000))
    data.setup("fit" if split == "train" else "test")
    loader = data.train_dataloader() if split == "train" else data.test_dataloader()
    batches, count = [], 0
    for images, _ in loader:
        batches.append(images)
        count += len(images)
        if count >= num:
            break
    return torch.cat(batches)[:num]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.inpainting", description=__doc__)
    parser.add_argument("--ckpt", type=Path, required=True, help="a glowapp checkpoint")
    parser.add_argument("--data-root", default="data", help="Fashion-MNIST's root folder")
    parser.add_argument("--num", type=int, default=500, help="test images (default 500)")
    parser.add_argument(
        "--baseline-num",
        type=int,
        default=None,
        help="test images for the slow 300-iteration gradient ascent (default: --num)",
    )
    parser.add_argument("--batch", type=int, default=50, help="images per batch (default 50)")
    parser.add_argument(
        "--single", type=int, default=3, help="images timed one at a time (default 3)"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument(
        "--out", type=Path, default=Path("docs/results/inpainting.json"), help="JSON report"
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke test: 4 images, 5 baseline iterations"
    )
    return parser.parse_args(argv)


def print_table(report: dict[str, Any]) -> None:
    """The report as one table: a row per mask and method."""
    table = Table(title=f"inpainting, {report['num_images']} Fashion-MNIST test images")
    for column in (
        "mask",
        "method",
        "PSNR hidden (dB)",
        "SSIM",
        "bits/dim",
        "s/img",
        "s/img batch",
    ):
        table.add_column(column, justify="left" if column in ("mask", "method") else "right")
    for row in report["rows"]:
        table.add_row(
            row["mask"],
            row["method"],
            f"{row['psnr_hidden_db']:.2f}",
            f"{row['ssim']:.3f}",
            f"{row['bits_per_dim']:.3f}",
            f"{row['seconds_per_image_single']:.3f}",
            f"{row['seconds_per_image_batched']:.3f}",
        )
    Console(width=120).print(table)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    torch.set_num_threads(args.threads)
    num = 4 if args.quick else args.num
    baseline_num = min(num, args.baseline_num or num)
    baseline_iterations = 5 if args.quick else 300
    module = load_module(args.ckpt)
    module.requires_grad_(False)
    images = fashion_mnist(args.data_root, "test", num)
    mean_image = as_float_images(
        fashion_mnist(args.data_root, "train", 1000 if args.quick else 60000)
    ).mean(0)
    limit = 5 if args.quick else ITERATIONS
    methods: dict[str, tuple[Method, int]] = {
        f"flow (Adam, ≤{limit} it.)": (flow(limit), num),
        f"gradient ascent ({baseline_iterations} it.)": (
            lambda m, x, h: gradient_ascent(m, x, h, baseline_iterations),
            baseline_num,
        ),
        "biharmonic": (biharmonic, num),
        "mean image": (mean_fill(mean_image), num),
    }
    rows = []
    for kind, fraction in MASKS.items():
        mask = make_mask(kind, module.image_shape[1:], fraction, seed=0)
        for name, (method, n) in methods.items():
            log(f"{kind} / {name} on {n} images …")
            result = evaluate(module, method, images[:n], mask, args.batch, min(args.single, n))
            rows.append(
                {
                    "mask": kind,
                    "hidden_fraction": fraction,
                    "method": name,
                    "num_images": n,
                    **result,
                }
            )
    report = {
        "checkpoint": str(args.ckpt),
        "quick": args.quick,
        "num_images": num,
        "baseline_num_images": baseline_num,
        "psnr": "per image over the hidden pixels (peak 1), averaged over images in dB",
        "ssim": "torchmetrics structural_similarity_index_measure, whole image, data range 1",
        "bits_per_dim": "of the completed images under the model, at the bin centres",
        "machine": machine_info(args.threads),
        "load_average": load_average(),
        "rows": rows,
    }
    print_table(report)
    write_atomically(args.out, (json.dumps(report, indent=2) + "\n").encode())
    log(f"wrote {args.out}")
    return 0 if all(math.isfinite(r["psnr_hidden_db"]) for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
