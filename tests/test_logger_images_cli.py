"""End to end: `logger=[csv,tensorboard,wandb]` puts SSM4SAR's sample plots and scene quicklooks in the loggers."""

from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cli_helpers import TINY, run_cli

pytestmark = pytest.mark.slow


def _image_tags(log_dir: Path) -> list[str]:
    accumulator = EventAccumulator(str(log_dir), size_guidance={"images": 0})
    accumulator.Reload()
    return accumulator.Tags()["images"]


def test_training_and_prediction_pictures_reach_tensorboard_and_wandb(tmp_path):
    run_dir, predict_dir = tmp_path / "run", tmp_path / "predict"
    train = run_cli(["experiment=ssm4sar", f"hydra.run.dir={run_dir}", "trainer.max_steps=2",
                     "trainer.limit_train_batches=2", "trainer.limit_val_batches=1", "task.test=false",
                     "logger=[csv,tensorboard,wandb]", *TINY], cwd=tmp_path)
    assert train.returncode == 0, train.stderr[-3000:]
    assert list((run_dir / "samples").glob("epoch_*.png"))
    assert _image_tags(run_dir / "tensorboard") == ["samples/validation"]
    assert list((run_dir / "wandb").glob("offline-run-*/files/media/images/samples/validation_*.png"))

    predict = run_cli(["experiment=ssm4sar", "task=predict", f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}",
                       f"hydra.run.dir={predict_dir}", "logger=tensorboard", "data.predict_overlap=16", *TINY],
                      cwd=tmp_path)
    assert predict.returncode == 0, predict.stderr[-3000:]
    assert (predict_dir / "predictions" / "scene_000.png").is_file()
    assert any(tag.startswith("predictions/quicklook/scene_") for tag in _image_tags(predict_dir / "tensorboard"))
