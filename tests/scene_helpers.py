"""Scenes written with rasterio as GIS software writes them, and shipped experiments composed in-process, for
the scene-prediction tests."""

from pathlib import Path

import numpy as np
import rasterio
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from sarexp.config.locate import config_dir
from sarexp.config.schema import register_schema
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
    register_schema()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("config", overrides=[f"paths.root_dir={root}", f"paths.run_dir={root / 'run'}", *overrides],
                      return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    GlobalHydra.instance().clear()
    return cfg


def engine_factory(cfg: DictConfig):
    """engine(output_dir, predictor={…}, **settings): the configured SceneEngine with overrides."""
    def engine(output_dir: Path, predictor: dict | None = None, **settings):
        node = OmegaConf.merge(cfg.scene, {"output_dir": str(output_dir), "progress": False, **settings,
                                           "predictor": predictor or {}})
        return instantiate(node, _convert_="object")

    return engine
