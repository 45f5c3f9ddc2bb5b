"""Seeded synthetic SEN12-FLOOD pairs in the curated layout of the SAR-W-MixMAE preparation scripts.

Layout: ``<root>/{train,test}/<folder>__<image 1>__<image 2>__<label>.npy``, each a float32 array
(2 dates, 2 polarisations VH/VV, H, W) of *linear* σ⁰ (the loader takes 10·log10), H = W = 512 in the real
data; ``label`` is 1 when the second date is flooded. As in the preparation script, every folder (one
location) has a time series of acquisitions, each flooded or not; a pair is a non-flooded date with any
other date of the same folder, once per unordered pair, the non-flooded date first.

Per folder: one land-cover map (flood-prone classes) and a smooth terrain height field; permanent water
covers the lowest ``permanent_water`` fraction of the terrain. A flooded date covers in addition the
lowest 25–50 % (drawn per date), so water area grows between the dates of a flood pair; water takes the
inland-water backscatter of :mod:`sarexp.data.synthetic.land_cover`. Each date has its own speckle; about
a third of the images miss a strip at the swath edge (exact zeros, less than the 25 % the curation keeps).
"""

import os
import zlib
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from sarexp.data.bigearthnet_labels import BEN19_CLASSES
from sarexp.data.synthetic.land_cover import (
    CLASS_FREQUENCY,
    land_cover_map,
    mean_backscatter_db,
    smooth_field,
    speckled_intensity,
)
from sarexp.data.synthetic.staging import write_atomically
from sarexp.errors import ConfigError

DEFAULT_FOLDERS: Mapping[str, int] = {"train": 6, "test": 3}
WATER = BEN19_CLASSES.index("Inland waters")
_FLOOD_PRONE = [BEN19_CLASSES.index(name) for name in (
    "Urban fabric", "Arable land", "Pastures", "Complex cultivation patterns", "Broad-leaved forest",
    "Transitional woodland, shrub", "Inland wetlands",
)]


def folder_seed(seed: int, split: str, folder: int) -> list[int]:
    """Entropy for one folder (location) of a split."""
    return [seed, zlib.crc32(split.encode()), folder]


def _product_name(rng: np.random.Generator, time: datetime) -> str:
    stop = time + timedelta(seconds=25)
    return (
        f"S1{'AB'[int(rng.integers(0, 2))]}_IW_GRDH_1SDV_{time:%Y%m%dT%H%M%S}_{stop:%Y%m%dT%H%M%S}"
        f"_{int(rng.integers(10000, 40000)):06d}_{int(rng.integers(0, 16**6)):06X}_{int(rng.integers(0, 16**4)):04X}"
    )


def _missing_strip(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Zero a strip of up to 15 % of the width at one swath edge, for about a third of the images."""
    if rng.uniform() >= 1 / 3:
        return image
    width = int(rng.integers(1, max(2, int(0.15 * image.shape[-1]))))
    image = image.copy()
    if rng.uniform() < 0.5:
        image[..., :width] = 0.0
    else:
        image[..., -width:] = 0.0
    return image


def folder_series(
    seed: int, split: str, folder: int, *, dates: int, size: int, looks: float, flood_probability: float,
    permanent_water: float,
) -> tuple[list[str], list[bool], list[np.ndarray], list[np.ndarray]]:
    """Names, flood flags, water masks and linear (VH, VV) images of one folder's acquisitions (first dry)."""
    rng = np.random.default_rng(folder_seed(seed, split, folder))
    frequency = np.zeros_like(CLASS_FREQUENCY)
    frequency[_FLOOD_PRONE] = CLASS_FREQUENCY[_FLOOD_PRONE]
    classes = rng.choice(len(frequency), size=int(rng.integers(2, 5)), replace=False, p=frequency / frequency.sum())
    land_cover = land_cover_map(rng, classes, size)
    terrain = smooth_field(rng, (size, size), size / 6)
    start = datetime(2019, 1, 1) + timedelta(seconds=int(rng.integers(0, 300 * 86400)))
    names, flags, masks, images = [], [], [], []
    for date in range(dates):
        flooded = date > 0 and bool(rng.uniform() < flood_probability)
        extent = rng.uniform(0.25, 0.5) if flooded else permanent_water
        water = terrain <= np.quantile(terrain, extent)
        cover = np.where(water, WATER, land_cover)
        image = speckled_intensity(rng, mean_backscatter_db(cover), looks=looks)
        names.append(_product_name(rng, start + timedelta(days=6 * date)))
        flags.append(flooded)
        masks.append(water)
        images.append(_missing_strip(rng, image).astype(np.float32))
    return names, flags, masks, images


def pair_indices(flags: list[bool]) -> list[tuple[int, int]]:
    """(dry date, other date) pairs: each dry date with every other date, each unordered pair once."""
    pairs, seen = [], set()
    for first, flooded in enumerate(flags):
        if flooded:
            continue
        for second in range(len(flags)):
            key = frozenset((first, second))
            if second != first and key not in seen:
                seen.add(key)
                pairs.append((first, second))
    return pairs


def write_sen12flood(
    root: str | os.PathLike[str],
    *,
    folders: Mapping[str, int] = DEFAULT_FOLDERS,
    dates: int = 3,
    size: int = 512,
    looks: float = 4.4,
    flood_probability: float = 0.5,
    permanent_water: float = 0.05,
    seed: int = 0,
) -> Path:
    """Write synthetic curated SEN12-FLOOD pairs atomically into ``root``; see the module docstring."""
    for split, count in folders.items():
        if split not in DEFAULT_FOLDERS:
            raise ConfigError(f"data.simulator.folders: unknown split {split!r}; use {list(DEFAULT_FOLDERS)}")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ConfigError(f"data.simulator.folders.{split} must be a positive integer, got {count!r}")
    if dates < 2 or size < 16 or not 0 <= flood_probability <= 1 or not 0 <= permanent_water < 0.25:
        raise ConfigError(
            "data.simulator needs dates >= 2, size >= 16, 0 <= flood_probability <= 1 and 0 <= permanent_water < 0.25"
        )

    def fill(staging: Path) -> None:
        for split, count in folders.items():
            (staging / split).mkdir()
            for folder in range(count):
                names, flags, _, images = folder_series(
                    seed, split, folder, dates=dates, size=size, looks=looks, flood_probability=flood_probability,
                    permanent_water=permanent_water,
                )
                for first, second in pair_indices(flags):
                    label = int(flags[second])
                    location = folder + 1000 * list(DEFAULT_FOLDERS).index(split)  # numeric ids, as SEN12-FLOOD's
                    name = f"{location}__{names[first]}__{names[second]}__{label}.npy"
                    np.save(staging / split / name, np.stack([images[first], images[second]]))

    return write_atomically(Path(root), fill)
