"""hsi_cswin_gan through the CLI on a tiny synthetic ARAD-1K: train, test, metrics.json, checkpoint contents,
rolling periodic checkpoints, task=predict with the EMA generator; the paper preset composes."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cli_helpers import read_metrics, run_cli

pytestmark = pytest.mark.slow

TINY = [
    "experiment=hsi_cswin_gan",
    "data.simulator.scenes={train:2,validation:1,test:1}",
    "data.simulator.height=32",
    "data.simulator.width=40",
    "data.patch_size=16",
    "data.stride=16",
    "data.batch_size=4",
    "model.dim=8",
    "model.noise_embed_dim=8",
    "system.discriminator.dim=8",
    "system.metrics.crop_border=4",
    "system.n_critic=2",
    "trainer.max_steps=6",
    "trainer.val_check_interval=2",
    "callbacks.periodic_checkpoint.every_n_train_steps=2",
    "callbacks.periodic_checkpoint.save_top_k=2",
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
]


def test_train_and_test_tiny_gan(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = run_cli([*TINY, f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = read_metrics(run_dir)
    for name in ("mrae", "rmse", "psnr", "sam"):
        assert f"test/{name}" in metrics and f"val/{name}" in metrics
    assert {"train/d_sinkhorn", "train/d_r1", "train/g_adversarial", "train/g_perceptual"} <= set(metrics)
    checkpoints = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    # 6 optimizer steps = 4 D + 2 G (n_critic 2); periodic every 2 steps, the 2 most recent kept
    assert [n for n in checkpoints if n.startswith("periodic")] == ["periodic-step0000004.ckpt",
                                                                    "periodic-step0000006.ckpt"]
    state = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert state["gan_schedule"] == {"batches_seen": 4, "generator_steps": 2}
    assert len(state["optimizer_states"]) == 2 and len(state["lr_schedulers"]) == 2
    assert any(key.startswith("ema_generator.") for key in state["state_dict"])
    assert any((run_dir / "samples").glob("*.png"))

    predict_dir = tmp_path / "predict"
    result = run_cli([*TINY, "task=predict", f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}",
                      f"hydra.run.dir={predict_dir}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    cubes = sorted((predict_dir / "predictions").glob("*.mat"))
    assert cubes and all(cube.with_suffix(".png").is_file() for cube in cubes)


def test_paper_preset_composes() -> None:
    result = subprocess.run([sys.executable, "-m", "sarexp", "experiment=hsi_cswin_gan_paper", "--cfg", "job",
                             "--resolve"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "patch_size: 128" in result.stdout and "max_steps: 300000" in result.stdout
    assert "crop_border: 128" in result.stdout and "n_critic: 2" in result.stdout
