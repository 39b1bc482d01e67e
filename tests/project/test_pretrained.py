"""Shipped models by name (glowapp.pretrained): where their files are looked for, the errors when
they are not there, and a wheel that carries them (setup.py)."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from glowapp import pretrained
from glowapp.checkpointing import CheckpointError
from glowapp.evaluation.classifier import WEIGHTS_NAME, feature_classifier_paths
from glowapp.pretrained import (
    DEFAULT_MODEL,
    ENV_VAR,
    SHIPPED,
    checkpoint_dirs,
    display_path,
    find_shipped,
    resolve_checkpoint,
)

REPO = Path(__file__).resolve().parents[2]
SHIPPED_CKPT = REPO / "checkpoints" / "fashion-mnist.ckpt"


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ``$GLOWAPP_CHECKPOINTS`` from the caller's shell; relative paths land in tmp_path."""
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def fake_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty ``src/glowapp`` package folder standing in for the real one (nothing shipped)."""
    package = tmp_path / "src" / "glowapp"
    package.mkdir(parents=True)
    monkeypatch.setattr(pretrained, "PACKAGE_DIR", package)
    return package


def put(folder: Path, name: str) -> Path:
    """A stand-in file ``folder/name`` (resolution only looks at names)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(b"stand-in")
    return folder / name


def test_the_table() -> None:
    assert SHIPPED == {
        "fashion-mnist": "fashion-mnist.ckpt",
        "fashion-mnist-conditional": "fashion-mnist-conditional.ckpt",
        "fashion-mnist-background": "fashion-mnist-background.ckpt",
        "fashion-mnist-tarflow": "fashion-mnist-tarflow.ckpt",
    }
    assert DEFAULT_MODEL == "fashion-mnist"


def test_the_source_tree_holds_the_default_model() -> None:
    package = REPO / "glowapp"
    assert checkpoint_dirs() == [package / "checkpoints", REPO / "checkpoints"]
    assert resolve_checkpoint(DEFAULT_MODEL) == SHIPPED_CKPT
    assert find_shipped("fashion-mnist") == SHIPPED_CKPT


def test_places_in_order_and_the_environment_variable_first(
    fake_package: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = put(fake_package.parent / "checkpoints", "fashion-mnist.ckpt")
    assert resolve_checkpoint("fashion-mnist") == source
    installed = put(fake_package / "checkpoints", "fashion-mnist.ckpt")
    assert resolve_checkpoint("fashion-mnist") == installed
    first, second = tmp_path / "first", tmp_path / "second"
    monkeypatch.setenv(ENV_VAR, os.pathsep.join([str(first), "", str(second)]))
    assert checkpoint_dirs() == [
        first,
        second,
        fake_package / "checkpoints",
        fake_package.parent / "checkpoints",
    ]
    assert resolve_checkpoint("fashion-mnist") == installed  # set, but holding nothing
    override = put(second, "fashion-mnist.ckpt")
    assert resolve_checkpoint("fashion-mnist") == override
    conditional = put(first, "fashion-mnist-conditional.ckpt")
    assert resolve_checkpoint("fashion-mnist-conditional") == conditional
    # The feature classifier is looked for in the same places.
    assert feature_classifier_paths() == [d / WEIGHTS_NAME for d in checkpoint_dirs()]


def test_paths_are_returned_as_they_are(fake_package: Path, tmp_path: Path) -> None:
    model = put(tmp_path, "model.ckpt")
    assert resolve_checkpoint(str(model)) == model
    assert resolve_checkpoint("model.ckpt") == Path("model.ckpt")
    (tmp_path / "folder").mkdir()
    assert resolve_checkpoint("folder") == Path("folder")  # reading it says what is wrong
    # A file named like a shipped model wins over the name; a folder does not.
    assert resolve_checkpoint(put(tmp_path, "fashion-mnist")) == tmp_path / "fashion-mnist"
    (tmp_path / "fashion-mnist-conditional").mkdir()
    shipped = put(fake_package.parent / "checkpoints", "fashion-mnist-conditional.ckpt")
    assert resolve_checkpoint("fashion-mnist-conditional") == shipped


def test_unknown_names_and_missing_paths(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError) as err:
        resolve_checkpoint("fashion_mnist")
    assert str(err.value) == (
        "fashion_mnist: no such checkpoint file, nor the name of a shipped model "
        "(fashion-mnist, fashion-mnist-conditional, fashion-mnist-background, fashion-mnist-tarflow)"
    )
    missing = tmp_path / "runs" / "last.ckpt"
    for path in (missing, "last.ckpt"):
        with pytest.raises(CheckpointError) as err:
            resolve_checkpoint(path)
        assert str(err.value) == f"{path}: no such checkpoint file"
    with pytest.raises(CheckpointError, match="not a shipped model; shipped: fashion-mnist, "):
        find_shipped("mnist")


def test_a_missing_shipped_file_names_every_place_and_how_to_get_it(
    fake_package: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    installed, source = fake_package / "checkpoints", fake_package.parent / "checkpoints"
    for name, file_name in SHIPPED.items():
        with pytest.raises(CheckpointError) as err:
            resolve_checkpoint(name)
        assert str(err.value) == (
            f"{name}: the shipped model's file {file_name} is missing: looked in {installed}, "
            f"{source} (GLOWAPP_CHECKPOINTS is not set). A fresh clone of the glowapp repository "
            "has it in checkpoints/ (or `git pull` an older one); or set GLOWAPP_CHECKPOINTS to a "
            "folder holding it; or pass the checkpoint's path"
        )
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "mine"))
    with pytest.raises(CheckpointError, match=f"looked in {tmp_path / 'mine'}, {installed}, "):
        resolve_checkpoint("fashion-mnist")


def test_display_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert display_path(SHIPPED_CKPT) == str(SHIPPED_CKPT)  # outside the working directory
    assert display_path("a/b.ckpt") == "a/b.ckpt"
    monkeypatch.chdir(REPO)
    assert display_path(SHIPPED_CKPT) == "checkpoints/fashion-mnist.ckpt"


def test_setup_py_packs_every_shipped_file() -> None:
    """setup.py cannot import glowapp (torch may be absent while building): its own list."""
    tree = ast.parse((REPO / "setup.py").read_text())
    listed = next(
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "SHIPPED_FILES"
    )
    assert set(listed) == {*SHIPPED.values(), WEIGHTS_NAME, Path(WEIGHTS_NAME).stem + ".json"}


def test_a_wheel_carries_the_shipped_files(tmp_path: Path) -> None:
    """A (non-editable) wheel has them in glowapp/checkpoints/, where the unpacked package alone,
    away from the source tree, finds them."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(
        REPO / "glowapp", source / "glowapp", ignore=shutil.ignore_patterns("__pycache__")
    )
    present = [
        n for n in ("fashion-mnist-conditional.ckpt",) if (REPO / "checkpoints" / n).is_file()
    ]
    expected = ["fashion-mnist.ckpt", *present, WEIGHTS_NAME, "fashion_mnist_features.json"]
    (source / "checkpoints").mkdir()
    for name in expected:
        (source / "checkpoints" / name).symlink_to(REPO / "checkpoints" / name)
    (source / "checkpoints" / "run").mkdir()  # a training run's folder: never packed
    (source / "checkpoints" / "run" / "last.ckpt").write_bytes(b"not shipped")
    env = {k: v for k, v in os.environ.items() if k != ENV_VAR}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index"]
    done = subprocess.run(
        [*pip, "-w", str(tmp_path / "wheel"), str(source)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (wheel,) = (tmp_path / "wheel").glob("glowapp-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        archive.extractall(tmp_path / "unpacked")
    packed = sorted(n for n in names if n.startswith("glowapp/checkpoints/"))
    assert packed == sorted(f"glowapp/checkpoints/{name}" for name in expected)
    assert (tmp_path / "unpacked" / packed[0]).read_bytes() == (
        REPO / "checkpoints" / Path(packed[0]).name
    ).read_bytes()

    code = (
        "import glowapp, glowapp.pretrained as p, glowapp.evaluation.classifier as c; "
        "print(glowapp.__file__); print(p.resolve_checkpoint('fashion-mnist')); "
        "print(next(x for x in c.feature_classifier_paths() if x.is_file()))"
    )
    env["PYTHONPATH"] = str(tmp_path / "unpacked")
    (tmp_path / "elsewhere").mkdir()
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path / "elsewhere",
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    package = (tmp_path / "unpacked" / "glowapp").resolve()
    assert done.stdout.splitlines() == [
        str(package / "__init__.py"),
        str(package / "checkpoints" / "fashion-mnist.ckpt"),
        str(package / "checkpoints" / WEIGHTS_NAME),
    ]
