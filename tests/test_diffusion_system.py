"""The diffusion LightningModule on an in-memory toy data module: EMA in the checkpoint, gradient
accumulation (microbatches), the loss-aware timestep sampler, optimizer groups from the raw network."""

from functools import partial

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

import sarexp.systems.diffusion as diffusion_system
from sarexp.diffusion.gaussian import gaussian_diffusion
from sarexp.errors import DataError
from sarexp.models.unet import UNet
from sarexp.optim.ema import frozen_copy, update_ema, warmed_decay
from sarexp.systems.diffusion import DiffusionSystem


class ToyImages(Dataset):
    """Labelled 8×8 images: class 0 a dark square, class 1 a bright one, with a little noise."""

    def __init__(self, count: int) -> None:
        generator = torch.Generator().manual_seed(count)
        self.labels = torch.arange(count) % 2
        self.images = (self.labels.float() * 1.2 - 0.6).reshape(-1, 1, 1, 1) + 0.05 * torch.randn(
            count, 1, 8, 8, generator=generator
        )

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"image": self.images[index], "label": self.labels[index]}


class ToyDataModule(pl.LightningDataModule):
    def train_dataloader(self) -> DataLoader:
        return DataLoader(ToyImages(32), batch_size=4, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(ToyImages(8), batch_size=8)


def _system(**kwargs) -> DiffusionSystem:
    net = UNet(in_channels=1, model_channels=8, num_res_blocks=1, attention_resolutions=[], image_size=8,
               channel_mult=[1, 2], num_classes=2, learn_sigma=True)
    options = {"schedule_sampler": "loss-second-moment", "ema_decay": 0.99, **kwargs}
    return DiffusionSystem(net, gaussian_diffusion(steps=20, learn_sigma=True), partial(torch.optim.Adam, lr=1e-3),
                           **options)


def _trainer(tmp_path, **kwargs) -> pl.Trainer:
    options = {"max_steps": 4, "limit_val_batches": 1, "logger": False, "enable_progress_bar": False,
               "enable_model_summary": False, "accelerator": "cpu", "default_root_dir": str(tmp_path), **kwargs}
    return pl.Trainer(**options)


def test_update_ema_is_the_moving_average():
    net = torch.nn.Linear(2, 1)
    ema = frozen_copy(net)
    before = ema.weight.clone()
    with torch.no_grad():
        net.weight.add_(1.0)
    update_ema(ema, net, decay=0.9)
    torch.testing.assert_close(ema.weight, 0.9 * before + 0.1 * net.weight)
    assert not any(p.requires_grad for p in ema.parameters())
    assert warmed_decay(0.9999, 0) == pytest.approx(0.1) and warmed_decay(0.9999, 10**7) == 0.9999


def test_update_ema_averages_every_parameter_and_copies_buffers():
    net = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.BatchNorm2d(3), torch.nn.Linear(4, 2))
    ema = frozen_copy(net)
    before = [p.clone() for p in ema.parameters()]
    with torch.no_grad():
        for index, param in enumerate(net.parameters()):
            param.add_(index + 1.0)
        net[1].running_mean.fill_(5.0)
    update_ema(ema, net, decay=0.75)
    for old, new, raw in zip(before, ema.parameters(), net.parameters(), strict=True):
        torch.testing.assert_close(new, 0.75 * old + 0.25 * raw)
    torch.testing.assert_close(ema[1].running_mean, torch.full((3,), 5.0))


def test_training_saves_raw_and_ema_weights_and_the_sampler_history(tmp_path):
    system = _system()
    initial = {k: v.clone() for k, v in system.ema_net.state_dict().items()}
    trainer = _trainer(tmp_path)
    trainer.fit(system, datamodule=ToyDataModule())
    trainer.save_checkpoint(tmp_path / "last.ckpt")
    state = torch.load(tmp_path / "last.ckpt", weights_only=True)["state_dict"]
    raw = {k[len("net."):] for k in state if k.startswith("net.")}
    ema = {k[len("ema_net."):] for k in state if k.startswith("ema_net.")}
    assert raw and raw == ema
    moved = [k for k in initial if not torch.equal(initial[k], state[f"ema_net.{k}"])]
    assert moved  # the average followed training
    assert any(not torch.equal(state[f"net.{k}"], state[f"ema_net.{k}"]) for k in initial)
    assert int(state["timestep_sampler.loss_counts"].sum()) == 4 * 4  # one loss per training example
    metrics = trainer.validate(system, datamodule=ToyDataModule(), verbose=False)[0]
    assert {"val/loss", "val/mse", "val/vb"} <= set(metrics)


def test_microbatches_accumulate_and_the_ema_moves_once_per_optimizer_step(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(diffusion_system, "update_ema", lambda ema, net, decay: calls.append(decay))
    system = _system()
    trainer = _trainer(tmp_path, max_steps=3, accumulate_grad_batches=2, limit_val_batches=0)
    trainer.fit(system, datamodule=ToyDataModule())
    assert trainer.global_step == 3 and len(calls) == 3
    assert calls == [warmed_decay(0.99, step) for step in (0, 1, 2)]  # n = updates before this one


def test_optimizer_groups_come_from_the_raw_network_with_its_hints(tmp_path):
    system = _system()
    hinted = system.net.time_embed[0].weight
    hinted._optim = {"lr": 1e-4, "weight_decay": 0.0}
    system.trainer = _trainer(tmp_path)
    optimizer = system.configure_optimizers()
    grouped = [p for group in optimizer.param_groups for p in group["params"]]
    assert len(grouped) == len(list(system.net.parameters()))
    assert all(any(p is q for q in system.net.parameters()) for p in grouped)  # no EMA parameter
    assert any(group["lr"] == 1e-4 and any(p is hinted for p in group["params"]) for group in optimizer.param_groups)


def test_missing_conditioning_is_a_data_error():
    system = _system()
    with pytest.raises(DataError, match="label"):
        system.training_step({"image": torch.zeros(2, 1, 8, 8)}, 0)
