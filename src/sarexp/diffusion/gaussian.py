"""The Gaussian diffusion process (Ho et al. 2020; Nichol & Dhariwal 2021): forward noising, the posterior
q(x_{t−1} | x_t, x_0), the reverse step from an ε-predicting network with fixed or learned variance, the
training losses and the variational lower bound in bits per dimension.

The network is a callable `model_fn(x_t, t)`; the process never sees its weights. A respaced process
(:meth:`GaussianDiffusion.respaced`) keeps a `timestep_map` so the network is always called with the index of
the original process it was trained on; with `rescale_timesteps` (improved-diffusion's option, on in the seed's
models) that index is scaled by 1000/T, so networks of any T see times in [0, 1000).
"""

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch

from sarexp.diffusion.likelihoods import discretized_gaussian_log_likelihood, normal_kl
from sarexp.diffusion.schedules import make_betas
from sarexp.errors import ConfigError

ModelFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
VARIANCES = ("fixed_large", "fixed_small", "learned_range")
LOSSES = ("mse", "kl")


def _mean_flat(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.mean(dim=tuple(range(1, tensor.ndim)))


class GaussianDiffusion:
    """A T-step Gaussian diffusion defined by its betas.

    variance: ``fixed_large`` (σ² = β_t, the seed's default), ``fixed_small`` (σ² = β̃_t, the posterior variance)
    or ``learned_range`` (the network's second half of channels v gives log σ² = v' log β_t + (1 − v') log β̃_t
    with v' = (v + 1)/2). loss_type: ``mse`` (‖ε − ε̂‖²; with a learned variance plus
    vlb_weight · T · L_t, the hybrid loss with λ = vlb_weight, the gradient of L_t stopped at the mean) or
    ``kl`` (T · L_t, an unbiased estimate of the whole bound). rescale_timesteps: the network sees
    t · 1000 / original_num_steps (a float) instead of the index t.
    """

    def __init__(
        self,
        betas: Sequence[float] | np.ndarray,
        variance: str = "fixed_large",
        loss_type: str = "mse",
        vlb_weight: float = 0.001,
        timestep_map: Sequence[int] | np.ndarray | None = None,
        rescale_timesteps: bool = False,
        original_num_steps: int | None = None,
    ) -> None:
        if variance not in VARIANCES:
            raise ConfigError(f"diffusion variance must be one of {', '.join(VARIANCES)}, got {variance!r}")
        if loss_type not in LOSSES:
            raise ConfigError(f"diffusion loss_type must be one of {', '.join(LOSSES)}, got {loss_type!r}")
        betas = np.asarray(betas, dtype=np.float64)
        if betas.ndim != 1 or not ((betas > 0) & (betas <= 1)).all():
            raise ConfigError("betas must be a 1-D array in (0, 1]")
        self.variance = variance
        self.loss_type = loss_type
        self.vlb_weight = vlb_weight
        self.num_timesteps = len(betas)
        self.timestep_map = np.arange(self.num_timesteps) if timestep_map is None else np.asarray(timestep_map)
        self.rescale_timesteps = rescale_timesteps
        self.original_num_steps = self.num_timesteps if original_num_steps is None else original_num_steps

        self.betas = betas
        alphas = 1.0 - betas
        self.alphas_cumprod = np.cumprod(alphas)
        self.alphas_cumprod_prev = np.append(1.0, self.alphas_cumprod[:-1])
        self.sqrt_alphas_cumprod = np.sqrt(self.alphas_cumprod)
        self.sqrt_one_minus_alphas_cumprod = np.sqrt(1.0 - self.alphas_cumprod)
        self.sqrt_recip_alphas_cumprod = np.sqrt(1.0 / self.alphas_cumprod)
        self.sqrt_recipm1_alphas_cumprod = np.sqrt(1.0 / self.alphas_cumprod - 1.0)
        self.posterior_variance = betas * (1.0 - self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
        # β̃_0 = 0: take β̃_1 for the log so the first step has a finite log variance
        self.posterior_log_variance_clipped = np.log(np.append(self.posterior_variance[1], self.posterior_variance[1:]))
        self.posterior_mean_coef1 = betas * np.sqrt(self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
        self.posterior_mean_coef2 = (1.0 - self.alphas_cumprod_prev) * np.sqrt(alphas) / (1.0 - self.alphas_cumprod)

    @property
    def learns_sigma(self) -> bool:
        return self.variance == "learned_range"

    def respaced(self, kept: Sequence[int]) -> "GaussianDiffusion":
        """The process restricted to timesteps `kept` (sorted, of this process): the new β's reproduce ᾱ at the
        kept steps exactly, and the network is still called with the original indices."""
        kept = sorted({int(k) for k in kept})
        if not kept or kept[0] < 0 or kept[-1] >= self.num_timesteps:
            raise ConfigError(f"respacing must keep steps in [0, {self.num_timesteps}), got {kept}")
        alpha_bar = self.alphas_cumprod[kept]
        betas = 1.0 - alpha_bar / np.append(1.0, alpha_bar[:-1])
        return GaussianDiffusion(betas, self.variance, self.loss_type, self.vlb_weight, self.timestep_map[kept],
                                 self.rescale_timesteps, self.original_num_steps)

    # ---- indexing helpers ----
    @staticmethod
    def extract(values: np.ndarray, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """values[t] as a tensor shaped (B, 1, 1, …) in the dtype and device of `like`."""
        picked = torch.as_tensor(values, dtype=torch.float64)[t.cpu()].to(device=like.device, dtype=like.dtype)
        return picked.reshape(-1, *([1] * (like.ndim - 1)))

    def model_timesteps(self, t: torch.Tensor) -> torch.Tensor:
        """What the network was trained to see at respaced step t: the original-process index, or that index
        × 1000/T (float) with rescale_timesteps."""
        original = torch.as_tensor(self.timestep_map, device=t.device)[t]
        return original.float() * (1000.0 / self.original_num_steps) if self.rescale_timesteps else original

    def call_model(self, model_fn: ModelFn, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return model_fn(x_t, self.model_timesteps(t))

    # ---- forward process ----
    def q_mean_variance(self, x0: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log variance of q(x_t | x_0)."""
        mean = self.extract(self.sqrt_alphas_cumprod, t, x0) * x0
        log_variance = self.extract(np.log(1.0 - self.alphas_cumprod), t, x0)
        return mean, log_variance

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        noise = torch.randn_like(x0) if noise is None else noise
        return self.extract(self.sqrt_alphas_cumprod, t, x0) * x0 + self.extract(
            self.sqrt_one_minus_alphas_cumprod, t, x0
        ) * noise

    def q_posterior(
        self, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mean, variance and (clipped) log variance of q(x_{t−1} | x_t, x_0)."""
        mean = self.extract(self.posterior_mean_coef1, t, x_t) * x0 + self.extract(
            self.posterior_mean_coef2, t, x_t
        ) * x_t
        return mean, self.extract(self.posterior_variance, t, x_t), self.extract(
            self.posterior_log_variance_clipped, t, x_t
        )

    # ---- conversions between ε and x_0 ----
    def predict_x0_from_eps(self, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        return self.extract(self.sqrt_recip_alphas_cumprod, t, x_t) * x_t - self.extract(
            self.sqrt_recipm1_alphas_cumprod, t, x_t
        ) * eps

    def predict_eps_from_x0(self, x_t: torch.Tensor, t: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        return (self.extract(self.sqrt_recip_alphas_cumprod, t, x_t) * x_t - x0) / self.extract(
            self.sqrt_recipm1_alphas_cumprod, t, x_t
        )

    def split_output(self, output: torch.Tensor, channels: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(ε̂, variance values v or None) from the raw network output."""
        if not self.learns_sigma:
            return output, None
        if output.shape[1] != 2 * channels:
            raise ConfigError(
                f"learned variance needs 2×{channels} output channels, the network gives {output.shape[1]}: "
                "set model.learn_sigma to diffusion.learn_sigma"
            )
        return output[:, :channels], output[:, channels:]

    # ---- reverse process ----
    def p_mean_variance(
        self, output: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, clip_denoised: bool = True
    ) -> dict[str, torch.Tensor]:
        """p(x_{t−1} | x_t) from the network output: mean, variance, log variance, x̂_0 and ε̂."""
        eps, var_values = self.split_output(output, x_t.shape[1])
        if var_values is not None:
            min_log = self.extract(self.posterior_log_variance_clipped, t, x_t)
            max_log = self.extract(np.log(self.betas), t, x_t)
            fraction = (var_values + 1.0) / 2.0
            log_variance = fraction * max_log + (1.0 - fraction) * min_log
            variance = torch.exp(log_variance)
        elif self.variance == "fixed_large":
            large = np.append(self.posterior_variance[1], self.betas[1:])
            variance = self.extract(large, t, x_t)
            log_variance = self.extract(np.log(large), t, x_t)
        else:
            variance = self.extract(self.posterior_variance, t, x_t)
            log_variance = self.extract(self.posterior_log_variance_clipped, t, x_t)
        x0 = self.predict_x0_from_eps(x_t, t, eps)
        if clip_denoised:
            x0 = x0.clamp(-1.0, 1.0)
        mean, _, _ = self.q_posterior(x0, x_t, t)
        return {"mean": mean, "variance": variance, "log_variance": log_variance, "pred_x0": x0, "eps": eps}

    # ---- losses and the bound ----
    def vb_terms_bpd(
        self, output: torch.Tensor, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, clip_denoised: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """L_t per example in bits/dim: KL(q(x_{t−1}|x_t,x_0) ‖ p(x_{t−1}|x_t)) for t > 0, the discretized
        decoder NLL −log p(x_0|x_1) at t = 0. Also returns x̂_0."""
        true_mean, _, true_log_variance = self.q_posterior(x0, x_t, t)
        p = self.p_mean_variance(output, x_t, t, clip_denoised=clip_denoised)
        kl = _mean_flat(normal_kl(true_mean, true_log_variance, p["mean"], p["log_variance"])) / math.log(2.0)
        nll = -_mean_flat(discretized_gaussian_log_likelihood(x0, p["mean"], 0.5 * p["log_variance"])) / math.log(2.0)
        return torch.where(t == 0, nll, kl), p["pred_x0"]

    def training_losses(
        self, model_fn: ModelFn, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Per-example losses at timesteps t: ``loss`` (what is optimised), ``mse`` and, when used, ``vb``."""
        noise = torch.randn_like(x0) if noise is None else noise
        x_t = self.q_sample(x0, t, noise)
        output = self.call_model(model_fn, x_t, t)
        terms: dict[str, torch.Tensor] = {}
        if self.loss_type == "kl":
            terms["vb"] = self.vb_terms_bpd(output, x0, x_t, t)[0] * self.num_timesteps
            terms["loss"] = terms["vb"]
            return terms
        eps, var_values = self.split_output(output, x0.shape[1])
        terms["mse"] = _mean_flat((noise - eps) ** 2)
        terms["loss"] = terms["mse"]
        if var_values is not None:
            frozen = torch.cat([eps.detach(), var_values], dim=1)  # L_vlb trains the variance only
            vb = self.vb_terms_bpd(frozen, x0, x_t, t)[0]
            terms["vb"] = vb * self.num_timesteps * self.vlb_weight
            terms["loss"] = terms["mse"] + terms["vb"]
        return terms

    def prior_bpd(self, x0: torch.Tensor) -> torch.Tensor:
        """KL(q(x_T | x_0) ‖ N(0, I)) in bits/dim, per example: what the last step leaves unexplained."""
        t = torch.full((x0.shape[0],), self.num_timesteps - 1, device=x0.device, dtype=torch.long)
        mean, log_variance = self.q_mean_variance(x0, t)
        kl = normal_kl(mean, log_variance, torch.zeros_like(mean), torch.zeros_like(mean))
        return _mean_flat(kl) / math.log(2.0)

    @torch.no_grad()
    def bits_per_dim(
        self, model_fn: ModelFn, x0: torch.Tensor, clip_denoised: bool = True
    ) -> dict[str, torch.Tensor]:
        """The whole variational bound, per example: ``total_bpd`` = Σ_t L_t + prior, with the terms
        ``vb`` (B, T), ``prior_bpd`` and the ε ``mse`` (B, T), walking t from T−1 down to 0."""
        batch = x0.shape[0]
        vb, mse = [], []
        for step in reversed(range(self.num_timesteps)):
            t = torch.full((batch,), step, device=x0.device, dtype=torch.long)
            noise = torch.randn_like(x0)
            x_t = self.q_sample(x0, t, noise)
            output = self.call_model(model_fn, x_t, t)
            term, _ = self.vb_terms_bpd(output, x0, x_t, t, clip_denoised=clip_denoised)
            eps, _ = self.split_output(output, x0.shape[1])
            vb.append(term)
            mse.append(_mean_flat((eps - noise) ** 2))
        vb_t = torch.stack(vb[::-1], dim=1)
        prior = self.prior_bpd(x0)
        return {"total_bpd": vb_t.sum(dim=1) + prior, "prior_bpd": prior, "vb": vb_t, "mse": torch.stack(mse[::-1], 1)}


def gaussian_diffusion(
    steps: int = 1000,
    noise_schedule: str = "linear",
    learn_sigma: bool = False,
    sigma_small: bool = False,
    loss_type: str = "mse",
    vlb_weight: float = 0.001,
    rescale_timesteps: bool = False,
) -> GaussianDiffusion:
    """Build the process from the seed's knobs (diffusion_steps, noise_schedule, learn_sigma, sigma_small,
    rescale_timesteps, …)."""
    variance = "learned_range" if learn_sigma else ("fixed_small" if sigma_small else "fixed_large")
    return GaussianDiffusion(make_betas(noise_schedule, steps), variance, loss_type, vlb_weight,
                             rescale_timesteps=rescale_timesteps)
