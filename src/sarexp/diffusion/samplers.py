"""Samplers that turn noise into data with an ε-predicting network: ancestral DDPM (full or respaced),
DDIM(η) (Song et al. 2021) and multistep DPM-Solver / DPM-Solver++ of orders 1–3 (Lu et al. 2022a, b).

Every sampler takes the *training* process and a `model_fn(x_t, t)` called with indices of that process, so a
checkpoint works with any sampler and step count. Deterministic samplers visit `steps` indices of the process
(one network evaluation each, see :func:`sarexp.diffusion.respace.spaced_timesteps`) and return the prediction
of x_0 made at the last (smallest) index, as DDIM's last step to ᾱ = 1 does.

Shorter samplers skip the steps whose β was clipped at MAX_BETA (the cosine schedule's last step: ᾱ_{T−1} is
~1000× below ᾱ_{T−2}). Starting there, x̂_0 = (x − √(1−ᾱ) ε̂)/√ᾱ multiplies the network's ε error by
1/√ᾱ_{T−1} ≈ 2·10⁴ and a long first step (to t ≈ 0.95 T, √ᾱ ≈ 0.08 for 20 uniform steps) carries ~10³ times that
error into x: samples leave the data (see docs/pdm.md). x_T ~ N(0, I) is as good a start at T−2 (ᾱ ≈ 2·10⁻⁶).
`skip_clipped_steps=false` keeps them (the seed's behaviour). The same amplification, smaller, remains at the
next steps (ᾱ ≈ 6·10⁻⁷ at T−2 for T = 2000): `min_alpha_bar` starts shorter samplers at the last step with
ᾱ ≥ min_alpha_bar instead (x_T ~ N(0, I) ignores a signal of amplitude √ᾱ there).
"""

import math
from abc import ABC, abstractmethod

import numpy as np
import torch
from tqdm.auto import tqdm

from sarexp.diffusion.gaussian import GaussianDiffusion, ModelFn
from sarexp.diffusion.respace import spaced_timesteps
from sarexp.diffusion.schedules import MAX_BETA
from sarexp.errors import ConfigError



class CountingModel:
    """Wraps a model_fn and counts its calls (network function evaluations, NFE)."""

    def __init__(self, model_fn: ModelFn) -> None:
        self.model_fn = model_fn
        self.calls = 0

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.model_fn(x, t)


class Sampler(ABC):
    """Base: `sample(diffusion, model_fn, noise)` → x_0; `last_nfe` is the number of network calls it made.
    `skip_steps` > 0 drops that many of the noisiest grid steps, so `noise` is x at the first kept step
    (img2img, :mod:`sarexp.diffusion.img2img`)."""

    skip_steps = 0

    def __init__(
        self, clip_denoised: bool = True, skip_clipped_steps: bool = True, min_alpha_bar: float = 0.0
    ) -> None:
        if not 0.0 <= min_alpha_bar < 1.0:
            raise ConfigError(f"sampler.min_alpha_bar must be in [0, 1), got {min_alpha_bar}")
        self.clip_denoised = clip_denoised
        self.skip_clipped_steps = skip_clipped_steps
        self.min_alpha_bar = min_alpha_bar
        self.last_nfe = 0

    def grid(self, diffusion: GaussianDiffusion, steps: int, spacing: str = "uniform") -> list[int]:
        """The `steps` indices (ascending) a sampler visits; all T for steps = T."""
        usable = diffusion.num_timesteps
        if steps < usable:
            while usable > steps and (
                (self.skip_clipped_steps and diffusion.betas[usable - 1] >= MAX_BETA)
                or diffusion.alphas_cumprod[usable - 1] < self.min_alpha_bar
            ):
                usable -= 1
        indices = spaced_timesteps(diffusion.alphas_cumprod[:usable], steps, spacing)
        return indices[: len(indices) - self.skip_steps]

    @torch.no_grad()
    def sample(
        self, diffusion: GaussianDiffusion, model_fn: ModelFn, noise: torch.Tensor, progress: bool = False
    ) -> torch.Tensor:
        counter = CountingModel(model_fn)
        result = self._run(diffusion, counter, noise, progress)
        self.last_nfe = counter.calls
        return result

    @abstractmethod
    def _run(
        self, diffusion: GaussianDiffusion, model_fn: ModelFn, noise: torch.Tensor, progress: bool
    ) -> torch.Tensor:
        """Draw x_0 from `noise` (x at the last step)."""

    def _denoise(
        self, diffusion: GaussianDiffusion, model_fn: ModelFn, x: torch.Tensor, index: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(ε̂, x̂_0) at step `index`; with clipping, x̂_0 is clipped to [−1, 1] and ε̂ made consistent with it."""
        t = torch.full((x.shape[0],), index, device=x.device, dtype=torch.long)
        eps, _ = diffusion.split_output(diffusion.call_model(model_fn, x, t), x.shape[1])
        x0 = diffusion.predict_x0_from_eps(x, t, eps)
        if self.clip_denoised:
            x0 = x0.clamp(-1.0, 1.0)
            eps = diffusion.predict_eps_from_x0(x, t, x0)
        return eps, x0


def _steps_bar(indices: list[int], progress: bool, name: str) -> "tqdm":
    return tqdm(indices, desc=name, disable=not progress, leave=False)


class AncestralSampler(Sampler):
    """DDPM: x_{t−1} ~ p(x_{t−1} | x_t), over all T steps or a respaced subset of `steps` chosen by `spacing`
    (same variances rule, recomputed for the respaced β's)."""

    def __init__(
        self,
        steps: int | None = None,
        spacing: str = "uniform",
        clip_denoised: bool = True,
        skip_clipped_steps: bool = True,
        min_alpha_bar: float = 0.0,
    ) -> None:
        super().__init__(clip_denoised, skip_clipped_steps, min_alpha_bar)
        self.steps, self.spacing = steps, spacing

    def _run(
        self, diffusion: GaussianDiffusion, model_fn: ModelFn, noise: torch.Tensor, progress: bool
    ) -> torch.Tensor:
        if self.steps is not None and self.steps != diffusion.num_timesteps:
            diffusion = diffusion.respaced(self.grid(diffusion, self.steps, self.spacing))
        x = noise
        for step in _steps_bar(list(reversed(range(diffusion.num_timesteps))), progress, "ddpm"):
            t = torch.full((x.shape[0],), step, device=x.device, dtype=torch.long)
            output = diffusion.call_model(model_fn, x, t)
            p = diffusion.p_mean_variance(output, x, t, clip_denoised=self.clip_denoised)
            x = p["mean"] if step == 0 else p["mean"] + torch.exp(0.5 * p["log_variance"]) * torch.randn_like(x)
        return x


class DDIMSampler(Sampler):
    """DDIM over `steps` indices: x_prev = √ᾱ_prev x̂_0 + √(1 − ᾱ_prev − σ²) ε̂ + σ z with
    σ = η √((1 − ᾱ_prev)/(1 − ᾱ)) √(1 − ᾱ/ᾱ_prev); η = 0 is the deterministic probability-flow sampler,
    η = 1 the ancestral one."""

    def __init__(
        self,
        steps: int = 50,
        eta: float = 0.0,
        spacing: str = "uniform",
        clip_denoised: bool = True,
        skip_clipped_steps: bool = True,
        min_alpha_bar: float = 0.0,
    ) -> None:
        super().__init__(clip_denoised, skip_clipped_steps, min_alpha_bar)
        if eta < 0:
            raise ConfigError(f"sampler.eta must be >= 0, got {eta}")
        self.steps, self.eta, self.spacing = steps, eta, spacing

    def _run(
        self, diffusion: GaussianDiffusion, model_fn: ModelFn, noise: torch.Tensor, progress: bool
    ) -> torch.Tensor:
        indices = self.grid(diffusion, self.steps, self.spacing)[::-1]
        alpha_bar = diffusion.alphas_cumprod
        x = noise
        for position, index in enumerate(_steps_bar(indices, progress, "ddim")):
            eps, x0 = self._denoise(diffusion, model_fn, x, index)
            a = float(alpha_bar[index])
            a_prev = float(alpha_bar[indices[position + 1]]) if position + 1 < len(indices) else 1.0
            sigma = self.eta * math.sqrt((1.0 - a_prev) / (1.0 - a) * (1.0 - a / a_prev))
            x = math.sqrt(a_prev) * x0 + math.sqrt(max(1.0 - a_prev - sigma**2, 0.0)) * eps
            if sigma > 0:
                x = x + sigma * torch.randn_like(x)
        return x


class DPMSolverSampler(Sampler):
    """Multistep DPM-Solver (``algorithm: dpmsolver``, noise prediction) or DPM-Solver++ (``dpmsolver++``, data
    prediction) of `order` 1, 2 or 3 in λ = log(α/σ). The first steps use the orders their history allows; on
    short runs the last steps use lower orders too (higher orders are unstable over the long last steps of very
    short schedules), by one of two conventions (`lower_order_final`):

    - ``dpm-solver`` (LuChengTHU/dpm-solver, ``DPM_Solver.sample``, method multistep): with fewer than 10 updates
      (its `steps`: one fewer than the grid points, x̂_0 is then predicted at the last point), the k-th last update
      has order ≤ k, so the last update is first order;
    - ``diffusers`` (``DPMSolverMultistepScheduler``): with fewer than 15 grid points (its ``len(timesteps)``, the
      whole grid also when img2img skips its first points), the return of x̂_0 counts as a final first-order step
      to σ = 0 and the k-th last update has order ≤ k + 1;
    - ``none``: no lowering (either reference with ``lower_order_final=False``).

    Order 1 of either algorithm is DDIM with η = 0."""

    ALGORITHMS = ("dpmsolver", "dpmsolver++")
    LOWER_ORDER_FINAL = ("dpm-solver", "diffusers", "none")
    DPM_SOLVER_LOWERS_BELOW = 10  # updates (dpm-solver's `steps`)
    DIFFUSERS_LOWERS_BELOW = 15  # grid points (diffusers' len(timesteps))

    def __init__(
        self,
        steps: int = 20,
        order: int = 2,
        algorithm: str = "dpmsolver++",
        spacing: str = "logsnr",
        lower_order_final: str = "dpm-solver",
        clip_denoised: bool = True,
        skip_clipped_steps: bool = True,
        min_alpha_bar: float = 0.0,
    ) -> None:
        super().__init__(clip_denoised, skip_clipped_steps, min_alpha_bar)
        if order not in (1, 2, 3):
            raise ConfigError(f"sampler.order must be 1, 2 or 3, got {order}")
        if algorithm not in self.ALGORITHMS:
            raise ConfigError(f"sampler.algorithm must be one of {', '.join(self.ALGORITHMS)}, got {algorithm!r}")
        if lower_order_final not in self.LOWER_ORDER_FINAL:
            raise ConfigError(f"sampler.lower_order_final must be one of {', '.join(self.LOWER_ORDER_FINAL)}, "
                              f"got {lower_order_final!r}")
        self.steps, self.order, self.algorithm = steps, order, algorithm
        self.spacing, self.lower_order_final = spacing, lower_order_final

    def update_orders(self, points: int) -> list[int]:
        """The order of each of the `points` − 1 updates of a run over `points` grid points (of a grid of
        `points` + skip_steps, img2img)."""
        updates = points - 1
        orders = [min(self.order, position + 1) for position in range(updates)]  # the history each update has
        if self.lower_order_final == "dpm-solver" and updates < self.DPM_SOLVER_LOWERS_BELOW:
            orders = [min(order, updates - position) for position, order in enumerate(orders)]
        elif self.lower_order_final == "diffusers" and points + self.skip_steps < self.DIFFUSERS_LOWERS_BELOW:
            orders = [min(order, updates - position + 1) for position, order in enumerate(orders)]
        return orders

    def _run(
        self, diffusion: GaussianDiffusion, model_fn: ModelFn, noise: torch.Tensor, progress: bool
    ) -> torch.Tensor:
        indices = self.grid(diffusion, self.steps, self.spacing)[::-1]
        alpha_bar = diffusion.alphas_cumprod
        log_alpha = 0.5 * np.log(alpha_bar)
        sigma = np.sqrt(1.0 - alpha_bar)
        lam = log_alpha - np.log(sigma)
        data_prediction = self.algorithm == "dpmsolver++"

        x = noise
        history: list[tuple[int, torch.Tensor]] = []  # (index, model value), newest last
        x0 = noise
        orders = self.update_orders(len(indices))
        for position, index in enumerate(_steps_bar(indices, progress, self.algorithm)):
            eps, x0 = self._denoise(diffusion, model_fn, x, index)
            history = (history + [(index, x0 if data_prediction else eps)])[-self.order :]
            if position == len(orders):
                break
            target = indices[position + 1]
            x = self._update(x, history[-orders[position]:], target, lam, log_alpha, sigma, data_prediction)
        return x0

    @staticmethod
    def _update(
        x: torch.Tensor,
        history: list[tuple[int, torch.Tensor]],
        target: int,
        lam: np.ndarray,
        log_alpha: np.ndarray,
        sigma: np.ndarray,
        data_prediction: bool,
    ) -> torch.Tensor:
        """One multistep update from the newest history point s0 to `target`, of order len(history)."""
        s0, m0 = history[-1]
        h = float(lam[target] - lam[s0])
        alpha_t = math.exp(log_alpha[target])
        if data_prediction:
            phi1 = math.expm1(-h)
            phi2 = phi1 / h + 1.0
            x_new = (sigma[target] / sigma[s0]) * x - alpha_t * phi1 * m0
            scale, sign = alpha_t, 1.0  # third order: x + α_t φ2 D1 − α_t φ3 D2
        else:
            phi1 = math.expm1(h)
            phi2 = phi1 / h - 1.0
            x_new = math.exp(log_alpha[target] - log_alpha[s0]) * x - sigma[target] * phi1 * m0
            scale, sign = float(sigma[target]), -1.0  # third order: x − σ_t φ2 D1 − σ_t φ3 D2
        phi3 = phi2 / h - 0.5
        if len(history) == 2:
            s1, m1 = history[0]
            r0 = float(lam[s0] - lam[s1]) / h
            d1 = (m0 - m1) / r0
            # the "dpmsolver" second-order variant: −½ φ1 D1 (for either prediction type)
            return x_new - 0.5 * scale * phi1 * d1
        if len(history) == 3:
            (s2, m2), (s1, m1) = history[0], history[1]
            r0 = float(lam[s0] - lam[s1]) / h
            r1 = float(lam[s1] - lam[s2]) / h
            d1_0 = (m0 - m1) / r0
            d1_1 = (m1 - m2) / r1
            d1 = d1_0 + (r0 / (r0 + r1)) * (d1_0 - d1_1)
            d2 = (d1_0 - d1_1) / (r0 + r1)
            return x_new + sign * scale * phi2 * d1 - scale * phi3 * d2
        return x_new

