#!/usr/bin/env python
"""Start-up benchmark: how much longer ``glowapp sample`` takes than ``import torch``.

Alternates the two commands over ``--rounds`` rounds (so drift on a shared machine hits both
alike) and reports each one's median and spread and the median of the per-round differences,
with the CPU (model name and vector flags) in the JSON.

    .venv/bin/python -m bench.startup --rounds 9 --out docs/results/startup.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.timing import cpu_flags, cpu_model, load_average, log
from glowapp.atomic import write_atomically

REPO = Path(__file__).resolve().parents[1]
GLOWAPP = Path(sys.executable).with_name("glowapp")


def commands(out: Path) -> dict[str, list[str]]:
    """The two timed commands: the baseline and the tool."""
    return {
        "import torch": [sys.executable, "-c", "import torch"],
        "glowapp sample": [
            str(GLOWAPP),
            "sample",
            "--ckpt",
            "fashion-mnist",
            "--num",
            "8",
            "--out",
            str(out),
        ],
    }


def time_once(argv: list[str]) -> float:
    """Wall-clock seconds of one run of ``argv`` (which must succeed)."""
    start = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    return time.perf_counter() - start


def measure(rounds: int) -> dict[str, object]:
    """Alternate the commands ``rounds`` times after one untimed warm-up run of each."""
    with tempfile.TemporaryDirectory() as tmp:
        runs = commands(Path(tmp) / "s.png")
        for argv in runs.values():
            time_once(argv)  # page cache, .pyc files
        times: dict[str, list[float]] = {name: [] for name in runs}
        for i in range(rounds):
            for name, argv in runs.items() if i % 2 == 0 else reversed(runs.items()):
                times[name].append(time_once(argv))
            log(
                f"round {i + 1}/{rounds}: "
                + ", ".join(f"{n} {t[-1]:.2f} s" for n, t in times.items())
            )
    extra = [s - b for s, b in zip(times["glowapp sample"], times["import torch"], strict=True)]
    return {
        "rounds": rounds,
        "seconds": {
            name: {"median": statistics.median(t), "min": min(t), "max": max(t), "all": t}
            for name, t in times.items()
        },
        "extra_s": {"median": statistics.median(extra), "min": min(extra), "max": max(extra)},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9, help="alternated rounds (default: 9)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "startup.json")
    args = parser.parse_args(argv)
    report = {
        "command": "glowapp sample --ckpt fashion-mnist --num 8 --out s.png",
        "cpu_model": cpu_model(),
        "cpu_flags": cpu_flags(),
        "load_average_before": load_average(),
        **measure(args.rounds),
    }
    seconds, extra = report["seconds"], report["extra_s"]
    for name, stats in seconds.items():
        print(
            f"{name:<16} median {stats['median']:.2f} s  (min {stats['min']:.2f}, max {stats['max']:.2f})"
        )
    print(
        f"glowapp sample takes {extra['median']:.2f} s longer than import torch "
        f"(median of {args.rounds} alternated rounds; spread {extra['min']:.2f}..{extra['max']:.2f} s)"
    )
    write_atomically(args.out, (json.dumps(report, indent=2) + "\n").encode())
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
