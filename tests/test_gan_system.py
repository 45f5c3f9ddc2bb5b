"""The conditional GAN system: n_critic / accumulation schedule, exact resume, clipping, EMA, perceptual net."""

from functools import partial
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from sarexp.errors import ConfigError
from sarexp.losses.sinkhorn import SinkhornLoss
from sarexp.models.cswin_generator import NoiseRobustCSWinGenerator
from sarexp.models.hsi_discriminator import SpectralNormTransformerDiscriminator
from sarexp.optim.warmup import warmup_steps_schedule
from sarexp.systems.gan import ConditionalGANSystem


class PairDataset(Dataset):
    def __init__(self, n: int = 8) -> None:
        g = torch.Generator().manual_seed(0)
        self.rgb = torch.rand(n, 3, 8, 8, generator=g)
        self.hsi = torch.rand(n, 31, 8, 8, generator=g) * 0.5 + 0.25

    def __len__(self) -> int:
        return len(self.rgb)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"rgb": self.rgb[i], "hsi": self.hsi[i]}


def loader() -> DataLoader:
    return DataLoader(PairDataset(), batch_size=2, shuffle=False)


def make_system(**overrides: object) -> ConditionalGANSystem:
    torch.manual_seed(0)
    options = dict(
        generator=NoiseRobustCSWinGenerator(dim=8, depths=(1, 1, 1), heads=(2, 2, 2), splits=(2, 2, 2),
                                            norm_groups=4, noise_embed_dim=8),
        discriminator=SpectralNormTransformerDiscriminator(dim=8, stages=2, heads=2, out_channels=4),
        generator_optimizer=partial(torch.optim.Adam, lr=1e-3, betas=(0.5, 0.999)),
        discriminator_optimizer=partial(torch.optim.Adam, lr=1e-3, betas=(0.5, 0.999)),
        generator_scheduler=partial(warmup_steps_schedule, warmup_steps=2, decay="cosine"),
        discriminator_scheduler=partial(warmup_steps_schedule, warmup_steps=2),
        adversarial=SinkhornLoss(epsilon=0.5, iters=10),
        n_critic=2, accumulate_grad_batches=2, r1_gamma=1.0, ema_decay=0.9)
    options.update(overrides)
    return ConditionalGANSystem(**options)  # type: ignore[arg-type]


def trainer(tmp_path: Path, **options: object) -> pl.Trainer:
    defaults = dict(default_root_dir=tmp_path, logger=False, enable_progress_bar=False, enable_model_summary=False,
                    enable_checkpointing=False, limit_val_batches=0, deterministic=True)
    defaults.update(options)
    return pl.Trainer(**defaults)  # type: ignore[arg-type]


def test_n_critic_and_accumulation_schedule(tmp_path: Path) -> None:
    system = make_system()
    trainer(tmp_path, max_epochs=2).fit(system, train_dataloaders=loader())
    opt_g, opt_d = (o.optimizer if hasattr(o, "optimizer") else o for o in system.optimizers())
    d_steps = int(next(iter(opt_d.state.values()))["step"])
    g_steps = int(next(iter(opt_g.state.values()))["step"])
    # 8 batches: D steps every 2 batches → 4; G once per n_critic·accumulate = 4 batches → 2
    assert (d_steps, g_steps, system.batches_seen, system.generator_steps) == (4, 2, 8, 2)
    assert system.trainer.global_step == 6
    assert not torch.equal(system.ema_generator.out.weight, system.generator.out.weight)
    assert all(not p.requires_grad for p in system.ema_generator.parameters())
    metrics = system.trainer.callback_metrics
    assert {"train/d_r1_epoch", "train/g_sam_epoch", "train/g_adversarial_epoch"} <= set(metrics)


def test_resume_continues_exactly(tmp_path: Path) -> None:
    straight = make_system()
    trainer(tmp_path / "a", max_epochs=2).fit(straight, train_dataloaders=loader())

    first = make_system()
    t = trainer(tmp_path / "b", max_epochs=1)
    t.fit(first, train_dataloaders=loader())
    checkpoint = tmp_path / "half.ckpt"
    t.save_checkpoint(checkpoint)
    resumed = make_system()
    trainer(tmp_path / "c", max_epochs=2).fit(resumed, train_dataloaders=loader(), ckpt_path=checkpoint)

    assert resumed.batches_seen == straight.batches_seen and resumed.generator_steps == straight.generator_steps
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    lr = [s.get_last_lr() for s in straight.lr_schedulers()]
    assert lr == [s.get_last_lr() for s in resumed.lr_schedulers()]


def test_gradient_clipping_bounds_the_step(tmp_path: Path) -> None:
    system = make_system(generator_optimizer=partial(torch.optim.SGD, lr=1.0), generator_scheduler=None,
                         discriminator_scheduler=None, n_critic=1, accumulate_grad_batches=1,
                         gradient_clip_val=1e-3, use_r1_regularization=False)
    before = [p.detach().clone() for p in system.generator.parameters()]
    trainer(tmp_path, max_steps=2).fit(system, train_dataloaders=loader())  # one D and one G step
    change = torch.cat([(p.detach() - b).flatten() for p, b in zip(system.generator.parameters(), before)])
    assert 0 < change.norm().item() <= 1e-3 * (1 + 1e-4)


def test_perceptual_network_from_a_weights_file(tmp_path: Path) -> None:
    network = nn.Conv2d(31, 4, 3, padding=1)
    torch.save(network.state_dict(), tmp_path / "features.pt")
    system = make_system(perceptual_network=nn.Conv2d(31, 4, 3, padding=1),
                         perceptual_weights=str(tmp_path / "features.pt"))
    assert torch.equal(system.perceptual_network.weight, network.weight)
    trainer(tmp_path, max_steps=3).fit(system, train_dataloaders=loader())
    assert torch.equal(system.perceptual_network.weight, network.weight)  # frozen
    with pytest.raises(ConfigError, match="perceptual_weights"):
        make_system(perceptual_network=nn.Conv2d(31, 4, 3), perceptual_weights=str(tmp_path / "missing.pt"))


def test_validation_uses_the_ema_generator_and_metrics(tmp_path: Path) -> None:
    from torchmetrics.regression import MeanAbsoluteError

    system = make_system(metrics={"mae": MeanAbsoluteError()})
    t = trainer(tmp_path, max_steps=4, limit_val_batches=2)
    t.fit(system, train_dataloaders=loader(), val_dataloaders=loader())
    results = t.validate(system, dataloaders=loader(), verbose=False)[0]
    with torch.no_grad():  # limit_val_batches=2: the first 4 samples
        preds = system.ema_generator(PairDataset().rgb[:4])
    expected = (preds - PairDataset().hsi[:4]).abs().mean().item()
    assert results["val/mae"] == pytest.approx(expected, rel=1e-4)


def test_bf16_mixed_precision_trains(tmp_path: Path) -> None:
    system = make_system(n_critic=1, accumulate_grad_batches=1)
    before = system.generator.out.weight.detach().clone()
    trainer(tmp_path, max_steps=4, precision="bf16-mixed").fit(system, train_dataloaders=loader())
    assert system.generator_steps == 2 and not torch.equal(before, system.generator.out.weight)
    assert all(torch.isfinite(p).all() for p in system.generator.parameters())
