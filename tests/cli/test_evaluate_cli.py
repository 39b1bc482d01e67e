"""``glowapp evaluate``: the tables and JSON on a trained model (the old contract kept, the new
fields beside it), the model's default temperature, the sampling and calibration options, a
class-conditional model's class agreement, and one line per bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers.fit_cli import one_error_line
from helpers.generation import error_message, tiny_glow, write_checkpoint
from helpers.trained import Trained

from glowapp import GlowModule
from glowapp.cli import main
from glowapp.evaluation import classifier as classifier_module
from glowapp.evaluation import extractors, feature_extractor
from glowapp.evaluation.metrics import check_set_size
from glowapp.models import Glow
from glowapp.options import Sampling

pytestmark = pytest.mark.usefixtures("single_thread")


def evaluate(trained: Trained, *options: str) -> list[str]:
    """The command line of ``glowapp evaluate`` on the session's trained model and data."""
    return [
        "evaluate",
        "--ckpt",
        str(trained.checkpoint),
        "--data-root",
        str(trained.data_root),
        "--device",
        "cpu",
        *options,
    ]


def test_prints_labelled_distances_and_writes_the_json_contract(
    trained_model: Trained,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    options = ["--num", "256", "--test-limit", "512", "--temperature", "0.7", "1.0"]
    assert main(evaluate(trained_model, *options, "--json", "eval.json")) == 0
    out = capsys.readouterr().out
    assert "in the fashion-mnist features" in out
    assert all(f" {column} " in out for column in ("FID", "KID", "precision", "recall"))
    assert "test bits/dim:" in out and "reference: real training images" in out
    assert "│ T = 0.7 (default) " in out and "│ T = 1 " in out and "│ reference " in out
    assert "│ blur σ = 1 px " in out and "│ noise σ = 0.2 " in out
    assert "share of images given their label" not in out  # unconditional
    document = json.loads((tmp_path / "eval.json").read_text())
    # The contract as it was, every field with its meaning.
    assert {"checkpoint", "features", "num_samples", "test_bpd", "rows", "reference"} <= set(
        document
    )
    assert document["checkpoint"] == str(trained_model.checkpoint)
    assert document["features"] == "fashion-mnist" and document["num_samples"] == 256
    assert document["test_images"] == 512 and 3.0 < document["test_bpd"] < 6.0
    assert [row["temperature"] for row in document["rows"]] == [0.7, 1.0]
    for row in document["rows"]:
        assert {"temperature", "fid", "kid", "kid_std"} <= set(row)
        assert row["fid"] > document["reference"]["fid"]
    assert {"fid", "kid", "kid_std"} <= set(document["reference"])
    assert "test_bpd_iw" not in document  # only when asked for
    # Beside it.
    for row in document["rows"]:
        assert set(row) == {
            "temperature",
            "fid",
            "kid",
            "kid_std",
            "precision",
            "recall",
            "default",
        }
    assert [row["default"] for row in document["rows"]] == [True, False]
    assert set(document["reference"]) == {"fid", "kid", "kid_std", "precision", "recall"}
    assert document["sampling"] == {"default_temperature": 0.7, "guidance": 0.0, "denoise": False}
    assert [(row["images"], row["sigma"]) for row in document["calibration"]] == [
        ("blur", 0.5), ("blur", 1.0), ("blur", 1.5), ("noise", 0.05), ("noise", 0.1), ("noise", 0.2),
    ]  # fmt: skip
    assert not {"classifier_accuracy", "bayes_accuracy"} & set(document)


def test_the_models_default_temperature_joins_the_rows_and_calibration_can_be_left_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fashion_root: Path
) -> None:
    torch.manual_seed(0)
    flow = Glow(in_channels=1, image_size=28, levels=2, steps=2, hidden=16)
    checkpoint = write_checkpoint(
        GlowModule(flow, sampling=Sampling(temperature=0.6)), tmp_path / "m.ckpt"
    )
    argv = [
        "evaluate", "--ckpt", str(checkpoint), "--data-root", str(fashion_root), "--device", "cpu",
        "--num", "130", "--test-limit", "200", "--no-calibration", "--json", "eval.json",
    ]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "│ T = 0.6 (default) " in out and "│ T = 0.5 " in out and "blur" not in out
    document = json.loads((tmp_path / "eval.json").read_text())
    rows = document["rows"]
    assert [row["temperature"] for row in rows] == [0.5, 0.6, 0.7, 0.8, 1.0]
    assert [row["default"] for row in rows] == [False, True, False, False, False]
    assert document["sampling"]["default_temperature"] == 0.6
    assert "calibration" not in document


def test_a_class_conditional_model_gets_the_class_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fashion_root: Path
) -> None:
    checkpoint = write_checkpoint(
        tiny_glow(num_classes=10, label_embedding_dim=4), tmp_path / "c.ckpt"
    )
    argv = [
        "evaluate", "--ckpt", str(checkpoint), "--data-root", str(fashion_root), "--device", "cpu",
        "--num", "130", "--test-limit", "200", "--temperature", "0.7", "--no-calibration",
        "--guidance", "1", "--bayes-images", "20", "--json", "eval.json",
    ]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "samples: guidance 1" in out
    assert "share of images given their label" in out
    assert "│ Ankle boot " in out and "│ overall " in out
    assert "Bayes: the model's own argmax_y log p(x | y) on 20 test images" in out
    document = json.loads((tmp_path / "eval.json").read_text())
    assert document["sampling"] == {"default_temperature": 0.7, "guidance": 1.0, "denoise": False}
    agreement = document["rows"][0]["class_agreement"]
    assert len(agreement["per_class"]) == 10 and 0.0 <= agreement["overall"] <= 1.0
    # The shipped classifier on 200 real test images: near its 0.9185 on all 10,000.
    assert document["classifier_accuracy"]["overall"] > 0.85
    assert document["bayes_accuracy"]["images"] == 20


def test_importance_weighted_bits_per_dim(
    trained_model: Trained, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    options = ["--num", "256", "--test-limit", "256", "--temperature", "1.0", "--iw-samples", "4"]
    assert main(evaluate(trained_model, *options, "--json", "eval.json")) == 0
    assert "importance-weighted over 4 draws per image" in capsys.readouterr().out
    document = json.loads((tmp_path / "eval.json").read_text())
    assert document["iw_samples"] == 4
    # Tighter than the one-draw bound of the same images (the bound averages log q, the IW
    # estimate log-mean-exps it), and close to it for a model this smooth.
    assert document["test_bpd"] - 0.05 < document["test_bpd_iw"] < document["test_bpd"]
    assert run_error(evaluate(trained_model, "--iw-samples", "-1"), capsys) == (
        "--iw-samples must be >= 0 (0 = off), got -1"
    )


def run_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The message of the one ``glowapp: error:`` line a failing command prints (exit 1)."""
    assert main(argv) == 1
    return one_error_line(capsys).removeprefix("glowapp: error: ")


def test_num_too_small_for_the_feature_dimension(
    trained_model: Trained, capsys: pytest.CaptureFixture[str]
) -> None:
    message = run_error(evaluate(trained_model, "--num", "100"), capsys)
    expected = error_message(
        check_set_size, 100, "samples", feature_extractor("fashion-mnist", (1, 28, 28))
    )
    assert message == expected


def test_too_few_test_images(trained_model: Trained, capsys: pytest.CaptureFixture[str]) -> None:
    message = run_error(evaluate(trained_model, "--num", "256", "--test-limit", "100"), capsys)
    assert message.startswith("100 real images are too few for FID")


def test_features_that_do_not_fit_the_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checkpoint = write_checkpoint(tiny_glow(side=16), tmp_path / "small.ckpt")
    argv = ["evaluate", "--ckpt", str(checkpoint), "--features", "fashion-mnist"]
    message = run_error(argv, capsys)
    assert message == error_message(feature_extractor, "fashion-mnist", (1, 16, 16))


def test_missing_inception_features(
    trained_model: Trained,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(extractors, "torch_fidelity_installed", lambda: False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # no cached weights
    message = run_error(evaluate(trained_model, "--features", "inception"), capsys)
    assert "the inception features need the torch-fidelity package" in message
    assert "pip install torch-fidelity" in message and str(tmp_path) in message


def test_missing_classifier_weights(
    trained_model: Trained,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    nowhere = [
        tmp_path / "a" / "fashion_mnist_features.pt",
        tmp_path / "b" / "fashion_mnist_features.pt",
    ]
    monkeypatch.setattr(classifier_module, "feature_classifier_paths", lambda: nowhere)
    message = run_error(evaluate(trained_model), capsys)
    assert "feature classifier's weights are missing" in message
    assert all(str(path) in message for path in nowhere)


def test_a_bad_temperature(trained_model: Trained, capsys: pytest.CaptureFixture[str]) -> None:
    argv = evaluate(trained_model, "--num", "256", "--test-limit", "256", "--temperature", "-1")
    assert run_error(argv, capsys) == "temperature must be a finite number >= 0, got -1"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--guidance", "1"], "classifier-free guidance needs a class-conditional model"),
        (["--denoise"], "denoising needs a model trained with Gaussian noise"),
        (["--bayes-images", "-1"], "--bayes-images must be >= 0 (0 = off), got -1"),
        (["--manifold-k", "0"], "precision and recall need 1 <= k < the number of images"),
    ],
)
def test_options_the_model_cannot_follow(
    trained_model: Trained,
    capsys: pytest.CaptureFixture[str],
    options: list[str],
    message: str,
) -> None:
    argv = evaluate(trained_model, "--num", "256", "--test-limit", "256", *options)
    assert run_error(argv, capsys).startswith(message)


def test_a_data_set_of_another_shape(
    trained_model: Trained, capsys: pytest.CaptureFixture[str]
) -> None:
    message = run_error(evaluate(trained_model, "--data", "cifar10"), capsys)
    assert message.startswith("--data cifar10 holds 3x32x32 images but the model makes 1x28x28")
