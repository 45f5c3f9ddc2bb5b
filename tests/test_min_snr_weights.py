"""Min-SNR-γ loss weights against diffusers' compute_snr and the paper's formula, and their use in training."""

from functools import partial

import pytest
import torch
from diffusers import DDPMScheduler
from diffusers.training_utils import compute_snr

from ldm_helpers import batch, tiny_encoders, tiny_unet
from sarexp.diffusion.gaussian import GaussianDiffusion
from sarexp.diffusion.loss_weights import min_snr_weights, signal_to_noise
from sarexp.diffusion.schedules import make_betas
from sarexp.errors import ConfigError
from sarexp.systems.latent_diffusion import LatentDiffusionSystem
from sarexp.systems.latent_encoders import FrozenEncoders


def test_snr_and_weights_match_diffusers_min_snr_training():
    diffusion = GaussianDiffusion(make_betas("scaled_linear", 1000))
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085,
                              beta_end=0.012)
    t = torch.tensor([0, 1, 10, 100, 250, 500, 750, 999])
    snr = compute_snr(scheduler, t)
    # diffusers works in float32 (1 − ᾱ_0 ≈ 8.5e-4 loses digits); ours in float64
    torch.testing.assert_close(signal_to_noise(diffusion, t), snr, rtol=1e-4, atol=0)
    gamma = 5.0
    # diffusers' train_text_to_image.py, epsilon prediction: stack([snr, γ]).min(dim=1) / snr
    expected = torch.stack([snr, gamma * torch.ones_like(snr)], dim=1).min(dim=1)[0] / snr
    weights = min_snr_weights(diffusion, t, gamma)
    torch.testing.assert_close(weights, expected, rtol=1e-4, atol=0)
    assert weights[-1] == 1.0 and weights[0] < 0.01  # noisy steps keep weight 1, nearly clean ones are damped


def _system(monkeypatch, snr_gamma):
    encoders = tiny_encoders()
    monkeypatch.setattr(FrozenEncoders, "from_checkpoints", classmethod(lambda cls, clip, vae: encoders))
    return LatentDiffusionSystem(net=tiny_unet(), diffusion=GaussianDiffusion(make_betas("scaled_linear", 1000)),
                                 optimizer=partial(torch.optim.AdamW, lr=1e-3), clip_checkpoint="clip.ckpt",
                                 vae_checkpoint="vae.ckpt", prompt_dropout=0.0, snr_gamma=snr_gamma)


def test_training_loss_is_the_weighted_epsilon_mse(monkeypatch):
    system = _system(monkeypatch, 5.0)
    system.log = lambda *args, **kwargs: None
    data = batch(4, seed=3)
    t = torch.tensor([0, 40, 400, 900])
    system.timestep_sampler.sample = lambda size, device: (t, torch.ones(size))
    torch.manual_seed(0)
    loss = system.training_step(data, 0)
    torch.manual_seed(0)  # the same posterior sample and noise, unweighted
    system.snr_gamma = None
    per_example = []
    original = system.diffusion.training_losses
    system.diffusion.training_losses = lambda *a, **k: per_example.append(original(*a, **k)["loss"]) or {
        "loss": per_example[-1]}
    plain = system.training_step(data, 0)
    weights = min_snr_weights(system.diffusion, t, 5.0)
    torch.testing.assert_close(loss, (per_example[0] * weights).mean())
    assert loss < plain


def test_non_positive_gamma_is_one_line(monkeypatch):
    with pytest.raises(ConfigError, match="system.snr_gamma must be > 0"):
        _system(monkeypatch, 0.0)
