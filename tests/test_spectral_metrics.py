"""MST++ protocol metrics against direct formulas and torchmetrics; SAM properties; tiled evaluation."""

import math

import numpy as np
import pytest
import torch
from torchmetrics.image import PeakSignalNoiseRatio, SpectralAngleMapper

from sarexp.errors import ConfigError
from sarexp.losses.spectral import SpectralLoss, spectral_angle
from sarexp.metrics.spectral import SpectralMetric, centre_crop, spectral_metrics, whole_image_forward


def _pair(seed: int = 0, shape: tuple[int, ...] = (3, 31, 20, 24)) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    target = torch.rand(shape, generator=generator) * 0.9 + 0.05
    preds = target + 0.1 * torch.randn(shape, generator=generator)
    return preds, target


def test_metrics_match_direct_formulas_on_the_centre_crop() -> None:
    preds, target = _pair()
    border = 4
    p = preds.numpy()[:, :, border:-border, border:-border].astype(np.float64)
    t = target.numpy()[:, :, border:-border, border:-border].astype(np.float64)
    expected = {
        "mrae": np.mean([np.mean(np.abs(a - b) / b) for a, b in zip(p, t)]),
        "rmse": np.mean([np.sqrt(np.mean((a - b) ** 2)) for a, b in zip(p, t)]),
        # MST++'s Loss_PSNR: clamp to [0, 1], ×255, data range 255, per image
        "psnr": np.mean([10 * np.log10(255.0 ** 2 / np.mean((np.clip(a, 0, 1) * 255 - np.clip(b, 0, 1) * 255) ** 2))
                         for a, b in zip(p, t)]),
    }
    for name, value in expected.items():
        metric = SpectralMetric(name, crop_border=border)
        for index in range(3):  # image by image, as MST++ validates (batch 1)
            metric.update(preds[index:index + 1], target[index:index + 1])
        batched = SpectralMetric(name, crop_border=border)
        batched.update(preds, target)
        assert float(metric.compute()) == pytest.approx(value, rel=1e-5)
        assert float(batched.compute()) == pytest.approx(value, rel=1e-5)


def test_psnr_equals_torchmetrics_per_image_psnr_after_clamping() -> None:
    preds, target = _pair(1)
    reference = PeakSignalNoiseRatio(data_range=1.0, dim=(1, 2, 3))
    reference.update(preds.clamp(0, 1), target.clamp(0, 1))
    metric = SpectralMetric("psnr", crop_border=0)
    metric.update(preds, target)
    assert float(metric.compute()) == pytest.approx(float(reference.compute()), rel=1e-5)


def test_centre_crop_is_the_mst_crop_and_refuses_empty_crops() -> None:
    image = torch.zeros(1, 31, 482, 512)
    assert centre_crop(image, 128).shape[-2:] == (226, 256)
    with pytest.raises(ConfigError, match="crop_border"):
        centre_crop(torch.zeros(1, 31, 64, 80), 32)


def test_sam_properties_and_torchmetrics_agreement() -> None:
    _, target = _pair(2)
    sam = SpectralMetric("sam", crop_border=0)
    sam.update(target, target)
    assert float(sam.compute()) == pytest.approx(0.0, abs=1e-3)
    first = torch.zeros(1, 31, 4, 4)
    first[:, :15] = 1.0
    second = torch.zeros(1, 31, 4, 4)
    second[:, 15:] = 1.0
    sam = SpectralMetric("sam", crop_border=0)
    sam.update(first, second)
    assert float(sam.compute()) == pytest.approx(math.pi / 2, abs=1e-6)
    preds, target = _pair(3)
    plain, scaled = SpectralMetric("sam", 0), SpectralMetric("sam", 0)
    plain.update(preds.abs(), target)
    scaled.update(7.5 * preds.abs(), target)
    assert float(scaled.compute()) == pytest.approx(float(plain.compute()), rel=1e-5)
    reference = SpectralAngleMapper()
    reference.update(preds.abs(), target)
    assert float(plain.compute()) == pytest.approx(float(reference.compute()), rel=1e-5)
    assert float(spectral_angle(preds.abs(), target)) == pytest.approx(float(reference.compute()), rel=1e-4)


def test_spectral_metrics_factory_and_mrae_loss() -> None:
    assert sorted(spectral_metrics(8)) == ["mrae", "psnr", "rmse", "sam"]
    preds, target = _pair(4)
    terms = SpectralLoss().eval()(preds, target)
    assert float(terms["loss"]) == pytest.approx(float(((preds - target).abs() / target).mean()), rel=1e-6)
    assert {"mrae_loss", "l1_loss", "sam_loss", "loss"} == set(terms)


def test_tiled_forward_matches_whole_image_forward() -> None:
    images = torch.rand(2, 3, 50, 70)
    pointwise = torch.nn.Conv2d(3, 31, 1)
    with torch.no_grad():
        np.testing.assert_allclose(whole_image_forward(pointwise, images, tile=16, overlap=6),
                                   pointwise(images), atol=1e-5)
        conv = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Conv2d(8, 31, 3, padding=1))
        whole = conv(images)
        tiled = whole_image_forward(conv, images, tile=24, overlap=8)
        assert tiled.shape == whole.shape
        assert float((tiled - whole).abs().max()) < 1e-2 * float(whole.abs().max())


def test_linear_baseline_is_the_least_squares_solution() -> None:
    from sarexp.models.linear_spectral import LinearSpectralMap

    generator = torch.Generator().manual_seed(5)
    rgb = [torch.rand(2, 3, 6, 7, generator=generator) for _ in range(3)]
    weight, bias = torch.randn(31, 3, generator=generator), torch.randn(31, generator=generator)
    exact = [torch.einsum("oc,bchw->bohw", weight, x) + bias[:, None, None] for x in rgb]
    fitted = LinearSpectralMap().fit(zip(rgb, exact))
    torch.testing.assert_close(fitted.map.weight[:, :, 0, 0], weight, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(fitted.map.bias, bias, atol=1e-4, rtol=1e-4)
    noisy = [y + 0.1 * torch.randn(y.shape, generator=generator) for y in exact]
    fitted = LinearSpectralMap().fit(zip(rgb, noisy))
    x = torch.cat([r.permute(0, 2, 3, 1).reshape(-1, 3) for r in rgb]).double()
    y = torch.cat([t.permute(0, 2, 3, 1).reshape(-1, 31) for t in noisy]).double()
    solution = np.linalg.lstsq(np.c_[x.numpy(), np.ones(len(x))], y.numpy(), rcond=None)[0]
    np.testing.assert_allclose(fitted.map.weight[:, :, 0, 0].detach().numpy(), solution[:3].T, atol=1e-5)
