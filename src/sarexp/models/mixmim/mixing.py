"""The MixMIM mixing mask: one random mask per batch, drawn on the coarsest token grid.

Token (i, j) of a mixed image comes from the partner image where the mask is True. Finer stages see the
mask upsampled by repetition, so every 2×2 group that patch merging fuses belongs to one image only.
"""

import torch

from sarexp.errors import ConfigError


def draw_mix_mask(
    grid: tuple[int, int], ratio: float, generator: torch.Generator | None = None, device: torch.device | None = None
) -> torch.Tensor:
    """Boolean (h, w) mask with exactly int(h·w·ratio) True entries at random positions."""
    if not 0.0 <= ratio <= 1.0:
        raise ConfigError(f"mask ratio must be in [0, 1], got {ratio}")
    height, width = grid
    count = int(height * width * ratio)
    order = torch.randperm(height * width, generator=generator)
    mask = torch.zeros(height * width, dtype=torch.bool)
    mask[order[:count]] = True
    return mask.view(height, width).to(device)


def upsample_mask(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Nearest-neighbour upsampling of a boolean (h, w) mask to (H, W), both integer multiples."""
    factor_h, factor_w = size[0] // mask.shape[0], size[1] // mask.shape[1]
    return mask.repeat_interleave(factor_h, dim=0).repeat_interleave(factor_w, dim=1)


def window_group_mask(mask: torch.Tensor, window: int) -> torch.Tensor:
    """Additive attention mask (num_windows, N, N): 0 between tokens of the same image, −inf across images.

    The layout is timm's shifted-window mask (window-major, row-major inside a window), so timm's
    WindowAttention applies it to every image of the batch, which shares the one mixing mask.
    """
    height, width = mask.shape
    windows = mask.view(height // window, window, width // window, window).permute(0, 2, 1, 3)
    windows = windows.reshape(-1, window * window)
    different = windows[:, :, None] != windows[:, None, :]
    return torch.zeros(different.shape, device=mask.device).masked_fill(different, float("-inf"))
