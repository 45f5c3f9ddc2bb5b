"""Every shipped experiment as a 2-process gloo DDP job on CPU, checked for what DDP must guarantee.

One DDP job (two ranks started once, tests/ddp_launch.py) runs every experiment of conf/experiment/ in turn, in
process, at tiny sizes (tests/experiment_sizes.py): its real `task=train` with `trainer=ddp`, then
- the replicas: every parameter and buffer (EMA copies included) identical on both ranks after training, and
  changed by it; a job whose ranks never all-reduce (the negative control) must be caught;
- the GAN: the synchronised gradients of one discriminator and one generator step on B samples per rank equal one
  process's on the 2·B concatenated samples (`adversarial_batch: global`); with each rank's own Sinkhorn cloud
  (`local`) they differ measurably, which also shows the comparison can fail.
The GAN also runs once through the real CLI with `trainer=ddp` (sarexp launches the second rank).
"""

import json
from pathlib import Path

import pytest
import torch

from cli_helpers import read_metrics, run_cli
from ddp_checks import FixedSamples, GradientRecorder, rank_order
from ddp_launch import JobResult, launch
from experiment_sizes import QUIET, TINY, shipped_experiments
from inprocess import compose_run
from sarexp.tasks.builders import build_datamodule, build_system, build_trainer, seed_everything

pytestmark = pytest.mark.slow

EXPERIMENTS = shipped_experiments()
DDP_CPU = ["trainer=ddp", "launcher.devices=2", "trainer.accelerator=cpu"]
STEPS = ["trainer.max_steps=2", "trainer.limit_val_batches=1", "trainer.limit_test_batches=1",
         "trainer.num_sanity_val_steps=0"]
ONE_BATCH = ["trainer.max_steps=2", "trainer.limit_val_batches=0", "trainer.num_sanity_val_steps=0",
             "trainer.enable_checkpointing=false", "trainer.enable_progress_bar=false",
             "trainer.enable_model_summary=false"]  # a GAN batch: one discriminator and one generator step
PER_RANK = 2
CONTROL = "ssm4sar_unsynchronised"
ACCUMULATED = "hsi_cswin_gan_accumulated"


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, JobResult]:
    root = tmp_path_factory.mktemp("ddp")
    samples = _gan_samples(root)
    plan = {
        "root": str(root),
        "experiments": EXPERIMENTS,
        "extra_runs": [{"name": CONTROL, "experiment": "ssm4sar",
                        "overrides": ["trainer.strategy._target_=ddp_checks.UnsynchronisedDDPStrategy"]},
                       {"name": ACCUMULATED, "experiment": "hsi_cswin_gan",  # micro-batches under no_sync
                        "overrides": ["system.n_critic=2", "system.accumulate_grad_batches=2", "trainer.max_steps=3"]}],
        "common": [*DDP_CPU, *STEPS],
        "gan_gradients": {"samples": str(samples), "batch_size": PER_RANK, "modes": ["global", "local"],
                          "overrides": [*DDP_CPU, *ONE_BATCH]},
    }
    return root, launch(plan, root, world_size=2, timeout=300)


def _gan_samples(root: Path) -> Path:
    """2·PER_RANK training samples of the tiny synthetic ARAD-1K, as its loader gives them (no augmentation)."""
    torch.manual_seed(0)  # the loader shuffles
    cfg = compose_run(root, root / "samples", ["experiment=hsi_cswin_gan", *TINY["hsi_cswin_gan"],
                                               f"data.batch_size={2 * PER_RANK}"])
    datamodule = build_datamodule(cfg)
    datamodule.prepare_data()
    datamodule.setup("fit")
    batch = next(iter(datamodule.train_dataloader()))
    path = root / "gan_samples.pt"
    torch.save({key: batch[key] for key in ("rgb", "hsi")}, path)
    return path


def _report(root: Path, name: str) -> dict:
    path = root / "reports" / f"{name}.json"
    assert path.is_file(), f"{name}: no replica report; " + " ".join(p.name for p in (root / "reports").glob("*.error"))
    return json.loads(path.read_text())


def test_the_job_ran_every_experiment(job):
    root, result = job
    assert result.ok, result.tail()
    assert "MEMBER: 2/2" in result.logs[1]  # rank 1 joined the process group


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_ranks_hold_identical_weights_after_training(job, experiment):
    root, result = job
    report = _report(root, experiment)
    assert report["world_size"] == 2 and report["steps"][0] == report["steps"][1] >= 2
    assert report["differing"] == [], f"{experiment}: tensors differing between ranks: {report['differing'][:10]}"
    changed, trainable = set(report["changed"]), report["trainable"]
    # a quarter: improved-diffusion's zero-initialised output layers hold the layers before them still at first
    assert sum(name in changed for name in trainable) >= len(trainable) / 4, "training changed too few parameters"
    ema = [name for name in report["tensors"] if name.split(".")[0].startswith("ema_")]
    if ema:  # the EMA moved, identically on both ranks (checked with everything above)
        assert any(name in changed for name in ema)
    metrics = read_metrics(root / "runs" / experiment)
    assert any(key.startswith("test/") for key in metrics), sorted(metrics)


def test_gan_micro_batches_that_skip_the_all_reduce_keep_replicas_identical(job):
    """n_critic 2 × accumulation 2: three of four batches accumulate locally (no_sync), the fourth all-reduces
    the sums of both networks."""
    root, _ = job
    report = _report(root, ACCUMULATED)
    assert report["steps"] == [3, 3] and report["differing"] == []
    changed = set(report["changed"])
    assert any(name.startswith("generator.") for name in changed) and any(name.startswith("ema_") for name in changed)


def test_ranks_that_never_all_reduce_are_caught(job):
    root, _ = job
    report = _report(root, CONTROL)
    assert len(report["differing"]) == len(report["trainable"]) > 0


def _reference_gradients(root: Path) -> list[dict[str, torch.Tensor]]:
    """One process, the samples of both ranks in one batch (rank 0's first, as the all-gather orders them)."""
    cfg = compose_run(root, root / "runs" / "gradients_single", ["experiment=hsi_cswin_gan", *TINY["hsi_cswin_gan"],
                                                                "trainer.accelerator=cpu", "launcher.devices=1",
                                                                *ONE_BATCH])
    samples = rank_order(torch.load(root / "gan_samples.pt", weights_only=True), 2)
    recorder = GradientRecorder(str(root / "gradients_single.pt"))
    seed_everything(cfg)
    build_trainer(cfg, [recorder], []).fit(build_system(cfg), datamodule=FixedSamples(samples, 2 * PER_RANK))
    return recorder.steps


def _relative_difference(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> float:
    assert list(got) == list(want)
    a = torch.cat([got[name].flatten() for name in want])
    b = torch.cat([want[name].flatten() for name in want])
    return float((a - b).norm() / b.norm())


def test_gan_gradients_equal_one_process_on_the_concatenated_batch(job):
    root, result = job
    assert result.ok, result.tail()
    reference = _reference_gradients(root)
    assert len(reference) == 2  # the discriminator's step, then the generator's
    gathered = torch.load(root / "gradients_global.pt", weights_only=True)
    local = torch.load(root / "gradients_local.pt", weights_only=True)
    for step, network in enumerate(("discriminator", "generator")):
        assert _relative_difference(gathered[step], reference[step]) < 1e-5, network
    # each rank's own cloud of PER_RANK samples: the Sinkhorn term's gradient is not that of the 2·PER_RANK cloud
    assert _relative_difference(local[0], reference[0]) > 1e-4


def test_gan_trains_with_trainer_ddp_from_the_cli(tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli(["experiment=hsi_cswin_gan", *TINY["hsi_cswin_gan"], *QUIET, *DDP_CPU, "trainer.max_steps=6",
                      f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "MEMBER: 2/2" in output
    metrics = read_metrics(run_dir)
    assert {"train/d_sinkhorn", "train/g_loss", "test/mrae"} <= set(metrics)
    state = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert state["global_step"] == 6 and state["gan_schedule"] == {"batches_seen": 3, "generator_steps": 3}
