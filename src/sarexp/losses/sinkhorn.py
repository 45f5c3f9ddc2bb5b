"""Debiased Sinkhorn divergence between point clouds (the Sinkhorn-GAN's adversarial loss).

S(α, β) = OT_ε(α, β) − ½ OT_ε(α, α) − ½ OT_ε(β, β), with OT_ε(α, β) = min_π ⟨π, C⟩ + ε KL(π | α ⊗ β),
cost C(x, y) = ½‖x − y‖² and uniform weights (Genevay et al. 2018; Feydy et al. 2019). The dual potentials
are found by a fixed number of log-domain Sinkhorn iterations (the seed's `sinkhorn_iters`) without autograd.
The first half of them anneals ε geometrically from the cloud's largest cost down to the target (ε-scaling,
as in geomloss), which makes small ε converge within the budget. One last differentiable extrapolation step
then gives the gradient with respect to the points (the envelope theorem: each potential is differentiated
through its own cloud only, the other side of the cost detached, as geomloss does), so memory does not grow
with the number of iterations.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from sarexp.errors import ConfigError


def squared_cost(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """C_ij = ½‖x_i − y_j‖² for batched clouds x (B, N, D) and y (B, M, D) → (B, N, M)."""
    x_norm = (x * x).sum(-1, keepdim=True)
    y_norm = (y * y).sum(-1, keepdim=True).transpose(1, 2)
    return (0.5 * (x_norm + y_norm) - x @ y.transpose(1, 2)).clamp_min(0.0)


def softmin(epsilon: float, cost: torch.Tensor, log_weights_and_potential: torch.Tensor) -> torch.Tensor:
    """−ε log Σ_j exp(h_j − C_ij/ε) for h (B, M): the c-transform that every Sinkhorn update applies.
    `cost` must be contiguous in its last dimension (the reduction runs along it); one N × M temporary."""
    return -epsilon * torch.logsumexp(torch.add(log_weights_and_potential[:, None, :], cost, alpha=-1.0 / epsilon),
                                      dim=2)


def epsilon_schedule(cost: torch.Tensor, epsilon: float, iters: int) -> list[float]:
    """`iters` values of ε: geometric from max(C) down to `epsilon` over the first half, then `epsilon`."""
    start = max(float(cost.max()), epsilon)
    anneal = iters // 2
    ratio = (epsilon / start) ** (1.0 / max(anneal, 1))
    return [start * ratio ** (k + 1) for k in range(anneal)] + [epsilon] * (iters - anneal)


def _check(epsilon: float, iters: int) -> None:
    if not epsilon > 0.0:
        raise ConfigError(f"sinkhorn epsilon (system.sinkhorn_epsilon) must be > 0, got {epsilon}")
    if iters < 1:
        raise ConfigError(f"sinkhorn iterations (system.sinkhorn_iters) must be ≥ 1, got {iters}")


def sinkhorn_ot(x: torch.Tensor, y: torch.Tensor, epsilon: float, iters: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Dual potentials (f on x, g on y) of OT_ε between uniform clouds, with gradients flowing to x and y
    through the final extrapolation only.
    """
    _check(epsilon, iters)
    n, m = x.shape[1], y.shape[1]
    log_a = torch.full(x.shape[:2], -math.log(n), dtype=x.dtype, device=x.device)
    log_b = torch.full(y.shape[:2], -math.log(m), dtype=y.dtype, device=y.device)
    with torch.no_grad():
        cost = squared_cost(x.detach(), y.detach())
        cost_t = cost.transpose(1, 2).contiguous()  # reducing along a strided view is ~1.5× slower
        f = torch.zeros_like(log_a)
        g = torch.zeros_like(log_b)
        for eps in epsilon_schedule(cost, epsilon, iters):
            # simultaneous, averaged updates (symmetric in x and y)
            f, g = (0.5 * (f + softmin(eps, cost, log_b + g / eps)),
                    0.5 * (g + softmin(eps, cost_t, log_a + f / eps)))
    f_out = softmin(epsilon, squared_cost(x, y.detach()), log_b + g / epsilon)
    g_out = softmin(epsilon, squared_cost(y, x.detach()), log_a + f / epsilon)
    return f_out, g_out


def sinkhorn_self(x: torch.Tensor, epsilon: float, iters: int) -> torch.Tensor:
    """The potential of the symmetric problem OT_ε(α, α), by averaged updates f ← ½(f + T(f));
    one differentiable extrapolation at the end."""
    _check(epsilon, iters)
    log_a = torch.full(x.shape[:2], -math.log(x.shape[1]), dtype=x.dtype, device=x.device)
    with torch.no_grad():
        cost = squared_cost(x.detach(), x.detach())
        f = torch.zeros_like(log_a)
        for eps in epsilon_schedule(cost, epsilon, iters):
            f = 0.5 * (f + softmin(eps, cost, log_a + f / eps))
    return softmin(epsilon, squared_cost(x, x.detach()), log_a + f / epsilon)


def sinkhorn_divergence(x: torch.Tensor, y: torch.Tensor, epsilon: float, iters: int) -> torch.Tensor:
    """Debiased S_ε between uniform clouds x (B, N, D) and y (B, M, D), one value per batch entry (B,).

    With the potentials of OT_ε(α, β) (f, g), OT_ε(α, α) (p) and OT_ε(β, β) (q) at convergence,
    S = ⟨α, f − p⟩ + ⟨β, g − q⟩.
    """
    if x.dim() != 3 or y.dim() != 3 or x.shape[0] != y.shape[0] or x.shape[2] != y.shape[2]:
        raise ValueError(f"point clouds must be (B, N, D) and (B, M, D), got {tuple(x.shape)} and {tuple(y.shape)}")
    f, g = sinkhorn_ot(x, y, epsilon, iters)
    p = sinkhorn_self(x, epsilon, iters)
    q = sinkhorn_self(y, epsilon, iters)
    return (f - p).mean(dim=1) + (g - q).mean(dim=1)


def feature_clouds(features: torch.Tensor, flatten_spatial: bool) -> torch.Tensor:
    """Point clouds from feature maps (B, C, H, W) or vectors (B, D).

    flatten_spatial=True: one point per sample (its whole flattened feature map), one cloud over the batch
    (1, B, C·H·W): the divergence compares the distributions of real and generated samples.
    flatten_spatial=False: one point per pixel (its C features), one cloud per sample (B, H·W, C): the
    divergence compares sample i's real and generated pixel-feature distributions, averaged over i.
    """
    if features.dim() == 2:
        return features[None]
    if flatten_spatial:
        return features.flatten(1)[None]
    return features.flatten(2).transpose(1, 2)


class SinkhornLoss(nn.Module):
    """S_ε between real and generated feature maps, averaged over clouds (see `feature_clouds`).

    normalize=True puts every point on the unit sphere first (cost ½‖x − y‖² ∈ [0, 2]): a discriminator that
    maximises S can then not do so by scaling its features up, and ε keeps one meaning whatever D's scale.
    """

    def __init__(self, epsilon: float = 0.1, iters: int = 50, flatten_spatial: bool = True,
                 normalize: bool = False) -> None:
        super().__init__()
        _check(epsilon, iters)
        self.epsilon = epsilon
        self.iters = iters
        self.flatten_spatial = flatten_spatial
        self.normalize = normalize

    def forward(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        x = feature_clouds(real.float(), self.flatten_spatial)
        y = feature_clouds(fake.float(), self.flatten_spatial)
        if self.normalize:
            x, y = F.normalize(x, dim=-1, eps=1e-8), F.normalize(y, dim=-1, eps=1e-8)
        return sinkhorn_divergence(x, y, self.epsilon, self.iters).mean()
