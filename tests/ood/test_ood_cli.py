"""``glowapp ood`` end to end on tiny folders and an untrained tiny model: the JSON and CSV
contracts, AUROCs recomputed from the CSV, the plot, and one clear line for every bad input."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from sklearn.metrics import roc_auc_score

from glowapp.cli import main
from glowapp.ood import ALL
from glowapp.tools import ood as ood_tool


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def base(models: dict[str, Path], folders: dict[str, Path]) -> list[object]:
    return [
        "ood",
        "--ckpt",
        models["model"],
        "--background",
        models["background"],
        "--reference",
        folders["reference"],
    ]


def test_json_and_csv_contracts(
    tmp_path: Path,
    models: dict[str, Path],
    folders: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    report, table, plot = tmp_path / "ood.json", tmp_path / "ood.csv", tmp_path / "ood.png"
    code, out, err = run(
        capsys,
        *base(models, folders),
        "--candidates",
        folders["flipped"],
        folders["noise"],
        "--score",
        "all",
        "--json",
        report,
        "--csv",
        table,
        "--plot",
        plot,
    )
    assert code == 0, err
    document = json.loads(report.read_text())
    assert document["checkpoint"] == str(models["model"])
    assert document["reference"] == "reference"
    assert document["scores"] == list(ALL)
    assert len(document["rows"]) == 2 * len(ALL)
    for row in document["rows"]:
        assert set(row) == {"set", "score", "auroc", "aupr", "fpr95", "mean_bpd"}
        assert row["set"] in {"flipped", "noise"} and row["score"] in ALL
        assert 0 <= row["auroc"] <= 1 and 0 <= row["aupr"] <= 1 and 0 <= row["fpr95"] <= 1
        assert f"{row['auroc']:.3f}" in out
    with table.open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["set", "image", *ALL]
    by_set = {
        name: [r for r in rows if r["set"] == name] for name in ("reference", "flipped", "noise")
    }
    assert [len(v) for v in by_set.values()] == [25, 12, 12]
    assert by_set["noise"][0]["image"] == str(folders["noise"] / "000.png")
    # every AUROC of the JSON, recomputed from the per-image CSV
    for row in document["rows"]:
        ref = [float(r[row["score"]]) for r in by_set["reference"]]
        cand = [float(r[row["score"]]) for r in by_set[row["set"]]]
        recomputed = roc_auc_score([0] * len(ref) + [1] * len(cand), ref + cand)
        assert recomputed == pytest.approx(row["auroc"], abs=1e-12), row
    with Image.open(plot) as image:
        assert image.format == "PNG" and image.size[0] > 500
    assert f"wrote {table}" in out and f"wrote {plot}" in out and f"wrote {report}" in out


def test_sets_of_another_shape_are_fitted_with_one_line(
    models: dict[str, Path], folders: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        capsys, *base(models, folders), "--candidates", folders["rgb"], "--score", "likelihood"
    )
    assert code == 0
    assert "rgb: 6 of 6 images converted or resized to the model's 1x28x28" in out


def test_a_shell_expanded_glob_is_one_set(
    models: dict[str, Path], folders: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    files = sorted(folders["noise"].glob("*.png"))[:5]
    code, out, _ = run(
        capsys, *base(models, folders), "--candidates", *files, "--score", "likelihood"
    )
    assert code == 0 and "scoring 5 images (noise)" in out


def test_sets_sharing_a_folder_name_are_named_by_their_path(
    tmp_path: Path,
    models: dict[str, Path],
    folders: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    other = tmp_path / "elsewhere" / "noise"
    other.mkdir(parents=True)
    for path in sorted(folders["noise"].glob("*.png"))[:3]:
        (other / path.name).write_bytes(path.read_bytes())
    report = tmp_path / "r.json"
    code, _, err = run(
        capsys,
        *base(models, folders),
        "--candidates",
        folders["noise"],
        other,
        "--score",
        "likelihood",
        "--json",
        report,
    )
    assert code == 0, err
    names = [row["set"] for row in json.loads(report.read_text())["rows"]]
    assert names == [str(folders["noise"]), str(other)]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"--score": ["likelyhood"]}, "unknown score 'likelyhood'; the scores are: likelihood"),
        ({"--candidates": ["EMPTY"]}, "no image files in this folder"),
        ({"--candidates": ["GLOB"]}, "the glob matches no image files"),
        ({"--background": ["WIDE"], "--score": ["ratio"]}, "background model takes 1x32x32"),
        ({"--reference": ["SMALL"]}, "the reference set has 10 images; fitting a threshold"),
        ({"--candidates": ["no-such-set"]}, "nor a named set"),
        ({"--limit": ["0"]}, "--limit must be at least 1"),
    ],
)
def test_bad_input_gets_one_line(
    change: dict[str, list[str]],
    reason: str,
    tmp_path: Path,
    models: dict[str, Path],
    folders: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    places = {
        "EMPTY": str(folders["empty"]),
        "GLOB": str(tmp_path / "*.png"),
        "WIDE": str(models["wide"]),
        "SMALL": str(folders["small"]),
    }
    options = {
        "--ckpt": [str(models["model"])],
        "--background": [str(models["background"])],
        "--reference": [str(folders["reference"])],
        "--candidates": [str(folders["noise"])],
        "--score": ["likelihood"],
    }
    options.update({k: [places.get(v, v) for v in values] for k, values in change.items()})
    argv = ["ood", *(item for key, values in options.items() for item in (key, *values))]
    code, out, err = run(capsys, *argv)
    lines = err.strip().splitlines()
    assert code == 1, err
    assert len(lines) == 1 and lines[0].startswith("glowapp: error: ") and reason in lines[0]
    assert "Traceback" not in err and "wrote" not in out


def test_plot_without_matplotlib_says_what_to_install(
    models: dict[str, Path],
    folders: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises ImportError
    code, _, err = run(
        capsys, *base(models, folders), "--candidates", folders["noise"], "--plot", "p.png"
    )
    assert code == 1
    assert err.strip() == (
        "glowapp: error: plotting the scores needs matplotlib, which is not installed: "
        "pip install 'glowapp[demo]'"
    )
    assert not Path("p.png").exists()


def test_all_drops_ratio_without_a_fitting_background(
    models: dict[str, Path], folders: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    wide_model = ["ood", "--ckpt", models["wide"], "--reference", "noise[:24]"]
    code, out, err = run(
        capsys, *wide_model, "--candidates", "constant[:5]", "--score", "all", "--json", "w.json"
    )
    assert code == 0, err
    assert "no background model (the background model takes 1x28x28" in out
    assert "the ratio score is left out, and combined goes without it" in out
    assert "ratio" not in json.loads(Path("w.json").read_text())["scores"]


def test_the_tools_do_not_import_lightning() -> None:
    code = (
        "import sys, glowapp.tools.ood, glowapp.tools.score, glowapp.ood, glowapp.data.offline; "
        "assert 'pytorch_lightning' not in sys.modules and 'lightning' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert ood_tool.TOOL.name == "ood"
