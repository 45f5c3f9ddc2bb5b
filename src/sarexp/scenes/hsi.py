"""RGB scenes → 31-band hyperspectral GeoTIFFs (MST++ and the CSWin GAN), with the ARAD ``.mat`` beside them.

Input: any RGB raster GDAL reads (GeoTIFF, JPEG, PNG; ``bands`` picks the red, green and blue bands), mapped as
the ARAD reader maps its RGB images: min–max over the whole image, all three channels together, to [0, 1]
(:func:`sarexp.data.arad_files.read_rgb`); for a scene the minimum and maximum come from a first pass over it.
Output: ``<scene>.tif``, float32, one band per wavelength (descriptions ``400 nm`` … ``700 nm``, evenly spaced
over ``wavelength_range``), on the input's grid; ``<scene>.mat`` the same cube in ARAD's MATLAB v7.3 layout,
written tile by tile from the GeoTIFF; ``<scene>.png`` the quicklook (RGB | false colour | spectra, and the
error against ``<data.root>/Train_Spec/<scene>.mat`` when that reference exists and has the scene's size).
"""

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from rasterio.windows import Window

from sarexp.data.arad_files import SPEC_DIR, TEST_RGB_DIR, read_cube, write_cube_tiles
from sarexp.data.tiling import grid_windows
from sarexp.errors import DataError
from sarexp.io.raster import RasterInfo, open_raster
from sarexp.plotting.hsi import plot_reconstruction_rows
from sarexp.scenes.dense import DenseTiles
from sarexp.scenes.inputs import resolve_bands
from sarexp.scenes.predictor import SceneOutput, float_output, quicklook_shape


class HyperspectralScenes(DenseTiles):
    """The EMA generator (GAN) or the network (MST++) of ``system`` over RGB scenes."""

    def __init__(self, system: torch.nn.Module, datamodule: Any, device: torch.device, tile: int = 128,
                 overlap: int = 32, batch_size: int = 4, bands: Sequence[str | int] = (1, 2, 3),
                 wavelength_range: Sequence[float] = (400.0, 700.0), write_mat: bool = True,
                 quicklook_pixels: int = 4) -> None:
        super().__init__(tile, overlap, batch_size, device)
        self.network = system.ema_generator if hasattr(system, "ema_generator") else system.net
        self.datamodule = datamodule
        self.channels = int(datamodule.bands)
        self.rgb_bands = list(bands)
        self.wavelengths = np.linspace(float(wavelength_range[0]), float(wavelength_range[1]), self.channels)
        self.write_mat = write_mat
        self.quicklook_pixels = quicklook_pixels
        self.low, self.high = 0.0, 1.0
        self.path: Path | None = None
        self.band_indices: list[int] = []

    def default_inputs(self) -> list[Path]:
        """``<data.root>/Test_RGB`` (generated first when the data is synthetic), as the ARAD data module."""
        self.datamodule.prepare_data()
        return [self.datamodule.root / TEST_RGB_DIR]

    def bind(self, info: RasterInfo) -> list[int]:
        if info.count < 3 and all(isinstance(band, int) for band in self.rgb_bands):
            raise DataError(f"{info.path}: {info.count} band(s); RGB → hyperspectral needs the red, green and blue "
                            "bands (scene.predictor.bands)")
        self.path = info.path
        self.band_indices = resolve_bands(info, self.rgb_bands)
        return self.band_indices

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "bands": self.rgb_bands, "channels": self.channels}

    def prepare(self, read: Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]], info: RasterInfo) -> dict[str, Any]:
        low, high = np.inf, -np.inf
        for values, valid in read():
            if valid.any():
                low, high = min(low, float(values[:, valid].min())), max(high, float(values[:, valid].max()))
        if not high > low:
            raise DataError(f"{info.path}: constant or empty image, cannot be min–max normalised")
        return {"low": low, "high": high}

    def use(self, statistics: dict[str, Any]) -> None:
        self.low, self.high = statistics.get("low", 0.0), statistics.get("high", 1.0)

    def model_input(self, values: np.ndarray) -> np.ndarray:
        return ((values.astype(np.float32) - np.float32(self.low)) / np.float32(self.high - self.low))

    def run_tiles(self, tiles: torch.Tensor) -> torch.Tensor:
        return self.network(tiles)

    def outputs(self) -> list[SceneOutput]:
        return [float_output("", [f"{wavelength:g} nm" for wavelength in self.wavelengths],
                             {"WAVELENGTHS_NM": " ".join(f"{w:g}" for w in self.wavelengths)})]

    def finish(self, outputs: dict[str, Path], info: RasterInfo) -> list[Path]:
        if not self.write_mat:
            return []
        path = outputs[""].with_suffix(".mat")
        with open_raster(outputs[""]) as dataset:
            def tiles() -> Iterator[tuple[int, int, np.ndarray]]:
                for top, left, height, width in grid_windows(dataset.shape, 512, 0):
                    yield top, left, dataset.read(window=Window(left, top, width, height))

            write_cube_tiles(path, (dataset.count, *dataset.shape), tiles(), self.wavelengths)
        return [path]

    def quicklook(self, outputs: dict[str, Path], max_pixels: int) -> Figure:
        with open_raster(outputs[""]) as dataset:
            size = quicklook_shape(dataset.shape, max_pixels)
            cube = dataset.read(out_shape=(dataset.count, *size))
            full_size = dataset.shape
        with open_raster(self.path) as dataset:
            rgb = np.clip(self.model_input(dataset.read(self.band_indices, out_shape=(3, *size))), 0.0, 1.0)
        reference_path = Path(self.datamodule.root) / SPEC_DIR / f"{outputs[''].stem}.mat"
        reference = None
        if size == full_size and reference_path.is_file():
            candidate = read_cube(reference_path, self.channels)
            reference = torch.from_numpy(candidate)[None] if candidate.shape[1:] == size else None
        return plot_reconstruction_rows(torch.from_numpy(rgb)[None], torch.from_numpy(np.nan_to_num(cube))[None],
                                        reference, [outputs[""].stem], self.quicklook_pixels)

