"""Sample-quality metrics of generative models, computed on feature vectors of real and generated images.

- Fréchet distance (FID when the features are Inception's): the 2-Wasserstein distance between Gaussians
  fitted to the two feature sets, ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁^½ Σ₂ Σ₁^½)^½ (Heusel et al. 2017).
  The matrix square root is taken through symmetric eigendecompositions: Σ₁^½ Σ₂ Σ₁^½ is symmetric
  positive semi-definite, so its trace square root is the sum of the square roots of its eigenvalues,
  which stays real and stable where a general ``sqrtm`` of Σ₁Σ₂ returns complex round-off.
- Improved precision and recall (Kynkäänniemi et al. 2019): each set approximates its manifold by the
  union of balls around its points with radius the distance to the k-th nearest neighbour (k = 3).
  Precision is the fraction of generated points inside the real manifold (fidelity), recall the
  fraction of real points inside the generated manifold (coverage).
"""

import numpy as np
import torch


def gaussian_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of (N, D) features, in float64."""
    values = np.asarray(features, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] < 2:
        raise ValueError(f"need (N >= 2, D) features, got shape {values.shape}")
    return values.mean(axis=0), np.atleast_2d(np.cov(values, rowvar=False))


def _symmetric_sqrt(matrix: np.ndarray) -> np.ndarray:
    eigenvalues, eigenvectors = np.linalg.eigh((matrix + matrix.T) / 2.0)
    return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ eigenvectors.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2)."""
    root1 = _symmetric_sqrt(np.asarray(sigma1, dtype=np.float64))
    middle = root1 @ np.asarray(sigma2, dtype=np.float64) @ root1
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2.0), 0.0, None)).sum()
    mean_term = float(np.sum((np.asarray(mu1) - np.asarray(mu2)) ** 2))
    return max(mean_term + float(np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt), 0.0)


def feature_frechet_distance(real: np.ndarray, generated: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two (N, D) feature sets."""
    return frechet_distance(*gaussian_statistics(real), *gaussian_statistics(generated))


def _distances(a: torch.Tensor, b: torch.Tensor, block: int = 4096) -> torch.Tensor:
    """(len(a), len(b)) Euclidean distances, computed in row blocks to bound memory."""
    return torch.cat([torch.cdist(a[start : start + block], b) for start in range(0, len(a), block)])


def manifold_radii(features: torch.Tensor, k: int = 3) -> torch.Tensor:
    """Distance from each point to its k-th nearest neighbour in the same set (itself excluded)."""
    if len(features) <= k:
        raise ValueError(f"need more than k={k} points to estimate a manifold, got {len(features)}")
    return _distances(features, features).kthvalue(k + 1, dim=1).values  # the 1st is the point itself (0)


def _coverage(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor) -> float:
    """Fraction of ``points`` inside at least one ball (centre, radius)."""
    return (_distances(points, centres) <= radii[None, :]).any(dim=1).double().mean().item()


def precision_recall(real: np.ndarray, generated: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall of ``generated`` against ``real`` (both (N, D) features)."""
    real_t = torch.as_tensor(np.asarray(real), dtype=torch.float64)
    fake_t = torch.as_tensor(np.asarray(generated), dtype=torch.float64)
    precision = _coverage(fake_t, real_t, manifold_radii(real_t, k))
    recall = _coverage(real_t, fake_t, manifold_radii(fake_t, k))
    return precision, recall
