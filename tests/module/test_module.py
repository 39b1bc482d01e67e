"""GlowModule: its constructor, plain-data hyper-parameters, and the training objective
(bits/dim by hand, the loss of a training step, the keyed dequantisation noise)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from helpers.bijections import perturb
from helpers.training import fixed_batch, tiny_module

from glowapp import GlowModule
from glowapp.models import NICE, Glow, MultiScaleFlow, RealNVP, build_flow
from glowapp.module import TEST, TRAIN, VAL
from glowapp.options import Dequantization, Preprocessing

pytestmark = [
    pytest.mark.usefixtures("single_thread"),
    # training_step outside a Trainer: self.log() has nowhere to log, which is fine here.
    pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`"),
]


def test_hyper_parameters_are_plain_data_that_rebuild_the_flow() -> None:
    module = GlowModule(
        Glow(in_channels=1, image_size=28, levels=2, steps=2, hidden=16, coupling="additive"),
        preprocessing=Preprocessing(n_bits=5),
        dequantization=Dequantization(kind="variational", steps=2, hidden=8),
        lr=2e-3,
    )
    hp = module.hparams
    assert hp["flow"]["class_path"] == "glowapp.models.glow.Glow"
    assert hp["flow"]["init_args"] | {"image_size": None} == {
        "in_channels": 1,
        "image_size": None,
        "levels": 2,
        "steps": 2,
        "hidden": 16,
        "coupling": "additive",
        "permutation": "lu",
        "spline_bins": 8,
        "spline_bound": 3.0,
        "num_classes": 0,
        "label_embedding_dim": 0,
        "attention_heads": 0,
        "attention_levels": None,
    }
    assert hp["flow"]["init_args"]["image_size"] == [28, 28]
    assert hp["preprocessing"] == {"n_bits": 5, "logit_alpha": None}
    assert hp["dequantization"] == {"kind": "variational", "steps": 2, "hidden": 8, "sigma": 0.05}
    assert hp["lr"] == 2e-3 and "iw_samples" not in hp
    assert module.image_shape == (1, 28, 28) and module.num_dims == 784
    assert module.preprocess.n_bits == 5
    # The spec rebuilds the same architecture, and the module accepts the spec in place of a flow.
    rebuilt = build_flow(hp["flow"])
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
        k: v.shape for k, v in module.flow.state_dict().items()
    }
    again = GlowModule(**dict(hp))
    assert again.hparams == hp


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"lr": 0.0}, ValueError, "lr must be positive, got 0.0"),
        ({"lr_schedule": "linear"}, ValueError, "lr_schedule must be one of"),
        ({"class_weight": -1.0}, ValueError, "class_weight must be >= 0"),
        ({"iw_samples": -1}, ValueError, "iw_samples must be >= 0"),
        ({"preprocessing": {"n_bits": 8, "alpha": 0.1}}, ValueError, "invalid Preprocessing"),
        ({"flow": Glow(1, levels=2, steps=1, hidden=8)}, ValueError, "known image size"),
        ({"flow": torch.nn.Linear(2, 2)}, TypeError, "flow must be a MultiScaleFlow"),
        (
            {"flow": MultiScaleFlow(1, [torch.nn.Identity()], [1], [0], image_size=4)},
            TypeError,
            "inject a subclass of MultiScaleFlow",
        ),
    ],
)
def test_constructor_rejects_bad_options(
    options: dict[str, object], error: type[Exception], message: str
) -> None:
    options = {"flow": Glow(1, image_size=28, levels=2, steps=1, hidden=8)} | options
    with pytest.raises(error, match=message):
        GlowModule(**options)  # type: ignore[arg-type]


def test_memory_saving_is_a_module_option_for_every_architecture() -> None:
    for flow in (
        Glow(1, image_size=8, levels=2, steps=1, hidden=8),
        RealNVP(1, image_size=8, scales=2, hidden=8, blocks=1),
        NICE(1, image_size=8, couplings=2, hidden=8),
    ):
        module = GlowModule(flow, memory_saving=True)
        assert module.flow.memory_saving and module.hparams["memory_saving"]
    with pytest.raises(ValueError, match="memory_saving cannot be combined with batch_norm"):
        GlowModule(
            RealNVP(1, image_size=8, scales=2, hidden=8, batch_norm=True), memory_saving=True
        )


def test_bits_per_dim_is_the_discrete_negative_log_likelihood_per_sub_pixel() -> None:
    """At the bin centres (``noise=False``), with Glow's preprocessing ``x = y − ½`` (log-det 0):
    ``bpd = −(log p_X(x) − D log 256) / (D ln 2)``, ``y = (k + ½) / 256``."""
    module = tiny_module().eval()
    perturb(module.flow, 0.05)
    k = fixed_batch(module, 4)
    with torch.no_grad():
        log_px = module.flow.log_prob((k.double() + 0.5).float() / 256 - 0.5)
        expected = -(log_px.double() - 784 * math.log(256)) / (784 * math.log(2))
        bpd = module.bits_per_dim(k, noise=False)
        as_floats = module.bits_per_dim(k.float() / 255, noise=False)
    assert bpd.shape == (4,)
    torch.testing.assert_close(bpd.double(), expected, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(as_floats, bpd)  # float images in [0, 1] are the same levels
    assert float((expected - 8).abs().max()) > 0.01  # not the trivial 8 bits of a uniform model


def test_a_single_image_is_a_batch_of_one() -> None:
    module = tiny_module().eval()
    image = fixed_batch(module, 1)
    with torch.no_grad():
        torch.testing.assert_close(
            module.bits_per_dim(image[0], noise=False), module.bits_per_dim(image, noise=False)
        )


def test_wrong_images_for_the_module_are_rejected() -> None:
    module = tiny_module().eval()
    with pytest.raises(ValueError, match=r"expected images of shape \[B, 1, 28, 28\]"):
        module.bits_per_dim(torch.zeros(2, 3, 28, 28, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"expected images of shape \[B, 1, 28, 28\]"):
        module.encode(torch.zeros(2, 1, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        module.bits_per_dim(torch.full((2, 1, 28, 28), 2.0))
    with pytest.raises(TypeError, match="uint8"):
        module.bits_per_dim(torch.zeros(2, 1, 28, 28, dtype=torch.int32))


def test_noise_is_keyed_by_stage_and_index() -> None:
    module = tiny_module()

    def draw(stage: int, index: int) -> torch.Tensor:
        return torch.rand(4, generator=module.noise_generator(stage, index))

    assert torch.equal(draw(TRAIN, 3), draw(TRAIN, 3))
    draws = [draw(TRAIN, 3), draw(TRAIN, 4), draw(VAL, 3), draw(TEST, 3)]
    assert all(not torch.equal(a, b) for i, a in enumerate(draws) for b in draws[i + 1 :])
    other_seed = GlowModule(**{**module.hparams, "noise_seed": 1})
    assert not torch.equal(torch.rand(4, generator=other_seed.noise_generator(TRAIN, 3)), draws[0])


def test_training_step_minimises_the_mean_bits_per_dim_of_the_keyed_noise() -> None:
    module = tiny_module()
    batch = (fixed_batch(module), torch.zeros(8, dtype=torch.long))
    with torch.no_grad():
        loss = module.training_step(batch, 0)
        generator = module.noise_generator(TRAIN, 0)
        expected = module.bits_per_dim(batch[0], generator=generator).mean()
    torch.testing.assert_close(loss, expected, rtol=0, atol=0)


def test_conditional_loss_adds_the_weighted_class_bits() -> None:
    """``loss = mean bpd(x | y) + class_weight · CE(logits, y) / ln 2`` (Glow's classifier head),
    with every term computed by hand from the flow: the keyed uniform noise ``u``, ``y = (k +
    u)/256``, ``x = y − ½``, ``log p(x | label)`` from the flow, the logits from the classifier
    head on the top activation averaged over its pixels."""
    module = tiny_module(num_classes=10, class_weight=0.5)
    flow = module.flow
    perturb(flow.classifier, 0.3)
    perturb(flow.top, 0.1)
    labels = torch.tensor([0, 1, 2, 3, 4, 5, 6, 9])
    batch = (fixed_batch(module), labels)
    with torch.no_grad():
        loss = module.training_step(batch, 0)
        u = torch.rand(batch[0].shape, generator=module.noise_generator(TRAIN, 0))
        x = (batch[0].double() + u.double()) / 256 - 0.5
        log_px = flow.log_prob(x.float(), labels).double()
        bpd = -(log_px - 784 * math.log(256)) / (784 * math.log(2))
        _, h, _ = flow._encode_levels(x.float())
        logits = flow.classifier(h.mean(dim=(2, 3)))
    class_bits = F.cross_entropy(logits, labels) / math.log(2)
    assert float(class_bits) > 0.1
    assert float((bpd - 8).abs().max()) > 0.01  # not the trivial 8 bits of a uniform model
    expected = bpd.mean() + 0.5 * class_bits.double()
    torch.testing.assert_close(loss.double(), expected, rtol=1e-6, atol=1e-6)
    # The class term matters: without it the loss would be off by far more than the tolerance.
    assert float((loss.double() - bpd.mean()).abs()) > 0.1 * 0.5
