"""glowapp.generate.inpainting: the most likely completion by Adam, its stopping rule and checks."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from helpers.generation import tiny_glow
from helpers.trained import Trained

from bench.inpainting import gradient_ascent
from glowapp.generate import inpaint, make_mask
from glowapp.generate.inpainting import WINDOW, smooth_fill
from glowapp.module import GlowModule

pytestmark = pytest.mark.usefixtures("single_thread")


def test_inpainting_raises_log_p_and_keeps_observed_pixels_exactly(
    module: GlowModule, trained_model: Trained
) -> None:
    images = trained_model.test_images(8)
    mask = make_mask("center", (28, 28))
    module.train()  # inpaint switches to eval mode itself and restores the mode
    with torch.no_grad():  # and turns grad mode on for the hidden pixels alone
        result = inpaint(module, images, mask, iterations=40, tolerance=0.0)
    assert module.training
    module.eval()
    assert all(p.grad is None for p in module.parameters())
    assert result.log_prob.shape == (41, 8)
    assert (result.iterations, result.converged) == (40, False)

    truth = images.float() / 255
    hidden = mask.expand_as(truth)
    mse_init = ((result.initial - truth)[hidden] ** 2).mean().item()
    mse_final = ((result.images - truth)[hidden] ** 2).mean().item()
    gain = result.log_prob[-1] - result.log_prob[0]
    print(
        f"\ninpainting (center mask, 8 test images, 40 iterations): mean log p "
        f"{result.log_prob[0].mean():.1f} -> {result.log_prob[-1].mean():.1f} nats "
        f"(min gain {gain.min():.1f}); hidden-pixel MSE {mse_init:.4f} -> {mse_final:.4f}"
    )
    # Each image keeps its best iterate: log p never falls, and here it rises for every image.
    assert (result.log_prob.diff(dim=0) >= 0).all()
    assert gain.min() > 0
    assert mse_final < mse_init
    # Observed pixels are the input's, bit for bit.
    assert torch.equal(result.images[~hidden], truth[~hidden])
    assert torch.equal(result.initial[~hidden], truth[~hidden])
    assert ((result.images != result.initial) & hidden).any()


def test_inpainting_beats_the_old_gradient_ascent_at_equal_iterations(
    module: GlowModule, trained_model: Trained
) -> None:
    images = trained_model.test_images(4)
    mask = make_mask("random", (28, 28), seed=1)
    new = inpaint(module, images, mask, iterations=30, tolerance=0.0)
    old = gradient_ascent(module, images, mask, iterations=30)
    old_log_p = module.log_prob_y(module.preprocess.dequantize(old, noise=False)).detach()
    new_log_p = module.log_prob_y(module.preprocess.dequantize(new.images, noise=False)).detach()
    assert (new_log_p > old_log_p).all(), (new_log_p, old_log_p)


def test_the_stopping_rule_ends_the_run_before_the_limit(
    module: GlowModule, trained_model: Trained
) -> None:
    images = trained_model.test_images(2)
    mask = make_mask("center", (28, 28))
    ticks: list[int] = []
    # log p never changes by 100% over a window: it stops after the first window.
    stopped = inpaint(module, images, mask, iterations=50, tolerance=1.0, progress=ticks.append)
    assert (stopped.iterations, stopped.converged) == (WINDOW, True)
    assert ticks == list(range(1, WINDOW + 1))
    assert stopped.log_prob.shape == (WINDOW + 1, 2)
    # The default tolerance stops a long run once log p has flattened out.
    default = inpaint(module, images, mask, iterations=1000)
    assert default.converged and WINDOW <= default.iterations < 1000
    # Zero iterations: the smooth start itself.
    assert torch.equal(inpaint(module, images, mask, iterations=0).images, stopped.initial)


def test_smooth_fill_solves_laplace_between_the_observed_pixels() -> None:
    observed = torch.zeros(1, 1, 5, 9)
    observed[..., :3] = 1.0  # left third white, right third black, middle hidden
    hidden = torch.zeros_like(observed, dtype=torch.bool)
    hidden[..., 3:6] = True
    filled = smooth_fill(observed, hidden, sweeps=500)
    torch.testing.assert_close(filled[0, 0, :, 3:6], torch.tensor([0.75, 0.5, 0.25]).expand(5, 3))
    assert torch.equal(filled[~hidden], observed[~hidden])


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"iterations": -1}, "iterations must be >= 0, got -1"),
        ({"step_size": 0.0}, "step size must be positive, got 0.0"),
        ({"step_size": float("nan")}, "step size must be positive, got nan"),
        ({"tolerance": -0.1}, "tolerance must be >= 0, got -0.1"),
        (
            {"images": torch.zeros(2, 3, 28, 28)},
            "expected images [B, 1, 28, 28], got (2, 3, 28, 28)",
        ),
        ({"images": torch.zeros(1, 28, 28)}, "expected images [B, 1, 28, 28], got (1, 28, 28)"),
        (
            {"mask": torch.zeros(14, 14, dtype=torch.bool)},
            "mask of shape (14, 14) does not broadcast to the images (2, 1, 28, 28); "
            "give [H, W], [B, 1, H, W] or [B, C, H, W]",
        ),
    ],
)
def test_inpainting_arguments_are_checked(changes: dict[str, Any], message: str) -> None:
    arguments = {
        "images": torch.zeros(2, 1, 28, 28, dtype=torch.uint8),
        "mask": make_mask("center", (28, 28)),
        "iterations": 1,
        **changes,
    }
    with pytest.raises(ValueError) as info:
        inpaint(tiny_glow(), **arguments)
    assert str(info.value) == message
