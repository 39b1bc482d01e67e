"""Class conditioning through the whole Glow (``label_embedding_dim > 0``): classifier-free
guidance, the per-class densities and their marginal, a fresh model's label independence, label
checks, memory-saving backprop with a condition, and the legacy mode's unchanged state dict. Also
Glow with self-attention in its couplings (Flow++): which levels get it, channels-last end to end
and bf16 autocast.

Exact inverses given labels (the null label too), labels that change every latent, log-dets
against the float64 Jacobian (guided decoding's too), float64 and the spec round trip are checked
on the registry's conditional and attention Glows (``tests/helpers/model_cases.py``)."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from helpers.bijections import assert_rel_close, perturb
from helpers.layouts import NCHWKernelInputs
from helpers.models import images

from glowapp.flows import ActNorm
from glowapp.models import Glow

pytestmark = pytest.mark.usefixtures("single_thread")

K = 3  # classes; label K is "no label"


def prepared(model: Glow, size: int, scale: float = 0.1) -> Glow:
    """Perturb every parameter (the zero-initialised label projections included), data-initialise
    the ActNorms on labelled images, perturb those, eval: a model far from label-independence."""
    perturb(model, scale)
    model.train()
    with torch.no_grad():
        labels = torch.arange(16) % K if model.num_classes else None
        model.encode(images(16, model.in_channels, size), labels)
    for m in model.modules():
        if isinstance(m, ActNorm):
            perturb(m, scale)
    return model.eval()


def conditional_glow(size: int = 8, channels: int = 1, **options: int) -> Glow:
    torch.manual_seed(0)
    sizes = {"levels": 2, "steps": 2, "hidden": 8, "image_size": size}
    model = Glow(channels, **sizes, num_classes=K, label_embedding_dim=4, **options)
    return prepared(model, size)


LABELS = torch.tensor([0, 2, K, 1])  # a null label among them


def test_guidance() -> None:
    """``w = 0`` is plain conditional decoding, bit for bit; ``w ≠ 0`` changes the samples (but
    not those of the null label, whose guided parameters are its own) and stays finite."""
    model = conditional_glow()
    latents = model.sample_latents(4, 0.8)
    with torch.no_grad():
        plain = model.decode(latents, LABELS)
        assert torch.equal(model.decode(latents, LABELS, guidance=0.0), plain)
        guided = model.decode(latents, LABELS, guidance=3.0)
    assert torch.isfinite(guided).all()
    differs = (guided - plain).flatten(1).abs().amax(dim=1)
    assert float(differs[LABELS != K].min()) > 1e-3
    assert float(differs[LABELS == K].max()) < 1e-5
    seeded = model.sample(4, 0.8, torch.Generator().manual_seed(1), LABELS, guidance=3.0)
    with torch.no_grad():  # sample runs without autograd: the same (folded) inference path
        again = model.decode(
            model.sample_latents(4, 0.8, torch.Generator().manual_seed(1)), LABELS, 3.0
        )
    assert torch.equal(seeded, again)


def test_log_prob_per_class_and_the_marginal() -> None:
    """``log_prob_per_class(x)[:, y] = log_prob(x, y)``; its ``logsumexp − log K`` is the
    marginal ``log_prob(x)``; its argmax is a classifier."""
    model = conditional_glow()
    x = images(5, 1, 8)
    with torch.no_grad():
        per_class = model.log_prob_per_class(x)
        marginal = model.log_prob(x)
        for y in range(K):
            assert_rel_close(per_class[:, y], model.log_prob(x, torch.full((5,), y)), 1e-5)
    assert per_class.shape == (5, K)
    assert float(per_class.std(dim=1).min()) > 1e-3, "the classes give different densities"
    torch.testing.assert_close(marginal, torch.logsumexp(per_class, dim=1) - math.log(K))


def test_legacy_log_prob_per_class() -> None:
    """The legacy model (only the top prior sees the label) has per-class densities too."""
    torch.manual_seed(0)
    model = perturb(Glow(1, levels=2, steps=1, hidden=8, image_size=8, num_classes=K), 0.2).eval()
    x = images(3, 1, 8)
    with torch.no_grad():
        per_class = model.log_prob_per_class(x)
        for y in range(K):
            assert torch.equal(per_class[:, y], model.log_prob(x, torch.full((3,), y)))
        marginal = model.log_prob(x)
    torch.testing.assert_close(marginal, torch.logsumexp(per_class, dim=1) - math.log(K))


def test_fresh_model_is_label_independent() -> None:
    """Every label projection starts at zero: a fresh model's density is the same for every
    label and equals the unconditional Glow's with the same weights."""
    torch.manual_seed(0)
    model = Glow(1, levels=2, steps=1, hidden=8, image_size=8, num_classes=K, label_embedding_dim=4)
    unconditional = Glow(1, levels=2, steps=1, hidden=8, image_size=8)
    unconditional.load_state_dict(model.state_dict(), strict=False)
    x = images(3, 1, 8)
    with torch.no_grad():
        reference = unconditional.log_prob(x)
        for y in range(K + 1):
            torch.testing.assert_close(model.log_prob(x, torch.full((3,), y)), reference)


def test_label_and_guidance_checks() -> None:
    model = conditional_glow()
    legacy = Glow(1, levels=2, steps=1, hidden=8, image_size=8, num_classes=K)
    plain = Glow(1, levels=2, steps=1, hidden=8, image_size=8)
    x = images(2, 1, 8)
    assert model.null_label == K and legacy.null_label is None and plain.null_label is None
    with pytest.raises(ValueError, match=rf"0\.\.{K} \(num_classes={K}, {K} = null_label"):
        model.log_prob(x, torch.tensor([0, K + 1]))
    with pytest.raises(ValueError, match="got values in -1"):
        model.log_prob(x, torch.tensor([-1, 0]))
    with pytest.raises(ValueError, match="this model has no null label"):
        legacy.log_prob(x, torch.tensor([0, K]))
    with pytest.raises(ValueError, match="pass the images' labels"):
        model.encode(x)
    with pytest.raises(ValueError, match="pass the images' labels"):
        model.decode(model.sample_latents(2))
    with pytest.raises(ValueError, match="needs a model with a null label"):
        legacy.sample(2, labels=torch.tensor([0, 1]), guidance=1.0)
    with pytest.raises(ValueError, match="needs a model with a null label"):
        plain.decode(plain.sample_latents(2), guidance=1.0)
    with pytest.raises(ValueError, match="finite"):
        model.sample(2, guidance=float("nan"))
    with pytest.raises(ValueError, match="needs a class-conditional model"):
        Glow(1, levels=1, steps=1, hidden=8, label_embedding_dim=4)
    with pytest.raises(ValueError, match="needs a class-conditional model"):
        plain.log_prob_per_class(x)


def test_state_dict_keys_of_each_mode() -> None:
    """Legacy conditional = unconditional + the top prior's label table + the classifier head
    (exactly as before label embeddings existed); the embedding mode adds one table and a label
    projection per coupling, split and top prior, and no classifier head."""

    def keys(**options: int) -> set[str]:
        return set(Glow(1, levels=2, steps=2, hidden=8, **options).state_dict())

    plain = keys()
    assert not any("cond_proj" in k or "attention" in k or "label_embedding" in k for k in plain)
    assert keys(num_classes=K) == plain | {
        "top.embedding.weight",
        "classifier.weight",
        "classifier.bias",
    }
    embedded = keys(num_classes=K, label_embedding_dim=4)
    extra = embedded - plain
    assert plain <= embedded
    assert "label_embedding.table.weight" in extra and "top.cond_proj.weight" in extra
    assert sum(".net.cond_proj.weight" in k for k in extra) == 2 * 2  # levels × steps
    assert sum(k.startswith("splits.") for k in extra) == 1
    assert not any(k.startswith("classifier") for k in embedded)
    attention = keys(attention_heads=2) - plain
    assert attention and all(".net.attention." in k for k in attention)


def test_memory_saving_gives_the_same_gradients_with_a_condition() -> None:
    """Gradients (label embedding table included) equal the standard backward's."""
    model = conditional_glow(attention_heads=2)
    x = images(4, 1, 8)
    saving = copy.deepcopy(model).use_memory_saving()
    grads = []
    for flow in (model, saving):
        flow.zero_grad(set_to_none=True)
        flow.log_prob(x, LABELS).sum().backward()
        grads.append({n: p.grad for n, p in flow.named_parameters()})
    assert float(grads[0]["label_embedding.table.weight"].abs().max()) > 0
    for name, g in grads[0].items():
        torch.testing.assert_close(grads[1][name], g, rtol=1e-4, atol=1e-5, msg=name)


# ---- self-attention in the couplings --------------------------------------------------------
def attention_glow(size: int = 8, **options: int) -> Glow:
    torch.manual_seed(0)
    model = Glow(1, levels=2, steps=2, hidden=8, image_size=size, attention_heads=2, **options)
    return prepared(model, size)


def test_attention_levels_picks_the_coarsest() -> None:
    model = Glow(1, levels=3, steps=1, hidden=8, attention_heads=2, attention_levels=2)
    with_attention = [any(".attention." in k for k in level.state_dict()) for level in model.levels]
    assert with_attention == [False, True, True]
    with pytest.raises(ValueError, match="attention_levels must be in 1..levels=3"):
        Glow(1, levels=3, attention_heads=2, attention_levels=4)


def test_conditional_attention_glow_runs_channels_last() -> None:
    """Same numbers as NCHW, and training and guided sampling never hand an NCHW activation
    to a heavy kernel (RGB: a grey image's single channel has no layout to keep)."""
    model = conditional_glow(channels=3, attention_heads=2)
    nhwc = copy.deepcopy(model).use_channels_last()
    x = images(4, 3, 8)
    with torch.no_grad():
        assert_rel_close(nhwc.log_prob(x, LABELS), model.log_prob(x, LABELS), 1e-5)
    with NCHWKernelInputs() as mode:
        nhwc.log_prob(x, LABELS).sum().backward()
        with torch.no_grad():
            nhwc.sample(4, 0.7, labels=LABELS, guidance=2.0)
    assert not mode.seen, f"NCHW tensors reached kernels: {sorted(set(mode.seen))}"


def test_bf16_autocast_training_step() -> None:
    """Conditioning and attention run under CPU bf16 autocast; log-probs stay float32."""
    model = conditional_glow(attention_heads=2).use_channels_last()
    x = images(4, 1, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        log_p = model.log_prob(x, LABELS)
    assert log_p.dtype == torch.float32 and torch.isfinite(log_p).all()
    log_p.sum().backward()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())
    with torch.no_grad():
        assert_rel_close(log_p, model.log_prob(x, LABELS), 0.05)
