"""Save a PNG of model outputs on the first validation batch, so long runs can be checked by eye."""

from pathlib import Path
from typing import Any, Callable

import lightning.pytorch as pl
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from sarexp.callbacks.atomic_io import write_file_atomically


class SaveSamplePlots(pl.Callback):
    """Every `every_n_epochs` validation epochs, draw `plot(batch, preds)` into `output_dir/epoch_XXXX.png`.

    `plot` is a figure function from sarexp.plotting (a partial from config) returning a matplotlib figure;
    the validation step must return ``{"preds": ...}``.
    """

    def __init__(self, plot: Callable[..., Any], output_dir: str, every_n_epochs: int = 1) -> None:
        super().__init__()
        if every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be >= 1, got {every_n_epochs}")
        self.plot = plot
        self.output_dir = Path(output_dir)
        self.every_n_epochs = every_n_epochs

    def on_validation_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if batch_idx != 0 or trainer.sanity_checking or not trainer.is_global_zero:
            return
        if trainer.current_epoch % self.every_n_epochs != 0:
            return
        figure = self.plot(batch, outputs["preds"])
        self.output_dir.mkdir(parents=True, exist_ok=True)
        path = self.output_dir / f"epoch_{trainer.current_epoch:04d}.png"
        write_file_atomically(path, lambda handle: figure.savefig(handle, format="png", dpi=100))
        plt.close(figure)
