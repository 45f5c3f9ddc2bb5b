"""Synthetic Sentinel-1 wave-mode vignettes in geophysical classes, in the spirit of TenGeoP-SARwv.

TenGeoP-SARwv (Wang et al. 2019) labels 20 km × 20 km wave-mode vignettes with ten geophysical
phenomena: pure ocean waves, wind streaks, micro convective cells, rain cells, biological slicks, sea
ice, iceberg, low wind area, atmospheric front and oceanic front. The seed's SAR diffusion model is
trained on it class-conditionally. No download is possible here, so this module draws vignettes of
eight of those classes from simple models of what makes each visibly distinct:

============================  =====================================================================
class                         mean σ0 pattern (dB, around a random base level)
============================  =====================================================================
``pure_ocean_waves``          swell: narrow-band field (one wavelength, one direction ± ~10°),
                              tilt/hydrodynamic modulation of ±2.5 dB (std)
``wind_streaks``              streaks along the wind: energy at wavevectors across the wind only,
                              long along it (kilometre-scale roll vortices)
``micro_convective_cells``    isotropic ring spectrum, squared (bright cell rims): cellular, no
                              preferred direction
``rain_cells``                1–3 circular cells: bright core (splash), darker ring (damping)
``biological_slicks``         thin dark sinuous bands: a level set of a smooth field, −7 dB
``sea_ice``                   floes: a smooth field quantised into 3 levels with sharp edges
                              (−9, −2, +3 dB) and dark leads
``low_wind_area``             a large dark region (−10 dB) with a smooth boundary
``atmospheric_front``         a curved front line: +3 dB step across it and a bright band on it
============================  =====================================================================

The mean intensity 10^(σ0/10) is multiplied by speckle, Gamma distributed with ``looks`` looks (mean 1,
variance 1/looks: the fully developed speckle of an L-look intensity image), and stored as σ0 in dB
mapped linearly from ``db_range`` onto 0..255 (8-bit; darker pixels clip at the low end, like a noise
floor, so the stored values use most of the range).

On-disk layout (both written by :func:`write_wavemode_dataset`, ``formats``):

- image folder: ``<root>/<split>/<class>/<class>_NNNNN.png`` (8-bit grey), read by
  :class:`sarexp.data.image_folder.ImageFolderDataModule`;
- HDF5: ``<root>/<split>.h5`` with ``images`` uint8 (N, H, W), ``labels`` int64 (N,) (index into the
  sorted class names) and the attributes ``class_names``, ``db_range``, ``looks``, ``seed``, read by
  :class:`sarexp.data.hdf5_images.HDF5ImageDataModule`.
"""

import os
import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

import h5py
import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

from sarexp.data.synthetic.random_fields import field_from_spectrum, oriented_band_field, smooth_field, wavenumbers
from sarexp.data.synthetic.staging import write_atomically
from sarexp.errors import ConfigError

DEFAULT_COUNTS = MappingProxyType({"train": 32, "val": 8, "test": 8})  # images per class and split
Pattern = Callable[[np.random.Generator, int], np.ndarray]


def pure_ocean_waves(rng: np.random.Generator, size: int) -> np.ndarray:
    wavelength = rng.uniform(max(4.0, size / 10), max(6.0, size / 5))
    direction = rng.uniform(0.0, np.pi)
    swell = oriented_band_field(rng, size, wavelength, direction, radial_width=0.08, angular_width=0.15)
    return 2.5 * swell


def wind_streaks(rng: np.random.Generator, size: int) -> np.ndarray:
    spacing = rng.uniform(max(4.0, size / 8), max(6.0, size / 4))
    wind = rng.uniform(0.0, np.pi)
    kx, ky = wavenumbers(size)
    along = kx * np.cos(wind) + ky * np.sin(wind)
    across = -kx * np.sin(wind) + ky * np.cos(wind)
    k_streak = 1.0 / spacing
    long_streaks = np.exp(-0.5 * (along / (0.1 * k_streak)) ** 2)
    power = long_streaks * np.exp(-0.5 * ((np.abs(across) - k_streak) / (0.4 * k_streak)) ** 2)
    power[0, 0] = 0.0
    return 3.0 * field_from_spectrum(rng, power)


def micro_convective_cells(rng: np.random.Generator, size: int) -> np.ndarray:
    cell = rng.uniform(max(5.0, size / 6), max(8.0, size / 3))
    kx, ky = wavenumbers(size)
    k = np.hypot(kx, ky)
    power = np.exp(-0.5 * ((k - 1.0 / cell) / (0.3 / cell)) ** 2)
    power[0, 0] = 0.0
    field = field_from_spectrum(rng, power)
    return 1.8 * (field**2 - 1.0)


def rain_cells(rng: np.random.Generator, size: int) -> np.ndarray:
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float64)
    pattern = 0.5 * smooth_field(rng, size, size / 8)
    for _ in range(rng.integers(1, 4)):
        radius = rng.uniform(size / 8, size / 3.5)
        row, col = rng.uniform(0, size, size=2)
        distance = np.hypot(rows - row, cols - col)
        pattern += 8.0 * np.exp(-0.5 * (distance / (0.45 * radius)) ** 2)
        pattern -= 5.0 * np.exp(-0.5 * ((distance - radius) / (0.3 * radius)) ** 2)
    return pattern


def biological_slicks(rng: np.random.Generator, size: int) -> np.ndarray:
    field = smooth_field(rng, size, rng.uniform(size / 10, size / 5))
    slick = (np.abs(field - rng.uniform(-0.5, 0.5)) < 0.2).astype(np.float64)
    return 0.5 * smooth_field(rng, size, size / 8) - 7.0 * gaussian_filter(slick, 0.6)


def sea_ice(rng: np.random.Generator, size: int) -> np.ndarray:
    field = smooth_field(rng, size, rng.uniform(size / 12, size / 6))
    low, high = np.quantile(field, [rng.uniform(0.2, 0.4), rng.uniform(0.6, 0.8)])
    pattern = np.where(field < low, -9.0, np.where(field < high, -2.0, 3.0))
    leads = np.abs(smooth_field(rng, size, size / 6)) < 0.06
    pattern[leads] = -12.0
    return pattern + 1.0 * rng.standard_normal((size, size))


def low_wind_area(rng: np.random.Generator, size: int) -> np.ndarray:
    field = smooth_field(rng, size, size / 4)
    calm = field < np.quantile(field, rng.uniform(0.3, 0.6))
    return 0.5 * smooth_field(rng, size, size / 10) - 10.0 * gaussian_filter(calm.astype(np.float64), size / 32)


def atmospheric_front(rng: np.random.Generator, size: int) -> np.ndarray:
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float64) - size / 2
    angle = rng.uniform(0.0, np.pi)
    across = -cols * np.sin(angle) + rows * np.cos(angle) + rng.uniform(-size / 6, size / 6)
    along = cols * np.cos(angle) + rows * np.sin(angle)
    across += rng.uniform(-1.0, 1.0) * along**2 / size  # a curved front
    width = size / 40 + 0.5
    step = 3.0 * np.tanh(across / width)
    band = 4.0 * np.exp(-0.5 * (across / width) ** 2)
    return step + band + 0.7 * smooth_field(rng, size, size / 10)


PATTERNS: dict[str, Pattern] = {
    "pure_ocean_waves": pure_ocean_waves,
    "wind_streaks": wind_streaks,
    "micro_convective_cells": micro_convective_cells,
    "rain_cells": rain_cells,
    "biological_slicks": biological_slicks,
    "sea_ice": sea_ice,
    "low_wind_area": low_wind_area,
    "atmospheric_front": atmospheric_front,
}
DEFAULT_CLASSES = ("pure_ocean_waves", "wind_streaks", "micro_convective_cells", "rain_cells", "biological_slicks",
                   "sea_ice")


def speckled_db(rng: np.random.Generator, mean_db: np.ndarray, looks: int) -> np.ndarray:
    """σ0 in dB of an L-look intensity image whose mean is 10^(mean_db/10): Gamma(L, 1/L) speckle."""
    speckle = rng.gamma(shape=looks, scale=1.0 / looks, size=mean_db.shape)
    return 10.0 * np.log10(10.0 ** (mean_db / 10.0) * speckle)


def vignette_db(rng: np.random.Generator, name: str, size: int, looks: int, base_db: Sequence[float]) -> np.ndarray:
    """One speckled vignette of class ``name`` as σ0 in dB (size × size float64)."""
    return speckled_db(rng, rng.uniform(*base_db) + PATTERNS[name](rng, size), looks)


def to_uint8(db: np.ndarray, db_range: Sequence[float]) -> np.ndarray:
    """σ0 in dB → 8-bit code, ``db_range`` onto 0..255, clipped."""
    low, high = db_range
    return np.round(np.clip((db - low) / (high - low), 0.0, 1.0) * 255.0).astype(np.uint8)


def _check(classes: Sequence[str], counts: Mapping[str, int], size: int, looks: int, formats: Sequence[str]) -> None:
    unknown = sorted(set(classes) - set(PATTERNS))
    if unknown or not classes:
        raise ConfigError(f"generator classes {unknown or '[]'} unknown; choose from {sorted(PATTERNS)}")
    if size < 8 or looks < 1 or any(count < 0 for count in counts.values()) or not counts.get("train"):
        raise ConfigError("generator: image_size >= 8, looks >= 1 and counts with train > 0 are required")
    if not formats or set(formats) - {"folder", "hdf5"}:
        raise ConfigError(f"generator formats must be a non-empty list of folder, hdf5; got {list(formats)}")


def write_wavemode_dataset(
    root: str | os.PathLike[str],
    *,
    classes: Sequence[str] = DEFAULT_CLASSES,
    counts: Mapping[str, int] = DEFAULT_COUNTS,
    image_size: int = 32,
    looks: int = 4,
    base_db: Sequence[float] = (-16.0, -10.0),
    db_range: Sequence[float] = (-25.0, 0.0),
    formats: Sequence[str] = ("folder",),
    seed: int = 0,
) -> Path:
    """Write ``counts[split]`` vignettes per class and split under ``root`` (see the module docstring)."""
    _check(classes, counts, image_size, looks, formats)
    names = sorted(classes)

    def fill(staging: Path) -> None:
        for split, count in counts.items():
            images, labels = [], []
            for label, name in enumerate(names):
                for index in range(count):
                    rng = np.random.default_rng([seed, zlib.crc32(split.encode()), zlib.crc32(name.encode()), index])
                    images.append(to_uint8(vignette_db(rng, name, image_size, looks, base_db), db_range))
                    labels.append(label)
                    if "folder" in formats:
                        folder = staging / split / name
                        folder.mkdir(parents=True, exist_ok=True)
                        Image.fromarray(images[-1]).save(folder / f"{name}_{index:05d}.png")
            if "hdf5" in formats and images:
                with h5py.File(staging / f"{split}.h5", "w") as handle:
                    handle.create_dataset("images", data=np.stack(images), chunks=(1, image_size, image_size))
                    handle.create_dataset("labels", data=np.asarray(labels, dtype=np.int64))
                    handle.attrs.update(class_names=names, db_range=list(db_range), looks=looks, seed=seed)

    return write_atomically(Path(root), fill)
