"""The synthetic ARAD-1K's metameric surfaces: every material comes in a smooth and a grainy surface whose
spectra differ by a metameric black — the same RGB under every scene light, told apart only by texture.
So no pixel-wise map can separate them (closed-form floor below) while a model that sees neighbours can."""

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from sarexp.config.locate import config_dir
from sarexp.data.synthetic.arad import camera_rgb, render_linear_rgb, scene_radiance, surface_textures, write_arad
from sarexp.data.synthetic.spectra import blackbody, camera_sensitivities, material_library, scene_illuminants
from sarexp.errors import ConfigError
from sarexp.models.linear_spectral import LinearSpectralMap

SCENE_LIGHTS = (2800.0, 9000.0)  # conf/data/arad1k.yaml: simulator.temperature_range
ONE_OF_EACH = {"vegetation": 1, "dry_vegetation": 1, "soil": 1, "water": 1, "paint": 1, "man_made": 1}


def pairs(illuminants: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(smooth, grainy) reflectances, (6, 31) each: one material per family in the default two surfaces."""
    library, _ = material_library(np.random.default_rng(0), ONE_OF_EACH, 2, 0.3, illuminants)
    return library[0::2], library[1::2]


def pixel_map_floor(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The least MRAE any per-pixel map reaches on equally many pixels of spectra a and b sharing one RGB.

    Per band, min over f of ½(|f − a|/a + |f − b|/b) = ½|a − b| / max(a, b) (at f = min(a, b)); brightness
    and illuminant scale a and b alike, so the floor holds at every exposure and light.
    """
    return 0.5 * np.mean(np.abs(a - b) / np.maximum(a, b), axis=-1)


def least_squares_mrae(a: np.ndarray, b: np.ndarray, temperature: float) -> float:
    """MRAE of the affine least-squares map fitted on, and applied to, 8-bit camera RGB of a and b at 15
    brightness levels under a black body (the baseline of benchmarks/hsi_table.py, on a pair alone)."""
    radiance = (np.linspace(0.3, 1.0, 15)[:, None, None] * np.stack([a, b]) * blackbody(temperature)).reshape(-1, 31)
    rgb = render_linear_rgb(radiance, camera_sensitivities())
    rgb = np.round(255.0 * rgb / rgb.max()) / 255.0
    x = torch.from_numpy(rgb).T[None, :, :, None]
    y = torch.from_numpy(radiance).T[None, :, :, None]
    fit = LinearSpectralMap().double().fit([(x, y)], ridge=1e-9)  # one light: the RGBs lie on one line
    with torch.no_grad():
        return float(((fit(x) - y).abs() / y).mean())


def test_surfaces_render_alike_under_every_scene_light_and_differ_in_spectrum() -> None:
    smooth, grainy = pairs(scene_illuminants(SCENE_LIGHTS))
    for temperature in (2800.0, 3300.0, 4700.0, 6500.0, 9000.0):  # also between the sampled lights
        rgb_smooth, rgb_grainy = (render_linear_rgb(s * blackbody(temperature), camera_sensitivities())
                                  for s in (smooth, grainy))
        assert np.abs(rgb_smooth - rgb_grainy).max() < 2e-4 * rgb_smooth.max()  # 1/20 of an 8-bit step
    assert pixel_map_floor(smooth, grainy).min() > 0.03
    assert np.sqrt(np.mean((grainy / smooth - 1.0) ** 2, axis=1)).min() > 0.1


def test_least_squares_map_stays_above_the_pixel_floor_on_every_pair() -> None:
    smooth, grainy = pairs(scene_illuminants(SCENE_LIGHTS))
    floors = pixel_map_floor(smooth, grainy)
    for temperature in (2800.0, 4700.0, 9000.0):
        errors = np.array([least_squares_mrae(a, b, temperature) for a, b in zip(smooth, grainy)])
        assert (errors >= floors).all(), (temperature, errors, floors)
    # The floor binds only because the pair is metameric under that light: surfaces made metameric under
    # 5500 K alone separate in RGB at 2800 K, and the least-squares map then goes below the floor.
    smooth, grainy = pairs(blackbody(5500.0))
    errors = np.array([least_squares_mrae(a, b, 2800.0) for a, b in zip(smooth, grainy)])
    assert (errors < pixel_map_floor(smooth, grainy)).any()


def local_contrast(luminance: np.ndarray) -> np.ndarray:
    """Standard deviation / mean of each pixel's 3 × 3 neighbourhood (edges padded)."""
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(luminance, 1, mode="edge"), (3, 3))
    return windows.std(axis=(-2, -1)) / np.maximum(windows.mean(axis=(-2, -1)), 1e-6)


def test_texture_not_colour_tells_the_surfaces_apart_in_the_camera_image() -> None:
    simulator = OmegaConf.to_container(OmegaConf.load(config_dir() / "data" / "arad1k.yaml").simulator)
    rng = np.random.default_rng(0)
    library, _ = material_library(rng, {"paint": 1}, len(simulator["surfaces"]), simulator["metamer_strength"],
                                  scene_illuminants(simulator["temperature_range"]), simulator["metamer_visibility"])
    textures = surface_textures(rng, simulator["surfaces"], len(library))
    radiance, chosen, abundance = scene_radiance(
        rng, library, textures, 96, 96, (2, 2), *(simulator[key] for key in (
            "abundance_correlation", "abundance_sharpness", "shading_range", "temperature_range", "exposure",
            "exposure_percentile")))
    image = Image.fromarray(camera_rgb(rng, radiance, simulator["gamma"], simulator["shot_photons"],
                                       simulator["read_noise"]))
    encoded = io.BytesIO()
    image.save(encoded, format="JPEG", quality=simulator["jpeg_quality"])  # as write_arad stores it
    rgb = np.asarray(Image.open(encoded), dtype=np.float64).transpose(2, 0, 1)[:, 1:-1, 1:-1]
    share = np.zeros((len(library), 94, 94))
    share[chosen] = abundance[:, 1:-1, 1:-1]
    pure_smooth, pure_grainy = share[0] > 0.95, share[1] > 0.95  # surface 0 is smooth, surface 1 grainy
    assert pure_smooth.sum() > 500 and pure_grainy.sum() > 500
    contrast = local_contrast(rgb.mean(axis=0))
    assert np.median(contrast[pure_grainy]) > 3 * np.median(contrast[pure_smooth])
    chromaticity = rgb / np.maximum(rgb.sum(axis=0), 1e-6)
    for channel in chromaticity:
        assert abs(np.median(channel[pure_grainy]) - np.median(channel[pure_smooth])) < 0.01


def test_malformed_surfaces_are_named(tmp_path: Path) -> None:
    for surfaces in ([], [{"correlation": [1.0, 2.0]}]):
        with pytest.raises(ConfigError, match="data.simulator.surfaces"):
            write_arad(tmp_path / "arad", height=8, width=8, scenes={"train": 1, "validation": 1}, surfaces=surfaces)
    assert not (tmp_path / "arad").exists()
