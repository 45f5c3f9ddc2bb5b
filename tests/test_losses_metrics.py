"""The focusing loss terms and the amplitude PSNR against direct computations."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sarexp.losses.focusing import FocusingLoss, ssim_map
from sarexp.metrics.focusing import AmplitudePSNR


def naive_ssim_1d(x: np.ndarray, y: np.ndarray, window: int, sigma: float, data_range: float) -> np.ndarray:
    """SSIM along a 1-D signal, Gaussian-weighted local statistics (Wang et al. 2004), valid positions only."""
    offsets = np.arange(window) - window // 2
    weights = np.exp(-(offsets**2) / (2 * sigma**2))
    weights /= weights.sum()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    out = []
    for centre in range(window // 2, len(x) - window // 2):
        xs, ys = x[centre + offsets], y[centre + offsets]
        mx, my = weights @ xs, weights @ ys
        vx, vy = weights @ xs**2 - mx**2, weights @ ys**2 - my**2
        cov = weights @ (xs * ys) - mx * my
        out.append(((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    return np.array(out)


def test_sequence_ssim_equals_naive_1d_ssim_away_from_the_ends():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 2, 200, generator=generator, dtype=torch.float64)
    y = x + 0.5 * torch.randn(2, 2, 200, generator=generator, dtype=torch.float64)
    window, data_range = 11, 6.0
    kornia_map = ssim_map(x.unsqueeze(-1), y.unsqueeze(-1), window, data_range)[..., 0]
    half = window // 2
    for b in range(2):
        for c in range(2):
            expected = naive_ssim_1d(x[b, c].numpy(), y[b, c].numpy(), window, 1.5, data_range)
            np.testing.assert_allclose(kornia_map[b, c, half:-half].numpy(), expected, rtol=1e-6, atol=1e-9)


def test_loss_terms_match_torch_and_weights_sum():
    generator = torch.Generator().manual_seed(1)
    preds, target = torch.randn(4, 2, 64, generator=generator), torch.randn(4, 2, 64, generator=generator)
    loss = FocusingLoss(mae=0.2, ssim=0.3, mse=0.1, huber=0.25, edge=0.15, huber_delta=0.5)
    terms = loss(preds, target)
    assert torch.isclose(terms["mae"], F.l1_loss(preds, target))
    assert torch.isclose(terms["mse"], F.mse_loss(preds, target))
    assert torch.isclose(terms["huber"], F.huber_loss(preds, target, delta=0.5))
    expected = sum(w * terms[k] for k, w in dict(mae=0.2, ssim=0.3, mse=0.1, huber=0.25, edge=0.15).items())
    assert torch.isclose(terms["loss"], expected)


def test_loss_is_zero_for_a_perfect_prediction_and_positive_otherwise():
    target = torch.randn(3, 2, 128)
    loss = FocusingLoss(mae=1, ssim=1, mse=1, huber=1, edge=1)
    assert loss(target.clone(), target)["loss"].abs() < 1e-5
    shifted = torch.roll(target, 3, dims=-1)
    terms = loss(shifted, target)
    assert all(terms[name] > 1e-3 for name in ("mae", "ssim", "mse", "huber", "edge"))


def test_training_mode_computes_only_weighted_terms_and_eval_mode_all():
    preds, target = torch.randn(2, 2, 64), torch.randn(2, 2, 64)
    loss = FocusingLoss(mae=0.5, ssim=0.5, mse=0.0, huber=0.0, edge=0.0)
    assert set(loss.train()(preds, target)) == {"mae", "ssim", "loss"}
    evaluated = loss.eval()(preds, target)
    assert set(evaluated) == {"mae", "ssim", "mse", "huber", "edge", "loss"}
    assert torch.isclose(evaluated["loss"], 0.5 * evaluated["mae"] + 0.5 * evaluated["ssim"])


def test_loss_rejects_an_even_ssim_window():
    with pytest.raises(ValueError, match="ssim_window"):
        FocusingLoss(ssim_window=10)


def test_amplitude_psnr_matches_closed_form_and_is_batch_invariant():
    generator = torch.Generator().manual_seed(2)
    target = torch.randn(6, 2, 50, generator=generator)
    preds = target + 0.1 * torch.randn(6, 2, 50, generator=generator)
    inputs = torch.cat([torch.randn(6, 2, 50, generator=generator), torch.zeros(6, 1, 50)], dim=1)
    amplitude = lambda iq: torch.sqrt(iq[:, 0].double() ** 2 + iq[:, 1].double() ** 2)  # noqa: E731
    reference = amplitude(target)
    expected = 10 * math.log10(float(reference.max()) ** 2 / float(((amplitude(preds) - reference) ** 2).mean()))

    whole, batched = AmplitudePSNR(), AmplitudePSNR()
    whole.update(preds=preds, target=target, inputs=inputs)
    for chunk in range(3):
        part = slice(2 * chunk, 2 * chunk + 2)
        batched.update(preds=preds[part], target=target[part], inputs=inputs[part])
    assert whole.compute().item() == pytest.approx(expected, rel=1e-5)
    assert batched.compute().item() == pytest.approx(expected, rel=1e-5)

    baseline = AmplitudePSNR(source="input")
    baseline.update(preds=preds, target=target, inputs=inputs)
    expected_input = 10 * math.log10(
        float(reference.max()) ** 2 / float(((amplitude(inputs) - reference) ** 2).mean())
    )
    assert baseline.compute().item() == pytest.approx(expected_input, rel=1e-5)
