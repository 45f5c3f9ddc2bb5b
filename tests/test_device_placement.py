"""Device bugs found on the CPU: every system's training, validation and sampling run under `DeviceProvenance`
(tests/device_provenance.py), which reports each operation that would mix host and CUDA tensors on a GPU. The
negative controls are modules with the two classic bugs (a factory call without `device=`, a tensor attribute
that is not a buffer); they must be caught, and their correct versions must pass."""

from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from torch import nn

from device_provenance import DeviceProvenance
from experiment_sizes import QUIET, TINY
from inprocess import compose_run, prepared_stages
from sarexp.tasks.builders import build_datamodule, build_system, build_trainer, seed_everything

# one experiment per LightningModule (and per distinct input path of the same module)
SYSTEMS = ["ssm4sar", "hsi_mstpp", "mixmae_benv1", "mixmae_benv1_ft", "mixmae_sen12flood_ft", "pdm_sar_lowres",
           "pdm_sar_superres", "pdm_feature_extractor", "hsi_cswin_gan", "colorization_clip", "colorization_vae",
           "colorization_ldm"]
RUN = ["trainer.accelerator=cpu", "launcher.devices=1", "trainer.max_steps=2", "trainer.limit_val_batches=1",
       "trainer.num_sanity_val_steps=0", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]


class _FactoryWithoutDevice(nn.Module):
    def __init__(self, buggy: bool) -> None:
        super().__init__()
        self.layer, self.buggy = nn.Linear(4, 4), buggy

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        noise = torch.randn(x.shape) if self.buggy else torch.randn(x.shape, device=x.device)
        return self.layer(x + noise)


class _TensorAttribute(nn.Module):
    def __init__(self, buggy: bool) -> None:
        super().__init__()
        self.layer = nn.Linear(4, 4)
        if buggy:
            self.scale = torch.linspace(0.5, 1.5, 4)
        else:
            self.register_buffer("scale", torch.linspace(0.5, 1.5, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x) * self.scale


@pytest.mark.parametrize("module_class", [_FactoryWithoutDevice, _TensorAttribute])
def test_a_device_bug_is_caught_and_its_fix_passes(module_class):
    for buggy in (True, False):
        module, inputs = module_class(buggy), torch.randn(2, 4)  # made before: a device input, as Lightning's
        with DeviceProvenance([module]) as checker:
            module(inputs).sum().backward()
        assert bool(checker.violations) == buggy, checker.violations
        if buggy:
            assert "test_device_placement.py" in checker.violations[0]  # names the offending line


def test_cuda_rules_for_scalars_indices_and_copies():
    """What CUDA allows must pass: a CPU scalar with a device tensor, host indices into a device tensor, copies."""
    weight = nn.Parameter(torch.randn(5, 3))
    with DeviceProvenance() as checker:
        x = weight * torch.tensor(2.0)                  # 0-dim host tensor: fine on CUDA
        x = x[torch.tensor([0, 2])]                      # host indices into a device tensor: fine
        x[0] = torch.zeros(3)                            # copy into a device tensor: fine
        y = torch.arange(3).to(weight.device) + x        # moved first: fine
        table = torch.arange(5.0)
        table[torch.zeros(2, dtype=torch.long, device=weight.device)]  # host table, device indices: CUDA error
        weight.detach().cpu() + weight                   # .cpu() copies off the device: CUDA error
    assert len(checker.violations) == 2 and y.shape == (2, 3)
    assert "indexed with device indices" in checker.violations[0] and "add" in checker.violations[1]


class _Checked(pl.Callback):
    """Runs the whole fit (data, steps, validation, sample callbacks) under one DeviceProvenance."""

    def __init__(self) -> None:
        self.checker: DeviceProvenance | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self.checker = DeviceProvenance([pl_module])
        self.checker.__enter__()

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self.checker.__exit__(None, None, None)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("device")


@pytest.mark.slow
def test_a_device_bug_inside_a_real_training_run_is_caught(workdir):
    """The checker is active through Lightning's whole loop: a bug injected into a shipped system is found."""
    cfg = compose_run(workdir, workdir / "runs" / "injected", ["experiment=ssm4sar", *TINY["ssm4sar"], *QUIET, *RUN])
    system = build_system(cfg)
    system.net.register_forward_hook(lambda module, inputs, output: output + torch.ones(output.shape[-1]))
    watch = _Checked()
    build_trainer(cfg, [watch], []).fit(system, datamodule=build_datamodule(cfg))
    assert any("test_device_placement.py" in violation for violation in watch.checker.violations)


@pytest.mark.slow
@pytest.mark.parametrize("experiment", SYSTEMS)
def test_training_validation_and_sampling_keep_every_tensor_on_the_module_device(workdir, experiment):
    stages = prepared_stages(workdir, experiment, RUN)
    cfg = compose_run(workdir, workdir / "runs" / f"checked_{experiment}",
                      [f"experiment={experiment}", *TINY[experiment], *QUIET, *stages, *RUN])
    seed_everything(cfg)
    watch = _Checked()
    system = build_system(cfg)
    trainer = build_trainer(cfg, [watch], [])
    trainer.fit(system, datamodule=build_datamodule(cfg))
    assert trainer.global_step >= 2
    violations = list(watch.checker.violations)
    if experiment.startswith("colorization_ldm"):  # the colorize task's img2img sampling
        from sarexp.diffusion.samplers import DDIMSampler

        with DeviceProvenance([system]) as checker:
            system.colorize(torch.rand(2, 1, 32, 32) * 2 - 1, ["a", "b"], DDIMSampler(steps=3))
        violations += checker.violations
    assert not violations, "\n".join(dict.fromkeys(violations))
