"""Launchers: trainer ↔ launcher interpolation, the generated sbatch script, Submitit's local launcher,
the preemption checkpoint, and W&B runs that continue and group by sweep."""

import os
import re
import signal
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from hydra.core.hydra_config import HydraConfig
from torch import nn

from cli_helpers import TINY, read_metrics, run_cli
from sarexp.callbacks.preemption import PreemptionCheckpoint
from sarexp.config.resolvers import run_id
from sarexp.config.validation import validate_config
from sarexp.launchers.slurm import sbatch_script


def test_slurm_nodes_and_gpus_reach_the_trainer_and_the_sbatch_script(compose_config, tmp_path):
    cfg = compose_config(["experiment=ssm4sar", "launcher=slurm", "launcher.nodes=2", "launcher.gpus_per_node=4",
                          "launcher.partition=gpu", "launcher.account=proj42", "launcher.qos=high",
                          "launcher.constraint=a100", "launcher.setup=[module load cuda/12.4]"], keep_hydra=True)
    assert cfg.trainer.num_nodes == 2 and cfg.trainer.devices == 4
    validate_config(cfg)
    script = sbatch_script(cfg.hydra.launcher, tmp_path)
    for line in ("--nodes=2", "--ntasks-per-node=4", "--gpus-per-node=4", "--partition=gpu", "--account=proj42",
                 "--qos=high", "--constraint=a100", "--signal=USR2@120", "--time=240", "--mem=64GB",
                 "--cpus-per-task=8", "--job-name=ssm4sar"):
        assert f"#SBATCH {line}\n" in script, line
    assert "module load cuda/12.4\n" in script
    assert "srun" in script


def test_slurm_leaves_requeue_to_one_owner(compose_config):
    cfg = compose_config(["experiment=ssm4sar", "launcher=slurm"])
    (environment,) = cfg.trainer.plugins
    assert environment._target_.endswith("SLURMEnvironment") and environment.auto_requeue is False
    assert cfg.callbacks.preemption.signal_name == "SIGUSR2"


def test_cpu_ranks_under_slurm_follow_tasks_per_node(compose_config):
    cfg = compose_config(["experiment=ssm4sar", "launcher=slurm", "launcher.gpus_per_node=0",
                          "launcher.tasks_per_node=2"])
    assert cfg.trainer.devices == 2 and cfg.trainer.num_nodes == 1


@pytest.mark.slow
def test_the_slurm_script_task_writes_the_script_without_submitting(tmp_path):
    result = run_cli(["experiment=ssm4sar", "launcher=slurm", "launcher.nodes=2", "launcher.gpus_per_node=4",
                      "task=slurm_script", f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    script = (tmp_path / "run" / "slurm_script.sh").read_text()
    assert "#SBATCH --nodes=2" in script and "#SBATCH --ntasks-per-node=4" in script


@pytest.mark.slow
def test_submitit_local_launcher_runs_a_sweep_job(tmp_path):
    result = run_cli(["-m", "experiment=ssm4sar", "launcher=submitit_local", "trainer.max_epochs=1",
                      "trainer.limit_train_batches=2", "trainer.limit_val_batches=1", "trainer.limit_test_batches=1",
                      *TINY, "hydra.sweep.dir=sweep"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "val/psnr" in read_metrics(tmp_path / "sweep" / "0")
    assert list((tmp_path / "sweep" / ".submitit").glob("*/*_0_log.out"))  # ran through Submitit


class _Steps(pl.LightningModule):
    """Linear regression on random data; sends itself the signal after `signal_at` steps."""

    def __init__(self, signal_at: int) -> None:
        super().__init__()
        self.layer = nn.Linear(4, 1)
        self.signal_at = signal_at

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        if self.global_step == self.signal_at:
            os.kill(os.getpid(), signal.SIGUSR2)
        return self.layer(batch).pow(2).mean()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


def _fit_with_preemption(tmp_path: Path, previous: object) -> tuple[pl.Trainer, Path]:
    checkpoint = tmp_path / "checkpoints" / "last.ckpt"
    original = signal.signal(signal.SIGUSR2, previous)
    try:
        trainer = pl.Trainer(max_steps=50, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                             enable_model_summary=False, callbacks=[PreemptionCheckpoint(str(checkpoint))])
        trainer.fit(_Steps(signal_at=5), torch.utils.data.DataLoader(torch.randn(64, 4), batch_size=2))
        assert signal.getsignal(signal.SIGUSR2) is previous  # the previous owner is back after fit
    finally:
        signal.signal(signal.SIGUSR2, original)
    return trainer, checkpoint


def test_the_warning_signal_saves_at_the_next_step_and_stops_outside_slurm(tmp_path, monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    trainer, checkpoint = _fit_with_preemption(tmp_path, signal.SIG_DFL)
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    assert saved["global_step"] == 6  # signal during step 5, saved after it
    assert trainer.global_step == 6  # and training stopped there instead of running to 50


def test_the_warning_signal_hands_over_to_the_previous_owner_after_saving(tmp_path):
    calls: list[tuple[int, bool]] = []
    checkpoint = tmp_path / "checkpoints" / "last.ckpt"

    def submitit_like(signum: int, frame: object) -> None:
        calls.append((signum, checkpoint.is_file()))
        raise SystemExit(-1)

    with pytest.raises(SystemExit):
        _fit_with_preemption(tmp_path, submitit_like)
    assert calls == [(signal.SIGUSR2, True)]  # called once, after the checkpoint was on disk


def test_sweep_group_names_the_sweep_in_multiruns_only(compose_config):
    single = compose_config(["experiment=ssm4sar", "logger=wandb"])
    assert single.logger.wandb.group is None
    multirun = compose_config(["experiment=ssm4sar", "logger=wandb", "hydra.mode=MULTIRUN",
                               "hydra.sweep.dir=out/ssm4sar/sweeps/s1"])
    assert HydraConfig.get().mode.name == "MULTIRUN"
    assert multirun.logger.wandb.group == "ssm4sar/sweeps/s1"


@pytest.mark.slow
def test_a_resumed_run_continues_the_same_offline_wandb_run(tmp_path):
    common = ["experiment=ssm4sar", "logger=[csv,wandb]", f"hydra.run.dir={tmp_path / 'run'}",
              "trainer.limit_train_batches=2", "trainer.limit_val_batches=1", "trainer.limit_test_batches=1", *TINY]
    for steps in (2, 4):
        result = run_cli([*common, f"trainer.max_steps={steps}"], cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
    run_id = (tmp_path / "run" / "wandb_run_id").read_text().strip()
    attempts = sorted((tmp_path / "run" / "wandb").glob("offline-run-*"))
    assert len(attempts) == 2 and all(path.name.endswith(f"-{run_id}") for path in attempts)


def test_single_run_dirs_are_named_after_the_slurm_job_and_step(monkeypatch):
    for name in ("SLURM_JOB_ID", "SLURM_STEP_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID"):
        monkeypatch.delenv(name, raising=False)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d-\d{6}", run_id())
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    assert run_id() == "slurm-77"  # the batch script itself
    monkeypatch.setenv("SLURM_STEP_ID", "0")
    assert run_id() == "slurm-77.0"  # every rank of `srun python -m sarexp …`
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "70")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    assert run_id() == "slurm-70_3.0"
