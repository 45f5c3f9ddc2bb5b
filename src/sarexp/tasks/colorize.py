"""task=colorize: SAR → optical with a trained latent-diffusion checkpoint (the seed's infer_model.py).

Guided img2img (:meth:`LatentDiffusionSystem.colorize`): the SAR image's VAE latent is both the init latent
(noised to the first of the last ⌊steps·strength⌋ sampler steps) and the conditioning latent concatenated to
the UNet input; the prompt "Colorize the image, Region: R, Season: S" (data.prompt_template) steers through
cross-attention with classifier-free guidance. The sampler is the `sampler` group (ddim_latent by default,
dpm_solver_latent for DPM-Solver++), run for task.num_inference_steps.

Modes (task.mode): ``single`` (task.input_image + region + season → task.output_path), ``batch`` (every PNG of
task.input_dir × task.regions × task.seasons → <stem>_<region>_<season>.png and <stem>_grid.png, regions as
rows) and ``dataset`` (task.num_samples validation pairs → SAR | generated | ground truth panels and metrics,
see :mod:`sarexp.tasks.colorize_dataset`). Returns images per second (single, batch) or the PSNR (dataset). The
configured image loggers get the same pictures: ``colorize/generated`` (single), ``colorize/grid/<stem>`` (batch),
``colorize/panels`` (dataset).

The model, diffusion, data, system and sampler settings and the clip_checkpoint / vae_checkpoint come from the
LDM run that wrote ckpt_path (its `.hydra/config.yaml`, :mod:`sarexp.tasks.source_config`), so
`task=colorize ckpt_path=…` needs no repetition of the training command line.
"""

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from sarexp.io.checkpoint_io import load_weights_file
from sarexp.diffusion.samplers import Sampler
from sarexp.errors import ConfigError, DataError
from sarexp.rundir import record_run_info, write_metrics
from sarexp.tasks.builders import build_system, run_dir, seed_everything
from sarexp.tasks.checkpoints import loading
from sarexp.tasks.colorize_dataset import check_classifier_runs, colorize_dataset
from sarexp.tasks.colorize_output import write_png_atomic
from sarexp.tasks.figures import TaskFigures, task_figures
from sarexp.tasks.generative import resolve_device
from sarexp.tasks.source_config import run_checkpoint

log = logging.getLogger(__name__)
MODES = ("single", "batch", "dataset")
ENCODER_KEYS = ("clip_checkpoint", "vae_checkpoint")  # top-level keys the LDM's system group interpolates


def load_ldm(cfg: DictConfig, checkpoint: Path, device: torch.device) -> Any:
    """The configured LatentDiffusionSystem with the checkpoint's weights (weights-only load), in eval mode."""
    from sarexp.systems.latent_diffusion import LatentDiffusionSystem

    system = build_system(cfg)
    if not isinstance(system, LatentDiffusionSystem):
        raise _not_ldm(checkpoint, f"system {type(system).__name__}")
    state = load_weights_file(checkpoint, "ckpt_path")
    with loading(checkpoint):
        system.load_state_dict(state["state_dict"])
    return system.to(device).eval()


def _not_ldm(checkpoint: Path, found: str) -> ConfigError:
    return ConfigError(f"task=colorize needs a colorization_ldm model, got {found} for ckpt_path={checkpoint}; keep "
                       "the LDM run's .hydra/config.yaml beside its checkpoints/ or add experiment=colorization_ldm")


def prompt_for(cfg: DictConfig, region: str | None, season: str | None) -> str:
    """data.prompt_template filled with a region and season from data.regions / data.seasons."""
    for key, value, allowed in (("region", region, cfg.data.regions), ("season", season, cfg.data.seasons)):
        if value not in list(allowed):
            raise ConfigError(f"task.{key}={value!r} is not one of {', '.join(allowed)} (data.{key}s)")
    return str(cfg.data.prompt_template).format(region=region, season=season)


def colorize(
    cfg: DictConfig,
    mode: str = "single",
    input_image: str | None = None,
    region: str | None = None,
    season: str | None = None,
    output_path: str | None = None,
    input_dir: str | None = None,
    regions: list[str] | None = None,
    seasons: list[str] | None = None,
    output_dir: str | None = None,
    num_samples: int = 20,
    guidance_scale: float = 7.5,
    num_inference_steps: int = 50,
    strength: float = 0.8,
    seed: int | None = None,
    batch_size: int = 16,
    use_ema: bool = True,
    baselines: bool = True,
    extractor_checkpoint: str | None = None,
    inception_weights: str | None = None,
    season_classifier_checkpoint: str | None = None,
    device: str = "auto",
) -> float:
    if mode not in MODES:
        raise ConfigError(f"task.mode must be one of {', '.join(MODES)}, got {mode!r}")
    if num_inference_steps < 1 or batch_size < 1 or num_samples < 1:
        raise ConfigError("task.num_inference_steps, task.batch_size and task.num_samples must be >= 1")
    checkpoint = run_checkpoint(cfg, "colorize", ENCODER_KEYS)  # the LDM run's settings, before any use of cfg
    if "prompt_template" not in cfg.data:
        raise _not_ldm(checkpoint, f"data {cfg.data.get('_target_')}")
    if mode == "single":
        prompt_for(cfg, region, season)  # a typo fails before the models load
    trusted = None
    if mode == "dataset":  # the classifiers' run configs, checked before anything is colorized
        trusted = check_classifier_runs(cfg, extractor_checkpoint, season_classifier_checkpoint)
    directory = run_dir(cfg)
    seed = seed_everything(cfg) if seed is None else int(seed)
    record_run_info(directory, seed)
    target = resolve_device(device)
    system = load_ldm(cfg, checkpoint, target)
    sampler: Sampler = instantiate(cfg.sampler)
    sampler.steps = int(num_inference_steps)
    settings = {"sampler": sampler, "strength": strength, "guidance_scale": guidance_scale, "use_ema": use_ema}

    def run(sar: torch.Tensor, prompts: list[str], scale: float | None = None) -> torch.Tensor:
        """Colorized images, in batches, with one generator seeded by task.seed."""
        generator = torch.Generator().manual_seed(seed)
        options = {**settings, "guidance_scale": guidance_scale if scale is None else scale}
        out = [system.colorize(sar[i : i + batch_size], prompts[i : i + batch_size], generator=generator, **options)
               for i in range(0, len(prompts), batch_size)]
        return torch.cat(out).float().cpu()

    size = int(cfg.data.image_size)
    started = time.perf_counter()
    with task_figures(cfg) as figures:
        if mode == "single":
            count = _single(cfg, run, input_image, region, season, output_path, directory, size, figures)
        elif mode == "batch":
            count = _batch(cfg, run, input_dir, regions, seasons, output_dir, directory, size, figures)
        else:
            def reconstruct(images: torch.Tensor) -> torch.Tensor:
                """decode(encode(x)) through the frozen VAE: the ceiling of any latent colorization."""
                encoders = system.encoders
                return torch.cat([encoders.decode(encoders.condition_latent(images[i : i + batch_size].to(target)))
                                  for i in range(0, len(images), batch_size)]).float().cpu()

            panels = Path(output_dir) if output_dir else directory / "dataset_results"
            metrics = colorize_dataset(cfg, run, reconstruct, panels, num_samples, baselines, extractor_checkpoint,
                                       inception_weights, season_classifier_checkpoint, target, trusted)
            figures.log_png("colorize/panels", panels / "panels.png")
            write_metrics(directory, metrics)
            return metrics["psnr"]
    speed = count / (time.perf_counter() - started)
    write_metrics(directory, {"images_per_second": speed, "nfe_per_image": sampler.last_nfe})
    log.info("colorized %d image(s), %.3f images/s", count, speed)
    return speed


def _single(cfg: DictConfig, run: Any, input_image: str | None, region: str | None, season: str | None,
            output_path: str | None, directory: Path, size: int, figures: TaskFigures) -> int:
    from sarexp.data.colorization import load_sar_image

    if not input_image:
        raise ConfigError("task.mode=single needs task.input_image=PATH (a grey SAR PNG)")
    prompt = prompt_for(cfg, region, season)
    image = run(load_sar_image(input_image, size), [prompt])
    path = Path(output_path) if output_path else directory / "generated_image.png"
    write_png_atomic(path, image.numpy())
    figures.log_png("colorize/generated", path)
    log.info("%s (%s) → %s", input_image, prompt, path)
    return 1


def _batch(cfg: DictConfig, run: Any, input_dir: str | None, regions: list[str] | None, seasons: list[str] | None,
           output_dir: str | None, directory: Path, size: int, figures: TaskFigures) -> int:
    from sarexp.data.colorization import load_sar_image
    from sarexp.plotting.image_grid import image_grid

    if not input_dir or not Path(input_dir).is_dir():
        raise ConfigError(f"task.mode=batch needs task.input_dir=DIR of grey SAR PNGs; {input_dir!r} is not a folder")
    files = sorted(Path(input_dir).glob("*.png"))
    if not files:
        raise DataError(f"{input_dir}: no .png files to colorize")
    regions = list(regions or cfg.data.regions)
    seasons = list(seasons or cfg.data.seasons)
    combinations = [(region, season) for region in regions for season in seasons]
    prompts = [prompt_for(cfg, region, season) for region, season in combinations]
    out = Path(output_dir) if output_dir else directory / "generated_images"
    for file in files:
        sar = load_sar_image(file, size).expand(len(prompts), -1, -1, -1)
        images = run(sar, prompts).numpy()
        for (region, season), image in zip(combinations, images):
            write_png_atomic(out / f"{file.stem}_{region}_{season}.png", image[None])
        write_png_atomic(out / f"{file.stem}_grid.png", image_grid(images, columns=len(seasons)), tiled=True)
        figures.log_png(f"colorize/grid/{file.stem}", out / f"{file.stem}_grid.png")
    log.info("%d image(s) × %d prompts → %s", len(files), len(prompts), out)
    return len(files) * len(prompts)
