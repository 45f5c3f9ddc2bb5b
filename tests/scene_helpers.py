"""Scenes written with rasterio as GIS software writes them, and shipped experiments composed in-process, for
the scene-prediction tests."""

from pathlib import Path

import numpy as np
import rasterio
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from inprocess import compose_run
from sarexp.io.raster import north_up

UTM = north_up(500000.0, 4650000.0, 10.0)


def write_scene(path: Path, bands: np.ndarray, crs: str | None = "EPSG:32632", transform=UTM,
                descriptions: list[str] | None = None, **creation) -> Path:
    """A GeoTIFF written by GDAL with the given creation options (compress, tiled, nodata, …)."""
    profile = {"driver": "GTiff", "height": bands.shape[1], "width": bands.shape[2], "count": bands.shape[0],
               "dtype": bands.dtype.name, "crs": crs, "transform": transform, **creation}
    with rasterio.open(path, "w", **profile) as dataset:
        dataset.write(bands)
        for index, description in enumerate(descriptions or [], start=1):
            dataset.set_band_description(index, description)
    return path


def compose_experiment(root: Path, overrides: list[str]) -> DictConfig:
    """The config the CLI composes for ``overrides`` (paths under ``root``), as the task function sees it."""
    return compose_run(root, root / "run", overrides)


def engine_factory(cfg: DictConfig):
    """engine(output_dir, predictor={…}, **settings): the configured SceneEngine with overrides."""
    def engine(output_dir: Path, predictor: dict | None = None, **settings):
        node = OmegaConf.merge(cfg.scene, {"output_dir": str(output_dir), "progress": False, **settings,
                                           "predictor": predictor or {}})
        return instantiate(node, _convert_="object")

    return engine
