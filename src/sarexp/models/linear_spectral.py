"""The classic baseline of spectral recovery: a per-pixel affine map RGB → bands, fitted by least squares.

ŷ(x) = W·rgb(x) + b for every pixel. The fit minimises Σ_pixels ‖W·rgb + b − y‖² over the training
images in closed form — accumulate the normal equations XᵀX and XᵀY in float64 image by image (X = [rgb, 1]
per pixel), then solve (XᵀX + λI)[W b]ᵀ = XᵀY — so it never holds all pixels at once.
"""

from collections.abc import Iterable

import torch
from torch import nn


class LinearSpectralMap(nn.Module):
    """A 1×1 convolution in_channels → out_channels with a bias: a per-pixel affine map."""

    def __init__(self, in_channels: int = 3, out_channels: int = 31) -> None:
        super().__init__()
        self.map = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.map(x)

    @torch.no_grad()
    def fit(self, pairs: Iterable[tuple[torch.Tensor, torch.Tensor]], ridge: float = 0.0) -> "LinearSpectralMap":
        """Least-squares fit on (rgb (B, C, H, W), hsi (B, bands, H, W)) pairs; returns self."""
        gram, cross = None, None
        for rgb, hsi in pairs:
            x = rgb.double().permute(1, 0, 2, 3).reshape(rgb.shape[1], -1)
            x = torch.cat([x, torch.ones(1, x.shape[1], dtype=x.dtype)])
            y = hsi.double().permute(1, 0, 2, 3).reshape(hsi.shape[1], -1)
            gram = x @ x.T if gram is None else gram + x @ x.T
            cross = x @ y.T if cross is None else cross + x @ y.T
        if gram is None:
            raise ValueError("LinearSpectralMap.fit needs at least one (rgb, hsi) pair")
        solution = torch.linalg.solve(gram + ridge * torch.eye(len(gram), dtype=gram.dtype), cross)
        self.map.weight.copy_(solution[:-1].T[:, :, None, None].to(self.map.weight))
        self.map.bias.copy_(solution[-1].to(self.map.bias))
        return self
