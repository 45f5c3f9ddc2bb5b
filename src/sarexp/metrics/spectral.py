"""Spectral-reconstruction metrics under the MST++ / NTIRE 2022 validation protocol.

Per image, on the centre crop ``[..., b:-b, b:-b]`` (MST++: b = 128 on 482 × 512):

- MRAE = mean(|ŷ − y| / y) (no epsilon, as MST++'s ``Loss_MRAE``: references must be positive),
- RMSE = sqrt(mean((ŷ − y)²)),
- PSNR = 10·log10(1 / mean((clamp(ŷ) − clamp(y))²)) with both clamped to [0, 1] (data range 1; MST++ scales
  by 255 and uses data range 255, the same number),
- SAM = mean over pixels of the angle (radians) between the predicted and reference spectra, by
  :func:`torchmetrics.functional.spectral_angle_mapper` (no epsilon: a zero spectrum gives NaN).

Each metric is averaged over images (MST++ validates with batch 1 and averages per-image values), so the
result does not depend on the batch size. :func:`whole_image_forward` runs a network over whole images,
in overlapping tiles when ``tile`` is set, for images too large to go through at once.
"""

from collections.abc import Callable

import torch
from torchmetrics import Metric
from torchmetrics.functional.image import spectral_angle_mapper

from sarexp.data.tiling import blend_weights, window_starts
from sarexp.errors import ConfigError


def centre_crop(image: torch.Tensor, border: int) -> torch.Tensor:
    """``image[..., border:-border, border:-border]`` (the whole image for border 0); ConfigError if empty."""
    if border == 0:
        return image
    height, width = image.shape[-2:]
    if 2 * border >= min(height, width):
        raise ConfigError(f"metric crop border {border} leaves nothing of a {height}×{width} image; lower "
                          "system.crop_border (MST++: 128 on 482×512)")
    return image[..., border:-border, border:-border]


def mrae_per_image(preds: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return ((preds - target).abs() / target).flatten(1).mean(1)


def rmse_per_image(preds: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return ((preds - target) ** 2).flatten(1).mean(1).sqrt()


def psnr_per_image(preds: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    mse = ((preds.clamp(0, 1) - target.clamp(0, 1)) ** 2).flatten(1).mean(1)
    return 10.0 * torch.log10(1.0 / mse)


def sam_per_image(preds: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return torch.stack([spectral_angle_mapper(p[None], t[None]) for p, t in zip(preds, target)])


PER_IMAGE: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "mrae": mrae_per_image, "rmse": rmse_per_image, "psnr": psnr_per_image, "sam": sam_per_image,
}


class SpectralMetric(Metric):
    """Mean over images of one per-image metric (``mrae``, ``rmse``, ``psnr`` or ``sam``) on the centre crop."""

    full_state_update = False
    higher_is_better = None  # psnr: higher; mrae, rmse, sam: lower

    def __init__(self, name: str, crop_border: int = 128) -> None:
        super().__init__()
        if name not in PER_IMAGE:
            raise ConfigError(f"spectral metric name must be one of {sorted(PER_IMAGE)}, got {name!r}")
        if crop_border < 0:
            raise ConfigError(f"crop_border must be ≥ 0, got {crop_border}")
        self.name = name
        self.crop_border = crop_border
        self.add_state("total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        values = PER_IMAGE[self.name](centre_crop(preds.float(), self.crop_border),
                                      centre_crop(target.float(), self.crop_border))
        self.total += values.sum(dtype=torch.float64)
        self.count += values.numel()

    def compute(self) -> torch.Tensor:
        return (self.total / self.count.clamp_min(1)).float()


def spectral_metrics(crop_border: int = 128) -> dict[str, SpectralMetric]:
    """The four protocol metrics, keyed by name (for a MetricCollection)."""
    return {name: SpectralMetric(name, crop_border) for name in PER_IMAGE}


def whole_image_forward(net: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor,
                        tile: int | None = None, overlap: int = 32) -> torch.Tensor:
    """``net(images)`` for whole (B, C, H, W) images; with ``tile``, over overlapping tile × tile windows.

    Tiles overlap by ``overlap`` pixels; in the blend a pixel within ``overlap // 2`` of an inner tile edge
    has weight 1e-3, so every output comes from the tile where it is most central.
    """
    height, width = images.shape[-2:]
    if tile is None or (height <= tile and width <= tile):
        return net(images)
    if not 0 <= overlap < tile:
        raise ConfigError(f"tile overlap must be in [0, tile), got overlap={overlap}, tile={tile}")
    rows = window_starts(height, tile, overlap)
    cols = window_starts(width, tile, overlap)
    total = None
    weight = images.new_zeros(1, 1, height, width)
    for top in rows:
        tile_h = min(tile, height)
        row_weight = torch.from_numpy(blend_weights(tile_h, top, height, overlap // 2, 1e-3))
        for left in cols:
            tile_w = min(tile, width)
            col_weight = torch.from_numpy(blend_weights(tile_w, left, width, overlap // 2, 1e-3))
            window = (Ellipsis, slice(top, top + tile_h), slice(left, left + tile_w))
            out = net(images[window])
            if total is None:
                total = out.new_zeros(*out.shape[:2], height, width)
            blend = (row_weight[:, None] * col_weight[None, :]).to(out)
            total[window] += out * blend
            weight[window] += blend
    return total / weight
