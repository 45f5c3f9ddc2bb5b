"""Samplers against the exact answer for Gaussian data: with data x_0 ~ N(μ, s²) per pixel the optimal ε̂ is
known in closed form, and the probability-flow ODE maps x_T to x_t = √ᾱ_t μ + √(ᾱ_t s² + 1 − ᾱ_t) · z
(z the standardised x_T), which DDIM and DPM-Solver must reproduce; ancestral samplers must reproduce N(μ, s²)."""

import math

import pytest
import torch

from sarexp.diffusion.gaussian import gaussian_diffusion
from sarexp.diffusion.respace import spaced_timesteps
from sarexp.diffusion.samplers import AncestralSampler, DDIMSampler, DPMSolverSampler

MU, S = 0.3, 0.2


def gaussian_oracle(diffusion):
    alpha_bar = torch.as_tensor(diffusion.alphas_cumprod)

    def model_fn(x_t, t):
        a = alpha_bar[t].to(x_t.dtype).reshape(-1, *([1] * (x_t.ndim - 1)))
        return (1 - a).sqrt() * (x_t - a.sqrt() * MU) / (a * S**2 + 1 - a)

    return model_fn


def exact_flow_output(diffusion, noise):
    """E[x_0 | x at step 0] for x carried by the exact ODE from x_{T−1} = noise down to step 0."""
    a_T, a_0 = diffusion.alphas_cumprod[-1], diffusion.alphas_cumprod[0]
    z = (noise - math.sqrt(a_T) * MU) / math.sqrt(a_T * S**2 + 1 - a_T)
    return MU + math.sqrt(a_0) * S**2 * z / math.sqrt(a_0 * S**2 + 1 - a_0)


@pytest.fixture(scope="module")
def setting():
    diffusion = gaussian_diffusion(steps=1000, noise_schedule="linear")
    noise = torch.randn(256, 1, 4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return diffusion, noise, exact_flow_output(diffusion, noise)


def _error(sampler, setting):
    diffusion, noise, exact = setting
    result = sampler.sample(diffusion, gaussian_oracle(diffusion), noise)
    return float((result - exact).abs().max())


def test_ddim_1000_steps_follows_the_exact_flow(setting):
    sampler = DDIMSampler(steps=1000, eta=0.0, clip_denoised=False)
    assert _error(sampler, setting) < 5e-3
    assert sampler.last_nfe == 1000


@pytest.mark.parametrize("algorithm", ["dpmsolver", "dpmsolver++"])
def test_dpm_solver_20_steps_is_accurate_and_better_with_order(algorithm, setting):
    errors = []
    for order in (1, 2, 3):
        sampler = DPMSolverSampler(steps=20, order=order, algorithm=algorithm, clip_denoised=False)
        errors.append(_error(sampler, setting))
        assert sampler.last_nfe == 20
    # measured: order 1 ≈ 0.085 (error ∝ 1/steps), order 2 ≈ 0.011, order 3 ≈ 0.005
    assert errors[1] < errors[0] / 5 and errors[2] < errors[1], errors
    assert errors[2] < 1e-2, errors


def test_dpm_solver_of_order_one_is_ddim(setting):
    diffusion, noise, _ = setting
    oracle = gaussian_oracle(diffusion)
    ddim = DDIMSampler(steps=15, eta=0.0, spacing="logsnr", clip_denoised=False).sample(diffusion, oracle, noise)
    for algorithm in ("dpmsolver", "dpmsolver++"):
        dpm = DPMSolverSampler(steps=15, order=1, algorithm=algorithm, spacing="logsnr", clip_denoised=False)
        torch.testing.assert_close(dpm.sample(diffusion, oracle, noise), ddim, atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize(
    "sampler",
    [AncestralSampler(steps=None, clip_denoised=False), DDIMSampler(steps=1000, eta=1.0, clip_denoised=False)],
    ids=["ddpm-full", "ddim-eta1-full"],
)
def test_stochastic_samplers_reproduce_the_data_distribution(sampler, setting):
    diffusion, _, _ = setting
    torch.manual_seed(1)
    noise = torch.randn(512, 1, 4, 4, dtype=torch.float64)
    samples = sampler.sample(diffusion, gaussian_oracle(diffusion), noise)
    assert float(samples.mean()) == pytest.approx(MU, abs=0.01)
    assert float(samples.std()) == pytest.approx(S, rel=0.05)
    assert sampler.last_nfe == diffusion.num_timesteps


def exact_variance_oracle(diffusion, kept):
    """ε̂ and the learned-range value v giving the true reverse variance of the process respaced to `kept`:
    Var[x_{t−1} | x_t] = β̃_t + c_t² Var[x_0 | x_t] (c_t the posterior coefficient of x_0), which for s < 1 lies
    between β̃_t and β_t. Fixed variances ignore the second term, so few-step ancestral samples would be too narrow."""
    spaced = diffusion.respaced(kept)
    position = {original: index for index, original in enumerate(kept)}
    eps_fn = gaussian_oracle(diffusion)

    def model_fn(x_t, t):
        k = torch.tensor([position[int(i)] for i in t])
        a = torch.as_tensor(spaced.alphas_cumprod)[k].reshape(-1, 1, 1, 1)
        coef = torch.as_tensor(spaced.posterior_mean_coef1)[k].reshape(-1, 1, 1, 1)
        small = torch.as_tensor(spaced.posterior_log_variance_clipped)[k].reshape(-1, 1, 1, 1)
        large = torch.log(torch.as_tensor(spaced.betas))[k].reshape(-1, 1, 1, 1)
        true_log = torch.log(torch.as_tensor(spaced.posterior_variance)[k].reshape(-1, 1, 1, 1)
                             + coef**2 * S**2 * (1 - a) / (a * S**2 + 1 - a))
        v = 2 * (true_log - small) / (large - small) - 1
        return torch.cat([eps_fn(x_t, t), v.expand_as(x_t)], dim=1)

    return model_fn


@pytest.mark.parametrize("spacing", ["uniform", "quadratic", "logsnr"])
def test_respaced_ancestral_sampling_with_the_exact_learned_variance_reproduces_the_data(spacing):
    diffusion = gaussian_diffusion(steps=1000, noise_schedule="linear", learn_sigma=True)
    sampler = AncestralSampler(steps=20, spacing=spacing, clip_denoised=False)
    kept = spaced_timesteps(diffusion.alphas_cumprod, 20, spacing)
    oracle, seen = exact_variance_oracle(diffusion, kept), []

    def recording(x, t):
        seen.append(int(t[0]))
        return oracle(x, t)

    torch.manual_seed(2)
    noise = torch.randn(512, 1, 4, 4, dtype=torch.float64)
    samples = sampler.sample(diffusion, recording, noise)
    assert float(samples.mean()) == pytest.approx(MU, abs=0.01)
    assert float(samples.std()) == pytest.approx(S, rel=0.05)
    assert sampler.last_nfe == 20 and seen == kept[::-1]  # the network sees the spacing's original indices


def test_learned_variance_model_samples_with_respacing():
    """A learned-variance network (v = 0 half of the channels) runs through every sampler."""
    diffusion = gaussian_diffusion(steps=50, learn_sigma=True)
    oracle = gaussian_oracle(diffusion)
    model_fn = lambda x, t: torch.cat([oracle(x, t), torch.zeros_like(x)], dim=1)
    noise = torch.randn(8, 1, 2, 2, dtype=torch.float64)
    for sampler in (AncestralSampler(steps=10), DDIMSampler(steps=10), DPMSolverSampler(steps=10, order=3)):
        out = sampler.sample(diffusion, model_fn, noise)
        assert out.shape == noise.shape and torch.isfinite(out).all() and out.abs().max() <= 1.0


def test_clipping_keeps_predictions_in_range():
    diffusion = gaussian_diffusion(steps=100)
    wild = lambda x, t: -5 * x
    noise = torch.randn(4, 1, 2, 2)
    for sampler in (DDIMSampler(steps=10), DPMSolverSampler(steps=10, order=2), AncestralSampler(steps=10)):
        assert sampler.sample(diffusion, wild, noise).abs().max() <= 1.0 + 1e-5


def test_bad_sampler_settings_are_refused():
    with pytest.raises(ValueError, match="order"):
        DPMSolverSampler(order=4)
    with pytest.raises(ValueError, match="algorithm"):
        DPMSolverSampler(algorithm="heun")
    with pytest.raises(ValueError, match="steps"):
        DDIMSampler(steps=2000).sample(gaussian_diffusion(steps=100), lambda x, t: x, torch.zeros(1, 1, 1, 1))


def test_shorter_samplers_skip_the_clipped_last_step_of_the_cosine_schedule():
    diffusion = gaussian_diffusion(steps=1000, noise_schedule="cosine")
    assert diffusion.betas[-1] >= 0.999 > diffusion.betas[-2]
    assert DDIMSampler(steps=20).grid(diffusion, 20)[-1] == 998
    assert DDIMSampler(steps=20, skip_clipped_steps=False).grid(diffusion, 20)[-1] == 999
    assert DDIMSampler(steps=1000).grid(diffusion, 1000)[-1] == 999  # the full chain keeps every step
    assert DDIMSampler(steps=20).grid(gaussian_diffusion(steps=1000), 20)[-1] == 999  # nothing clipped


def test_min_alpha_bar_moves_the_start_of_shorter_samplers():
    diffusion = gaussian_diffusion(steps=1000, noise_schedule="cosine")
    grid = DPMSolverSampler(steps=20, min_alpha_bar=0.01).grid(diffusion, 20, "logsnr")
    start = grid[-1]
    assert len(grid) == 20 and diffusion.alphas_cumprod[start] >= 0.01 > diffusion.alphas_cumprod[start + 1]
    assert AncestralSampler(steps=None, min_alpha_bar=0.01).grid(diffusion, 1000)[-1] == 999  # full chain
    with pytest.raises(ValueError, match="min_alpha_bar"):
        DDIMSampler(min_alpha_bar=1.0)


def test_starting_at_the_clipped_step_amplifies_network_errors():
    """An ε̂ error of 10⁻³ becomes an x error of ~0.3 through the clipped step, ~0.01 without it (measured)."""
    diffusion = gaussian_diffusion(steps=1000, noise_schedule="cosine", sigma_small=True)
    oracle = gaussian_oracle(diffusion)
    slightly_wrong = lambda x, t: oracle(x, t) + 1e-3
    noise = torch.randn(64, 1, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    errors = {}
    for skip in (True, False):
        sampler = DDIMSampler(steps=20, clip_denoised=False, skip_clipped_steps=skip)
        exact = sampler.sample(diffusion, oracle, noise)
        off = sampler.sample(diffusion, slightly_wrong, noise)
        errors[skip] = float((off - exact).abs().max())
    assert errors[False] > 0.2 and errors[False] > 10 * errors[True], errors
