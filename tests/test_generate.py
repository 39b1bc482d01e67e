"""glowapp.generate: sampling, interpolation, inpainting, scoring, masks, grids, checkpoint loading.

Uses the small Glow trained once per session on real Fashion-MNIST (``trained_model``).
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from PIL import Image
from trained import Trained

from glowapp.generate import (
    MASK_KINDS,
    CheckpointError,
    draw_noise,
    inpaint,
    inpainting_rows,
    interpolate,
    load_module,
    make_mask,
    mask_from_image,
    resolve_mask,
    sample_grid,
    sample_with_noise,
    save_png,
    score,
    tile,
)
from glowapp.module import GlowModule

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def module(trained_model: Trained) -> GlowModule:
    return load_module(trained_model.checkpoint)


# ---- sampling -------------------------------------------------------------------------------


def test_zero_temperature_is_deterministic_and_decodes_zero_latents(module: GlowModule) -> None:
    zeros = [torch.zeros(4, *shape) for shape in module.flow.latent_shapes()]
    mode = module.decode(zeros)
    a = sample_grid(module, [0.0], 4, seed=0)[0]
    b = sample_grid(module, [0.0], 4, seed=1)[0]
    assert torch.equal(a, mode) and torch.equal(b, mode)
    assert torch.equal(module.sample(4, temperature=0.0), mode)


def test_sample_grid_reuses_one_noise_draw_across_temperatures(module: GlowModule) -> None:
    grid = sample_grid(module, [0.0, 0.7, 1.0], 6, seed=3)
    assert grid.shape == (3, 6, 1, 28, 28)
    assert grid.min() >= 0 and grid.max() <= 1
    # The same seed gives what GlowModule.sample gives, temperature by temperature.
    for row, temperature in zip(grid, [0.0, 0.7, 1.0], strict=True):
        expected = module.sample(6, temperature, torch.Generator().manual_seed(3))
        assert torch.equal(row, expected)
    assert not torch.equal(grid[1], grid[2])


def test_per_level_temperature_scales_each_prior_std(module: GlowModule) -> None:
    noise = draw_noise(module, 256, seed=0)
    temperatures = (0.5, 1.0)  # finest level at half the std, top level at full std
    latents = [t * eps for t, eps in zip(temperatures, noise, strict=True)]
    # In float64: a briefly trained Glow sends a few prior draws to |x| ~ 1e5, where a float32
    # round trip keeps only a few digits; the temperatures are what is tested here.
    flow = copy.deepcopy(module.flow).double()
    with torch.no_grad():
        recovered, _ = flow.encode(flow.decode([z.double() for z in latents]))
    for level, (t, eps, back) in enumerate(zip(temperatures, noise, recovered, strict=True)):
        # Decoding then encoding gives back T·ε: each level's std is scaled by its own T.
        torch.testing.assert_close(back.float(), t * eps, atol=1e-5, rtol=1e-5)
        assert back.std().item() == pytest.approx(t, rel=0.05), f"level {level}"
    # Scalar T is T at every level; the per-level form feeds the same decoder.
    images = sample_with_noise(module, noise, [temperatures, (0.7, 0.7), 0.7])
    assert torch.equal(images[0], module.decode(latents))
    assert torch.equal(images[1], images[2])
    with pytest.raises(ValueError, match="one temperature per level"):
        sample_with_noise(module, noise, [(0.5, 0.5, 0.5)])


# ---- interpolation ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["linear", "spherical"])
def test_interpolation_endpoints_reproduce_the_inputs(
    module: GlowModule, trained_model: Trained, mode: str
) -> None:
    images = trained_model.test_images(8)
    a, b = images[:4], images[4:]
    path = interpolate(module, a, b, steps=6, mode=mode)
    assert path.shape == (4, 6, 1, 28, 28)
    assert (path[:, 0] - a / 255).abs().max() <= 1 / 255 + 1e-6
    assert (path[:, -1] - b / 255).abs().max() <= 1 / 255 + 1e-6
    # In between, images differ from both ends (it is a path, not a copy).
    middle = path[:, 3]
    assert (middle - a / 255).abs().mean() > 0.01 and (middle - b / 255).abs().mean() > 0.01


def test_interpolation_accepts_float_images_and_checks_arguments(
    module: GlowModule, trained_model: Trained
) -> None:
    images = trained_model.test_images(2)
    path = interpolate(module, images[:1].float() / 255, images[1:].float() / 255, steps=2)
    assert torch.allclose(path[0], images.float() / 255, atol=1 / 255 + 1e-6)
    with pytest.raises(ValueError, match="mode"):
        interpolate(module, images[:1], images[1:], mode="cubic")
    with pytest.raises(ValueError, match="steps"):
        interpolate(module, images[:1], images[1:], steps=1)


# ---- inpainting -------------------------------------------------------------------------------


def test_inpainting_raises_log_p_and_approaches_the_ground_truth(
    module: GlowModule, trained_model: Trained
) -> None:
    images = trained_model.test_images(8)
    mask = make_mask("center", (28, 28))
    module.train()  # inpaint switches to eval mode itself and restores the mode
    with torch.no_grad():  # and turns grad mode on for y alone
        result = inpaint(module, images, mask, iterations=150, seed=0)
    assert module.training
    module.eval()
    assert all(p.grad is None for p in module.parameters())
    assert result.log_prob.shape == (151, 8)

    truth = images.float() / 255
    hidden = mask.expand_as(truth)
    mse_init = ((result.initial - truth)[hidden] ** 2).mean().item()
    mse_final = ((result.images - truth)[hidden] ** 2).mean().item()
    log_p_init, log_p_final = result.log_prob[0], result.log_prob[-1]
    print(
        f"\ninpainting (center mask, 8 test images, 150 iterations): "
        f"mean log p {log_p_init.mean():.1f} -> {log_p_final.mean():.1f} nats "
        f"(min gain {(log_p_final - log_p_init).min():.1f}); "
        f"hidden-pixel MSE {mse_init:.4f} -> {mse_final:.4f}"
    )
    # Measured: 979 -> 1735 nats on average, at least +641 for every image; MSE 0.203 -> 0.095.
    assert (log_p_final - log_p_init).min() > 200
    assert mse_final < 0.7 * mse_init
    # Observed pixels are the input's, exactly.
    assert torch.equal(result.images[~hidden], truth[~hidden])
    assert torch.equal(result.initial[~hidden], truth[~hidden])


def test_inpainting_is_seeded(module: GlowModule, trained_model: Trained) -> None:
    images = trained_model.test_images(2)
    mask = make_mask("random", (28, 28), seed=1)
    runs = [
        inpaint(module, images, mask, iterations=3, noise_scale=0.01, seed=s) for s in (0, 0, 1)
    ]
    assert torch.equal(runs[0].images, runs[1].images)
    assert not torch.equal(runs[0].images, runs[2].images)
    ticks: list[int] = []
    inpaint(module, images, mask, iterations=3, progress=ticks.append)
    assert ticks == [1, 2, 3]


def test_masks() -> None:
    size = (28, 28)
    for kind in MASK_KINDS:
        mask = make_mask(kind, size)
        assert mask.shape == size and mask.dtype == torch.bool
    assert make_mask("center", size).sum() == 14 * 14
    assert make_mask("center", size)[7:21, 7:21].all()
    assert make_mask("left", size)[:, :14].all() and not make_mask("left", size)[:, 14:].any()
    assert make_mask("right", size)[:, 14:].all() and not make_mask("right", size)[:, :14].any()
    assert make_mask("top", size)[:14].all() and not make_mask("top", size)[14:].any()
    assert make_mask("bottom", size)[14:].all() and not make_mask("bottom", size)[:14].any()
    assert make_mask("top", size, fraction=0.25).sum() == 7 * 28
    random = make_mask("random", size, fraction=0.3, seed=4)
    assert torch.equal(random, make_mask("random", size, fraction=0.3, seed=4))
    assert 0.2 < random.float().mean() < 0.4
    with pytest.raises(ValueError, match="mask must be one of"):
        make_mask("circle", size)


def test_mask_image_white_is_hidden(tmp_path: Path) -> None:
    picture = Image.new("L", (56, 56), 0)
    picture.paste(255, (0, 0, 28, 56))  # left half white, at twice the model's size
    picture.save(tmp_path / "mask.png")
    mask = mask_from_image(tmp_path / "mask.png", (28, 28))
    assert torch.equal(mask, make_mask("left", (28, 28)))
    assert torch.equal(resolve_mask(str(tmp_path / "mask.png"), (28, 28)), mask)


# ---- scoring ----------------------------------------------------------------------------------


def test_score_prefers_real_images_to_noise(module: GlowModule, trained_model: Trained) -> None:
    real = trained_model.test_images(8)
    noise = torch.randint(
        0, 256, real.shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    bpd_real, bpd_noise = score(module, real), score(module, noise)
    assert bpd_real.shape == (8,)
    assert bpd_real.max() < bpd_noise.min()
    assert torch.equal(score(module, real), bpd_real)  # bin centres: deterministic
    averaged = score(module, real, noise_samples=4, seed=0)
    assert torch.equal(averaged, score(module, real, noise_samples=4, seed=0))
    assert (averaged - bpd_real).abs().max() < 0.5  # the two estimates of the same quantity


# ---- grids and files --------------------------------------------------------------------------


def test_tile_lays_out_row_blocks_and_save_png_writes_it(tmp_path: Path) -> None:
    blocks = [torch.rand(5, 1, 28, 28), torch.randint(0, 256, (2, 3, 28, 28), dtype=torch.uint8)]
    grid = tile(blocks, ncol=3)
    # Block 1 takes 2 rows (5 images, 3 per row), block 2 one row: 3 rows of 3.
    assert grid.shape == (3, 3 * 30 + 2, 3 * 30 + 2)
    path = save_png(grid, tmp_path / "sub" / "grid.png")
    with Image.open(path) as png:
        assert png.format == "PNG" and png.size == (92, 92)
    assert [p.name for p in path.parent.iterdir()] == ["grid.png"]  # no temporary file left


def test_inpainting_rows_mark_the_hidden_region(module: GlowModule) -> None:
    images = torch.full((2, 1, 28, 28), 128, dtype=torch.uint8)
    mask = make_mask("top", (28, 28))
    result = inpaint(module, images, mask, iterations=0)
    masked, completed, truth = inpainting_rows(images, mask, result)
    assert masked.shape == (2, 3, 28, 28)
    assert torch.equal(masked[:, :, 0, 0], torch.tensor([[1.0, 0.0, 1.0]] * 2))
    assert torch.allclose(masked[:, :, -1, -1], torch.full((2, 3), 128 / 255))
    assert completed.shape == truth.shape == (2, 1, 28, 28)


# ---- checkpoints ------------------------------------------------------------------------------


def test_load_module_gives_an_eval_mode_module(trained_model: Trained) -> None:
    module = load_module(trained_model.checkpoint, "cpu")
    assert isinstance(module, GlowModule) and not module.training
    assert module.image_shape == (1, 28, 28)


def test_load_module_errors_are_one_clear_line(tmp_path: Path, trained_model: Trained) -> None:
    data = trained_model.checkpoint.read_bytes()
    (tmp_path / "truncated.ckpt").write_bytes(data[: len(data) // 2])
    Image.new("L", (8, 8)).save(tmp_path / "picture.ckpt", format="PNG")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.ckpt")
    cases = {
        tmp_path / "missing.ckpt": "no such checkpoint file",
        tmp_path: "is a directory",
        tmp_path / "truncated.ckpt": "truncated or corrupt",
        tmp_path / "picture.ckpt": "not a PyTorch checkpoint",
        tmp_path / "other.ckpt": "not a glowapp checkpoint",
    }
    for path, reason in cases.items():
        with pytest.raises(CheckpointError) as info:
            load_module(path)
        message = str(info.value)
        assert reason in message and str(path) in message and "\n" not in message
    assert issubclass(CheckpointError, ValueError)
