"""task=predict for RGB → hyperspectral: `<output_dir>/<name>.mat` cubes in the ARAD format and PNG quicklooks.

Cubes are written like ARAD's (MATLAB v7.3 ``cube``, see :func:`sarexp.data.arad_files.write_cube`), so the
data module's reader — and MST++'s — reads them back; files appear through a temporary name and a rename.
"""

from pathlib import Path
from typing import Any, Sequence

import lightning.pytorch as pl
import matplotlib.pyplot as plt
from lightning.pytorch.callbacks import BasePredictionWriter

from sarexp.io.atomic import write_file_atomically
from sarexp.data.arad_files import write_cube
from sarexp.plotting.hsi import plot_reconstruction_rows


class CubeWriter(BasePredictionWriter):
    """Write each predicted cube (``preds`` (B, bands, H, W)) under the batch's ``name``; optional quicklook."""

    def __init__(self, output_dir: str, quicklook: bool = True, pixels: int = 4,
                 input_key: str = "rgb", reference_key: str = "hsi") -> None:
        super().__init__(write_interval="batch")
        self.output_dir = Path(output_dir)
        self.quicklook = quicklook
        self.pixels = pixels
        self.input_key = input_key
        self.reference_key = reference_key

    def write_on_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, prediction: dict[str, Any],
                           batch_indices: Sequence[int] | None, batch: Any, batch_idx: int,
                           dataloader_idx: int = 0) -> None:
        preds = prediction["preds"].detach().float().cpu()
        reference = batch.get(self.reference_key)
        for index, name in enumerate(batch["name"]):
            write_cube(self.output_dir / f"{name}.mat", preds[index].numpy())
            if self.quicklook:
                figure = plot_reconstruction_rows(
                    batch[self.input_key][index:index + 1], preds[index:index + 1],
                    None if reference is None else reference[index:index + 1], [name], self.pixels)
                try:
                    write_file_atomically(self.output_dir / f"{name}.png",
                                          lambda handle: figure.savefig(handle, format="png", dpi=90))
                finally:
                    plt.close(figure)
