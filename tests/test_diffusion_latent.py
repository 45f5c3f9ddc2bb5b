"""Latent-diffusion additions to sarexp.diffusion against diffusers' schedulers on the same betas: the
scaled_linear schedule, DDIM and DPM-Solver++ without x₀ clipping, img2img's part-way start, and guidance."""

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler

from sarexp.diffusion.gaussian import GaussianDiffusion
from sarexp.diffusion.guidance import guided_model_fn
from sarexp.diffusion.img2img import img2img, kept_steps, partial_sampler, start_index
from sarexp.diffusion.respace import spaced_timesteps
from sarexp.diffusion.samplers import DDIMSampler, DPMSolverSampler
from sarexp.diffusion.schedules import make_betas
from sarexp.errors import ConfigError

SD = {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012, "num_train_timesteps": 1000}


ALPHA_BAR = torch.as_tensor(GaussianDiffusion(make_betas("scaled_linear", 1000)).alphas_cumprod)


def _dummy_eps(x: torch.Tensor, t: torch.Tensor | int) -> torch.Tensor:
    """A stand-in noise predictor (no weights): the exact ε of data ~ N(0, 0.5² I) plus a smooth, t-dependent
    nonlinear term, so x̂_0 stays O(1) like a trained latent model's and an absolute tolerance means something."""
    t = torch.as_tensor(t).reshape(-1)
    a = ALPHA_BAR[t].to(x.dtype).reshape(-1, 1, 1, 1)
    exact = (1.0 - a).sqrt() * x / (0.25 * a + 1.0 - a)
    mixed = torch.roll(x, 1, dims=1)
    return exact + 0.05 * torch.tanh(mixed) * torch.cos(t.to(x.dtype).reshape(-1, 1, 1, 1) / 150.0)


def _process() -> GaussianDiffusion:
    return GaussianDiffusion(make_betas("scaled_linear", 1000))


def _run_diffusers(scheduler, x: torch.Tensor, timesteps) -> torch.Tensor:
    for t in timesteps:
        x = scheduler.step(_dummy_eps(x, int(t)), t, x).prev_sample
    return x


def test_scaled_linear_betas_match_diffusers():
    ours = make_betas("scaled_linear", 1000)
    theirs = DDIMScheduler(**SD).betas.double().numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)
    assert ours[0] == pytest.approx(0.00085) and ours[-1] == pytest.approx(0.012)


def test_trailing_spacing_matches_diffusers():
    scheduler = DDIMScheduler(**SD, timestep_spacing="trailing")
    for steps in (50, 20, 7):
        scheduler.set_timesteps(steps)
        ours = spaced_timesteps(_process().alphas_cumprod, steps, "trailing")
        assert ours[::-1] == scheduler.timesteps.tolist()


def test_ddim_matches_diffusers_without_clipping():
    x = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    scheduler = DDIMScheduler(**SD, clip_sample=False, set_alpha_to_one=True, timestep_spacing="trailing")
    scheduler.set_timesteps(50)
    expected = _run_diffusers(scheduler, x.clone(), scheduler.timesteps)
    ours = DDIMSampler(steps=50, spacing="trailing", clip_denoised=False).sample(_process(), _dummy_eps, x.clone())
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("steps", [50, 20, 8])
def test_dpm_solver_pp_matches_diffusers_without_clipping(steps):
    x = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    scheduler = DPMSolverMultistepScheduler(
        **SD, algorithm_type="dpmsolver++", solver_order=2, timestep_spacing="trailing"
    )
    scheduler.set_timesteps(steps)
    expected = _run_diffusers(scheduler, x.clone(), scheduler.timesteps)
    sampler = DPMSolverSampler(steps=steps, order=2, algorithm="dpmsolver++", spacing="trailing",
                               lower_order_final="diffusers", clip_denoised=False)
    ours = sampler.sample(_process(), _dummy_eps, x.clone())
    assert sampler.last_nfe == steps
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=0)


def test_strength_runs_the_last_steps_from_the_eleventh_timestep():
    assert kept_steps(50, 0.8) == 40 and kept_steps(50, 1.0) == 50 and kept_steps(50, 0.0) == 0
    assert kept_steps(10, 0.25) == 2  # ⌊2.5⌋
    with pytest.raises(ConfigError):
        kept_steps(50, 1.5)
    scheduler = DDIMScheduler(**SD, timestep_spacing="trailing")
    scheduler.set_timesteps(50)
    sampler = partial_sampler(DDIMSampler(steps=50, spacing="trailing"), 0.8)
    kept = sampler.grid(_process(), 50, "trailing")[::-1]
    assert len(kept) == 40 and kept == scheduler.timesteps[10:].tolist()
    assert start_index(sampler, _process()) == int(scheduler.timesteps[10])


def _init_and_noise(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(2, 4, 8, 8, generator=generator), torch.randn(2, 4, 8, 8, generator=generator)


def test_img2img_ddim_matches_diffusers_pipeline_steps():
    init, noise = _init_and_noise(2)
    scheduler = DDIMScheduler(**SD, clip_sample=False, set_alpha_to_one=True, timestep_spacing="trailing")
    scheduler.set_timesteps(50)
    timesteps = scheduler.timesteps[10:]  # StableDiffusionImg2ImgPipeline.get_timesteps(50, 0.8)
    start = scheduler.add_noise(init, noise, timesteps[:1])
    expected = _run_diffusers(scheduler, start, timesteps)
    sampler = DDIMSampler(steps=50, spacing="trailing", clip_denoised=False)
    ours = img2img(sampler, _process(), _dummy_eps, init, 0.8, noise)
    assert sampler.last_nfe == 40
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=0)


def test_img2img_dpm_solver_pp_matches_diffusers_pipeline_steps():
    init, noise = _init_and_noise(3)
    scheduler = DPMSolverMultistepScheduler(**SD, algorithm_type="dpmsolver++", timestep_spacing="trailing")
    scheduler.set_timesteps(50)
    timesteps = scheduler.timesteps[10:]
    scheduler.set_begin_index(10)
    start = scheduler.add_noise(init, noise, timesteps[:1])
    expected = _run_diffusers(scheduler, start, timesteps)
    sampler = DPMSolverSampler(steps=50, algorithm="dpmsolver++", spacing="trailing", lower_order_final="diffusers",
                               clip_denoised=False)
    ours = img2img(sampler, _process(), _dummy_eps, init, 0.8, noise)
    assert sampler.last_nfe == 40
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=0)


def test_img2img_strength_zero_returns_the_init_latent():
    init, noise = _init_and_noise(4)
    assert img2img(DDIMSampler(steps=10), _process(), _dummy_eps, init, 0.0, noise) is init


class _Conditional(torch.nn.Module):
    """ε̂ that depends on the context, with a per-sample nonlinearity (no batch coupling)."""

    def forward(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        shift = context.mean(dim=(1, 2)).reshape(-1, 1, 1, 1)
        return torch.tanh(x * (1.0 + shift)) + 0.01 * t.reshape(-1, 1, 1, 1).float()


def test_guidance_scale_one_is_conditional_and_zero_unconditional():
    net = _Conditional()
    x = torch.randn(3, 4, 8, 8)
    t = torch.tensor([5, 500, 900])
    context, null = torch.randn(3, 6, 16), torch.randn(1, 6, 16)
    cond, uncond = net(x, t, context), net(x, t, null.expand(3, -1, -1))
    assert torch.equal(guided_model_fn(net, context, null, 1.0)(x, t), cond)
    assert torch.equal(guided_model_fn(net, context, null, 0.0)(x, t), uncond)
    torch.testing.assert_close(guided_model_fn(net, context, null, 7.5)(x, t), uncond + 7.5 * (cond - uncond))
    # the batched guided call reduces to the separate branches at s = 1 and s = 0 too
    for scale, branch in ((1.0, cond), (0.0, uncond)):
        both = net(torch.cat([x, x]), torch.cat([t, t]), torch.cat([null.expand(3, -1, -1), context])).chunk(2)
        torch.testing.assert_close(both[0] + scale * (both[1] - both[0]), branch)
