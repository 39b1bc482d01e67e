"""Train the Fashion-MNIST classifier whose features `glowapp evaluate` measures FID/KID in.

Trains :class:`glowapp.evaluation.FashionMNISTClassifier` on all 60,000 images of the
Fashion-MNIST *training* split (Adam, one-cycle learning rate, random left-right flips), reports
its accuracy on the 10,000 test images, and writes the weights (a plain ``state_dict``) and a
JSON of how they were made (test accuracy, epochs, seconds, sha256) — by default
``checkpoints/fashion_mnist_features.pt`` and ``.json``, the files glowapp ships. Reads the data
like ``glowapp fit`` (``data/`` or the Debian package ``dataset-fashion-mnist``); never downloads.

Usage: nice -n 10 python scripts/train_feature_classifier.py [--epochs 6] [--threads 2]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import platform
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from glowapp.data import FashionMNISTDataModule
from glowapp.evaluation.classifier import FEATURE_DIM, WEIGHTS_NAME, FashionMNISTClassifier
from glowapp.evaluation.data import load_split
from glowapp.images import write_atomically


@torch.no_grad()
def accuracy(classifier: FashionMNISTClassifier, images: Tensor, labels: Tensor) -> float:
    """Share of ``images`` ``[N, 1, 28, 28]`` whose arg-max logit is their label."""
    classifier.eval()
    hits = sum(
        int((classifier(images[i : i + 1000]).argmax(dim=1) == labels[i : i + 1000]).sum())
        for i in range(0, len(images), 1000)
    )
    return hits / len(images)


def train(
    images: Tensor, labels: Tensor, epochs: int, batch_size: int, lr: float, seed: int
) -> FashionMNISTClassifier:
    """Fit the classifier to uint8 ``images`` ``[N, 1, 28, 28]`` and ``labels`` ``[N]``."""
    torch.manual_seed(seed)
    classifier = FashionMNISTClassifier()
    optimizer = torch.optim.Adam(classifier.parameters(), lr=lr, weight_decay=1e-4)
    steps_per_epoch = len(images) // batch_size
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=lr, total_steps=epochs * steps_per_epoch
    )
    generator = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        classifier.train()
        order = torch.randperm(len(images), generator=generator)
        total = 0.0
        for step in range(steps_per_epoch):
            index = order[step * batch_size : (step + 1) * batch_size]
            batch = images[index]
            flip = torch.rand(len(batch), generator=generator) < 0.5  # clothes mirror well
            batch = torch.where(flip[:, None, None, None], batch.flip(-1), batch)
            loss = F.cross_entropy(classifier(batch), labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += float(loss.detach())
        print(
            f"epoch {epoch + 1}/{epochs}: training loss {total / steps_per_epoch:.4f}", flush=True
        )
    return classifier.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6, help="passes over the training split")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3, help="peak learning rate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--data-root", default="data", help="data root, as in the configs")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("checkpoints") / WEIGHTS_NAME,
        help="weights file; the metadata goes beside it with .json (default: %(default)s)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    data = FashionMNISTDataModule(root=args.data_root, val_fraction=0.0, download=False)
    data.setup("fit")
    data.setup("test")
    train_images, train_labels = load_split(data.train_dataset)
    test_images, test_labels = load_split(data.test_dataset)

    start = time.perf_counter()
    classifier = train(train_images, train_labels, args.epochs, args.batch_size, args.lr, args.seed)
    seconds = time.perf_counter() - start
    test_accuracy = accuracy(classifier, test_images, test_labels)
    print(f"test accuracy {test_accuracy:.4f} on {len(test_images)} test images")

    buffer = io.BytesIO()
    torch.save(classifier.state_dict(), buffer)
    weights = buffer.getvalue()
    write_atomically(args.out, weights)
    metadata = {
        "file": args.out.name,
        "sha256": hashlib.sha256(weights).hexdigest(),
        "bytes": len(weights),
        "test_accuracy": round(test_accuracy, 4),
        "test_images": len(test_images),
        "train_images": len(train_images),
        "feature_dim": FEATURE_DIM,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "seed": args.seed,
        "threads": args.threads,
        "train_seconds": round(seconds),
        "machine": f"{platform.machine()} CPU, torch {torch.__version__}",
        "command": "python scripts/train_feature_classifier.py " + " ".join(sys.argv[1:]),
    }
    json_path = args.out.with_suffix(".json")
    write_atomically(json_path, (json.dumps(metadata, indent=2) + "\n").encode())
    print(f"wrote {args.out} ({len(weights) / 2**20:.2f} MiB) and {json_path}")


if __name__ == "__main__":
    main()
