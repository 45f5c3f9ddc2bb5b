"""Launchers: trainer ↔ launcher interpolation, the generated sbatch script, Submitit's local launcher,
the preemption checkpoint, and W&B runs that continue and group by sweep."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning.pytorch as pl
import pandas as pd
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


@pytest.mark.slow
def test_a_trial_whose_job_dies_is_failed_and_the_sweep_goes_on(tmp_path):
    """Submitit reports a killed job by raising from `results()`; Hydra's launcher would end the sweep there."""
    command = [sys.executable, "-m", "sarexp", "-m", "experiment=ssm4sar", "launcher=submitit_local", "sweep=optuna",
               "hydra/sweeper/sampler=grid", "optimizer.lr=choice(0.001,0.002)", "hydra.sweeper.n_jobs=2",
               "hydra.sweeper.max_failure_rate=0.5", "trainer.max_epochs=1000", "trainer.max_steps=320",
               "trainer.limit_val_batches=1", "trainer.limit_test_batches=1", *TINY]
    sweep = tmp_path / "outputs" / "ssm4sar" / "sweeps" / "ssm4sar-optuna"
    launch = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        victim = _wait_for(lambda: _training_job_with(sweep, "lr: 0.002"), 300, "the lr=0.002 trial to train")
        _kill_tree(int(victim.parent.name))  # a local Submitit job's id is its controller's pid
        output, _ = launch.communicate(timeout=600)
    finally:
        launch.kill()
    assert launch.returncode == 0, output[-3000:]
    trials = pd.read_csv(sweep / "trials.csv").set_index("params_optimizer.lr")
    assert trials.loc[0.002, "state"] == "FAIL" and "the cluster job died" in trials.loc[0.002, "failure"]
    assert trials.loc[0.001, "state"] == "COMPLETE"
    assert f"(run dir {trials.loc[0.002, 'run_dir']})" in output


def _kill_tree(pid: int) -> None:
    """SIGKILL a process and its descendants (the job's task runs in a child of the controller)."""
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    for child in children:
        _kill_tree(int(child))
    os.kill(pid, signal.SIGKILL)


def _training_job_with(sweep: Path, text: str) -> Path | None:
    for log in (sweep / ".submitit").glob("*/*_0_log.out"):
        content = log.read_text()
        if text in content and "estimate number of stepping batches" in content:
            return log
    return None


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")
