"""FID, improved precision/recall and semivariograms against closed forms and naive implementations."""

import itertools

import numpy as np
import pytest
import torch
from scipy import linalg

from sarexp.metrics.generative import (
    feature_frechet_distance,
    frechet_distance,
    manifold_radii,
    precision_recall,
)
from sarexp.metrics.semivariogram import plot_semivariograms, semivariogram
from sarexp.models.feature_cnn import FeatureCNN


def test_frechet_distance_of_a_set_with_itself_is_zero():
    features = np.random.default_rng(0).standard_normal((200, 16)) @ np.random.default_rng(1).standard_normal((16, 16))
    assert feature_frechet_distance(features, features) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_of_diagonal_gaussians_has_the_closed_form():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, -1.0])
    var1, var2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    # commuting covariances: tr(Σ1 + Σ2 − 2(Σ1Σ2)^½) = Σ (σ1 − σ2)²
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(var1) - np.sqrt(var2)) ** 2)
    assert frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2)) == pytest.approx(expected, rel=1e-12)


def test_frechet_distance_matches_scipy_sqrtm_for_general_covariances():
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((6, 6)), rng.standard_normal((6, 6))
    sigma1, sigma2 = a @ a.T + 0.1 * np.eye(6), b @ b.T + 0.1 * np.eye(6)
    mu1, mu2 = rng.standard_normal(6), rng.standard_normal(6)
    reference = np.sum((mu1 - mu2) ** 2) + np.trace(sigma1 + sigma2 - 2 * linalg.sqrtm(sigma1 @ sigma2).real)
    assert frechet_distance(mu1, sigma1, mu2, sigma2) == pytest.approx(reference, rel=1e-9)


def test_fid_of_samples_converges_to_the_closed_form():
    rng = np.random.default_rng(3)
    a = rng.normal(0.0, 1.0, (20000, 2))
    b = rng.normal([1.0, 0.0], [2.0, 1.0], (20000, 2))
    assert feature_frechet_distance(a, b) == pytest.approx(1.0 + 1.0, abs=0.1)  # |Δμ|² + (2 − 1)²


def test_precision_recall_are_one_for_identical_and_zero_for_disjoint_sets():
    features = np.random.default_rng(4).standard_normal((100, 8))
    assert precision_recall(features, features, k=3) == (1.0, 1.0)
    assert precision_recall(features, features + 100.0, k=3) == (0.0, 0.0)


def test_precision_recall_match_a_naive_implementation():
    rng = np.random.default_rng(5)
    real, fake = rng.standard_normal((40, 3)), rng.standard_normal((30, 3)) * 1.5 + 0.5

    def naive_radii(points):
        return np.array([sorted(np.linalg.norm(points - point, axis=1))[3] for point in points])

    def inside(points, centres, radii):
        return np.mean([any(np.linalg.norm(point - c) <= r for c, r in zip(centres, radii)) for point in points])

    np.testing.assert_allclose(manifold_radii(torch.as_tensor(real), 3).numpy(), naive_radii(real))
    precision, recall = precision_recall(real, fake, k=3)
    assert precision == pytest.approx(inside(fake, real, naive_radii(real)))
    assert recall == pytest.approx(inside(real, fake, naive_radii(fake)))
    assert 0.0 < precision < 1.0 and 0.0 < recall < 1.0


def test_semivariogram_matches_all_pairs_computed_naively():
    images = np.random.default_rng(6).standard_normal((2, 2, 7, 9)).cumsum(axis=-1)
    lags, gamma = semivariogram(images, 5)
    sums, counts = np.zeros((2, 6)), np.zeros(6)
    pixels = list(itertools.product(range(7), range(9)))
    for (r1, c1), (r2, c2) in itertools.product(pixels, pixels):
        lag = int(np.rint(np.hypot(r1 - r2, c1 - c2)))
        if 1 <= lag <= 5:
            sums[:, lag] += ((images[:, :, r1, c1] - images[:, :, r2, c2]) ** 2).sum(axis=0)
            counts[lag] += len(images)
    assert lags.tolist() == [1, 2, 3, 4, 5]
    np.testing.assert_allclose(gamma, sums[:, 1:] / (2 * counts[1:]), rtol=1e-10)


def test_semivariogram_of_white_noise_is_its_variance_and_of_a_ramp_counts_its_pairs():
    noise = np.random.default_rng(7).normal(0.0, 2.0, (20, 1, 32, 32))
    _, gamma = semivariogram(noise, 6)
    np.testing.assert_allclose(gamma[0], 4.0, rtol=0.03)
    ramp = np.broadcast_to(np.arange(32.0)[None, :], (32, 32))[None, None]  # z = column index
    _, gamma = semivariogram(ramp, 1)
    # lag 1 holds the offsets rounding to 1: (0, ±1) and (±1, ±1) with Δz² = 1, (±1, 0) with Δz² = 0
    horizontal, vertical, diagonal = 2 * 32 * 31, 2 * 31 * 32, 4 * 31 * 31
    expected = (horizontal + diagonal) / (2 * (horizontal + vertical + diagonal))
    assert gamma[0, 0] == pytest.approx(expected, rel=1e-12)
    figure = plot_semivariograms(np.arange(1, 7), {"real": np.ones((1, 6))}, ["channel 0"])
    assert len(figure.axes) == 1


def test_feature_cnn_exposes_penultimate_features():
    network = FeatureCNN(in_channels=2, num_classes=5, widths=(8, 16), feature_dim=12).eval()
    batch = torch.from_numpy(np.random.default_rng(8).uniform(-1, 1, (3, 2, 16, 16)).astype(np.float32))
    features = network.features(batch)
    assert features.shape == (3, 12) and network(batch).shape == (3, 5)
    torch.testing.assert_close(network.head(features), network(batch))


def test_real_training_images_come_back_the_same_whatever_the_global_rng(compose_config, tmp_path):
    """The training loader shuffles: the real reference set (FID floor) must not depend on earlier draws."""
    from sarexp.tasks.evaluate_generative import real_images

    cfg = compose_config(["experiment=pdm_sar_lowres", "data.image_size=8", f"data.root={tmp_path / 'data'}",
                          "data.generator.counts={train:6,val:1,test:1}", "data.batch_size=4"])
    torch.manual_seed(1)
    first, first_labels = real_images(cfg, "train", 20)
    after = torch.rand(3)
    torch.manual_seed(2)
    second, second_labels = real_images(cfg, "train", 20)
    assert first.shape == (20, 1, 8, 8) and np.array_equal(first, second)
    assert np.array_equal(first_labels, second_labels) and len(set(first_labels.tolist())) > 1
    torch.manual_seed(1)
    real_images(cfg, "train", 20)
    assert torch.equal(torch.rand(3), after)  # the global RNG is left as it was
