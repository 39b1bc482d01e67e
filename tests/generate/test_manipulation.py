"""glowapp.generate.manipulation: latent directions, moving images along them, direction files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers.generation import error_message, tiny_glow
from helpers.trained import Trained

from glowapp.evaluation.data import to_uint8
from glowapp.generate import (
    Direction,
    class_direction,
    latent_direction,
    manipulate,
)
from glowapp.models import Glow
from glowapp.module import GlowModule
from glowapp.tools.directions import load_direction, save_direction

pytestmark = pytest.mark.usefixtures("single_thread")


def random_images(n: int, side: int = 8, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 1, side, side), generator=generator, dtype=torch.uint8)


def test_alpha_zero_reproduces_the_input_exactly(
    module: GlowModule, trained_model: Trained
) -> None:
    images = trained_model.test_images(12)
    direction = latent_direction(module, images[:6], images[6:])
    moved = manipulate(module, images[:6], direction, [0.0, 1.0])
    assert moved.shape == (6, 2, 1, 28, 28)
    assert torch.equal(to_uint8(moved[:, 0]), images[:6])
    assert (to_uint8(moved[:, 1]) != images[:6]).any()  # a step that is not 0 changes images


def test_the_direction_is_the_mean_difference_on_every_level() -> None:
    module = tiny_glow(side=8).eval()
    positive, negative = random_images(3, seed=1), random_images(2, seed=2)
    direction = latent_direction(module, positive, negative, batch_size=2)
    by_hand = [
        torch.stack([module.encode(x[None])[level][0] for x in positive]).mean(0)
        - torch.stack([module.encode(x[None])[level][0] for x in negative]).mean(0)
        for level in range(2)
    ]
    assert direction.latent_shapes == [tuple(s) for s in module.flow.latent_shapes()]
    assert len(direction.latents) == 2
    for got, expected in zip(direction.latents, by_hand, strict=True):
        assert expected.abs().max() > 0.01
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert direction.flow == module.hparams["flow"]


def test_each_image_is_decoded_at_its_latent_plus_alpha_times_the_direction() -> None:
    module = tiny_glow(side=8).eval()
    images = random_images(2, seed=3)
    direction = latent_direction(module, random_images(4, seed=4), random_images(4, seed=5))
    alphas = [-1.0, 0.5, 2.0]
    moved = manipulate(module, images, direction, alphas)
    assert moved.shape == (2, 3, 1, 8, 8)
    for i in range(2):
        latents = module.encode(images[i : i + 1])
        for j, alpha in enumerate(alphas):
            expected = module.decode(
                [z + alpha * d for z, d in zip(latents, direction.latents, strict=True)]
            )
            torch.testing.assert_close(moved[i, j], expected[0], atol=1 / 255 + 1e-6, rtol=0)


def test_a_class_conditional_model_uses_one_fixed_label() -> None:
    module = tiny_glow(side=8, num_classes=3).eval()
    images = random_images(3, seed=6)
    direction = latent_direction(module, random_images(4, seed=7), random_images(4, seed=8))
    moved = manipulate(module, images, direction, [0.0, 1.0])
    assert torch.equal(to_uint8(moved[:, 0]), images)
    labels = torch.zeros(3, dtype=torch.long)
    latents = module.encode(images, labels=labels)
    expected = module.decode(
        [z + d for z, d in zip(latents, direction.latents, strict=True)], labels
    )
    torch.testing.assert_close(moved[:, 1], expected, atol=1 / 255 + 1e-6, rtol=0)


def test_class_direction_takes_the_two_classes_images() -> None:
    module = tiny_glow(side=8).eval()
    images = random_images(6, seed=9)
    labels = torch.tensor([7, 9, 7, 1, 9, 9])
    got = class_direction(module, images, labels, positive_class=9, negative_class=7)
    expected = latent_direction(module, images[[1, 4, 5]], images[[0, 2]])
    for a, b in zip(got.latents, expected.latents, strict=True):
        torch.testing.assert_close(a, b)


def test_a_saved_direction_loads_back_and_other_models_refuse_it(tmp_path: Path) -> None:
    module = tiny_glow(side=8).eval()
    direction = latent_direction(module, random_images(2, seed=10), random_images(2, seed=11))
    path = save_direction(direction, tmp_path / "d.pt")
    assert path.stat().st_size < 20_000  # the latents and the flow spec, no weights
    loaded = load_direction(path, module)
    assert loaded.flow == direction.flow
    for a, b in zip(loaded.latents, direction.latents, strict=True):
        assert torch.equal(a, b)
    wider = GlowModule(Glow(in_channels=1, image_size=8, levels=2, steps=2, hidden=32))
    message = error_message(load_direction, path, wider)
    assert message == (
        f"{path} was computed with another model (hidden=16 (model: 32)); compute it for this "
        "checkpoint from its positive and negative images"
    )
    bigger = tiny_glow(side=16)
    assert "(image_size=[8, 8] (model: [16, 16]))" in error_message(
        manipulate, bigger, random_images(1, side=16), direction, [1.0]
    )
    cropped = Direction([d[:1] for d in direction.latents], direction.flow)
    assert "latent shapes [(1, 4, 4), (1, 2, 2)] (model: [(2, 4, 4), (8, 2, 2)])" in error_message(
        manipulate, module, random_images(1), cropped, [1.0]
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such direction file"),
        (b"not a direction", "not a direction file saved by glowapp"),
        ({"state_dict": {}}, "not a direction file saved by glowapp (no 'glowapp-direction/1'"),
    ],
)
def test_a_file_that_is_no_direction_is_refused(
    tmp_path: Path, content: object, message: str
) -> None:
    path = tmp_path / "d.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        torch.save(content, path)
    got = error_message(load_direction, path, tiny_glow(side=8))
    assert got.startswith(f"{path}: {message}") and "\n" not in got


def test_bad_arguments_get_one_clear_line() -> None:
    module = tiny_glow(side=8).eval()
    some = random_images(2)
    none = some[:0]
    direction = latent_direction(module, some, random_images(2, seed=1))
    cases = [
        (latent_direction, (module, none, some), "the positive set is empty"),
        (latent_direction, (module, some, none), "the negative set is empty"),
        (latent_direction, (module, random_images(2, side=16), some), "the positive set must be"),
        (manipulate, (module, some, direction, []), "give at least one alpha"),
        (manipulate, (module, some, direction, [float("nan")]), "alpha must be a finite number"),
        (
            manipulate,
            (module, none, direction, [1.0]),
            "the batch of images to manipulate is empty",
        ),
        (class_direction, (module, some, None, 1, 2), "this data set has no class labels"),
        (
            class_direction,
            (module, some, torch.tensor([1, 2]), 1, 1),
            "the positive and negative classes are both 1",
        ),
        (class_direction, (module, some, torch.tensor([1, 2]), 3, 2), "the positive class 3 has"),
    ]
    for fn, args, message in cases:
        got = error_message(fn, *args)
        assert got.startswith(message), got
        assert "\n" not in got
