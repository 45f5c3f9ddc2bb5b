"""Starting a sampler part-way (Stable Diffusion's img2img, Meng et al. 2022 "SDEdit"): the init latent is
noised to an intermediate step of the sampler's grid and only the remaining, less noisy steps are run.

With `steps` grid points and `strength` s ∈ [0, 1], as diffusers' ``StableDiffusionImg2ImgPipeline``:
init = min(⌊steps·s⌋, steps) steps are run, the first `steps − init` (noisiest) are skipped, and the init
latent is noised with q(x_t | x_0) to the first kept step. s = 1 starts from pure noise at the top of the grid
(the init image is then forgotten up to √ᾱ_top); s = 0 runs nothing and returns the init latent.
"""

import copy

import torch

from sarexp.diffusion.gaussian import GaussianDiffusion, ModelFn
from sarexp.diffusion.samplers import Sampler
from sarexp.errors import ConfigError


def kept_steps(steps: int, strength: float) -> int:
    """How many of the `steps` grid steps img2img runs at `strength`."""
    if not 0.0 <= strength <= 1.0:
        raise ConfigError(f"strength must be in [0, 1], got {strength}")
    return min(int(steps * strength), steps)


def partial_sampler(sampler: Sampler, strength: float) -> Sampler:
    """A copy of `sampler` that skips the noisiest `steps − kept_steps(steps, strength)` steps of its grid."""
    steps = getattr(sampler, "steps", None)
    if steps is None:
        raise ConfigError("img2img needs a sampler with a step grid (sampler.steps set): use ddim or dpm_solver")
    partial = copy.copy(sampler)
    partial.skip_steps = steps - kept_steps(steps, strength)
    return partial


def start_index(sampler: Sampler, diffusion: GaussianDiffusion) -> int:
    """The process index the (partial) sampler starts at: the highest step of its grid."""
    return sampler.grid(diffusion, sampler.steps, getattr(sampler, "spacing", "uniform"))[-1]


@torch.no_grad()
def img2img(
    sampler: Sampler,
    diffusion: GaussianDiffusion,
    model_fn: ModelFn,
    init: torch.Tensor,
    strength: float,
    noise: torch.Tensor,
    progress: bool = False,
) -> torch.Tensor:
    """x_0 drawn from `init` (e.g. a scaled VAE latent) noised by `noise` to the first kept step, then denoised
    by `sampler` over the kept steps. Returns `init` itself when no step is kept (strength 0)."""
    if kept_steps(sampler.steps, strength) == 0:
        return init
    partial = partial_sampler(sampler, strength)
    first = start_index(partial, diffusion)
    t = torch.full((init.shape[0],), first, device=init.device, dtype=torch.long)
    result = partial.sample(diffusion, model_fn, diffusion.q_sample(init, t, noise), progress=progress)
    sampler.last_nfe = partial.last_nfe
    return result
