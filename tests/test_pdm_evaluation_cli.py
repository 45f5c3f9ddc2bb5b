"""End to end through the CLI: train the FID feature extractor, then task=evaluate on a samples file."""

import json
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import logged_images, read_metrics, run_cli
from sarexp.loggers.images import to_rgb_array

pytestmark = pytest.mark.slow

TINY = [
    "experiment=pdm_feature_extractor",
    "data.image_size=16",
    "data.generator.counts={train:6,val:3,test:3}",
    "model.widths=[8,16]",
    "model.feature_dim=16",
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
]


@pytest.fixture(scope="module")
def extractor_run(tmp_path_factory) -> tuple[Path, Path]:
    workdir = tmp_path_factory.mktemp("pdm_eval")
    run_dir = workdir / "extractor"
    result = run_cli([*TINY, f"hydra.run.dir={run_dir}", "trainer.max_epochs=2"], cwd=workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir, run_dir


def test_feature_extractor_trains_and_tests(extractor_run):
    workdir, run_dir = extractor_run
    metrics = read_metrics(run_dir)
    assert 0.0 <= metrics["test/accuracy"] <= 1.0 and "val/accuracy_macro" in metrics
    assert (workdir / "data" / "sar_wavemode_16" / "train" / "sea_ice").is_dir()  # generated on first use


def test_evaluate_writes_generative_metrics_and_plots(extractor_run):
    workdir, run_dir = extractor_run
    rng = np.random.default_rng(0)
    samples = workdir / "samples.npz"
    np.savez(samples, images=rng.uniform(-1, 1, (12, 1, 16, 16)).astype(np.float32), labels=rng.integers(0, 6, 12))
    eval_dir = workdir / "evaluate"
    result = run_cli([*TINY, "task=evaluate", f"task.samples_path={samples}", f"hydra.run.dir={eval_dir}",
                      f"task.extractor_checkpoint={run_dir / 'checkpoints' / 'last.ckpt'}", "logger=[csv,tensorboard]"],
                     cwd=workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    images = logged_images(eval_dir)  # the plots in TensorBoard too, the same pixels
    assert sorted(images) == ["evaluate/samples_vs_real", "evaluate/semivariogram"]
    for tag, image in images.items():
        assert (image == to_rgb_array(eval_dir / f"{tag.split('/')[1]}.png")).all()
    evaluation = json.loads((eval_dir / "evaluation.json").read_text())
    for key in ("fid", "precision", "recall", "class_recognition", "fid_real_reference", "semivariogram/real/c0/lag1",
                "semivariogram/generated/c0/lag8", "semivariogram/mean_abs_log_ratio"):
        assert isinstance(evaluation[key], float), key
    assert evaluation["class_recognition_chance"] == pytest.approx(1 / 6)
    assert evaluation["fid"] > evaluation["fid_real_reference"]  # uniform noise is far from SAR vignettes
    assert (eval_dir / "semivariogram.png").stat().st_size > 5_000 and (eval_dir / "samples_vs_real.png").is_file()


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (["task=evaluate"], "task.samples_path"),
        (["task=evaluate", "task.samples_path=/nonexistent/samples.npz"], "/nonexistent/samples.npz"),
    ],
    ids=["no-samples", "missing-samples"],
)
def test_evaluate_input_errors_are_one_line(tmp_path, overrides, expected):
    result = run_cli([*TINY, *overrides, f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path, timeout=120)
    assert result.returncode != 0 and expected in result.stderr and "Traceback" not in result.stderr


def test_evaluate_rejects_samples_of_another_shape(extractor_run, tmp_path):
    workdir, run_dir = extractor_run
    samples = tmp_path / "wrong.npz"
    np.savez(samples, images=np.zeros((4, 1, 32, 32), dtype=np.float32))
    result = run_cli([*TINY, "task=evaluate", f"task.samples_path={samples}", f"hydra.run.dir={tmp_path / 'run'}",
                      f"task.extractor_checkpoint={run_dir / 'checkpoints' / 'last.ckpt'}"], cwd=workdir, timeout=120)
    assert result.returncode != 0 and "data.image_size" in result.stderr
