"""Packaging beyond pyproject.toml (which holds the configuration): a wheel, or any non-editable
install, carries the shipped models and the feature classifier in ``glowapp/checkpoints/``,
copied from the source tree's ``checkpoints/`` (where they stay, and where an editable install
finds them: :mod:`glowapp.pretrained`). Files that are absent are left out."""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SOURCE = Path(__file__).resolve().parent / "checkpoints"

SHIPPED_FILES = (
    "fashion-mnist.ckpt",
    "fashion-mnist-conditional.ckpt",
    "fashion-mnist-background.ckpt",
    "fashion-mnist-tarflow.ckpt",
    "fashion_mnist_features.pt",
    "fashion_mnist_features.json",
)
"""The files of ``checkpoints/`` a wheel carries (glowapp.pretrained.SHIPPED's files and the
feature classifier's); never the training runs' folders beside them."""


class BuildPyWithCheckpoints(build_py):
    """``build_py`` that also copies :data:`SHIPPED_FILES` into ``glowapp/checkpoints/``."""

    def checkpoint_mapping(self) -> dict[str, str]:
        """Build destination -> source file, for each shipped file present."""
        target = Path(self.build_lib) / "glowapp" / "checkpoints"
        return {
            str(target / name): str(SOURCE / name)
            for name in SHIPPED_FILES
            if (SOURCE / name).is_file()
        }

    def run(self) -> None:
        super().run()
        if self.editable_mode:  # the package finds the source tree's checkpoints/ itself
            return
        for target, source in self.checkpoint_mapping().items():
            self.mkpath(str(Path(target).parent))
            self.copy_file(source, target)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        extra = [] if self.editable_mode else list(self.checkpoint_mapping())
        return [*super().get_outputs(include_bytecode), *extra]


setup(cmdclass={"build_py": BuildPyWithCheckpoints})
