"""Colorization scores against closed forms and a naive spectral angle."""

import math

import numpy as np
import torch

from sarexp.metrics.colorization import group_means, psnr, sam, spectral_angle, ssim


def test_psnr_is_the_mean_of_per_image_closed_forms():
    target = torch.zeros(2, 3, 8, 8)
    generated = target.clone()
    generated[0] += 0.2  # [0, 1] error 0.1 → 20 dB
    generated[1] += 0.02  # → 40 dB
    assert abs(psnr(generated, target) - 30.0) < 1e-3  # mean of 20 dB and 40 dB


def test_ssim_of_identical_images_is_one_and_drops_with_noise():
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    assert abs(ssim(images, images) - 1.0) < 1e-6
    assert ssim((images + 0.5 * torch.randn_like(images)).clamp(-1, 1), images) < 0.8


def test_spectral_angle_matches_a_naive_loop():
    generator = torch.Generator().manual_seed(0)
    a, b = torch.rand(1, 3, 4, 4, generator=generator) * 2 - 1, torch.rand(1, 3, 4, 4, generator=generator) * 2 - 1
    angles = spectral_angle(a, b)
    ua, ub = ((a.double() + 1) / 2).numpy()[0], ((b.double() + 1) / 2).numpy()[0]
    for i in range(4):
        for j in range(4):
            x, y = ua[:, i, j], ub[:, i, j]
            expected = math.degrees(math.acos(np.dot(x, y) / (np.linalg.norm(x) * np.linalg.norm(y))))
            assert abs(float(angles[0, i, j]) - expected) < 1e-6
    red, green = torch.full((1, 3, 2, 2), -1.0), torch.full((1, 3, 2, 2), -1.0)
    red[:, 0], green[:, 1] = 1.0, 1.0
    assert abs(sam(red, green) - 90.0) < 1e-9 and sam(red, red) < 1e-6


def test_group_means():
    images = torch.arange(4.0).reshape(4, 1, 1, 1)
    means = group_means(images, ["a", "b", "a", "b"])
    assert float(means["a"]) == 1.0 and float(means["b"]) == 2.0
