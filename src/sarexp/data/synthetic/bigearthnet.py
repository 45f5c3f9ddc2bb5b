"""Seeded synthetic BigEarthNet-S1 patches written in the real v1 (folders or zarr) and v2 (reBEN) layouts.

Each patch is a land-cover map of :mod:`sarexp.data.synthetic.land_cover` with its speckled (VH, VV) dB
backscatter; its labels are the classes present in the map: 19-class names for v2, for v1 one CORINE
level-3 name per class (a random one among those that merge into it) plus "Road and rail networks and
associated land" where a road crosses the patch (a class the 19-class nomenclature drops).
:func:`synthetic_patch` regenerates any patch from (seed, split, index), so tests can compare what a
loader returns with the land cover behind it.

Layouts (``<root>`` = ``data.root``; see docs/mixmae_data.md):

- v1 folders: ``BigEarthNet-S1-v1.0/<s1 patch>/<s1 patch>_{VH,VV}.tif`` (float32 dB GeoTIFFs) and
  ``<s1 patch>_labels_metadata.json``; split files ``bigearthnet-{train,val,test}.csv``, one
  ``<s2 patch>,<s1 patch>`` row per patch without header (the S1–S2 split files used with BigEarthNet-S1).
- v1 zarr: the same split files and ``BigEarthNet-S1-v1.0.zarr`` with ``sentinel1/<s1 patch>/{VH,VV}``
  arrays and the JSON fields as attributes of each patch group (the layout the SAR-W-MixMAE loader reads).
- v2: ``BigEarthNet-S1/<first five name parts>/<s1_name>/<s1_name>_{VH,VV}.tif`` and ``metadata.parquet``
  with the reBEN columns patch_id, labels, split, country, s1_name, s2v1_name, contains_seasonal_snow,
  contains_cloud_or_shadow.
"""

import csv
import json
import os
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import zarr

from sarexp.data.bigearthnet_labels import BEN19_CLASSES, CLC43_TO_BEN19
from sarexp.data.synthetic.land_cover import (
    draw_classes,
    land_cover_map,
    mean_backscatter_db,
    road_mask,
    speckled_intensity,
    to_db,
)
from sarexp.data.synthetic.staging import write_atomically
from sarexp.errors import ConfigError
from sarexp.io.raster import north_up, write_geotiff

DEFAULT_PATCHES: Mapping[str, int] = {"train": 100, "validation": 30, "test": 30}
V1_SPLIT_FILES: Mapping[str, str] = {
    "train": "bigearthnet-train.csv",
    "validation": "bigearthnet-val.csv",
    "test": "bigearthnet-test.csv",
}
V1_PATCHES_DIR = "BigEarthNet-S1-v1.0"
V1_ZARR_STORE = "BigEarthNet-S1-v1.0.zarr"
V2_PATCHES_DIR = "BigEarthNet-S1"
V2_METADATA = "metadata.parquet"
ROAD_LABEL = "Road and rail networks and associated land"
ROAD_PROBABILITY = 0.2
PIXEL_SIZE = 10.0  # m: Sentinel-1 GRD pixels of BigEarthNet
_COUNTRIES = ("Austria", "Belgium", "Finland", "Ireland", "Lithuania", "Portugal", "Serbia", "Switzerland")
_UTM_ZONES = (29, 31, 32, 33, 34, 35)
_LEVEL3_BY_CLASS = {
    name: [level3 for level3, merged in CLC43_TO_BEN19.items() if merged == name] for name in BEN19_CLASSES
}


@dataclass(frozen=True)
class SyntheticPatch:
    """One generated patch: names, georeference, land cover, backscatter and labels."""

    s1_name: str
    s2_name: str
    s2v2_name: str
    scene_source: str
    acquisition_time: datetime
    country: str
    epsg: int
    upper_left: tuple[float, float]
    land_cover: np.ndarray
    roads: np.ndarray | None
    image_db: np.ndarray
    labels19: tuple[str, ...]
    labels43: tuple[str, ...]


def patch_seed(seed: int, split: str, index: int) -> list[int]:
    """Entropy for one patch: independent of how many patches the other splits have."""
    return [seed, zlib.crc32(split.encode()), index]


def synthetic_patch(seed: int, split: str, index: int, size: int = 120, looks: float = 4.4) -> SyntheticPatch:
    """The patch ``index`` of ``split``, reproducible from the three integers alone."""
    rng = np.random.default_rng(patch_seed(seed, split, index))
    classes = draw_classes(rng)
    land_cover = land_cover_map(rng, classes, size)
    roads = road_mask(rng, size) if rng.uniform() < ROAD_PROBABILITY else None
    image_db = to_db(speckled_intensity(rng, mean_backscatter_db(land_cover, roads), looks=looks)).astype(np.float32)
    visible = land_cover if roads is None else land_cover[~roads]
    labels19 = tuple(BEN19_CLASSES[index19] for index19 in np.unique(visible))
    labels43 = tuple(str(rng.choice(_LEVEL3_BY_CLASS[name])) for name in labels19)
    if roads is not None:
        labels43 += (ROAD_LABEL,)
    time = datetime(2017, 6, 1) + timedelta(seconds=int(rng.integers(0, 365 * 86400)))
    zone = int(rng.choice(_UTM_ZONES))
    tile = f"{zone}U{'PQRSTU'[index % 6]}{'ABCDEFGH'[index % 8]}"
    column, row = index % 90, index // 90 + 100 * list(DEFAULT_PATCHES).index(split)  # unique across splits
    mission = "S1A" if rng.uniform() < 0.5 else "S1B"
    stamp = time.strftime("%Y%m%dT%H%M%S")
    s2_stamp = (time - timedelta(hours=6)).strftime("%Y%m%dT%H%M%S")
    return SyntheticPatch(
        s1_name=f"{mission}_IW_GRDH_1SDV_{stamp}_{tile}_{column}_{row}",
        s2_name=f"S2A_MSIL2A_{s2_stamp}_{column}_{row}",
        s2v2_name=f"S2A_MSIL2A_{s2_stamp}_N9999_R022_T{tile}_{column:02d}_{row:02d}",
        scene_source=f"{mission}_IW_GRDH_1SDV_{stamp}_{(time + timedelta(seconds=25)).strftime('%Y%m%dT%H%M%S')}"
        f"_{int(rng.integers(10000, 40000)):06d}_{int(rng.integers(0, 16**6)):06X}_{int(rng.integers(0, 16**4)):04X}",
        acquisition_time=time,
        country=str(rng.choice(_COUNTRIES)),
        epsg=32600 + zone,
        upper_left=(300000.0 + 1200.0 * column, 5400000.0 - 1200.0 * row),
        land_cover=land_cover,
        roads=roads,
        image_db=image_db,
        labels19=labels19,
        labels43=labels43,
    )


def _projection_wkt(epsg: int) -> str:
    zone = epsg - 32600
    return (
        f'PROJCS["WGS 84 / UTM zone {zone}N",GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,'
        f'298.257223563]],PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]],PROJECTION["Transverse_Mercator"],'
        f'PARAMETER["central_meridian",{6 * zone - 183}],PARAMETER["scale_factor",0.9996],'
        f'PARAMETER["false_easting",500000],UNIT["metre",1],AUTHORITY["EPSG","{epsg}"]]'
    )


def v1_metadata(patch: SyntheticPatch, size: int) -> dict[str, object]:
    """The ``<patch>_labels_metadata.json`` fields of BigEarthNet-S1 v1.0."""
    ulx, uly = patch.upper_left
    return {
        "labels": list(patch.labels43),
        "coordinates": {"ulx": ulx, "uly": uly, "lrx": ulx + PIXEL_SIZE * size, "lry": uly - PIXEL_SIZE * size},
        "projection": _projection_wkt(patch.epsg),
        "corresponding_s2_patch": patch.s2_name,
        "scene_source": patch.scene_source,
        "acquisition_time": patch.acquisition_time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def _check(patches: Mapping[str, int], size: int) -> None:
    for split, count in patches.items():
        if split not in DEFAULT_PATCHES:
            raise ConfigError(f"data.simulator.patches: unknown split {split!r}; use {list(DEFAULT_PATCHES)}")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ConfigError(f"data.simulator.patches.{split} must be a positive integer, got {count!r}")
    if size < 16:
        raise ConfigError(f"data.simulator.size must be at least 16 pixels, got {size}")


def _generate(seed: int, patches: Mapping[str, int], size: int, looks: float) -> dict[str, list[SyntheticPatch]]:
    _check(patches, size)
    return {
        split: [synthetic_patch(seed, split, index, size, looks) for index in range(count)]
        for split, count in patches.items()
    }


def _write_geotiffs(directory: Path, patch: SyntheticPatch) -> None:
    directory.mkdir(parents=True)
    for channel, polarisation in enumerate(("VH", "VV")):
        write_geotiff(directory / f"{patch.s1_name}_{polarisation}.tif", patch.image_db[channel].astype(np.float32),
                      crs=patch.epsg, transform=north_up(*patch.upper_left, PIXEL_SIZE))


def _write_v1_split_files(root: Path, generated: Mapping[str, list[SyntheticPatch]]) -> None:
    for split, patches in generated.items():
        with open(root / V1_SPLIT_FILES[split], "w", newline="") as handle:
            csv.writer(handle).writerows((patch.s2_name, patch.s1_name) for patch in patches)


def write_benv1(
    root: str | os.PathLike[str],
    *,
    patches: Mapping[str, int] = DEFAULT_PATCHES,
    size: int = 120,
    looks: float = 4.4,
    seed: int = 0,
) -> Path:
    """Write synthetic BigEarthNet-S1 v1.0 (per-patch folders and split CSVs) atomically into ``root``."""
    generated = _generate(seed, patches, size, looks)

    def fill(staging: Path) -> None:
        for split_patches in generated.values():
            for patch in split_patches:
                directory = staging / V1_PATCHES_DIR / patch.s1_name
                _write_geotiffs(directory, patch)
                metadata = json.dumps(v1_metadata(patch, size), indent=2)
                (directory / f"{patch.s1_name}_labels_metadata.json").write_text(metadata)
        _write_v1_split_files(staging, generated)

    return write_atomically(Path(root), fill)


def write_benv1_zarr(
    root: str | os.PathLike[str],
    *,
    patches: Mapping[str, int] = DEFAULT_PATCHES,
    size: int = 120,
    looks: float = 4.4,
    seed: int = 0,
) -> Path:
    """Write synthetic BigEarthNet-S1 v1.0 as one zarr store (plus split CSVs) atomically into ``root``."""
    generated = _generate(seed, patches, size, looks)

    def fill(staging: Path) -> None:
        sentinel1 = zarr.open_group(staging / V1_ZARR_STORE, mode="w").create_group("sentinel1")
        for split_patches in generated.values():
            for patch in split_patches:
                group = sentinel1.create_group(patch.s1_name)
                for channel, polarisation in enumerate(("VH", "VV")):
                    group.create_array(polarisation, data=patch.image_db[channel])
                group.attrs.update(v1_metadata(patch, size))
        _write_v1_split_files(staging, generated)

    return write_atomically(Path(root), fill)


def v2_folder(s1_name: str) -> str:
    """The reBEN parent folder of an S1 patch: its name without tile and grid position (first five parts)."""
    return "_".join(s1_name.split("_")[:5])


def write_benv2(
    root: str | os.PathLike[str],
    *,
    patches: Mapping[str, int] = DEFAULT_PATCHES,
    size: int = 120,
    looks: float = 4.4,
    seed: int = 0,
) -> Path:
    """Write synthetic BigEarthNet v2.0 (reBEN) S1 patches and ``metadata.parquet`` atomically into ``root``."""
    generated = _generate(seed, patches, size, looks)

    def fill(staging: Path) -> None:
        rows = []
        for split, split_patches in generated.items():
            for patch in split_patches:
                _write_geotiffs(staging / V2_PATCHES_DIR / v2_folder(patch.s1_name) / patch.s1_name, patch)
                rows.append({
                    "patch_id": patch.s2v2_name,
                    "labels": list(patch.labels19),
                    "split": split,
                    "country": patch.country,
                    "s1_name": patch.s1_name,
                    "s2v1_name": patch.s2_name,
                    "contains_seasonal_snow": False,
                    "contains_cloud_or_shadow": False,
                })
        pd.DataFrame(rows).to_parquet(staging / V2_METADATA, index=False)

    return write_atomically(Path(root), fill)
