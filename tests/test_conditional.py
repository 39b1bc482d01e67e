"""Class-conditional Glow (Kingma & Dhariwal 2018): label-dependent top prior, classifier head,
training losses and metrics, and class-conditional sampling from the API and the CLI."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from PIL import Image
from torch import Tensor

from glowapp import GlowModule
from glowapp.cli import main
from glowapp.data import FashionMNISTDataModule
from glowapp.generate import class_labels, interpolate, sample_grid
from glowapp.models import Glow

pytestmark = pytest.mark.usefixtures("single_thread")

K = 3
TINY_MODULE = dict(image_shape=(1, 28, 28), levels=2, steps=1, hidden=8, warmup_steps=2)


def perturb(module: torch.nn.Module, scale: float = 0.1) -> None:
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn_like(p))


def conditional_glow(size: int = 8) -> Glow:
    """A perturbed (non-trivial prior embedding and classifier) tiny conditional Glow."""
    torch.manual_seed(0)
    model = Glow(1, levels=2, steps=2, hidden=8, image_size=size, num_classes=K)
    perturb(model, 0.2)
    return model.eval()


def images(n: int, size: int = 8, dtype: torch.dtype = torch.float32) -> Tensor:
    return torch.rand(n, 1, size, size, dtype=dtype) - 0.5


def test_label_changes_log_prob_and_marginal_mixes_classes() -> None:
    model = conditional_glow()
    x = images(4)
    with torch.no_grad():
        per_class = torch.stack([model.log_prob(x, torch.full((4,), y)) for y in range(K)])
        marginal = model.log_prob(x)
    assert float((per_class[0] - per_class[1]).abs().min()) > 1e-3
    expected = torch.logsumexp(per_class, dim=0) - math.log(K)
    torch.testing.assert_close(marginal, expected, rtol=1e-6, atol=1e-4)


def test_zero_initialised_prior_starts_unconditional() -> None:
    torch.manual_seed(0)
    conditional = Glow(1, levels=2, steps=1, hidden=8, image_size=8, num_classes=K)
    unconditional = Glow(1, levels=2, steps=1, hidden=8, image_size=8)
    unconditional.load_state_dict(conditional.state_dict(), strict=False)
    x = images(3)
    with torch.no_grad():
        reference = unconditional.log_prob(x)
        for y in range(K):
            assert torch.equal(conditional.log_prob(x, torch.full((3,), y)), reference)
        logits = conditional.log_prob_and_logits(x, torch.zeros(3, dtype=torch.long))[1]
    assert logits is not None and torch.equal(logits, torch.zeros(3, K))


def test_conditional_encode_decode_and_logdet() -> None:
    """Exact inverse given the labels, and log-det = autograd Jacobian (float64)."""
    model = conditional_glow(size=4).double()
    x = images(2, size=4, dtype=torch.float64)
    y = torch.tensor([1, 2])
    latents, logdet = model.encode(x, y)
    assert float((model.decode(latents, y) - x).detach().abs().max()) < 1e-10

    def flat(inp: Tensor) -> Tensor:
        return torch.cat([e.flatten(1) for e in model.encode(inp, y)[0]], dim=1)

    jac = torch.autograd.functional.jacobian(flat, x).reshape(2, 16, 2, 16)
    ref = torch.linalg.slogdet(torch.stack([jac[i, :, i] for i in range(2)]))[1]
    torch.testing.assert_close(logdet.detach(), ref, rtol=1e-8, atol=1e-8)


def test_temperature_zero_sample_decodes_the_class_mean() -> None:
    """At T = 0 every latent is the prior mean: the top activation is ``μ_y`` and the samples
    differ by class only."""
    model = conditional_glow().double()
    labels = torch.tensor([0, 1, 2, 1])
    samples = model.sample(4, temperature=0.0, labels=labels)
    with torch.no_grad():
        zeros = [torch.zeros(4, *s, dtype=torch.float64) for s in model.latent_shapes()]
        assert torch.equal(samples, model.decode(zeros, labels))
        _, h, _ = model._encode_levels(samples)
        mean, _ = model.top.mean_log_std(labels)
    torch.testing.assert_close(h, mean.expand_as(h), rtol=0, atol=1e-9)
    assert torch.equal(samples[1], samples[3])
    assert float((samples[0] - samples[1]).abs().max()) > 1e-3


def test_label_validation_errors() -> None:
    model = conditional_glow()
    x = images(2)
    with pytest.raises(ValueError, match=r"class-conditional \(num_classes=3\): pass"):
        model.encode(x)
    with pytest.raises(ValueError, match=r"labels must be in 0\.\.2"):
        model.log_prob(x, torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="got 1 labels for a batch of 2"):
        model.log_prob(x, torch.tensor([0]))
    with pytest.raises(ValueError, match="unconditional model"):
        Glow(1, levels=2, steps=1, hidden=8, image_size=8).log_prob(x, torch.tensor([0, 1]))


def test_classifier_gradient_reaches_head_and_flow() -> None:
    """The classification loss alone has gradients in the head and in the flow's layers."""
    torch.manual_seed(0)
    module = GlowModule(**TINY_MODULE, num_classes=10)
    perturb(module.flow.classifier, 0.1)
    batch = torch.randint(0, 256, (4, 1, 28, 28), dtype=torch.uint8)
    labels = torch.tensor([0, 3, 5, 9])
    _, logits = module._bits_and_logits(batch, True, None, labels)
    module._class_bits(logits, labels).mean().backward()
    assert float(module.flow.classifier.weight.grad.abs().sum()) > 0
    coupling_grads = [p.grad for p in module.flow.levels.parameters() if p.grad is not None]
    assert coupling_grads and any(float(g.abs().sum()) > 0 for g in coupling_grads)
    assert module.flow.top.embedding.weight.grad is None  # the head does not see the prior


def tiny_data(root: Path) -> FashionMNISTDataModule:
    return FashionMNISTDataModule(
        root=str(root), batch_size=16, train_limit=64, val_limit=32, test_limit=32, download=False
    )


def fit(tmp_path: Path, **model: object) -> tuple[GlowModule, pl.Trainer, Path]:
    pl.seed_everything(0)
    module = GlowModule(**TINY_MODULE, **model)
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=3,
        val_check_interval=3,
        limit_val_batches=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
    )
    trainer.fit(module, datamodule=tiny_data(tmp_path / "data"))
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    return module, trainer, path


@pytest.fixture(scope="module")
def conditional_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    _, trainer, path = fit(tmp_path_factory.mktemp("conditional"), num_classes=10)
    return path, {k: float(v) for k, v in trainer.callback_metrics.items()}


def test_fit_logs_class_loss_and_accuracy(conditional_checkpoint: tuple[Path, dict]) -> None:
    _, metrics = conditional_checkpoint
    assert {"train/bpd", "train/class_loss", "val/bpd", "val/accuracy"} <= set(metrics)
    # An untrained head: about log2(10) bits of cross-entropy.
    assert 0 < metrics["train/class_loss"] < 2 * math.log2(10)
    assert 0.0 <= metrics["val/accuracy"] <= 1.0


def test_cli_samples_a_class(
    tmp_path: Path, conditional_checkpoint: tuple[Path, dict], capsys: pytest.CaptureFixture[str]
) -> None:
    checkpoint, _ = conditional_checkpoint
    out = tmp_path / "class3.png"
    args = ["sample", "--ckpt", str(checkpoint), "--num", "4", "--temperature", "0", "0.7"]
    code = main([*args, "--label", "3", "--device", "cpu", "--out", str(out)])
    stdout, stderr = capsys.readouterr()
    assert code == 0, stderr
    assert "classes 3" in stdout
    with Image.open(out) as image:
        assert image.size == (2 * 30 + 2, 4 * 30 + 2)  # 2 columns, 2 rows per temperature
    code = main([*args, "--label", "10", "--device", "cpu", "--out", str(out)])
    _, stderr = capsys.readouterr()
    assert code == 1
    assert "--label: label 10 is out of range: this model has 10 classes, 0..9" in stderr


def test_cli_label_on_unconditional_checkpoint_fails_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, checkpoint = fit(tmp_path)
    out = tmp_path / "samples.png"
    code = main(["sample", "--ckpt", str(checkpoint), "--label", "3", "--out", str(out)])
    _, stderr = capsys.readouterr()
    assert code == 1 and not out.exists()
    assert "glowapp sample: error: --label: this checkpoint is unconditional" in stderr


def test_sample_grid_labels(conditional_checkpoint: tuple[Path, dict]) -> None:
    """Labels repeat along the row; without labels a conditional model cycles the classes."""
    module = GlowModule.load_from_checkpoint(conditional_checkpoint[0]).eval()
    assert class_labels(module, [4, 7], 5).tolist() == [4, 7, 4, 7, 4]
    assert class_labels(module, None, 12).tolist() == [*range(10), 0, 1]
    grid = sample_grid(module, [0.0], 3, labels=[2])
    assert torch.equal(grid[0, 0], grid[0, 1]) and torch.equal(grid[0, 0], grid[0, 2])
    expected = module.sample(1, 0.0, labels=torch.tensor([2]))
    assert torch.equal(grid[0, :1], expected)


def test_interpolation_of_a_conditional_model(
    tmp_path: Path, conditional_checkpoint: tuple[Path, dict], capsys: pytest.CaptureFixture[str]
) -> None:
    """Exact endpoints, and a linear path that does not depend on the label used to encode it."""
    module = GlowModule.load_from_checkpoint(conditional_checkpoint[0]).eval()
    perturb(module.flow.top, 0.3)  # a label-dependent top prior
    torch.manual_seed(1)
    a, b = (torch.randint(0, 256, (2, 1, 28, 28), dtype=torch.uint8) for _ in range(2))
    path = interpolate(module, a, b, steps=5)
    assert path.shape == (2, 5, 1, 28, 28)
    assert torch.equal((path[:, 0] * 255).round().to(torch.uint8), a)
    assert torch.equal((path[:, -1] * 255).round().to(torch.uint8), b)
    labels = torch.tensor([3, 3])
    za, zb = module.encode(a, labels=labels), module.encode(b, labels=labels)
    mid = module.decode([(u + v) / 2 for u, v in zip(za, zb, strict=True)], labels)
    torch.testing.assert_close(path[:, 2], mid, atol=1.5 / 255, rtol=0)

    image_paths = []
    for i, image in enumerate((a[0, 0], b[0, 0])):
        image_paths.append(tmp_path / f"{i}.png")
        Image.fromarray(image.numpy()).save(image_paths[-1])
    out = tmp_path / "interp.png"
    ckpt = str(conditional_checkpoint[0])
    code = main(["interpolate", *map(str, image_paths), "--ckpt", ckpt, "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert out.exists()
