"""Synthetic InSAR interferograms: a deformation source, a turbulent atmosphere and noise, wrapped.

Model of one interferogram on a size × size grid of ``pixel_m`` metres (LOS = line of sight, positive
towards the satellite):

- **Deformation** (with probability ``deformation_probability``): a Mogi point source (a pressurised
  sphere small against its depth d, in an elastic half-space of Poisson ratio ν) at (x0, y0, d). Its
  surface displacement is u = C·(x − x0, y − y0, d) / R³ with R² = (x − x0)² + (y − y0)² + d² and
  C = (1 − ν)·ΔV/π (Mogi 1958). Here C is set from the peak uplift u_max = C/d², drawn in
  ``peak_mm`` with a random sign (inflation or deflation); d is drawn in ``depth_fraction`` × the image width.
- **Atmosphere**: turbulent tropospheric delay, a Gaussian field with a power-law spectrum
  P(k) ∝ k^(−``atmosphere_exponent``) (8/3 for Kolmogorov turbulence, Hanssen 2001) and an RMS delay
  drawn in ``atmosphere_mm``.
- **Projection**: u · ŝ with ŝ = (−sin θ cos α, sin θ sin α, cos θ) the unit vector to the satellite
  (incidence θ = ``incidence_deg``, ground-range look azimuth α = ``look_azimuth_deg`` from the x axis).
- **Phase**: φ = −4π/λ · LOS (λ = ``wavelength_m``; one fringe = λ/2 of LOS change), plus white Gaussian
  phase noise of ``noise_rad`` (decorrelation), then wrapped to (−π, π] by angle(exp(jφ)).

With ``wrapped=False`` the unwrapped LOS displacement in mm (deformation + atmosphere + noise converted
to mm) is written instead: the "InSAR noise" data of the seed's 32-pixel model, where the atmosphere is
the signal to learn.

Each interferogram has a class, so a classifier can be trained on the data as the FID feature extractor
(``experiment=pdm_feature_extractor``): ``atmosphere_only`` (no source), ``inflation`` (uplift),
``deflation`` (subsidence); indices 0, 1, 2 in the sorted order of the names: ``atmosphere_only`` 0,
``deflation`` 1, ``inflation`` 2.

Layout (``formats``): image folder ``<root>/<split>/<class>/ifg_NNNNN.tif`` (float32 TIFF) and/or
``<root>/<split>.h5`` with ``phase`` (wrapped, radians) or ``los_mm`` (unwrapped) float32 (N, H, W),
``labels`` int64 (N,) and the attribute ``class_names``.
"""

import os
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

import h5py
import numpy as np
import tifffile

from sarexp.data.synthetic.random_fields import power_law_field
from sarexp.data.synthetic.staging import write_atomically
from sarexp.errors import ConfigError

DEFAULT_COUNTS = MappingProxyType({"train": 64, "val": 16, "test": 16})  # interferograms per split


def mogi_displacement(
    x: np.ndarray, y: np.ndarray, source: Sequence[float], peak: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """East, north, up surface displacement of a Mogi source at (x0, y0, depth) with uplift ``peak`` above it."""
    x0, y0, depth = source
    dx, dy = x - x0, y - y0
    strength = peak * depth**2  # C = (1 − ν)ΔV/π, so that u_z(x0, y0) = C / d² = peak
    radius_cubed = (dx**2 + dy**2 + depth**2) ** 1.5
    return strength * dx / radius_cubed, strength * dy / radius_cubed, strength * depth / radius_cubed


def line_of_sight(east: np.ndarray, north: np.ndarray, up: np.ndarray, incidence_deg: float,
                  look_azimuth_deg: float) -> np.ndarray:
    """Projection of a displacement on the unit vector pointing from the ground to the satellite."""
    incidence, azimuth = np.radians(incidence_deg), np.radians(look_azimuth_deg)
    horizontal = -np.cos(azimuth) * east + np.sin(azimuth) * north
    return np.sin(incidence) * horizontal + np.cos(incidence) * up


def wrap(phase: np.ndarray) -> np.ndarray:
    """Phase wrapped to (−π, π]."""
    return np.angle(np.exp(1j * phase))


CLASSES = ("atmosphere_only", "deflation", "inflation")  # sorted: label = index


def interferogram(
    rng: np.random.Generator,
    size: int,
    *,
    wrapped: bool = True,
    deformation_probability: float = 0.8,
    peak_mm: Sequence[float] = (20.0, 80.0),
    depth_fraction: Sequence[float] = (0.08, 0.25),
    atmosphere_mm: Sequence[float] = (1.0, 5.0),
    atmosphere_exponent: float = 8.0 / 3.0,
    noise_rad: float = 0.3,
    wavelength_m: float = 0.0555,
    incidence_deg: float = 35.0,
    look_azimuth_deg: float = 0.0,
) -> tuple[np.ndarray, int]:
    """One interferogram, wrapped phase (radians) or unwrapped LOS displacement (mm), float32 (size, size),
    and its class index in :data:`CLASSES`."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    los_mm = rng.uniform(*atmosphere_mm) * power_law_field(rng, size, atmosphere_exponent)
    label = CLASSES.index("atmosphere_only")
    if rng.random() < deformation_probability:
        source = (*rng.uniform(0.2 * size, 0.8 * size, size=2), size * rng.uniform(*depth_fraction))
        peak = rng.uniform(*peak_mm) * rng.choice([-1.0, 1.0])
        label = CLASSES.index("inflation" if peak > 0 else "deflation")
        los_mm += line_of_sight(*mogi_displacement(x, y, source, peak), incidence_deg, look_azimuth_deg)
    radians_per_mm = -4.0 * np.pi / (wavelength_m * 1000.0)
    phase = radians_per_mm * los_mm + noise_rad * rng.standard_normal((size, size))
    return (wrap(phase) if wrapped else phase / radians_per_mm).astype(np.float32), label


def write_insar_dataset(
    root: str | os.PathLike[str],
    *,
    counts: Mapping[str, int] = DEFAULT_COUNTS,
    image_size: int = 32,
    formats: Sequence[str] = ("hdf5",),
    seed: int = 0,
    wrapped: bool = True,
    deformation_probability: float = 0.8,
    peak_mm: Sequence[float] = (20.0, 80.0),
    depth_fraction: Sequence[float] = (0.08, 0.25),
    atmosphere_mm: Sequence[float] = (1.0, 5.0),
    atmosphere_exponent: float = 8.0 / 3.0,
    noise_rad: float = 0.3,
    wavelength_m: float = 0.0555,
    incidence_deg: float = 35.0,
    look_azimuth_deg: float = 0.0,
) -> Path:
    """Write ``counts[split]`` interferograms per split under ``root`` (see the module docstring)."""
    if image_size < 8 or not counts.get("train") or any(count < 0 for count in counts.values()):
        raise ConfigError("generator: image_size >= 8 and counts with train > 0 are required")
    if not formats or set(formats) - {"folder", "hdf5"}:
        raise ConfigError(f"generator formats must be a non-empty list of folder, hdf5; got {list(formats)}")
    physics = {
        "wrapped": wrapped, "deformation_probability": deformation_probability, "peak_mm": peak_mm,
        "depth_fraction": depth_fraction, "atmosphere_mm": atmosphere_mm, "atmosphere_exponent": atmosphere_exponent,
        "noise_rad": noise_rad, "wavelength_m": wavelength_m, "incidence_deg": incidence_deg,
        "look_azimuth_deg": look_azimuth_deg,
    }
    key = "phase" if wrapped else "los_mm"

    def fill(staging: Path) -> None:
        for split, count in counts.items():
            drawn = [
                interferogram(np.random.default_rng([seed, zlib.crc32(split.encode()), index]), image_size, **physics)
                for index in range(count)
            ]
            if "folder" in formats:
                for index, (image, label) in enumerate(drawn):
                    folder = staging / split / CLASSES[label]
                    folder.mkdir(parents=True, exist_ok=True)
                    tifffile.imwrite(folder / f"ifg_{index:05d}.tif", image)
            if "hdf5" in formats and drawn:
                with h5py.File(staging / f"{split}.h5", "w") as handle:
                    images = np.stack([image for image, _ in drawn])
                    handle.create_dataset(key, data=images, chunks=(1, image_size, image_size))
                    handle.create_dataset("labels", data=np.array([label for _, label in drawn], dtype=np.int64))
                    handle.attrs.update({name: np.asarray(value) for name, value in physics.items()})
                    handle.attrs.update(seed=seed, class_names=list(CLASSES))

    return write_atomically(Path(root), fill)
