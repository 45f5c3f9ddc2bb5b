"""Per-timestep weights of the ε-MSE: Min-SNR-γ (Hang et al. 2023, "Efficient Diffusion Training via Min-SNR
Weighting Strategy"). With ε-prediction the weight is min(SNR_t, γ) / SNR_t, SNR_t = ᾱ_t / (1 − ᾱ_t): steps
noisier than SNR γ keep weight 1, the nearly clean ones (whose ε is hardest to guess and says least about the
image's layout and colours) are scaled down, which their paper finds converges several times faster (γ = 5)."""

import torch

from sarexp.diffusion.gaussian import GaussianDiffusion


def signal_to_noise(diffusion: GaussianDiffusion, t: torch.Tensor) -> torch.Tensor:
    """SNR_t = ᾱ_t / (1 − ᾱ_t) of the process at integer timesteps t, float64 → the dtype of the float default."""
    alpha_bar = torch.as_tensor(diffusion.alphas_cumprod, dtype=torch.float64, device=t.device)[t]
    return (alpha_bar / (1.0 - alpha_bar)).to(torch.get_default_dtype())


def min_snr_weights(diffusion: GaussianDiffusion, t: torch.Tensor, gamma: float) -> torch.Tensor:
    """min(SNR_t, γ) / SNR_t per example, the weight of an ε-prediction loss."""
    snr = signal_to_noise(diffusion, t)
    return snr.clamp(max=gamma) / snr
