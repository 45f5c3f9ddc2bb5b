"""Seeded synthetic ARAD-1K in its real on-disk layout (see :mod:`sarexp.data.arad_files`).

A scene is a linear mixture of materials from the library of :mod:`sarexp.data.synthetic.spectra`:
``materials_per_scene`` materials own soft regions (a softmax of smooth Gaussian fields, sharpened by
``abundance_sharpness``); each material carries the texture of its surface (``surfaces``: one entry per
surface, each with ranges of the texture's correlation length and relative amplitude, drawn per material).
Every material comes in each surface, and the surfaces of one material are metamers — the same RGB under
every scene light, different spectra — so which one a pixel shows is told by its neighbourhood's texture
(smooth coating vs. grain), never by its colour: what spatial context resolves and a pixel-wise map cannot.
A smooth shading field scales the whole scene. The radiance cube is
reflectance × shading × texture × illuminant (a black body of a colour temperature drawn per scene),
scaled so its ``exposure_percentile`` percentile is ``exposure``.

The RGB image is the numerical integral (trapezoid rule over the 31 bands) of radiance × camera sensitivity
(:func:`sarexp.data.synthetic.spectra.camera_sensitivities`, CIE 1931 through the Wyman et al. fit), gained
so that a unit radiance gives green 1, then optional gamma, Poisson shot noise (``shot_photons`` photons at
full scale; 0 turns it off) and Gaussian read noise (``read_noise``), 8-bit quantisation and JPEG compression
at ``jpeg_quality`` — the steps of NTIRE 2022's RGB simulation.

Scene ids are ``ARAD_1K_NNNN`` numbered from 1: training scenes first, then validation, then test scenes
(test scenes have only ``Test_RGB/<id>.jpg``, as in the challenge).
"""

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from sarexp.data.arad_files import RGB_DIR, SPEC_DIR, SPLIT_DIR, SPLIT_FILES, TEST_RGB_DIR, write_cube
from sarexp.data.synthetic.land_cover import smooth_field
from sarexp.data.synthetic.spectra import (
    WAVELENGTHS,
    band_weights,
    blackbody,
    camera_sensitivities,
    material_library,
    scene_illuminants,
)
from sarexp.data.synthetic.staging import write_atomically
from sarexp.errors import ConfigError

DEFAULT_SCENES = {"train": 16, "validation": 4, "test": 2}
DEFAULT_SURFACES = ({"correlation": (2.0, 4.0), "amplitude": (0.02, 0.06)},
                    {"correlation": (0.6, 1.0), "amplitude": (0.25, 0.35)})
DEFAULT_MATERIALS = {"vegetation": 4, "dry_vegetation": 2, "soil": 4, "water": 2, "paint": 8, "man_made": 3}


def surface_textures(rng: np.random.Generator, surfaces: Sequence[Mapping[str, Sequence[float]]],
                     count: int) -> np.ndarray:
    """(count, 2) texture (correlation px, relative amplitude) of library entries in metameric-group order:
    entry i has surface i mod len(surfaces), its two values drawn from that surface's ranges."""
    rows = [[rng.uniform(*surfaces[i % len(surfaces)][key]) for key in ("correlation", "amplitude")]
            for i in range(count)]
    return np.array(rows)


def render_linear_rgb(radiance: np.ndarray, sensitivities: np.ndarray, wavelengths: np.ndarray = WAVELENGTHS
                      ) -> np.ndarray:
    """(…, 3) ∫ radiance(λ) · s_c(λ) dλ by the trapezoid rule, for radiance (…, bands)."""
    return np.einsum("...b,b,bc->...c", radiance, band_weights(wavelengths), sensitivities)


def camera_rgb(
    rng: np.random.Generator,
    radiance: np.ndarray,
    gamma: float,
    shot_photons: float,
    read_noise: float,
) -> np.ndarray:
    """uint8 (H, W, 3) camera image of a (H, W, 31) radiance: integrate, gain, gamma, noise, quantise."""
    sensitivities = camera_sensitivities()
    gain = 1.0 / render_linear_rgb(np.ones(len(WAVELENGTHS)), sensitivities)[1]
    signal = np.clip(render_linear_rgb(radiance, sensitivities) * gain, 0.0, 1.0)
    if shot_photons > 0:
        signal = rng.poisson(signal * shot_photons) / shot_photons
    if read_noise > 0:
        signal = signal + rng.normal(0.0, read_noise, size=signal.shape)
    signal = np.clip(signal, 0.0, 1.0) ** (1.0 / gamma)
    return np.round(signal * 255.0).astype(np.uint8)


def scene_radiance(
    rng: np.random.Generator,
    library: np.ndarray,
    textures: np.ndarray,
    height: int,
    width: int,
    materials_per_scene: tuple[int, int],
    abundance_correlation: tuple[float, float],
    abundance_sharpness: float,
    shading_range: tuple[float, float],
    temperature_range: tuple[float, float],
    exposure: float,
    exposure_percentile: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """float64 (H, W, 31) radiance of one scene (see the module docstring), the library indices (K,) of its
    materials and their abundances (K, H, W) — the ground truth of which material each pixel shows."""
    count = int(rng.integers(materials_per_scene[0], materials_per_scene[1] + 1))
    chosen = rng.choice(len(library), size=min(count, len(library)), replace=False)
    shape = (height, width)
    logits = np.stack([smooth_field(rng, shape, rng.uniform(*abundance_correlation)) for _ in chosen])
    logits = abundance_sharpness * (logits - logits.max(axis=0))
    abundance = np.exp(logits) / np.exp(logits).sum(axis=0)  # (K, H, W), sums to 1
    texture = np.stack([1.0 + amplitude * smooth_field(rng, shape, correlation)
                        for correlation, amplitude in textures[chosen]])
    reflectance = np.einsum("khw,kb->hwb", abundance * np.clip(texture, 0.2, None), library[chosen])
    low, high = shading_range
    shading = low + (high - low) / (1.0 + np.exp(-1.5 * smooth_field(rng, shape, max(height, width) / 4)))
    radiance = reflectance * shading[..., None] * blackbody(rng.uniform(*temperature_range))
    return radiance * exposure / np.percentile(radiance, exposure_percentile), chosen, abundance


def write_arad(
    root: Path,
    height: int = 64,
    width: int = 80,
    scenes: Mapping[str, int] = DEFAULT_SCENES,
    materials: Mapping[str, int] = DEFAULT_MATERIALS,
    surfaces: Sequence[Mapping[str, Sequence[float]]] = DEFAULT_SURFACES,
    metamer_strength: float = 0.3,
    metamer_visibility: float = 1e-3,
    materials_per_scene: tuple[int, int] = (4, 8),
    abundance_correlation: tuple[float, float] = (4.0, 12.0),
    abundance_sharpness: float = 4.0,
    shading_range: tuple[float, float] = (0.4, 1.0),
    temperature_range: tuple[float, float] = (2800.0, 9000.0),
    exposure: float = 0.9,
    exposure_percentile: float = 99.5,
    gamma: float = 1.0,
    shot_photons: float = 4000.0,
    read_noise: float = 0.002,
    jpeg_quality: int = 90,
    seed: int = 0,
) -> Path:
    """Write a synthetic ARAD-1K into the empty (or missing) ``root``, atomically; returns ``root``."""
    unknown = set(scenes) - {"train", "validation", "test"}
    if unknown or scenes.get("train", 0) < 1 or scenes.get("validation", 0) < 1:
        raise ConfigError(f"data.simulator.scenes needs train ≥ 1 and validation ≥ 1 (and optional test), "
                          f"got {dict(scenes)}")
    if height < 8 or width < 8:
        raise ConfigError(f"data.simulator.height and width must be at least 8, got {height} × {width}")
    if not surfaces or any(set(surface) != {"correlation", "amplitude"} for surface in surfaces):
        raise ConfigError("data.simulator.surfaces must be a non-empty list of {correlation: [low, high], "
                          f"amplitude: [low, high]}} (one per surface), got {surfaces}")
    if not 0.0 < metamer_visibility < 1.0:
        raise ConfigError(f"data.simulator.metamer_visibility must be in (0, 1), got {metamer_visibility}")
    if not 1 <= jpeg_quality <= 100:
        raise ConfigError(f"data.simulator.jpeg_quality must be in [1, 100], got {jpeg_quality}")
    rng = np.random.default_rng(seed)
    library, _ = material_library(rng, dict(materials), len(surfaces), metamer_strength,
                                  scene_illuminants(temperature_range), metamer_visibility)
    textures = surface_textures(rng, surfaces, len(library))

    def fill(staging: Path) -> None:
        number = 0
        for split in ("train", "validation", "test"):
            ids = []
            for _ in range(scenes.get(split, 0)):
                number += 1
                scene_id = f"ARAD_1K_{number:04d}"
                ids.append(scene_id)
                scene_rng = np.random.default_rng([seed, number])
                radiance, _, _ = scene_radiance(scene_rng, library, textures, height, width, materials_per_scene,
                                                abundance_correlation, abundance_sharpness, shading_range,
                                                temperature_range, exposure, exposure_percentile)
                rgb = camera_rgb(scene_rng, radiance, gamma, shot_photons, read_noise)
                folder = TEST_RGB_DIR if split == "test" else RGB_DIR
                (staging / folder).mkdir(exist_ok=True)
                Image.fromarray(rgb).save(staging / folder / f"{scene_id}.jpg", quality=jpeg_quality)
                if split != "test":
                    write_cube(staging / SPEC_DIR / f"{scene_id}.mat",
                               np.maximum(radiance, 1e-4).transpose(2, 0, 1), WAVELENGTHS)
            if split in SPLIT_FILES:
                (staging / SPLIT_DIR).mkdir(exist_ok=True)
                (staging / SPLIT_DIR / SPLIT_FILES[split]).write_text("".join(f"{i}\n" for i in ids))

    return write_atomically(Path(root), fill)
