"""Blend the finished blocks of a scene into its output rasters, window by window, and publish them as COGs.

Neighbouring blocks overlap by ``overlap`` output pixels and cross-fade there (linear ramps,
:func:`sarexp.data.tiling.ramp_weights`): a block's edge, which saw no context beyond it, weighs little
next to its neighbour's interior. The outputs are written in windows of ``write_size`` pixels, so memory
is bounded by a window and the blocks it touches (memory-mapped, only the overlapping part is read).
"""

from pathlib import Path

import numpy as np
from rasterio.crs import CRS
from rasterio.transform import Affine

from sarexp.data.tiling import Canvas, grid_windows, window_weights
from sarexp.io.cog import StagedRaster
from sarexp.scenes.blocks import BlockStore
from sarexp.scenes.predictor import SceneOutput

Window = tuple[int, int, int, int]
EDGE_WEIGHT = 1e-3  # a block's weight at its very edge, relative to its interior


def _overlap(a: Window, b: Window) -> Window | None:
    top, left = max(a[0], b[0]), max(a[1], b[1])
    bottom, right = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    return (top, left, bottom - top, right - left) if bottom > top and right > left else None


def blend_region(store: BlockStore, blocks: list[Window], region: Window, shape: tuple[int, int], channels: int,
                 overlap: int) -> np.ndarray:
    """float32 (channels, h, w) of the output ``region``: the weighted blend of the blocks covering it."""
    canvas = Canvas(channels, region[2:])
    for index, block in enumerate(blocks):
        common = _overlap(block, region)
        if common is None:
            continue
        data = store.load(index)
        if data is None:
            continue
        top, left, height, width = common
        inside_block = (slice(top - block[0], top - block[0] + height), slice(left - block[1], left - block[1] + width))
        weights = window_weights(block, shape, overlap, EDGE_WEIGHT, "linear")[inside_block]
        canvas.add(np.asarray(data[(slice(None), *inside_block)]), weights, top - region[0], left - region[1])
    return canvas.result()


def assemble(store: BlockStore, blocks: list[Window], outputs: list[SceneOutput], channels: int,
             shape: tuple[int, int], overlap: int, write_size: int, crs: CRS | None, transform: Affine,
             targets: dict[str, Path], compress: str) -> None:
    """Write every output (``targets``: suffix → path) from the stored blocks and publish them."""
    staged = {output.suffix: StagedRaster(store.directory / f"staging{output.suffix}.tif", output.spec, shape, crs,
                                          transform) for output in outputs}
    try:
        for region in grid_windows(shape, write_size, 0):
            blended = blend_region(store, blocks, region, shape, channels, overlap)
            for output in outputs:
                values, valid = output.convert(blended)
                staged[output.suffix].write(values, region[0], region[1], valid)
    finally:
        for raster in staged.values():
            raster.close()
    for output in outputs:
        staged[output.suffix].publish(targets[output.suffix], compress)
