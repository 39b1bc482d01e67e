"""``bench/compare_reference.py``: the alternation of the two implementations, the median ratio
and its spread, and a ``--quick`` run against a stand-in for the reference's ``model.py``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.compare_reference import IMPLS, alternate, parse_args, ratio_summary

REPO = Path(__file__).resolve().parents[2]


def test_rounds_alternate_the_two_implementations() -> None:
    order: list[str] = []
    speeds = {"glowapp": iter([10.0, 12.0, 11.0]), "rosinality": iter([5.0, 4.0, 10.0])}

    def measure(impl: str) -> float:
        order.append(impl)
        return next(speeds[impl])

    runs = alternate(measure, rounds=3)
    assert order == ["glowapp", "rosinality"] * 3 and IMPLS == ("glowapp", "rosinality")
    assert runs == {"glowapp": [10.0, 12.0, 11.0], "rosinality": [5.0, 4.0, 10.0]}
    with pytest.raises(ValueError, match="rounds must be >= 1"):
        alternate(measure, rounds=0)


def test_ratio_summary_is_the_median_of_per_round_ratios_with_its_spread() -> None:
    # Per-round ratios 2.0, 3.0, 1.1, 2.5, 0.5: the median of the ratios is 2.0; the ratio of
    # the medians would be 10 / 4 = 2.5.
    summary = ratio_summary([10.0, 12.0, 11.0, 10.0, 2.0], [5.0, 4.0, 10.0, 4.0, 4.0])
    assert summary["ratios"] == pytest.approx([2.0, 3.0, 1.1, 2.5, 0.5])
    assert summary["ratio_median"] == pytest.approx(2.0)
    assert (summary["ratio_min"], summary["ratio_max"]) == pytest.approx((0.5, 3.0))
    assert summary["ratio_iqr"] == pytest.approx(2.5 - 1.1)  # quartiles 1.1 and 2.5
    paired = ratio_summary([1.0, 3.0, 100.0], [1.0, 1.0, 200.0])  # ratios 1, 3, 0.5
    assert paired["ratio_median"] == pytest.approx(1.0)  # the ratio of the medians: 3
    assert ratio_summary([2.0, 4.0], [1.0, 1.0])["ratio_iqr"] == pytest.approx(1.0)  # within 2–4
    single = ratio_summary([3.0], [2.0])
    assert single["ratio_median"] == single["ratio_min"] == single["ratio_max"] == 1.5
    assert single["ratio_iqr"] == 0.0
    with pytest.raises(ValueError, match="one measurement of each per round"):
        ratio_summary([1.0, 2.0], [1.0])


# A stand-in for rosinality/glow-pytorch's model.py with its interface (not its code): the
# comparison script must set the coupling width through ``AffineCoupling``'s ``filter_size``.
FAKE_REFERENCE = """
import torch
from torch import nn


class AffineCoupling(nn.Module):
    def __init__(self, in_channel, filter_size=512, affine=True):
        super().__init__()
        if filter_size != 16:  # the --quick S config's hidden width
            raise RuntimeError(f"coupling width not set: {filter_size}")
        self.net = nn.Conv2d(in_channel, filter_size, 3, padding=1)


class Glow(nn.Module):
    def __init__(self, in_channel, n_flow, n_block, affine=True, conv_lu=True):
        super().__init__()
        self.coupling = AffineCoupling(in_channel)

    def forward(self, x):
        h = self.coupling.net(x)
        log_p = -(h**2).flatten(1).sum(1)
        return log_p, torch.zeros_like(log_p), [h]

    def reverse(self, z_list, reconstruct=False):
        return z_list[0].sum() * torch.ones(1)
"""


def run_quick(tmp_path: Path, *options: str, rounds: int = 2) -> dict:
    """``python -m bench.compare_reference --quick`` against the stand-in; its JSON report."""
    model = tmp_path / "model.py"
    model.write_text(FAKE_REFERENCE)
    out = tmp_path / "compare.json"
    cmd = [sys.executable, "-m", "bench.compare_reference", "--quick"]
    cmd += ["--rosinality-model", str(model), "--configs", "S", *options]
    cmd += ["--allocators", "tuned", "--rounds", str(rounds), "--threads", "1"]
    cmd += ["--repeats", "1", "--warmup", "0", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"median of {rounds} alternated rounds" in proc.stdout
    return json.loads(out.read_text())


def test_quick_run_reports_median_and_spread(tmp_path: Path) -> None:
    report = run_quick(tmp_path, "--modes", "train")
    (row,) = report["rows"]
    assert (row["config"], row["mode"], row["allocator"], row["rounds"]) == (
        "S",
        "train",
        "tuned",
        2,
    )
    ours, theirs = row["glowapp_images_per_s"], row["rosinality_images_per_s"]
    assert len(ours) == len(theirs) == 2 and min(ours + theirs) > 0
    assert row == row | ratio_summary(ours, theirs)
    # The machine, the load while measuring, and the share of the machine's peak.
    machine = report["machine"]
    assert machine["cpu_model"] and isinstance(machine["cpu_flags"], list)
    assert len(row["load_average"]) == 2
    assert report["peak"]["best_flops_per_s"] > 0
    assert row["glowapp_flops_per_step"] > 0 and row["glowapp_peak_fraction"] > 0


def test_eval_and_sample_go_through_the_image_flow_with_and_without_folding(
    tmp_path: Path,
) -> None:
    report = run_quick(tmp_path, "--modes", "eval", "sample", "--plain", "--no-peak", rounds=1)
    assert report["peak"] is None and "glowapp-plain" in report["order"]
    for row in report["rows"]:
        plain = row["glowapp_plain_images_per_s"]
        assert len(plain) == 1 and min(plain) > 0
        assert row["plain_ratio_median"] > 0 and "glowapp_peak_fraction" not in row


def test_a_missing_reference_model_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--rosinality-model", str(tmp_path / "nope.py")])
    assert exit_info.value.code == 2 and "nope.py: no such file" in capsys.readouterr().err
