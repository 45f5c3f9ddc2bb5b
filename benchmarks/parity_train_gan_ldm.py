"""Training-step parity of the two systems with several networks per step: the CSWin Sinkhorn-GAN (original not
public: the lean loop is the reference) and the colorization latent diffusion (reference: the step of diffusers'
examples/text_to_image/train_text_to_image.py written with diffusers' own classes, the SAR latent concatenated
to the UNet input as the network takes it — InstructPix2Pix's conditioning)."""

from typing import Any, Callable

import torch
import torch.nn.functional as F

from parity_support import Column, Settings, compose, optional, timed_loop
from parity_train import build, clip, lean_column, optimization, sarexp_column


def _clip_module(module: torch.nn.Module, value: float | None) -> None:
    if value:
        torch.nn.utils.clip_grad_norm_([p for p in module.parameters() if p.grad is not None], value)


def hsi_gan(settings: Settings, overrides: list[str]) -> list[Column]:
    """ConditionalGANSystem: D step (Sinkhorn + R1), then G step (reconstruction, feature matching, Sinkhorn,
    SAM), per-network clipping and cosine schedules, generator EMA; the lean loop calls the system's own terms."""
    from sarexp.optim.ema import update_ema, warmed_decay
    from sarexp.optim.param_groups import build_optimizer

    cfg, system, batch = build(settings, ["experiment=hsi_cswin_gan", *overrides])
    condition, target = batch[system.condition_key], batch[system.target_key]
    generator, discriminator = system.generator, system.discriminator

    def lean(total: int) -> Callable[[], None]:
        opt_g = build_optimizer(system.optimizer_factories[0], generator)
        opt_d = build_optimizer(system.optimizer_factories[1], discriminator)
        schedules = [factory(opt, total_steps=total) if factory is not None else None
                     for factory, opt in zip(system.scheduler_factories, (opt_g, opt_d), strict=True)]
        state = {"generator_steps": 0}
        system.train()

        def network_step(optimizer: torch.optim.Optimizer, module: torch.nn.Module, schedule: Any) -> None:
            _clip_module(module, system.gradient_clip_val)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if schedule is not None:
                schedule.step()

        def step() -> None:
            fake = generator(condition)
            generator.requires_grad_(False)  # what Lightning's toggle_optimizer does
            system._discriminator_terms(condition, target, fake.detach())["d_loss"].backward()
            network_step(opt_d, discriminator, schedules[1])
            generator.requires_grad_(True)
            discriminator.requires_grad_(False)
            system._generator_terms(condition, target, fake)["g_loss"].backward()
            network_step(opt_g, generator, schedules[0])
            discriminator.requires_grad_(True)
            state["generator_steps"] += 1
            update_ema(system.ema_generator, generator, warmed_decay(system.ema_decay, state["generator_steps"]))
        return step

    lean_loop = lean_column(lean, settings)
    lean_loop.note = "the original is not public: the lean loop is the reference"
    return [sarexp_column(cfg, system, batch, settings.device), lean_loop]


# --- colorization latent diffusion -------------------------------------------------------------------------


def colorization_encoders(settings: Settings, ldm_cfg: Any, vae_overrides: list[str], corpus: list[str]) -> Any:
    """Random-weight text encoder and VAE at the colorization_clip / colorization_vae sizes (the text width is
    the LDM's cross-attention width): what `clip_checkpoint` / `vae_checkpoint` would load, built in memory."""
    from hydra.utils import instantiate
    from transformers import CLIPTextModel

    from sarexp.config.model_options import network_node
    from sarexp.models.colorization.text import clip_text_config
    from sarexp.models.colorization.tokenizer import PromptTokenizer
    from sarexp.systems.latent_encoders import FrozenEncoders

    text = compose(settings, ["experiment=colorization_clip"]).model.text
    vae = instantiate(network_node(compose(settings, ["experiment=colorization_vae", *vae_overrides]).model))
    model = CLIPTextModel(clip_text_config(
        vocab_size=int(text.vocab_size), hidden_size=int(ldm_cfg.model.cross_attention_dim),
        max_position_embeddings=int(text.max_position_embeddings), num_attention_heads=int(text.num_attention_heads),
        num_hidden_layers=int(text.num_hidden_layers)))
    return FrozenEncoders(PromptTokenizer.from_corpus(corpus, int(text.max_position_embeddings)), model, vae)


def colorization(settings: Settings, overrides: list[str]) -> list[Column]:
    from sarexp.diffusion.loss_weights import min_snr_weights
    from sarexp.diffusion.timestep_samplers import create_timestep_sampler
    from sarexp.optim.ema import update_ema, warmed_decay

    vae_overrides = [item.removeprefix("vae.") for item in overrides if item.startswith("vae.")]
    ldm_overrides = [item for item in overrides if not item.startswith("vae.")]
    ldm_cfg = compose(settings, ["experiment=colorization_ldm", *ldm_overrides])
    corpus = [ldm_cfg.data.prompt_template.format(region=r, season=s)
              for r in ldm_cfg.data.regions for s in ldm_cfg.data.seasons]
    encoders = colorization_encoders(settings, ldm_cfg, vae_overrides, corpus)
    cfg, system, batch = build(settings, ["experiment=colorization_ldm", *ldm_overrides], encoders=encoders)
    target, condition, prompts = system._inputs(batch)

    def lean(total: int) -> Callable[[], None]:
        optimizer, scheduler = optimization(system, system.net, total)
        sampler = create_timestep_sampler(cfg.system.schedule_sampler, system.diffusion.num_timesteps)
        state = {"step": 0}
        system.net.train()

        def step() -> None:
            latents, condition_latent = system.encoders.latents(target, condition, sample=True)
            context = system.encoders.context(prompts, system.dropped_prompts(len(prompts)).to(latents.device))
            t, weights = sampler.sample(latents.shape[0], latents.device)
            terms = system.diffusion.training_losses(system._model_fn(condition_latent, context), latents, t)
            sampler.update(t, terms["loss"].detach())
            if system.snr_gamma is not None:
                weights = weights * min_snr_weights(system.diffusion, t, system.snr_gamma).to(weights)
            (system.mse_loss_weight * (terms["loss"] * weights).mean()).backward()
            clip(cfg, system.net)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if scheduler is not None:
                scheduler.step()
            state["step"] += 1
            update_ema(system.ema_net, system.net, warmed_decay(system.ema_decay, state["step"]))
        return step

    return [sarexp_column(cfg, system, batch, settings.device), lean_column(lean, settings),
            optional("reference", lambda: diffusers_reference(settings, cfg, system, target, condition, prompts))]


def diffusers_reference(settings: Settings, cfg: Any, system: Any, target: torch.Tensor, condition: torch.Tensor,
                        prompts: list[str]) -> Column:
    """train_text_to_image.py's step: VAE posterior sample × scaling factor, DDPMScheduler.add_noise, the text
    encoder's last hidden state, UNet ε-prediction, Min-SNR-γ weights (`compute_snr`), clip, AdamW, the LR
    schedule (`get_scheduler`), `EMAModel.step`, the logged `loss.item()`."""
    from diffusers import DDPMScheduler
    from diffusers.optimization import get_scheduler
    from diffusers.training_utils import EMAModel, compute_snr

    vae, text_encoder, unet = system.encoders.vae, system.encoders.text_model, system.net
    input_ids = system.encoders.tokenizer(prompts)["input_ids"].to(target.device)  # the script's dataset does it
    sar = condition.expand(-1, int(vae.config.in_channels), -1, -1)
    scaling, gamma = float(vae.config.scaling_factor), system.snr_gamma
    noise_scheduler = DDPMScheduler(num_train_timesteps=system.diffusion.num_timesteps, beta_start=0.00085,
                                    beta_end=0.012, beta_schedule="scaled_linear")

    def run(count: int) -> list[float]:
        optimizer = torch.optim.AdamW(unet.parameters(), lr=float(cfg.optimizer.lr),
                                      betas=tuple(cfg.optimizer.betas), weight_decay=float(cfg.optimizer.weight_decay))
        lr_scheduler = get_scheduler("constant_with_warmup", optimizer,
                                     num_warmup_steps=int(cfg.scheduler.warmup_steps))
        ema_unet = EMAModel(unet.parameters(), decay=float(system.ema_decay), use_ema_warmup=system.ema_warmup)
        unet.train()
        state = {"train_loss": 0.0}

        def step() -> None:
            latents = vae.encode(target).latent_dist.sample() * scaling
            condition_latent = vae.encode(sar).latent_dist.mode() * scaling
            noise = torch.randn_like(latents)
            timesteps = torch.randint(0, noise_scheduler.config.num_train_timesteps, (latents.shape[0],),
                                      device=latents.device).long()
            noisy_latents = noise_scheduler.add_noise(latents, noise, timesteps)
            encoder_hidden_states = text_encoder(input_ids, return_dict=False)[0]
            model_pred = unet(torch.cat([noisy_latents, condition_latent], 1), timesteps, encoder_hidden_states,
                              return_dict=False)[0]
            if gamma is None:
                loss = F.mse_loss(model_pred.float(), noise.float(), reduction="mean")
            else:
                snr = compute_snr(noise_scheduler, timesteps)
                weights = torch.stack([snr, gamma * torch.ones_like(timesteps)], dim=1).min(dim=1)[0] / snr
                loss = F.mse_loss(model_pred.float(), noise.float(), reduction="none")
                loss = (loss.mean(dim=list(range(1, len(loss.shape)))) * weights).mean()
            state["train_loss"] += loss.repeat(latents.shape[0]).mean().item()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(unet.parameters(), float(cfg.trainer.gradient_clip_val))
            optimizer.step()
            lr_scheduler.step()
            optimizer.zero_grad()
            ema_unet.step(unet.parameters())
        return timed_loop(step, settings.device)(count)

    return Column("reference", run, note="diffusers train_text_to_image step")


SYSTEMS: dict[str, Callable[[Settings, list[str]], list[Column]]] = {
    "hsi_cswin_gan": hsi_gan,
    "colorization_ldm": colorization,
}
