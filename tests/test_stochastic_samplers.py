"""Stochastic fast samplers against references: diffusers' DPMSolverMultistepScheduler(sde-dpmsolver++) with the
same betas, grid and noise draws; and Gaussian data x_0 ~ N(μ, s²), where the optimal ε̂ is known in closed form,
so a correct sampler's output must have mean μ and standard deviation s."""

import math

import numpy as np
import pytest
import torch
from diffusers import DPMSolverMultistepScheduler

from sarexp.diffusion.gaussian import gaussian_diffusion
from sarexp.diffusion.samplers import DDIMSampler
from sarexp.diffusion.stochastic_samplers import DPMSolverSDESampler, KarrasStochasticSampler
from test_diffusion_samplers import MU, S, exact_flow_output, gaussian_oracle


@pytest.mark.parametrize("order,steps,schedule", [(2, 20, "linear"), (2, 8, "cosine"), (1, 12, "linear")])
def test_dpm_solver_sde_matches_diffusers_step_by_step(order, steps, schedule):
    diffusion = gaussian_diffusion(steps=1000, noise_schedule=schedule)
    oracle = gaussian_oracle(diffusion)
    scheduler = DPMSolverMultistepScheduler(num_train_timesteps=1000, trained_betas=diffusion.betas.tolist(),
                                            algorithm_type="sde-dpmsolver++", solver_order=order)
    scheduler.set_timesteps(steps)
    grid = [int(t) for t in scheduler.timesteps]
    x_T = torch.randn(64, 1, 2, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)

    torch.manual_seed(7)  # the sampler draws one standard normal per transition from the global generator
    noises = [torch.randn_like(x_T) for _ in range(len(grid) - 1)] + [torch.zeros_like(x_T)]
    x = x_T
    for t, noise in zip(grid, noises, strict=True):
        eps = oracle(x, torch.full((x.shape[0],), t))
        x = scheduler.step(eps, t, x, variance_noise=noise).prev_sample

    torch.manual_seed(7)
    sampler = DPMSolverSDESampler(steps=steps, order=order, clip_denoised=False)
    ours = sampler.run_on(diffusion, oracle, x_T, grid)
    assert (ours - x_T).abs().max() > 0.1  # it moved
    torch.testing.assert_close(ours, x.to(ours.dtype), atol=1e-5, rtol=1e-5)


@pytest.fixture(scope="module")
def gaussian_setting():
    diffusion = gaussian_diffusion(steps=1000, noise_schedule="linear")
    noise = torch.randn(20000, 1, 1, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return diffusion, noise


@pytest.mark.parametrize(
    "sampler,nfe",
    [(DPMSolverSDESampler(steps=25, order=2, spacing="logsnr", clip_denoised=False), 25),
     # the quadratic grid's long steps at high noise cost accuracy on exact scores (+8 % std at 25 steps)
     (DPMSolverSDESampler(steps=50, order=2, spacing="quadratic", clip_denoised=False), 50),
     (KarrasStochasticSampler(steps=80, clip_denoised=False, s_noise=1.0), 159)],
    ids=["dpm-sde-2m-25-logsnr", "dpm-sde-2m-50-quadratic", "karras-churn-159nfe"],
)
def test_samplers_reproduce_the_gaussian_data_distribution(sampler, nfe, gaussian_setting):
    diffusion, noise = gaussian_setting
    torch.manual_seed(3)
    samples = sampler.sample(diffusion, gaussian_oracle(diffusion), noise).flatten()
    assert sampler.last_nfe == nfe
    spread = S / math.sqrt(len(samples))  # standard error of the mean: 1.4e-3
    assert abs(float(samples.mean()) - MU) < 4 * spread
    assert abs(float(samples.std()) / S - 1.0) < 0.03, float(samples.std())


def test_first_order_sde_solver_is_ddim_with_eta_one(gaussian_setting):
    diffusion, noise = gaussian_setting
    oracle = gaussian_oracle(diffusion)
    torch.manual_seed(3)
    sde = DPMSolverSDESampler(steps=30, order=1, spacing="logsnr", clip_denoised=False).sample(diffusion, oracle, noise)
    torch.manual_seed(3)
    ddim = DDIMSampler(steps=30, eta=1.0, spacing="logsnr", clip_denoised=False).sample(diffusion, oracle, noise)
    torch.testing.assert_close(sde, ddim, atol=1e-10, rtol=1e-10)


def test_karras_heun_converges_to_the_exact_flow_at_second_order():
    """s_churn = 0 is Karras' deterministic Heun sampler: against the exact probability-flow map of Gaussian
    data its error must fall ~4× when the steps double."""
    diffusion = gaussian_diffusion(steps=1000, noise_schedule="linear")
    noise = torch.randn(256, 1, 2, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    exact = exact_flow_output(diffusion, noise)
    errors = []
    for steps in (25, 50, 100):
        heun = KarrasStochasticSampler(steps=steps, s_churn=0.0, clip_denoised=False)
        errors.append(float((heun.sample(diffusion, gaussian_oracle(diffusion), noise) - exact).abs().max()))
    assert errors[2] < 5e-3 and errors[0] / errors[1] > 3.0 and errors[1] / errors[2] > 3.0, errors


def test_the_sde_solver_forgets_a_wrong_start_the_ode_does_not():
    """Stochasticity is the point: started from x_T drawn with the wrong scale, the SDE's output distribution
    recovers N(μ, s²) far better than the deterministic Heun sampler's (which maps the error through)."""
    diffusion = gaussian_diffusion(steps=1000, noise_schedule="linear")
    noise = 1.5 * torch.randn(20000, 1, 1, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    oracle = gaussian_oracle(diffusion)
    torch.manual_seed(0)
    sde = DPMSolverSDESampler(steps=25, clip_denoised=False).sample(diffusion, oracle, noise).std().item()
    ode = KarrasStochasticSampler(steps=13, s_churn=0.0, clip_denoised=False).sample(diffusion, oracle, noise)
    assert abs(sde / S - 1) < 0.05 and abs(ode.std().item() / S - 1) > 0.3


def test_churn_raises_the_noise_to_a_step_of_the_process():
    diffusion = gaussian_diffusion(steps=1000, noise_schedule="linear")
    calls = []

    def model_fn(x, t):
        calls.append(int(t[0]))
        return torch.zeros_like(x)

    KarrasStochasticSampler(steps=5, s_churn=10.0, s_tmin=0.0, s_tmax=1e9).sample(
        diffusion, model_fn, torch.randn(2, 1, 2, 2))
    grid = np.array(sorted(set(calls)))
    assert len(calls) == 9 and calls[0] == 999  # the top step cannot be raised further
    sigmas = np.sqrt((1 - diffusion.alphas_cumprod) / diffusion.alphas_cumprod)
    raised = calls[2::2]  # every evaluation at σ̂ after the first: σ̂/σ_i ≈ 1 + γ, γ = √2 − 1
    heun = calls[1::2]
    for up, previous in zip(raised, heun, strict=False):
        assert sigmas[up] / sigmas[previous] == pytest.approx(math.sqrt(2), rel=0.05) and up in grid
