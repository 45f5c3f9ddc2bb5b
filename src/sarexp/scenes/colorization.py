"""Sentinel-1 scenes → RGB GeoTIFFs with the colorization latent-diffusion model (guided img2img, as
``task=colorize``), on the scene's own grid.

Input: the ``bands`` the model was trained on (VV) in ``units`` (db | linear | amplitude,
:mod:`sarexp.scenes.inputs`), mapped as the training PNGs were made: dB clipped to ``db_range`` ([−25, 0]),
scaled to 0…255, rounded to 8 bits (``quantize``), then x / 127.5 − 1.

Seams: each block (``scene.block_size`` pixels) is one latent canvas, encoded and decoded through the VAE in
overlapping tiles (diffusers' ``AutoencoderKL`` tiling, ``enable_tiling``; tiles of ``vae_tile`` pixels) and
denoised jointly (MultiDiffusion, :mod:`sarexp.diffusion.multidiffusion`): at every step each window of the
training size (``data.image_size`` / 8 latent pixels) overlapping its neighbours by ``window_overlap`` latent
pixels predicts, and the canvas averages them. Memory is bounded by the block, not the scene: blocks overlap by
``scene.block_overlap`` and cross-fade (the noise is a function of the latent pixel's position in the scene, so
overlapping blocks start from the same noise there). ``joint: false`` colorizes non-overlapping windows
independently instead (the naive baseline of the seam measurement, benchmarks/scene_predict.py).

Prompt: ``data.prompt_template`` with ``region`` and ``season`` (as task.region / task.season of
task=colorize), or, with ``from_metadata: true``, those of the scene (:mod:`sarexp.scenes.geography`).
The same ``seed`` gives the same scene.
"""

import logging
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sarexp.data.tiling import grid_windows
from sarexp.diffusion.guidance import guided_model_fn
from sarexp.diffusion.img2img import img2img, kept_steps
from sarexp.diffusion.multidiffusion import Window, multidiffusion_model_fn
from sarexp.diffusion.samplers import Sampler
from sarexp.errors import ConfigError
from sarexp.io.cog import RasterSpec
from sarexp.io.raster import RasterInfo, open_raster
from sarexp.scenes.dense import fill_invalid
from sarexp.scenes.geography import scene_region_season
from sarexp.scenes.inputs import check_units, resolve_bands, to_db
from sarexp.scenes.predictor import Advance, SceneOutput, ScenePredictor, quicklook_shape

log = logging.getLogger(__name__)
NOISE_CHUNK = 64  # latent pixels per independently seeded noise chunk


def position_noise(seed: int, channels: int, window: Window) -> torch.Tensor:
    """(1, channels, h, w) standard normal noise of the latent pixels ``window`` (top, left, h, w) of a scene:
    each chunk of NOISE_CHUNK² pixels is drawn from its own generator, seeded by (seed, chunk row, column)."""
    top, left, height, width = window
    noise = torch.empty(1, channels, height, width)
    for row in range(top // NOISE_CHUNK, (top + height - 1) // NOISE_CHUNK + 1):
        for col in range(left // NOISE_CHUNK, (left + width - 1) // NOISE_CHUNK + 1):
            key = zlib.crc32(f"{seed}:{row}:{col}".encode())
            chunk = torch.randn(channels, NOISE_CHUNK, NOISE_CHUNK, generator=torch.Generator().manual_seed(key))
            r0, c0 = max(top, row * NOISE_CHUNK), max(left, col * NOISE_CHUNK)
            r1, c1 = min(top + height, (row + 1) * NOISE_CHUNK), min(left + width, (col + 1) * NOISE_CHUNK)
            inside = chunk[:, r0 - row * NOISE_CHUNK:r1 - row * NOISE_CHUNK, c0 - col * NOISE_CHUNK:c1 - col * NOISE_CHUNK]
            noise[0, :, r0 - top:r1 - top, c0 - left:c1 - left] = inside
    return noise


class ColorizationScenes(ScenePredictor):
    """A colorization_ldm system's guided img2img over whole scenes (see the module docstring)."""

    channels = 3

    def __init__(self, system: torch.nn.Module, datamodule: Any, device: torch.device, sampler: Sampler,
                 num_inference_steps: int = 50, strength: float = 0.8, guidance_scale: float = 7.5,
                 use_ema: bool = True, seed: int = 0, region: str = "tropical", season: str = "summer",
                 from_metadata: bool = False, bands: Sequence[str | int] = ("VV",), units: str = "db",
                 calibration: float = 1.0, floor: float = 1e-6, db_range: Sequence[float] = (-25.0, 0.0),
                 quantize: bool = True, window_overlap: int | None = None, window_weights: str = "uniform",
                 joint: bool = True, batch_size: int = 8, vae_tile: int | None = None) -> None:
        check_units(units, calibration, floor)
        self.window = int(datamodule.image_size) // 8
        self.window_overlap = self.window // 2 if window_overlap is None else int(window_overlap)
        if num_inference_steps < 1 or batch_size < 1 or not 0 <= self.window_overlap < self.window:
            raise ConfigError(f"scene.predictor needs num_inference_steps >= 1, batch_size >= 1 and 0 <= "
                              f"window_overlap < {self.window} (data.image_size / 8), got {num_inference_steps}, "
                              f"{batch_size}, {self.window_overlap}")
        for key, value, allowed in (("region", region, datamodule.regions), ("season", season, datamodule.seasons)):
            if value not in allowed:
                raise ConfigError(f"scene.predictor.{key}={value!r} is not one of {', '.join(allowed)} (data.{key}s)")
        self.system, self.datamodule, self.device = system, datamodule, device
        self.sampler = sampler
        self.sampler.steps = int(num_inference_steps)
        self.strength, self.guidance_scale, self.use_ema, self.seed = strength, guidance_scale, use_ema, seed
        self.region, self.season, self.from_metadata = region, season, from_metadata
        self.wanted, self.units, self.calibration, self.floor = list(bands), units, calibration, floor
        self.db_range, self.quantize = (float(db_range[0]), float(db_range[1])), quantize
        if window_weights not in ("uniform", "linear"):
            raise ConfigError(f"scene.predictor.window_weights must be uniform or linear, got {window_weights!r}")
        self.joint, self.batch_size, self.window_weights = joint, batch_size, window_weights
        vae = system.encoders.vae
        factor = 2 ** (len(vae.config.block_out_channels) - 1)
        vae.enable_tiling()  # diffusers' own tiled encode / decode for canvases above its tile size
        if vae_tile is not None:
            vae.tile_sample_min_size, vae.tile_latent_min_size = int(vae_tile), int(vae_tile) // factor
        self.vae_tile = int(vae.tile_sample_min_size)
        self.prompt = ""

    def bind(self, info: RasterInfo) -> list[int]:
        bands = resolve_bands(info, self.wanted)
        region, season = scene_region_season(info) if self.from_metadata else (self.region, self.season)
        try:
            self.prompt = str(self.datamodule.prompt_template).format(region=region, season=season)
        except (KeyError, IndexError) as error:
            raise ConfigError(f"data.prompt_template uses {error} besides {{region}} and {{season}}; a scene gives "
                              "only those two") from None
        log.info("%s: prompt %r", info.path, self.prompt)
        return bands

    def settings(self) -> dict[str, Any]:
        names = ("prompt", "strength", "guidance_scale", "use_ema", "seed", "wanted", "units", "calibration", "floor",
                 "db_range", "quantize", "window", "window_overlap", "window_weights", "joint", "vae_tile")
        sampler = {key: value for key, value in sorted(vars(self.sampler).items()) if key != "last_nfe"}
        return {**{name: getattr(self, name) for name in names}, "sampler": [type(self.sampler).__name__, sampler]}

    def _canvas(self, height: int, width: int) -> tuple[int, int]:
        """Pixels of a block's canvas: at least one window, a whole number of latent pixels."""
        size = 8 * self.window
        return -(-max(height, size) // 8) * 8, -(-max(width, size) // 8) * 8

    def _windows(self, height: int, width: int) -> list[Window]:
        rows, cols = self._canvas(height, width)
        return grid_windows((rows // 8, cols // 8), self.window, self.window_overlap if self.joint else 0)

    def tile_count(self, block: tuple[int, int, int, int]) -> int:
        return len(self._windows(block[2], block[3])) * kept_steps(self.sampler.steps, self.strength)

    def sar_input(self, values: np.ndarray) -> np.ndarray:
        """(1, H, W) float32 in [−1, 1]: the training PNGs' mapping of the backscatter."""
        low, high = self.db_range
        scaled = np.clip((to_db(values[:1], self.units, self.calibration, self.floor) - low) / (high - low), 0, 1)
        grey = np.round(255.0 * scaled) if self.quantize else 255.0 * scaled
        return (grey / 127.5 - 1.0).astype(np.float32)

    def predict_block(self, values: np.ndarray, valid: np.ndarray, advance: Advance,
                      origin: tuple[int, int] = (0, 0)) -> np.ndarray:
        height, width = valid.shape
        rows, cols = self._canvas(height, width)
        sar = np.pad(fill_invalid(self.sar_input(values), valid), ((0, 0), (0, rows - height), (0, cols - width)),
                     mode="symmetric")
        torch.manual_seed(zlib.crc32(f"{self.seed}:{origin}".encode()))  # stochastic samplers' own draws
        encoders = self.system.encoders
        condition = encoders.condition_latent(torch.from_numpy(sar)[None].to(self.device))
        noise = position_noise(self.seed, condition.shape[1], (origin[0] // 8, origin[1] // 8, rows // 8, cols // 8))
        context = encoders.context([self.prompt], torch.zeros(1, dtype=torch.bool, device=self.device))
        null = encoders.null_context(1)
        steps = kept_steps(self.sampler.steps, self.strength)

        def guided(x: torch.Tensor, t: torch.Tensor, condition_windows: torch.Tensor) -> torch.Tensor:
            net_fn = self.system.unet_fn(condition_windows, self.use_ema)
            contexts = context.expand(len(x), -1, -1)
            return guided_model_fn(net_fn, contexts, null, self.guidance_scale)(x, t)

        if self.joint:
            def window_fn(x: torch.Tensor, t: torch.Tensor, windows: list[Window]) -> torch.Tensor:
                crops = torch.cat([condition[..., top:top + h, left:left + w] for top, left, h, w in windows])
                return guided(x, t, crops)

            model_fn = multidiffusion_model_fn(window_fn, tuple(condition.shape[-2:]), self.window,
                                               self.window_overlap, self.batch_size, advance, self.window_weights)
            image = encoders.decode(img2img(self.sampler, self.system.diffusion, model_fn, condition, self.strength,
                                            noise.to(condition)))
        else:
            image = self._independent_windows(condition, noise.to(condition), guided, advance, steps)
        result = image[0, :, :height, :width].float().cpu().numpy()
        result[:, ~valid] = np.nan
        return result

    def _independent_windows(self, condition: torch.Tensor, noise: torch.Tensor, guided: Any, advance: Advance,
                             steps: int) -> torch.Tensor:
        """The naive baseline: every window colorized (and decoded) on its own, placed side by side."""
        windows = grid_windows(tuple(condition.shape[-2:]), self.window, 0)
        image = torch.zeros(1, 3, condition.shape[-2] * 8, condition.shape[-1] * 8, device=condition.device)
        for start in range(0, len(windows), self.batch_size):
            batch = windows[start:start + self.batch_size]
            crop = lambda tensor: torch.cat([tensor[..., t:t + h, l:l + w] for t, l, h, w in batch])  # noqa: E731
            crops = crop(condition)
            latents = img2img(self.sampler, self.system.diffusion, lambda x, t: guided(x, t, crops), crops,
                              self.strength, crop(noise))
            for (top, left, h, w), tile in zip(batch, self.system.encoders.decode(latents)):
                image[0, :, 8 * top:8 * (top + h), 8 * left:8 * (left + w)] = tile
            advance(len(batch) * steps)
        return image

    def outputs(self) -> list[SceneOutput]:
        def rgb(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            valid = np.isfinite(values).all(axis=0)
            pixels = np.round((np.clip(np.nan_to_num(values), -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)
            return pixels, valid

        spec = RasterSpec(3, "uint8", None, ("red", "green", "blue"), rgb=True, tags={"PROMPT": self.prompt})
        return [SceneOutput("", spec, rgb)]

    def quicklook(self, outputs: dict[str, Path], max_pixels: int) -> np.ndarray:
        with open_raster(outputs[""]) as dataset:
            shape = quicklook_shape(dataset.shape, max_pixels)
            pixels = dataset.read(out_shape=(3, *shape))
            mask = dataset.dataset_mask(out_shape=shape) > 0
        return np.where(mask[..., None], np.moveaxis(pixels, 0, -1), 0).astype(np.uint8)
