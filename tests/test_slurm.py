"""Launches through a real SLURM (`scripts/local-slurm.sh start` brings one up on this machine):
an Optuna sweep as a job array, a 2-task DDP job, and a job preempted mid-training that requeues and
resumes from its checkpoint. Skipped when no SLURM controller answers."""

import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from cli_helpers import TINY, read_metrics, run_cli

CPU_JOB = ["launcher=slurm", "launcher.gpus_per_node=0", "launcher.cpus_per_task=1", "launcher.mem_gb=null",
           "launcher.timeout_min=10", "trainer.accelerator=cpu", *TINY]
QUICK = ["trainer.max_epochs=1", "trainer.limit_train_batches=3", "trainer.limit_val_batches=1",
         "trainer.limit_test_batches=1"]


def _slurm_answers() -> bool:
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        return False
    probe = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30)
    return probe.returncode == 0 and any(s in probe.stdout for s in ("idle", "mixed", "allocated"))


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not _slurm_answers(), reason="no SLURM cluster; start one with scripts/local-slurm.sh start"),
]


def test_an_optuna_sweep_runs_its_trials_as_slurm_jobs(tmp_path):
    result = run_cli(["-m", "experiment=ssm4sar", "sweep=optuna", "hydra.sweeper.n_trials=2", "hydra.sweeper.n_jobs=2",
                      "optimizer.lr=tag(log,interval(1e-3,1e-2))", "launcher.tasks_per_node=1", *CPU_JOB, *QUICK],
                     cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = tmp_path / "outputs" / "ssm4sar" / "sweeps" / "ssm4sar-optuna"
    for trial in ("trial_0", "trial_1"):
        assert "val/psnr" in read_metrics(sweep / trial)
    with sqlite3.connect(sweep / "optuna.db") as db:
        assert [s for (s,) in db.execute("SELECT state FROM trials")] == ["COMPLETE", "COMPLETE"]
    job_dirs = [p for p in (sweep / ".submitit").iterdir() if p.is_dir()]
    assert {p.name.split("_")[-1] for p in job_dirs} >= {"0", "1"}  # one array, two tasks


def test_a_two_task_ddp_job_trains_in_one_run_dir(tmp_path):
    result = run_cli(["-m", "experiment=ssm4sar", "launcher.tasks_per_node=2", *CPU_JOB, *QUICK,
                      "hydra.sweep.dir=sweep"], cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = tmp_path / "sweep"
    assert sorted(p.name for p in sweep.iterdir() if not p.name.startswith(".")) == ["0", "multirun.yaml"]
    assert "val/psnr" in read_metrics(sweep / "0")
    logs = {path.name: path.read_text() for path in (sweep / ".submitit").glob("*/*_log.out")}
    assert any("MEMBER: 1/2" in text for text in logs.values()) and any("MEMBER: 2/2" in text for text in logs.values())
    assert (sweep / "0" / ".hydra" / "config.yaml").is_file()


def _wait_for(predicate, timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_preempted_job_checkpoints_requeues_and_resumes_its_step_count(tmp_path):
    max_steps = 320  # 20 epochs of 16 steps: last.ckpt is written at the end
    command = [sys.executable, "-m", "sarexp", "-m", "experiment=ssm4sar", "launcher.tasks_per_node=1", *CPU_JOB,
               "launcher.timeout_min=30",
               "trainer.max_epochs=1000", f"trainer.max_steps={max_steps}", "trainer.limit_val_batches=1",
               "trainer.limit_test_batches=1", "trainer.log_every_n_steps=10", "hydra.sweep.dir=sweep"]
    sweep = tmp_path / "sweep"
    launch = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        def training_started() -> Path | None:
            for log in (sweep / ".submitit").glob("*/*_0_log.out"):
                if "estimate number of stepping batches" in log.read_text():
                    return log
            return None

        log = _wait_for(training_started, 300, "the job to start training")
        time.sleep(1)
        job_id = log.parent.name
        subprocess.run(["scancel", "--signal=USR2", job_id], check=True)
        output, _ = launch.communicate(timeout=600)
    finally:
        launch.kill()
    assert launch.returncode == 0, output[-3000:]

    run_dir = sweep / "0"
    run_log = (run_dir / "run.log").read_text()
    assert "SIGUSR2 received at step" in run_log
    preempted_at = int(run_log.split("SIGUSR2 received at step ")[1].split(":")[0])
    assert 0 < preempted_at < max_steps
    assert "starting from checkpoint" in run_log and "last.ckpt" in run_log
    restarts = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True).stdout
    assert "Restarts=1" in restarts
    final = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert final["global_step"] == max_steps

    header, *rows = (run_dir / "csv" / "metrics.csv").read_text().splitlines()
    step_column = header.split(",").index("step")
    steps = [int(float(row.split(",")[step_column])) for row in rows if row.split(",")[step_column]]
    assert steps == sorted(steps), "the step count went back after the requeue"
    assert min(steps) < preempted_at < max(steps)

