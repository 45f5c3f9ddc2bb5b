"""The Gaussian diffusion process against closed forms: schedules, respacing, KL, discretized likelihood,
posterior, the variational bound and the timestep samplers."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import norm

from sarexp.diffusion.gaussian import GaussianDiffusion, gaussian_diffusion
from sarexp.diffusion.likelihoods import discretized_gaussian_log_likelihood, normal_kl
from sarexp.diffusion.respace import spaced_timesteps
from sarexp.diffusion.schedules import MAX_BETA, cosine_betas, linear_betas, make_betas
from sarexp.diffusion.timestep_samplers import LossSecondMomentSampler, UniformSampler, create_timestep_sampler


@pytest.mark.parametrize("steps", [10, 1000, 4000])
def test_cosine_alpha_bar_decreases_and_beta_is_clipped(steps):
    betas = cosine_betas(steps)
    alpha_bar = np.cumprod(1.0 - betas)
    assert np.all(np.diff(alpha_bar) < 0) and alpha_bar[0] < 1.0
    assert betas.max() <= MAX_BETA and betas.min() > 0
    # Nichol & Dhariwal eq. 17: ᾱ_t = f(t)/f(0), f(t) = cos²((t/T + s)/(1 + s) · π/2), wherever β is not clipped
    f = lambda t: np.cos((t / steps + 0.008) / 1.008 * np.pi / 2) ** 2
    unclipped = np.cumsum(betas >= MAX_BETA) == 0
    t = np.arange(1, steps + 1)
    np.testing.assert_allclose(alpha_bar[unclipped], (f(t) / f(0))[unclipped], rtol=1e-9)


def test_linear_schedule_is_ho_et_al_at_1000_steps_and_rescales_with_T():
    betas = linear_betas(1000)
    assert betas[0] == pytest.approx(1e-4) and betas[-1] == pytest.approx(0.02) and np.all(np.diff(betas) > 0)
    assert linear_betas(2000)[-1] == pytest.approx(0.01)  # scale 1000/T keeps ᾱ_T comparable
    with pytest.raises(ValueError, match="noise_schedule"):
        make_betas("quadratic", 10)


def test_respaced_alpha_bar_equals_the_original_at_kept_steps():
    base = gaussian_diffusion(steps=1000, noise_schedule="cosine")
    kept = spaced_timesteps(base.alphas_cumprod, 37)
    spaced = base.respaced(kept)
    assert spaced.num_timesteps == 37 and list(spaced.timestep_map) == kept
    np.testing.assert_allclose(spaced.alphas_cumprod, base.alphas_cumprod[kept], rtol=1e-9)
    t = torch.tensor([0, 5, 36])
    assert spaced.model_timesteps(t).tolist() == [kept[0], kept[5], kept[36]]


@pytest.mark.parametrize("spacing", ["uniform", "quadratic", "logsnr"])
@pytest.mark.parametrize("steps", [2, 10, 20, 250, 999, 1000])
def test_spaced_timesteps_are_distinct_and_span_the_process(spacing, steps):
    alpha_bar = gaussian_diffusion(steps=1000, noise_schedule="linear").alphas_cumprod
    kept = spaced_timesteps(alpha_bar, steps, spacing)
    assert len(kept) == steps and len(set(kept)) == steps and kept == sorted(kept)
    assert kept[0] == 0 and kept[-1] == 999


def test_logsnr_spacing_is_even_in_log_snr():
    alpha_bar = gaussian_diffusion(steps=1000, noise_schedule="linear").alphas_cumprod
    kept = spaced_timesteps(alpha_bar, 10, "logsnr")
    log_snr = 0.5 * np.log(alpha_bar[kept] / (1 - alpha_bar[kept]))
    gaps = -np.diff(log_snr)
    assert gaps.std() / gaps.mean() < 0.1  # even up to rounding to integer steps


def test_normal_kl_matches_torch_distributions_and_numerical_integration():
    mean1, logvar1 = torch.tensor([0.3, -1.0, 2.0]), torch.tensor([0.1, -2.0, 1.0])
    mean2, logvar2 = torch.tensor([-0.2, 0.5, 2.0]), torch.tensor([0.0, 0.3, -1.0])
    ours = normal_kl(mean1, logvar1, mean2, logvar2)
    p = torch.distributions.Normal(mean1, torch.exp(0.5 * logvar1))
    q = torch.distributions.Normal(mean2, torch.exp(0.5 * logvar2))
    torch.testing.assert_close(ours, torch.distributions.kl_divergence(p, q))
    x = np.linspace(-15, 15, 200001)
    log_p = norm.logpdf(x, 0.3, math.exp(0.05))
    log_q = norm.logpdf(x, -0.2, 1.0)
    integral = np.trapezoid(np.exp(log_p) * (log_p - log_q), x)
    assert float(ours[0]) == pytest.approx(integral, rel=1e-6)


def test_discretized_gaussian_likelihood_matches_bin_integrals_and_sums_to_one():
    levels = torch.linspace(-1.0, 1.0, 256, dtype=torch.float64)
    mean, log_scale = 0.1, math.log(0.3)
    means, log_scales = torch.full_like(levels, mean), torch.full_like(levels, log_scale)
    log_p = discretized_gaussian_log_likelihood(levels, means, log_scales)
    assert float(torch.exp(log_p).sum()) == pytest.approx(1.0, abs=1e-6)
    half = 1.0 / 255
    edges_low = np.where(levels.numpy() < -0.999, -np.inf, levels.numpy() - half)
    edges_high = np.where(levels.numpy() > 0.999, np.inf, levels.numpy() + half)
    exact = norm.cdf(edges_high, mean, 0.3) - norm.cdf(edges_low, mean, 0.3)
    # the tanh approximation of Φ is accurate to ~1e-4 in probability
    np.testing.assert_allclose(torch.exp(log_p).numpy(), exact, atol=2e-4)
    middle = np.argmin(np.abs(levels.numpy() - mean))
    assert float(log_p[middle]) == pytest.approx(math.log(exact[middle]), abs=5e-3)


def test_posterior_is_the_product_of_the_two_gaussians():
    diffusion = gaussian_diffusion(steps=50, noise_schedule="linear")
    x0, x_t = torch.tensor([[0.4]], dtype=torch.float64), torch.tensor([[-0.7]], dtype=torch.float64)
    for step in (1, 20, 49):
        t = torch.tensor([step])
        mean, variance, _ = diffusion.q_posterior(x0, x_t, t)
        beta, a_prev = diffusion.betas[step], diffusion.alphas_cumprod[step - 1]
        # q(x_{t−1}|x_0) = N(√ᾱ_{t−1} x0, 1 − ᾱ_{t−1});  q(x_t|x_{t−1}) ∝ N(x_{t−1}; x_t/√(1−β), β/(1−β))
        precision = 1 / (1 - a_prev) + (1 - beta) / beta
        expected_mean = (math.sqrt(a_prev) * 0.4 / (1 - a_prev) + math.sqrt(1 - beta) * -0.7 / beta) / precision
        assert float(variance) == pytest.approx(1 / precision, rel=1e-10)
        assert float(mean) == pytest.approx(expected_mean, rel=1e-10)


def test_eps_and_x0_conversions_invert_q_sample():
    diffusion = gaussian_diffusion(steps=100, noise_schedule="cosine")
    generator = torch.Generator().manual_seed(0)
    x0 = torch.randn(4, 1, 3, 3, generator=generator, dtype=torch.float64)
    noise = torch.randn(4, 1, 3, 3, generator=generator, dtype=torch.float64)
    t = torch.tensor([0, 10, 50, 99])
    x_t = diffusion.q_sample(x0, t, noise)
    torch.testing.assert_close(diffusion.predict_x0_from_eps(x_t, t, noise), x0)
    torch.testing.assert_close(diffusion.predict_eps_from_x0(x_t, t, x0), noise)


def _oracle_for_a_single_image(diffusion: GaussianDiffusion, image: torch.Tensor):
    """The exact ε̂ when the data is one image: ε = (x_t − √ᾱ x0)/√(1 − ᾱ)."""

    def model_fn(x_t, t):
        a = torch.as_tensor(diffusion.alphas_cumprod, dtype=x_t.dtype)[t].reshape(-1, 1, 1, 1)
        return (x_t - a.sqrt() * image) / (1 - a).sqrt()

    return model_fn


def test_bound_of_the_exact_model_is_decoder_plus_prior():
    """With the posterior variance (fixed_small) and the exact ε, every KL term of the bound is 0."""
    diffusion = gaussian_diffusion(steps=40, noise_schedule="cosine", sigma_small=True)
    image = torch.linspace(-1, 1, 16).reshape(1, 1, 4, 4).round(decimals=2)
    bound = diffusion.bits_per_dim(_oracle_for_a_single_image(diffusion, image), image, clip_denoised=False)
    assert bound["vb"][:, 1:].abs().max() < 1e-4
    torch.testing.assert_close(bound["total_bpd"], bound["vb"][:, 0] + bound["prior_bpd"])
    assert 0 < float(bound["prior_bpd"]) < 1e-3 and float(bound["mse"].max()) < 1e-8


def test_hybrid_loss_trains_the_variance_only_through_the_bound():
    diffusion = gaussian_diffusion(steps=100, learn_sigma=True, loss_type="mse", vlb_weight=0.001)
    eps_part = torch.zeros(2, 1, 2, 2, requires_grad=True)
    var_part = torch.zeros(2, 1, 2, 2, requires_grad=True)
    x0 = torch.rand(2, 1, 2, 2) * 2 - 1
    terms = diffusion.training_losses(lambda x, t: torch.cat([eps_part, var_part], 1), x0, torch.tensor([3, 70]))
    torch.autograd.grad(terms["vb"].sum(), [var_part], retain_graph=True)  # the bound reaches the variance
    assert not torch.autograd.grad(terms["vb"].sum(), [eps_part])[0].any()  # …but not the mean
    torch.testing.assert_close(terms["loss"], terms["mse"] + terms["vb"])


def test_kl_loss_is_T_times_the_bound_term():
    diffusion = gaussian_diffusion(steps=20, loss_type="kl")
    x0, noise, t = torch.rand(3, 1, 2, 2) * 2 - 1, torch.randn(3, 1, 2, 2), torch.tensor([0, 5, 19])
    model_fn = lambda x, tt: torch.zeros_like(x)
    terms = diffusion.training_losses(model_fn, x0, t, noise)
    x_t = diffusion.q_sample(x0, t, noise)
    expected, _ = diffusion.vb_terms_bpd(torch.zeros_like(x0), x0, x_t, t)
    torch.testing.assert_close(terms["loss"], 20 * expected)


def test_learned_variance_interpolates_between_posterior_and_beta():
    diffusion = gaussian_diffusion(steps=10, learn_sigma=True)
    x = torch.zeros(1, 1, 1, 1)
    t = torch.tensor([5])
    for v, expected in ((-1.0, diffusion.posterior_variance[5]), (1.0, diffusion.betas[5])):
        output = torch.cat([torch.zeros_like(x), torch.full_like(x, v)], dim=1)
        assert float(diffusion.p_mean_variance(output, x, t)["variance"]) == pytest.approx(expected, rel=1e-5)


def test_uniform_sampler_weights_are_one():
    sampler = UniformSampler(8)
    t, weights = sampler.sample(64, torch.device("cpu"))
    assert t.min() >= 0 and t.max() < 8 and torch.allclose(weights, torch.ones(64))


def test_loss_second_moment_sampler_follows_sqrt_of_mean_squared_loss():
    sampler = create_timestep_sampler("loss-second-moment", 4)
    assert isinstance(sampler, LossSecondMomentSampler)
    torch.testing.assert_close(sampler.probabilities(), torch.full((4,), 0.25))  # uniform until warmed up
    losses = torch.tensor([1.0, 2.0, 3.0, 4.0])
    for _ in range(12):  # more than the history of 10: the oldest values are dropped
        sampler.update(torch.arange(4), losses)
    sampler.update(torch.tensor([3]), torch.tensor([4.0]))
    p = sampler.probabilities().double()
    expected = 0.999 * losses.double() / losses.sum() + 0.001 * 0.25
    torch.testing.assert_close(p, expected, rtol=1e-6, atol=1e-7)
    # importance weights make the weighted loss unbiased: Σ_t p_t · L_t/(T p_t) = mean L
    assert float((p * losses.double() / (4 * p)).sum()) == pytest.approx(float(losses.mean()))
    state = sampler.state_dict()
    assert {"loss_history", "loss_counts"} <= set(state)  # saved in checkpoints
