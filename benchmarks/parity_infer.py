"""Inference parity: samples/s of sarexp's samplers against the PDM seed's `p_sample_loop` / `ddim_sample_loop`
(same network weights, same process, equal steps), colorizations/s of sarexp's guided img2img against diffusers'
`StableDiffusionImg2ImgPipeline` assembled from the same VAE, UNet and text encoder (equal steps, strength,
guidance), and whole-image HSI prediction through Lightning's `Trainer.predict` against MST++'s
`test_develop_code` forward (no outputs written by either)."""

import time
from typing import Any, Callable

import lightning.pytorch as pl
import torch
from torch import nn

from parity_support import Column, Row, Settings, Skip, alternate, optional, synchronize, timed_loop

Case = Callable[[Settings, list[str]], list[Row]]


def rate_rows(measured: dict[str, Row], pairs: dict[str, str]) -> list[Row]:
    """Rows with each sarexp column's rate over the rate of the column it is compared with."""
    rows = []
    for name, row in measured.items():
        if "ms" not in row:
            rows.append({"column": name, "note": row["note"]})
            continue
        other = measured.get(pairs.get(name, ""), {})
        ratio = row["items/s"] / other["items/s"] if "items/s" in other else None
        rows.append({"column": name, "ms/call": row["ms"], "items/s": row["items/s"], "peak MiB": row["peak MiB"],
                     "× reference rate": ratio, "note": row["note"]})
    return rows


def pdm(settings: Settings, overrides: list[str]) -> list[Row]:
    """A `diffusion.steps`-step process sampled in full by both (the seed cannot sample respaced)."""
    from hydra.utils import instantiate

    from parity_references import seed_unet_and_diffusion
    from parity_train import _seed_state, build
    from sarexp.diffusion.samplers import DDIMSampler
    from sarexp.systems.diffusion import model_function

    steps = 10 if settings.smoke else 50
    cfg, system, batch = build(settings, ["experiment=pdm_insar_noise", *overrides, f"diffusion.steps={steps}"])
    net = system.net.eval()
    shape = tuple(batch["image"].shape)
    ancestral = instantiate(cfg.sampler, steps=steps)
    ddim = DDIMSampler(steps=steps, spacing="uniform", clip_denoised=True)

    def sarexp_call(sampler: Any) -> Callable[[], None]:
        def call() -> None:
            with torch.no_grad():
                sampler.sample(system.diffusion, model_function(net, {}), torch.randn(shape, device=settings.device))
        return call

    columns = [Column("sarexp ancestral", timed_loop(sarexp_call(ancestral), settings.device), items=shape[0]),
               Column("sarexp DDIM", timed_loop(sarexp_call(ddim), settings.device), items=shape[0])]

    def seed_columns() -> list[Column]:
        model, diffusion, _ = seed_unet_and_diffusion(settings, cfg)
        model.load_state_dict(_seed_state(net, model))
        model.eval()

        def call(loop: Callable[..., Any]) -> Callable[[], None]:
            def sample() -> None:
                with torch.no_grad():
                    loop(model, shape, clip_denoised=True, device=settings.device)
            return sample
        return [Column("seed p_sample_loop", timed_loop(call(diffusion.p_sample_loop), settings.device),
                       items=shape[0], note=f"{steps} steps"),
                Column("seed ddim_sample_loop", timed_loop(call(diffusion.ddim_sample_loop), settings.device),
                       items=shape[0], note=f"{steps} steps")]

    try:
        columns += seed_columns()
    except Skip as reason:
        columns.append(Column("seed p_sample_loop", None, note=f"skipped: {reason}"))
    measured = alternate(columns, settings, steps=1 if settings.smoke else 3, warmup=1)
    return rate_rows(measured, {"sarexp ancestral": "seed p_sample_loop", "sarexp DDIM": "seed ddim_sample_loop"})


class ConcatenatedConditionUNet(nn.Module):
    """The colorization UNet as diffusers' img2img pipeline calls it (4 latent channels in): the SAR latent is
    concatenated to every (guidance-doubled) batch, as sarexp's `unet_fn` does."""

    def __init__(self, unet: nn.Module, condition_latent: torch.Tensor) -> None:
        super().__init__()
        self.unet, self.condition_latent = unet, condition_latent
        self.config = unet.config

    @property
    def dtype(self) -> torch.dtype:
        return self.unet.dtype

    @property
    def device(self) -> torch.device:
        return self.unet.device

    def forward(self, sample: torch.Tensor, timestep: Any, encoder_hidden_states: torch.Tensor,
                **kwargs: Any) -> Any:
        condition = self.condition_latent.repeat(sample.shape[0] // self.condition_latent.shape[0], 1, 1, 1)
        return self.unet(torch.cat([sample, condition], 1), timestep, encoder_hidden_states=encoder_hidden_states,
                         **kwargs)


def colorization(settings: Settings, overrides: list[str]) -> list[Row]:
    from diffusers import DDIMScheduler, StableDiffusionImg2ImgPipeline
    from hydra.utils import instantiate

    from parity_train import build
    from parity_train_gan_ldm import colorization_encoders
    from parity_support import compose

    steps, strength, guidance = (4 if settings.smoke else 25), 0.8, 7.5
    vae_overrides = [item.removeprefix("vae.") for item in overrides if item.startswith("vae.")]
    ldm_overrides = [item for item in overrides if not item.startswith("vae.")]
    ldm_cfg = compose(settings, ["experiment=colorization_ldm", *ldm_overrides])
    corpus = [ldm_cfg.data.prompt_template.format(region=r, season=s)
              for r in ldm_cfg.data.regions for s in ldm_cfg.data.seasons]
    encoders = colorization_encoders(settings, ldm_cfg, vae_overrides, corpus)
    cfg, system, batch = build(settings, ["experiment=colorization_ldm", *ldm_overrides], encoders=encoders)
    system.eval()
    _, condition, prompts = system._inputs(batch)
    sampler = instantiate(cfg.sampler, steps=steps)
    spacing = str(cfg.sampler.get("spacing", "trailing"))

    def ours() -> None:
        system.colorize(condition, prompts, sampler, strength, guidance, torch.Generator().manual_seed(0))

    scheduler = DDIMScheduler(num_train_timesteps=system.diffusion.num_timesteps, beta_start=0.00085, beta_end=0.012,
                              beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=False,
                              timestep_spacing=spacing)
    image = (condition.expand(-1, 3, -1, -1) + 1) / 2

    def theirs() -> None:
        with torch.no_grad():
            condition_latent = system.encoders.condition_latent(condition)
            ids = system.encoders.tokenizer(prompts)["input_ids"].to(condition.device)
            null = system.encoders.tokenizer([""] * len(prompts))["input_ids"].to(condition.device)
            pipeline = StableDiffusionImg2ImgPipeline(
                vae=system.encoders.vae, text_encoder=system.encoders.text_model, tokenizer=system.encoders.tokenizer,
                unet=ConcatenatedConditionUNet(system.ema_net, condition_latent), scheduler=scheduler,
                safety_checker=None, feature_extractor=None, requires_safety_checker=False)
            pipeline.set_progress_bar_config(disable=True)
            pipeline(prompt_embeds=system.encoders.text_model(ids, return_dict=False)[0],
                     negative_prompt_embeds=system.encoders.text_model(null, return_dict=False)[0], image=image,
                     strength=strength, guidance_scale=guidance, num_inference_steps=steps, output_type="pt",
                     generator=torch.Generator().manual_seed(0))

    columns = [Column("sarexp colorize", timed_loop(ours, settings.device), items=len(prompts),
                      note=f"{steps} DDIM steps, strength {strength}, guidance {guidance}"),
               Column("diffusers img2img", timed_loop(theirs, settings.device), items=len(prompts),
                      note="StableDiffusionImg2ImgPipeline, same VAE/UNet/text encoder")]
    measured = alternate(columns, settings, steps=1 if settings.smoke else 5, warmup=1)
    return rate_rows(measured, {"sarexp colorize": "diffusers img2img"})


class _PredictTimes(pl.Callback):
    def __init__(self, device: str) -> None:
        self.device, self.starts = device, []

    def on_predict_batch_start(self, *args: Any) -> None:
        synchronize(self.device)
        self.starts.append(time.perf_counter())


def hsi(settings: Settings, overrides: list[str]) -> list[Row]:
    """MST++ on a whole image: sarexp's `task=predict` path (Trainer.predict → predict_step → whole-image
    forward) against test_develop_code's loop body (no_grad forward, to numpy, HWC, clipped to [0, 1])."""
    import numpy as np

    from parity_references import reference_context
    from parity_train import build

    height, width = (32, 40) if settings.smoke else (256, 256)
    cfg, system, _ = build(settings, ["experiment=hsi_mstpp", *overrides])
    system.eval()
    image = torch.rand(1, 3, height, width, device=settings.device)

    def ours(count: int) -> list[float]:
        timer = _PredictTimes(settings.device)
        trainer = pl.Trainer(accelerator="gpu" if settings.device.startswith("cuda") else "cpu", devices=1,
                             logger=False, callbacks=[timer], enable_progress_bar=False, enable_model_summary=False)
        trainer.predict(system, dataloaders=torch.utils.data.DataLoader(
            [{"rgb": image}] * (count + 1), batch_size=None, collate_fn=lambda batch: batch), return_predictions=False)
        return [end - start for start, end in zip(timer.starts, timer.starts[1:], strict=False)][:count]

    def theirs() -> Column:
        with reference_context(settings, "mstpp_test") as modules:
            model = modules["architecture"].MST_Plus_Plus().to(settings.device)
        model.load_state_dict(system.net.state_dict())
        model.eval()

        def forward() -> None:
            with torch.no_grad():
                output = model(image)
            result = np.transpose(np.squeeze(output.cpu().numpy() * 1.0), [1, 2, 0])
            np.maximum(np.minimum(result, 1.0), 0)
        return Column("MST++ test_develop_code", timed_loop(forward, settings.device), note=f"{height}×{width}")

    columns = [Column("sarexp predict", ours, note=f"{height}×{width} RGB → 31 bands"),
               optional("MST++ test_develop_code", theirs)]
    measured = alternate(columns, settings, steps=1 if settings.smoke else 5, warmup=1)
    return rate_rows(measured, {"sarexp predict": "MST++ test_develop_code"})


SYSTEMS: dict[str, Case] = {"pdm": pdm, "colorization_ldm": colorization, "hsi_mstpp": hsi}
