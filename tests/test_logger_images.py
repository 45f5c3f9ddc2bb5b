"""Pictures reach every logger: the PNG in the run dir and the same pixels in TensorBoard and offline W&B."""

import io
from pathlib import Path

import lightning.pytorch as pl
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from lightning.pytorch.loggers import TensorBoardLogger  # noqa: E402
from PIL import Image  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from sarexp.callbacks.samples import SaveSamplePlots  # noqa: E402
from sarexp.loggers.csv import ResumableCSVLogger  # noqa: E402
from sarexp.loggers.images import save_png, to_rgb_array  # noqa: E402
from sarexp.loggers.wandb import ResumableWandbLogger  # noqa: E402


class _Tiny(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 4)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).pow(2).mean()

    def validation_step(self, batch, batch_idx):
        return {"preds": self.layer(batch[0])}

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _plot(batch, preds):
    figure, axis = plt.subplots(figsize=(2, 1.5))
    axis.plot(preds[0].detach().numpy())
    return figure


def _tensorboard_images(log_dir: Path) -> dict[str, list]:
    accumulator = EventAccumulator(str(log_dir), size_guidance={"images": 0})
    accumulator.Reload()
    return {tag: accumulator.Images(tag) for tag in accumulator.Tags()["images"]}


def _decode(encoded: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(encoded)).convert("RGB"))


def test_png_pixels_round_trip_for_arrays_figures_and_files(tmp_path):
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    pixels = save_png(grey, tmp_path / "grey.png")
    assert np.asarray(Image.open(tmp_path / "grey.png")).tolist() == grey.tolist()  # grey stays grey on disk
    assert pixels.shape == (3, 4, 3) and (pixels == grey[:, :, None]).all()
    figure = _plot(None, torch.ones(1, 4))
    drawn = save_png(figure, tmp_path / "figure.png")
    assert (to_rgb_array(tmp_path / "figure.png") == drawn).all() and drawn.shape == (150, 200, 3)
    assert not list(tmp_path.glob(".*partial"))  # written through a temp file, then renamed
    with pytest.raises(TypeError, match="uint8"):
        to_rgb_array(np.zeros((2, 2), dtype=np.float32))


def test_sample_plots_reach_tensorboard_and_offline_wandb(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    data = DataLoader(TensorDataset(torch.randn(8, 4)), batch_size=4)
    loggers = [
        ResumableCSVLogger(save_dir=str(tmp_path), name="csv", version=""),
        TensorBoardLogger(save_dir=str(tmp_path), name="tensorboard", version="", default_hp_metric=False),
        ResumableWandbLogger(save_dir=str(tmp_path), project="sarexp-test", offline=True),
    ]
    callback = SaveSamplePlots(plot=_plot, output_dir=str(tmp_path / "samples"), tag="samples/validation")
    trainer = pl.Trainer(max_epochs=2, logger=loggers, callbacks=[callback], enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=False, num_sanity_val_steps=0,
                         accelerator="cpu")
    trainer.fit(_Tiny(), train_dataloaders=data, val_dataloaders=data)
    import wandb

    wandb.finish()

    files = sorted((tmp_path / "samples").glob("epoch_*.png"))
    assert [path.name for path in files] == ["epoch_0000.png", "epoch_0001.png"]
    images = _tensorboard_images(tmp_path / "tensorboard")
    assert list(images) == ["samples/validation"]
    events = images["samples/validation"]
    assert [event.step for event in events] == [2, 4]  # the global step after each epoch's 2 batches
    assert (_decode(events[-1].encoded_image_string) == to_rgb_array(files[-1])).all()  # same pixels

    media = sorted((tmp_path / "wandb").glob("offline-run-*/files/media/images/samples/validation_*.png"))
    assert len(media) == 2
    assert (to_rgb_array(media[-1]) == to_rgb_array(files[-1])).all()


def test_task_figures_reach_the_configured_image_loggers(compose_config, tmp_path):
    """Tasks without a Trainer (sample, evaluate, colorize) log their figures as callbacks do: PNG + same pixels."""
    from cli_helpers import logged_images
    from sarexp.tasks.figures import task_figures

    grid = np.arange(48, dtype=np.uint8).reshape(4, 12) * 5
    figure = _plot(None, torch.ones(1, 4))
    with task_figures(compose_config(["experiment=pdm_sar_lowres", "logger=[csv,tensorboard]"])) as figures:
        figures.save("sample/grid", grid, tmp_path / "run" / "samples.png")
        figures.save("evaluate/semivariogram", figure, tmp_path / "run" / "semivariogram.png", dpi=50)
    images = logged_images(tmp_path / "run")
    assert sorted(images) == ["evaluate/semivariogram", "sample/grid"]
    assert (images["sample/grid"] == grid[:, :, None]).all()
    assert (images["evaluate/semivariogram"] == to_rgb_array(tmp_path / "run" / "semivariogram.png")).all()
    with task_figures(compose_config(["experiment=pdm_sar_lowres"])) as figures:  # the default: csv only
        figures.save("sample/grid", grid, tmp_path / "csv_only" / "samples.png")
    assert (tmp_path / "csv_only" / "samples.png").is_file()
