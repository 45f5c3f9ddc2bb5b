"""Sinkhorn divergence and R1 against closed forms and geomloss's reference implementation."""

import pytest
import torch

from sarexp.errors import ConfigError
from sarexp.losses.r1 import r1_penalty
from sarexp.losses.sinkhorn import SinkhornLoss, feature_clouds, sinkhorn_divergence


def _cloud(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_divergence_of_a_cloud_with_itself_is_zero() -> None:
    x = _cloud(3, 20, 4)
    assert torch.allclose(sinkhorn_divergence(x, x, 0.1, 100), torch.zeros(3, dtype=torch.float64), atol=1e-6)


@pytest.mark.parametrize("epsilon", [0.05, 0.5, 5.0])
def test_translation_gives_half_squared_shift_at_any_epsilon(epsilon: float) -> None:
    x = _cloud(2, 16, 3)
    tau = torch.tensor([0.7, -0.3, 0.2], dtype=torch.float64)
    value = sinkhorn_divergence(x, x + tau, epsilon, 300)
    assert torch.allclose(value, torch.full((2,), 0.5 * float(tau @ tau), dtype=torch.float64), atol=1e-6)


def test_one_dimensional_limit_is_half_mean_squared_sorted_difference() -> None:
    x = torch.rand(1, 12, 1, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    y = torch.rand(1, 12, 1, generator=torch.Generator().manual_seed(2), dtype=torch.float64) + 0.3
    exact = 0.5 * ((x.flatten().sort().values - y.flatten().sort().values) ** 2).mean()
    value = sinkhorn_divergence(x, y, 2e-4, 3000)
    assert value.item() == pytest.approx(exact.item(), rel=2e-2)


@pytest.mark.parametrize("epsilon", [0.1, 1.0])
def test_agrees_with_geomloss_debiased_sinkhorn(epsilon: float) -> None:
    geomloss = pytest.importorskip("geomloss")
    x, y = _cloud(2, 30, 5, seed=3), 0.5 * _cloud(2, 25, 5, seed=4) + 0.4
    reference = geomloss.SamplesLoss("sinkhorn", p=2, blur=epsilon ** 0.5, debias=True, scaling=0.999,
                                     backend="tensorized")(x, y)
    assert torch.allclose(sinkhorn_divergence(x, y, epsilon, 500), reference, atol=1e-4)


def test_gradient_matches_geomloss() -> None:
    geomloss = pytest.importorskip("geomloss")
    x, y = _cloud(1, 20, 3, seed=5).requires_grad_(), _cloud(1, 20, 3, seed=6) + 1.0
    sinkhorn_divergence(x, y, 0.5, 300).sum().backward()
    x_ref = x.detach().clone().requires_grad_()
    geomloss.SamplesLoss("sinkhorn", p=2, blur=0.5 ** 0.5, scaling=0.999, backend="tensorized")(x_ref, y).sum().backward()
    assert torch.allclose(x.grad, x_ref.grad, atol=3e-4)  # geomloss's own ε-scaling residual


def test_gradient_of_a_translation_is_the_shift_per_point() -> None:
    """S(α, α + τ) = ½‖τ‖²: ∇_y S = τ/M and ∇_x S = −τ/N at every point (closed form)."""
    x = _cloud(1, 12, 3, seed=7).requires_grad_()
    tau = torch.tensor([0.4, -0.2, 0.1], dtype=torch.float64)
    y = (x.detach() + tau).requires_grad_()
    sinkhorn_divergence(x, y, 0.3, 300).sum().backward()
    assert torch.allclose(y.grad, (tau / 12).expand(1, 12, 3), atol=1e-6)
    assert torch.allclose(x.grad, (-tau / 12).expand(1, 12, 3), atol=1e-6)


def test_fifty_iterations_are_closer_to_convergence_than_geomloss_with_the_same_iterations() -> None:
    """The annealing kept in-house (half the iterations at the target ε) converges faster per iteration than
    geomloss's schedule spread over the same number of iterations (why benchmarks/sinkhorn.py compares at
    equal iterations)."""
    geomloss = pytest.importorskip("geomloss")
    x, y = _cloud(2, 30, 5, seed=3), 0.5 * _cloud(2, 25, 5, seed=4) + 0.4
    converged = sinkhorn_divergence(x, y, 0.1, 4000)
    diameter = float((torch.cat([x, y], 1).amax((0, 1)) - torch.cat([x, y], 1).amin((0, 1))).norm())
    scaling = (0.1 ** 0.5 / diameter) ** (1 / 47.5)  # a 50-value ε-schedule in geomloss
    theirs = geomloss.SamplesLoss("sinkhorn", p=2, blur=0.1 ** 0.5, scaling=scaling, diameter=diameter,
                                  backend="tensorized")(x, y)
    ours = sinkhorn_divergence(x, y, 0.1, 50)
    assert ((ours - converged).abs() < (theirs - converged).abs()).all()


def test_feature_clouds_and_module() -> None:
    features = _cloud(4, 3, 2, 5)
    assert feature_clouds(features, True).shape == (1, 4, 30)
    assert feature_clouds(features, False).shape == (4, 10, 3)
    loss = SinkhornLoss(epsilon=0.5, iters=20, flatten_spatial=False)
    assert loss(features, features).abs().item() < 1e-5
    normalized = SinkhornLoss(epsilon=0.5, iters=20, normalize=True)
    other = _cloud(4, 3, 2, 5, seed=9)
    assert normalized(features, other).item() == pytest.approx(normalized(7.0 * features, 7.0 * other).item())
    assert 0.0 < normalized(features, other).item() <= 2.0  # S_ε ≤ OT_0 ≤ the largest cost, 2 on the unit sphere
    with pytest.raises(ConfigError, match="sinkhorn_epsilon"):
        SinkhornLoss(epsilon=0.0)


def test_r1_of_a_linear_discriminator_is_half_gamma_squared_norm() -> None:
    w = torch.tensor([1.5, -2.0, 0.5])
    x = torch.randn(6, 3, requires_grad=True)
    penalty = r1_penalty(x @ w, x, gamma=10.0)
    assert penalty.item() == pytest.approx(5.0 * float(w @ w))
    # create_graph: the penalty is differentiable with respect to D's parameters
    w_param = w.clone().requires_grad_()
    r1_penalty(x @ w_param, x, gamma=2.0).backward()
    assert torch.allclose(w_param.grad, 2.0 * w_param.detach())
