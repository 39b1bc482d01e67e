"""``glowapp score --score``: each image's out-of-distribution scores and verdicts against the
threshold at 95 % TPR on the reference, stated in the output; the JSON keeps its fields."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from glowapp.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_verdicts_and_threshold(
    tmp_path: Path,
    models: dict[str, Path],
    folders: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    images = [folders["reference"] / "000.png", folders["rgb"] / "0.png"]
    report = tmp_path / "s.json"
    code, out, err = run(
        capsys,
        "score",
        "--ckpt",
        models["model"],
        *images,
        "--score",
        "typicality",
        "likelihood",
        "--reference",
        folders["reference"],
        "--json",
        report,
    )
    assert code == 0, err
    document = json.loads(report.read_text())
    assert document["checkpoint"] == str(models["model"]) and document["method"] == "bin centres"
    ood = document["ood"]
    assert ood["reference"] == "reference" and ood["reference_images"] == 25 and ood["tpr"] == 0.95
    assert set(ood["thresholds"]) == {"likelihood", "typicality"}
    for record in document["scores"]:
        assert {"image", "bits_per_dim", "preprocessing", "ood"} <= set(record)
        for name, judged in record["ood"].items():
            above = judged["score"] > ood["thresholds"][name]
            assert judged["verdict"] == ("outlier" if above else "typical")
        assert record["ood"]["likelihood"]["score"] == pytest.approx(record["bits_per_dim"])
    assert "outlier: a score above its threshold, at which 95% of the 25 reference images" in out
    assert f"typicality {ood['thresholds']['typicality']:.4f}" in out
    assert "typical" in out


def test_default_reference_is_fashion_mnist_test(
    models: dict[str, Path], folders: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        capsys,
        "score",
        "--ckpt",
        models["model"],
        folders["noise"] / "000.png",
        "--score",
        "likelihood",
        "--reference-limit",
        "20",
    )
    assert code == 0, err
    assert "fitting the scores on 20 reference images (fashion-mnist:test)" in out
    assert "of the 20 reference images (fashion-mnist:test)" in out


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        (["--score", "weird"], "unknown score 'weird'"),
        (["--score", "likelihood", "--reference", "SMALL"], "the reference set has 10 images"),
        (["--score", "likelihood", "--reference-limit", "-1"], "--reference-limit must be >= 0"),
    ],
)
def test_bad_score_input_gets_one_line(
    extra: list[str],
    reason: str,
    models: dict[str, Path],
    folders: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    extra = [str(folders["small"]) if v == "SMALL" else v for v in extra]
    code, _, err = run(
        capsys, "score", "--ckpt", models["model"], folders["noise"] / "000.png", *extra
    )
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and reason in lines[0], err


def test_other_image_shapes_need_a_reference(
    models: dict[str, Path], folders: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(
        capsys, "score", "--ckpt", models["wide"], folders["noise"] / "000.png", "--score", "all"
    )
    assert code == 1
    assert "--score needs --reference SET for a model of 1x32x32 images" in err
