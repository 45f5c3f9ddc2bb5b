"""Stochastic fast samplers: few network evaluations, but fresh noise at every step, so the errors of an imperfect
score are partly forgotten instead of carried along a deterministic path (the failure of DDIM / DPM-Solver on the
SAR model, docs/pdm.md).

- :class:`DPMSolverSDESampler`: DPM-Solver++(2M) SDE (Lu et al. 2022b, "DPM-Solver++", §4 and its SDE variant;
  the ``sde-dpmsolver++`` of diffusers' DPMSolverMultistepScheduler, midpoint form). In λ = log(α/σ) with
  h = λ_t − λ_s, the exact solution of the variance-preserving reverse SDE with a data prediction x̂_0 held fixed
  over the step is x_t = (σ_t/σ_s) e^{−h} x_s + α_t (1 − e^{−2h}) x̂_0 + σ_t √(1 − e^{−2h}) z; the second order
  adds α_t (1 − e^{−2h}) · ½ D_1 with D_1 the divided difference of the last two x̂_0.
- :class:`KarrasStochasticSampler`: Karras et al. 2022 ("EDM"), Algorithm 2: at each σ_i (σ = √((1−ᾱ)/ᾱ),
  x̃ = x/√ᾱ) raise the noise to σ̂ = σ_i (1 + γ) with fresh noise ("churn", γ = min(S_churn/N, √2 − 1) for
  σ_i ∈ [S_tmin, S_tmax], noise scaled by S_noise), then take a Heun step of the probability-flow ODE to σ_{i+1}.
  The network is trained at discrete steps only, so σ̂ is rounded to the nearest step of the process (the noise
  added reaches exactly that step's σ).

Both take the training process and call the network at its original indices, like sarexp.diffusion.samplers.
"""

import math

import numpy as np
import torch

from sarexp.diffusion.gaussian import GaussianDiffusion, ModelFn
from sarexp.diffusion.samplers import Sampler, _steps_bar
from sarexp.errors import ConfigError


class DPMSolverSDESampler(Sampler):
    """DPM-Solver++(2M) SDE over `steps` indices (`steps` network evaluations); order 1 is the first-order SDE
    solver (ancestral-like). The first step is first order (no history) and the last returns x̂_0 at the smallest
    visited index, which is the first-order step to σ = 0."""

    def __init__(
        self,
        steps: int = 20,
        order: int = 2,
        spacing: str = "logsnr",
        clip_denoised: bool = True,
        skip_clipped_steps: bool = True,
        min_alpha_bar: float = 0.0,
    ) -> None:
        super().__init__(clip_denoised, skip_clipped_steps, min_alpha_bar)
        if order not in (1, 2):
            raise ConfigError(f"sampler.order must be 1 or 2 for the SDE solver, got {order}")
        self.steps, self.order, self.spacing = steps, order, spacing

    def _run(
        self, diffusion: GaussianDiffusion, model_fn: ModelFn, noise: torch.Tensor, progress: bool
    ) -> torch.Tensor:
        indices = self.grid(diffusion, self.steps, self.spacing)[::-1]
        return self.run_on(diffusion, model_fn, noise, indices, progress)

    def run_on(
        self, diffusion: GaussianDiffusion, model_fn: ModelFn, noise: torch.Tensor, indices: list[int],
        progress: bool = False,
    ) -> torch.Tensor:
        """Integrate from x = noise at indices[0] through the descending `indices`; x̂_0 at the last one."""
        alpha_bar = diffusion.alphas_cumprod
        alpha, sigma = np.sqrt(alpha_bar), np.sqrt(1.0 - alpha_bar)
        lam = np.log(alpha) - np.log(sigma)
        x, previous = noise, None
        for position, index in enumerate(_steps_bar(indices, progress, "dpm-solver++ sde")):
            _, x0 = self._denoise(diffusion, model_fn, x, index)
            if position == len(indices) - 1:
                break
            target = indices[position + 1]
            h = float(lam[target] - lam[index])
            decay = math.exp(-h)
            gain = float(alpha[target]) * -math.expm1(-2.0 * h)  # α_t (1 − e^{−2h})
            update = gain * x0
            if self.order == 2 and previous is not None:
                previous_index, previous_x0 = previous
                r0 = float(lam[index] - lam[previous_index]) / h
                update = update + 0.5 * gain * (x0 - previous_x0) / r0
            z = torch.randn_like(x)
            x = float(sigma[target] / sigma[index]) * decay * x + update + float(sigma[target]) * math.sqrt(
                -math.expm1(-2.0 * h)) * z
            previous = (index, x0)
        return x0


class KarrasStochasticSampler(Sampler):
    """Karras et al. 2022, Algorithm 2, on the process's steps: `steps` grid indices, 2·steps − 1 network
    evaluations (Heun, with one Euler step to σ = 0 at the end). s_churn = 0 is their deterministic Heun sampler."""

    def __init__(
        self,
        steps: int = 13,
        s_churn: float = 40.0,
        s_tmin: float = 0.05,
        s_tmax: float = 50.0,
        s_noise: float = 1.003,
        spacing: str = "logsnr",
        clip_denoised: bool = True,
        skip_clipped_steps: bool = True,
        min_alpha_bar: float = 0.0,
    ) -> None:
        super().__init__(clip_denoised, skip_clipped_steps, min_alpha_bar)
        if s_churn < 0 or s_noise <= 0 or s_tmin > s_tmax:
            raise ConfigError("sampler.s_churn must be >= 0, sampler.s_noise > 0 and sampler.s_tmin <= sampler.s_tmax")
        self.steps, self.spacing = steps, spacing
        self.s_churn, self.s_tmin, self.s_tmax, self.s_noise = s_churn, s_tmin, s_tmax, s_noise

    def _run(
        self, diffusion: GaussianDiffusion, model_fn: ModelFn, noise: torch.Tensor, progress: bool
    ) -> torch.Tensor:
        indices = self.grid(diffusion, self.steps, self.spacing)[::-1]
        alpha_bar = diffusion.alphas_cumprod
        sigmas = np.sqrt((1.0 - alpha_bar) / alpha_bar)  # increasing in t
        log_sigmas = np.log(sigmas)
        gamma_max = min(self.s_churn / len(indices), math.sqrt(2.0) - 1.0)
        top = indices[0]

        def denoised(x_tilde: torch.Tensor, index: int) -> torch.Tensor:
            scale = math.sqrt(float(alpha_bar[index]))
            return self._denoise(diffusion, model_fn, scale * x_tilde, index)[1]

        x = noise / math.sqrt(float(alpha_bar[indices[0]]))  # x̃ = x/√ᾱ
        for position, index in enumerate(_steps_bar(indices, progress, "karras")):
            sigma = float(sigmas[index])
            gamma = gamma_max if self.s_tmin <= sigma <= self.s_tmax else 0.0
            raised = index
            if gamma > 0:  # the step of the process nearest σ(1 + γ) in log σ, not above the start
                wanted = math.log(sigma * (1.0 + gamma))
                raised = max(index, min(top, int(np.argmin(np.abs(log_sigmas - wanted)))))
            sigma_hat = float(sigmas[raised])
            if raised != index:
                x = x + self.s_noise * math.sqrt(sigma_hat**2 - sigma**2) * torch.randn_like(x)
            x0 = denoised(x, raised)
            if position == len(indices) - 1:
                break  # the Euler step to σ = 0 lands on x̂_0
            following = indices[position + 1]
            sigma_next = float(sigmas[following])
            slope = (x - x0) / sigma_hat
            x_euler = x + (sigma_next - sigma_hat) * slope
            slope_next = (x_euler - denoised(x_euler, following)) / sigma_next
            x = x + (sigma_next - sigma_hat) * 0.5 * (slope + slope_next)
        return x0
