"""One-machine DDP with 2 CPU ranks (gloo): one run dir per job, rank 0 writes, multiruns launch once."""

from pathlib import Path

import pytest

from cli_helpers import TINY, read_metrics, run_cli
from sarexp.strategies.ddp import rank_command

pytestmark = pytest.mark.slow

DDP = ["experiment=ssm4sar", "trainer=ddp", "launcher.devices=2", "trainer.accelerator=cpu", "trainer.max_epochs=1",
       "trainer.limit_train_batches=3", "trainer.limit_val_batches=2", "trainer.limit_test_batches=2", *TINY]


def _files(directory: Path) -> list[str]:
    return sorted(str(path.relative_to(directory)) for path in directory.rglob("*") if path.is_file())


def test_a_single_ddp_run_keeps_one_run_dir_written_by_rank_zero(tmp_path):
    result = run_cli(DDP, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "MEMBER: 1/2" in output and "MEMBER: 2/2" in output  # both ranks joined the process group
    runs = list((tmp_path / "outputs" / "ssm4sar" / "runs").iterdir())
    assert len(runs) == 1
    files = _files(runs[0])
    assert "metrics.json" in files and "checkpoints/last.ckpt" in files and "run.log" in files
    assert [f for f in files if f.startswith(".hydra/")] == [".hydra/config.yaml", ".hydra/hydra.yaml",
                                                             ".hydra/overrides.yaml"]
    assert not [f for f in files if "rank" in f]  # the second rank writes no log file of its own
    assert "val/psnr" in read_metrics(runs[0])


def test_a_ddp_multirun_launches_the_sweep_once_with_one_dir_per_job(tmp_path):
    result = run_cli(["-m", *DDP, "optimizer.lr=0.001,0.002"], cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert output.count("Launching 2 jobs locally") == 1
    assert output.count("MEMBER: 2/2") == 2  # one second rank per job
    assert not (tmp_path / "outputs" / "ssm4sar" / "runs").exists()
    (sweep,) = (tmp_path / "outputs" / "ssm4sar" / "multiruns").iterdir()
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1"]
    for job in ("0", "1"):
        assert "val/psnr" in read_metrics(sweep / job)


def test_a_rank_reruns_the_job_not_the_command_line(tmp_path):
    command = rank_command(["experiment=ssm4sar", "optimizer.lr=0.002"], tmp_path / "multiruns" / "3", 1)
    assert command[1:] == ["-m", "sarexp", "experiment=ssm4sar", "optimizer.lr=0.002",
                           f"hydra.run.dir='{tmp_path / 'multiruns' / '3'}'", "hydra.output_subdir=null",
                           "hydra/job_logging=stdout", "hydra.job.name=rank1"]
    assert "-m" not in command[3:] and "--multirun" not in command
