"""Training-step parity: sarexp (the shipped experiment through its own builders: system, the experiment's
callbacks and loggers, the Lightning Trainer) against the original implementation's step and a lean loop.

Every column trains the same network (sarexp's modules, shared; the reference's own network class with sarexp's
weights copied in where a mapping exists) on the same batch, already in memory, with the same optimizer and
loss. A step is the wall time from one batch's start to the next's, so everything a loop does per step counts
(hooks, logging, the original's own bookkeeping).
"""

import io
import time
from argparse import Namespace
from contextlib import redirect_stdout
from typing import Any, Callable

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader

from parity_support import Column, Settings, compose, optional, first_batch, synchronize, timed_loop, to_device
from parity_references import reference_context

TRAINER = ["trainer.max_epochs=1", "trainer.max_steps=-1", "trainer.limit_val_batches=0",
           "trainer.num_sanity_val_steps=0", "trainer.val_check_interval=null", "trainer.check_val_every_n_epoch=1",
           "trainer.devices=1"]


# --- the sarexp column ----------------------------------------------------------------------------------


class _BatchStarts(pl.Callback):
    def __init__(self, device: str) -> None:
        self.device, self.starts = device, []

    def on_train_batch_start(self, *args: Any) -> None:
        synchronize(self.device)
        self.starts.append(time.perf_counter())


class _FixedBatch(pl.LightningDataModule):
    """`count` copies of one batch that is already on the device (no transform: it had it)."""

    def __init__(self, batch: Any, count: int) -> None:
        super().__init__()
        self.batch, self.count = batch, count

    def train_dataloader(self) -> DataLoader:
        return DataLoader([self.batch] * self.count, batch_size=None, collate_fn=lambda batch: batch)


def sarexp_column(cfg: Any, system: pl.LightningModule, batch: Any, device: str) -> Column:
    """`task=train`'s Trainer with the experiment's callbacks and loggers; each round is one `fit` over
    n + 1 copies of the batch, and the n periods between batch starts are the steps."""
    from sarexp.tasks.builders import build_callbacks, build_loggers, build_trainer

    def run(count: int) -> list[float]:
        timer = _BatchStarts(device)
        trainer = build_trainer(cfg, [*build_callbacks(cfg), timer], build_loggers(cfg))
        trainer.fit(system, datamodule=_FixedBatch(batch, count + 1))
        return [end - start for start, end in zip(timer.starts, timer.starts[1:], strict=False)][:count]

    return Column("sarexp", run)


def build(settings: Settings, overrides: list[str], **system_arguments: Any) -> tuple[Any, Any, Any]:
    """(config, system, batch on the device) of an experiment, as `task=train` builds them."""
    from hydra.utils import instantiate

    from sarexp.config.model_options import without_model_options
    from sarexp.tasks.builders import build_datamodule, build_system

    accelerator = "gpu" if settings.device.startswith("cuda") else "cpu"
    cfg = compose(settings, [*overrides, *TRAINER, f"trainer.accelerator={accelerator}"])
    torch.manual_seed(0)
    batch = to_device(first_batch(build_datamodule(cfg)), settings.device)
    if system_arguments:  # objects a config cannot hold (the colorization encoders): same instantiation
        system = instantiate(without_model_options(cfg).system, **system_arguments, _convert_="object")
    else:
        system = build_system(cfg)
    return cfg, system.to(settings.device), batch


def optimization(system: Any, module: torch.nn.Module, total: int) -> tuple[torch.optim.Optimizer, Any]:
    """The optimizer and per-step schedule the system configures, over `module`."""
    from sarexp.optim.param_groups import lightning_optimization

    built = lightning_optimization(system.optimizer_factory, system.scheduler_factory, module, total)
    if isinstance(built, dict):
        return built["optimizer"], built["lr_scheduler"]["scheduler"]
    return built, None


def clip(cfg: Any, module: torch.nn.Module) -> None:
    if cfg.trainer.gradient_clip_val:
        torch.nn.utils.clip_grad_norm_(module.parameters(), cfg.trainer.gradient_clip_val)


def lean_column(step_factory: Callable[[int], Callable[[], None]], settings: Settings) -> Column:
    """A plain loop; `step_factory(total)` makes fresh optimizer state for each round, as a new fit does."""
    def run(count: int) -> list[float]:
        return timed_loop(step_factory(count + 1), settings.device)(count)
    return Column("lean", run)


# --- systems -------------------------------------------------------------------------------------------


def regression(settings: Settings, experiment: str, overrides: list[str], reference: str | None) -> list[Column]:
    """SSM4SAR and MST++ (RegressionSystem): net → loss → step."""
    cfg, system, batch = build(settings, [f"experiment={experiment}", *overrides])
    inputs, target = batch[system.input_key], batch[system.target_key]

    def lean(total: int) -> Callable[[], None]:
        optimizer, scheduler = optimization(system, system.net, total)
        system.net.train()

        def step() -> None:
            optimizer.zero_grad(set_to_none=True)
            system.loss(system.net(inputs), target)["loss"].backward()
            clip(cfg, system.net)
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
        return step

    columns = [sarexp_column(cfg, system, batch, settings.device), lean_column(lean, settings)]
    if reference == "mstpp":
        columns.append(optional("reference", lambda: mstpp_reference(settings, system, inputs.contiguous(),
                                                                      target.contiguous())))
    return columns


def mstpp_reference(settings: Settings, system: Any, inputs: torch.Tensor, target: torch.Tensor) -> Column:
    """MST++ `train_code/train.py`'s iteration: Adam, CosineAnnealingLR per iteration, Loss_MRAE, AverageMeter."""
    with reference_context(settings, "mstpp") as modules:
        model = modules["architecture"].MST_Plus_Plus().to(settings.device)
        criterion = modules["utils"].Loss_MRAE()
        meter_class = modules["utils"].AverageMeter
    model.load_state_dict(system.net.state_dict())  # the same layers under the same names

    def run(count: int) -> list[float]:
        optimizer = torch.optim.Adam(model.parameters(), lr=4e-4, betas=(0.9, 0.999))
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, 300 * 1000, eta_min=1e-6)
        losses, state = meter_class(), {"iteration": 0}
        model.train()

        def step() -> None:
            lr = optimizer.param_groups[0]["lr"]
            optimizer.zero_grad()
            loss = criterion(model(inputs).contiguous(), target)  # Loss_MRAE's .view(-1) needs contiguous
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.update(loss.data)
            state["iteration"] += 1
            if state["iteration"] % 20 == 0:
                print("[iter:%d/%d],lr=%.9f,train_losses.avg=%.9f" % (state["iteration"], 300000, lr, losses.avg))
        with redirect_stdout(io.StringIO()):
            return timed_loop(step, settings.device)(count)

    return Column("reference", run, note="MST++ train_code")


def pdm(settings: Settings, overrides: list[str]) -> list[Column]:
    """PDM (DiffusionSystem): timestep sampler, ε-loss with the VLB term, clipping, EMA."""
    from sarexp.diffusion.timestep_samplers import create_timestep_sampler
    from sarexp.optim.ema import update_ema, warmed_decay
    from sarexp.systems.diffusion import conditioning_of, model_function

    cfg, system, batch = build(settings, ["experiment=pdm_insar_noise", *overrides])
    x0, conditioning = batch["image"], conditioning_of(system.net, batch)

    def lean(total: int) -> Callable[[], None]:
        optimizer, _ = optimization(system, system.net, total)
        sampler = create_timestep_sampler(cfg.system.schedule_sampler, system.diffusion.num_timesteps)
        state = {"step": 0}
        system.net.train()

        def step() -> None:
            optimizer.zero_grad(set_to_none=True)
            t, weights = sampler.sample(x0.shape[0], x0.device)
            terms = system.diffusion.training_losses(model_function(system.net, conditioning), x0, t)
            sampler.update(t, terms["loss"].detach())
            (terms["loss"] * weights).mean().backward()
            clip(cfg, system.net)
            optimizer.step()
            state["step"] += 1
            update_ema(system.ema_net, system.net, warmed_decay(system.ema_decay, state["step"]))
        return step

    return [sarexp_column(cfg, system, batch, settings.device), lean_column(lean, settings),
            optional("reference", lambda: pdm_reference(settings, cfg, system, x0))]


def pdm_reference(settings: Settings, cfg: Any, system: Any, x0: torch.Tensor) -> Column:
    """The PDM seed's `TrainLoop.run_step` (improved-diffusion): its UNetModel at sarexp's sizes, sarexp's weights."""
    from torch.utils.tensorboard import SummaryWriter

    from parity_references import seed_unet_and_diffusion

    model, diffusion, modules = seed_unet_and_diffusion(settings, cfg)
    model.load_state_dict(_seed_state(system.net, model))
    resample, train_util = modules["improved_diffusion.resample"], modules["improved_diffusion.train_util"]
    logdir = settings.workdir / "pdm_seed_run"
    logdir.mkdir(exist_ok=True)

    def run(count: int) -> list[float]:
        loop = train_util.TrainLoop(
            model=model, diffusion=diffusion, data_train=None, data_val=None, num_epochs=1,
            batch_size=x0.shape[0], microbatch=-1, lr=float(cfg.optimizer.lr), ema_rate="0.9999",
            save_interval=None, resume_checkpoint=None, logdir=str(logdir), writer=SummaryWriter(str(logdir)),
            schedule_sampler=resample.create_named_schedule_sampler(cfg.system.schedule_sampler, diffusion),
            weight_decay=float(cfg.optimizer.weight_decay))
        model.train()
        with redirect_stdout(io.StringIO()):
            durations = timed_loop(lambda: loop.run_step(x0, {}), settings.device)(count)
        loop.writer.close()
        return durations

    return Column("reference", run, note="PDM seed TrainLoop.run_step")


def _seed_state(net: torch.nn.Module, seed_model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """sarexp's UNet weights under the seed's names: sarexp's own seed → sarexp mapping, inverted (its keys
    come in the seed's order; qkv rows go back from per kind to per head)."""
    from sarexp.models.unet_pretrained import improved_diffusion_to_unet

    seed_state, ours = seed_model.state_dict(), net.state_dict()
    inverse = {}
    for seed_name, sarexp_name in zip(seed_state, improved_diffusion_to_unet(seed_state, net), strict=True):
        value = ours[sarexp_name]
        if ".qkv." in seed_name:
            heads = seed_model.get_submodule(seed_name.rsplit(".", 2)[0]).num_heads
            value = value.reshape(3, heads, -1, *value.shape[1:]).transpose(0, 1).reshape(value.shape)
        inverse[seed_name] = value
    return inverse


def mixmae(settings: Settings, overrides: list[str]) -> list[Column]:
    """SAR-W-MixMAE pretraining (MaskedPretrainingSystem): mixing, weighted unmixed reconstruction, warm-up cosine."""
    cfg, system, batch = build(settings, ["experiment=mixmae_benv1", *overrides])

    def lean(total: int) -> Callable[[], None]:
        optimizer, scheduler = optimization(system, system, total)
        system.train()

        def step() -> None:
            optimizer.zero_grad(set_to_none=True)
            system._reconstruction_loss(batch).backward()
            clip(cfg, system)
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
        return step

    return [sarexp_column(cfg, system, batch, settings.device), lean_column(lean, settings),
            optional("reference", lambda: mixmae_reference(settings, cfg, system, batch))]


def mixmae_reference(settings: Settings, cfg: Any, system: Any, batch: dict) -> Column:
    """SAR-W-MixMAE's `engine_pretrain.train_one_epoch`, run as is over n + 1 copies of the batch; a step is
    the time between two batches being taken from the loader."""
    from parity_references import sarwmixmae_model

    model, modules = sarwmixmae_model(settings, cfg)
    weights = system.weighting(batch[system.weight_key]) if system.weighting is not None else torch.ones_like(
        batch[system.input_key])
    samples = (batch[system.input_key], torch.zeros(len(weights)), weights)
    engine, misc = modules["engine_pretrain"], modules["util.misc"]
    param_groups = modules["timm_optim"].param_groups_weight_decay(model, float(cfg.optimizer.weight_decay))
    args = Namespace(accum_iter=1, mask_ratio=float(cfg.model.mask_ratio), clip_grad=None,
                     lr=float(cfg.optimizer.lr), min_lr=0.0, warmup_epochs=1, epochs=10)

    def run(count: int) -> list[float]:
        optimizer = torch.optim.AdamW(param_groups, lr=args.lr, betas=tuple(cfg.optimizer.betas))
        loader = _TimedLoader([samples] * (count + 1), settings.device)
        synchronize_shim = {} if torch.cuda.is_available() else {"synchronize": lambda *a, **k: None}
        with _patched(torch.cuda, synchronize_shim), redirect_stdout(io.StringIO()):
            engine.train_one_epoch(model, loader, optimizer, torch.device(settings.device), 0,
                                   misc.NativeScalerWithGradNormCount(), log_writer=None, args=args)
        return [end - start for start, end in zip(loader.times, loader.times[1:], strict=False)][:count]

    return Column("reference", run, note="SAR-W-MixMAE engine_pretrain")


class _TimedLoader:
    """A list served like a DataLoader (len, iteration), recording when each item is taken."""

    def __init__(self, items: list, device: str) -> None:
        self.items, self.device, self.times = items, device, []

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        for item in self.items:
            synchronize(self.device)
            self.times.append(time.perf_counter())
            yield item


class _patched:
    def __init__(self, target: Any, attributes: dict[str, Any]) -> None:
        self.target, self.attributes, self.saved = target, attributes, {}

    def __enter__(self) -> None:
        for name, value in self.attributes.items():
            self.saved[name] = getattr(self.target, name)
            setattr(self.target, name, value)

    def __exit__(self, *exc: Any) -> None:
        for name, value in self.saved.items():
            setattr(self.target, name, value)


SYSTEMS: dict[str, Callable[[Settings, list[str]], list[Column]]] = {
    "ssm4sar": lambda settings, overrides: regression(settings, "ssm4sar", overrides, None),
    "pdm": pdm,
    "mixmae": mixmae,
    "hsi_mstpp": lambda settings, overrides: regression(settings, "hsi_mstpp", overrides, "mstpp"),
}
