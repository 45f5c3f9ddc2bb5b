"""Through a real SLURM cluster (`scripts/local-slurm.sh start 2` simulates two nodes on this machine): a job
that can never start is one line within a minute; the README's multi-node recipe as a 2-node job (one CPU rank
per node, gloo) trains in one run dir with both ranks in one process group; that job preempted mid-training
requeues and resumes. Skipped without a controller, the 2-node tests without two nodes."""

import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from cli_helpers import TINY, read_metrics, run_cli

CPU_NODES = ["launcher=slurm", "launcher.gpus_per_node=0", "launcher.tasks_per_node=1", "launcher.cpus_per_task=1",
             "launcher.mem_gb=null", "launcher.timeout_min=10", "trainer.accelerator=cpu", *TINY]


def _idle_nodes() -> list[tuple[str, int]]:
    """(name, CPUs) of the nodes that answer, empty without SLURM."""
    try:
        probe = subprocess.run(["sinfo", "-h", "-N", "-o", "%N %c %T"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return []
    nodes = [line.split() for line in probe.stdout.splitlines() if len(line.split()) == 3]
    return [(name, int(cpus)) for name, cpus, state in nodes if state in ("idle", "mixed", "allocated")]


NODES = _idle_nodes()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not NODES, reason="no SLURM cluster; scripts/local-slurm.sh start")]
two_nodes = pytest.mark.skipif(len(NODES) < 2, reason="needs 2 SLURM nodes; scripts/local-slurm.sh start 2")


def test_a_job_that_can_never_start_is_one_line_within_a_minute(tmp_path):
    too_many = len(NODES) + 1  # SLURM accepts it and keeps it pending (PartitionConfig) forever
    started = time.monotonic()
    result = run_cli(["-m", "experiment=ssm4sar", *CPU_NODES, f"launcher.nodes={too_many}", "hydra.sweep.dir=sweep"],
                     cwd=tmp_path, timeout=180)
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: SLURM job ") and "can never start: pending with reason PartitionConfig" in last
    assert f"nodes={too_many}" in last and "Traceback" not in result.stderr
    assert elapsed < 60 + 30  # within a minute of submission (plus the start-up of a loaded machine)
    job = last.split("SLURM job ")[1].split()[0]
    assert subprocess.run(["squeue", "-h", "-j", job.split("_")[0]], capture_output=True, text=True).stdout == ""


@pytest.mark.skipif(max((cpus for _, cpus in NODES), default=8) >= 8, reason="nodes with 8 CPUs run the default")
def test_the_default_eight_cpus_per_task_on_smaller_nodes_is_one_line(tmp_path):
    """The README's local recipe without launcher.cpus_per_task=1 used to wait forever on a 2-CPU node."""
    overrides = [override for override in CPU_NODES if not override.startswith("launcher.cpus_per_task")]
    result = run_cli(["-m", "experiment=ssm4sar", *overrides, "hydra.sweep.dir=sweep"], cwd=tmp_path, timeout=180)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert "cpus_per_task=8" in last and "Traceback" not in result.stderr
    assert ("can never start: pending with reason PartitionConfig" in last
            or last.startswith("error: sbatch refused the job: CPU count per node can not be satisfied"))


def _submitit_logs(sweep: Path) -> dict[str, str]:
    return {path.name: path.read_text() for path in (sweep / ".submitit").glob("*/*_log.*")}


@two_nodes
def test_the_multi_node_recipe_runs_as_one_two_node_job(tmp_path):
    result = run_cli(["-m", "experiment=ssm4sar", *CPU_NODES, "launcher.nodes=2", "trainer.max_epochs=1",
                      "trainer.limit_train_batches=3", "trainer.limit_val_batches=1", "trainer.limit_test_batches=1",
                      "hydra.sweep.dir=sweep"], cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = tmp_path / "sweep"
    assert sorted(path.name for path in sweep.iterdir() if not path.name.startswith(".")) == ["0", "multirun.yaml"]
    logs = "\n".join(_submitit_logs(sweep).values())
    for rank in (0, 1):  # one rank on each node, both members of one process group of two
        assert f"rank {rank} of 2 on node {NODES[rank][0]}" in logs
        assert f"node={rank}(2), global_rank={rank}(2)" in logs
        assert f"GLOBAL_RANK: {rank}, MEMBER: {rank + 1}/2" in logs
    run_log = (sweep / "0" / "run.log").read_text()
    assert "distributed_backend=gloo" in run_log and "Starting with 2 processes" in run_log
    assert "val/psnr" in read_metrics(sweep / "0")
    header, *rows = (sweep / "0" / "csv" / "metrics.csv").read_text().splitlines()
    assert len(rows) == len(set(rows)), "a metrics row was written twice"
    assert sorted(path.name for path in (sweep / "0").iterdir() if path.name.endswith(".json")) == [
        "metrics.json", "run_info.json"]


@two_nodes
def test_a_preempted_two_node_job_requeues_and_resumes(tmp_path):
    max_steps = 96  # 12 epochs of 8 steps per rank
    command = [sys.executable, "-m", "sarexp", "-m", "experiment=ssm4sar", *CPU_NODES, "launcher.nodes=2",
               "launcher.timeout_min=30", "trainer.max_epochs=1000", f"trainer.max_steps={max_steps}",
               "trainer.limit_val_batches=1", "trainer.limit_test_batches=1", "trainer.log_every_n_steps=10",
               "hydra.sweep.dir=sweep"]
    sweep = tmp_path / "sweep"
    launch = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 300
        log = None
        while log is None and time.monotonic() < deadline:
            log = next((path for path in (sweep / ".submitit").glob("*/*_0_log.out")
                        if "estimate number of stepping batches" in path.read_text()), None)
            time.sleep(0.5)
        assert log is not None, "the 2-node job did not start training"
        # Signal after the first epoch's last.ckpt: a preemption before it leaves ModelCheckpoint writing
        # last-v1.ckpt after the requeue (a separate, known issue of the periodic-checkpoint work).
        while not (sweep / "0" / "checkpoints" / "last.ckpt").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
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
    assert "starting from checkpoint" in run_log
    assert "Restarts=1" in subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True).stdout
    assert run_log.count("Starting with 2 processes") == 2  # both attempts ran both ranks
    final = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert final["global_step"] == max_steps
    header, *rows = (run_dir / "csv" / "metrics.csv").read_text().splitlines()
    step_column = header.split(",").index("step")
    steps = [int(float(row.split(",")[step_column])) for row in rows if row.split(",")[step_column]]
    assert steps == sorted(steps) and min(steps) < preempted_at < max(steps)
