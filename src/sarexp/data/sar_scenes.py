"""Reading SSM4SAR scenes: one zarr store per scene, checked on open, and the model's input normalisation.

Layout
------
``<root>/training/*.zarr`` and ``<root>/validation/*.zarr`` (the test split is the validation split).
Each store is a zarr group (format 2 or 3) with complex arrays ``rc`` (range-compressed, model input) and
``az`` (azimuth-compressed, target; may be absent for prediction) of the same shape (azimuth, range).
:mod:`sarexp.data.synthetic.stripmap_dataset` writes this layout.

Normalisation
-------------
Each scene gets one real scale s = RMS of |rc|, estimated from ``scale_blocks`` chunk-aligned blocks of
``rc`` picked at random from its chunk grid with a fixed seed (cheap, and reproducible at prediction time).
Input and target are both divided by s: the input has RMS |rc|/s ≈ 1, and a prediction is turned back into
complex data with the input's scale alone, no reference needed (:func:`output_to_complex`). The third
input channel is the normalised azimuth position i/(n_azimuth − 1) of each line i in its scene.
"""

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import zarr

from sarexp.data.input_checks import check_finite
from sarexp.errors import DataError

FIX_HINT = "regenerate it or remove it from the dataset"


def _first_line(error: BaseException) -> str:
    """The first line of an exception message, for one-line errors."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


@dataclass(frozen=True)
class SceneStore:
    """Lazy arrays of one scene: ``rc``, ``az`` (None in rc-only stores) and the group attributes."""

    path: Path
    rc: zarr.Array
    az: zarr.Array | None
    attrs: dict[str, Any]

    @property
    def shape(self) -> tuple[int, int]:
        """(azimuth lines, range columns)."""
        return tuple(self.rc.shape)

    @property
    def chunks(self) -> tuple[int, int]:
        """Chunk shape of ``rc`` (azimuth, range)."""
        return tuple(self.rc.chunks)

    def read(self, name: str, lines: slice, columns: slice) -> np.ndarray:
        """Read a window of ``rc`` or ``az``; undecodable chunks raise DataError naming store and array."""
        array = self.rc if name == "rc" else self.az
        window_name = f"array '{name}' lines {lines.start}:{lines.stop}, columns {columns.start}:{columns.stop}"
        try:
            window = np.asarray(array[lines, columns])
        except Exception as error:  # zarr, codecs and the file system raise many unrelated types
            raise DataError(f"{self.path}: cannot read {window_name} ({_first_line(error)}); {FIX_HINT}") from error
        return check_finite(window, f"{self.path} ({window_name})")


def _scene_array(group: zarr.Group, name: str, path: Path, required: bool) -> zarr.Array | None:
    """Array ``name`` of a scene group, checked to be 2-D complex; None when absent and not required."""
    try:
        array = group[name] if name in group else None
    except Exception as error:  # unreadable or malformed array metadata
        raise DataError(f"{path}: array '{name}' has unreadable metadata ({_first_line(error)}); {FIX_HINT}") from error
    if array is None:
        if required:
            raise DataError(f"{path}: no array '{name}' in the store; {FIX_HINT}")
        return None
    if not isinstance(array, zarr.Array) or array.ndim != 2 or not np.issubdtype(array.dtype, np.complexfloating):
        kind = f"{array.ndim}-D {array.dtype}" if isinstance(array, zarr.Array) else "a group"
        raise DataError(f"{path}: '{name}' must be a 2-D complex array (azimuth, range), found {kind}; {FIX_HINT}")
    return array


def open_scene(path: str | os.PathLike[str]) -> SceneStore:
    """Open a scene store read-only and check its arrays; reads metadata only, no chunks."""
    path = Path(path)
    try:
        group = zarr.open_group(path, mode="r")
        attrs = dict(group.attrs)
    except Exception as error:  # missing path, not a group, malformed zarr.json, ...
        raise DataError(f"{path}: not a readable zarr store ({_first_line(error)}); {FIX_HINT}") from error
    rc = _scene_array(group, "rc", path, required=True)
    az = _scene_array(group, "az", path, required=False)
    if az is not None and az.shape != rc.shape:
        raise DataError(f"{path}: 'rc' has shape {rc.shape} but 'az' has shape {az.shape}; {FIX_HINT}")
    return SceneStore(path=path, rc=rc, az=az, attrs=attrs)


def chunk_slices(size: int, chunk: int) -> list[slice]:
    """Chunk-aligned slices covering ``range(size)``."""
    return [slice(start, min(start + chunk, size)) for start in range(0, size, chunk)]


def estimate_scale(scene: SceneStore, n_blocks: int, seed: int) -> float:
    """Normalisation scale of a scene: RMS of |rc| over ``n_blocks`` seeded random chunks of ``rc``.

    Whole chunks, so each block costs one chunk decode; seeded, so prediction reproduces training's scale.
    """
    rows, columns = (chunk_slices(size, chunk) for size, chunk in zip(scene.shape, scene.chunks))
    n_chunks = len(rows) * len(columns)
    picks = np.random.default_rng(seed).choice(n_chunks, size=min(n_blocks, n_chunks), replace=False)
    power, count = 0.0, 0
    for pick in picks:
        row, column = divmod(int(pick), len(columns))
        block = scene.read("rc", rows[row], columns[column]).astype(np.complex128)
        power += float(np.vdot(block, block).real)
        count += block.size
    scale = math.sqrt(power / count)
    if not 0.0 < scale < math.inf:
        raise DataError(
            f"{scene.path}: |rc| is zero or not finite in the {len(picks)} sampled chunks, so it cannot be "
            "normalised; check the scene or raise data.scale_blocks"
        )
    return scale


def azimuth_position(start: int, length: int, n_azimuth: int) -> np.ndarray:
    """Normalised position i/(n_azimuth − 1) of lines start..start+length−1 in a scene of n_azimuth lines."""
    return (np.arange(start, start + length, dtype=np.float64) / max(n_azimuth - 1, 1)).astype(np.float32)


def make_input(rc: np.ndarray, start: int, n_azimuth: int, scale: float) -> np.ndarray:
    """Model input (n_columns, 3, length) float32 = [I, Q, position] of an rc window (length, n_columns).

    ``start`` is the scene line of the window's first row, ``scale`` the scene's :func:`estimate_scale`.
    """
    length, n_columns = rc.shape
    inputs = np.empty((n_columns, 3, length), dtype=np.float32)
    inputs[:, 0] = rc.real.T / scale
    inputs[:, 1] = rc.imag.T / scale
    inputs[:, 2] = azimuth_position(start, length, n_azimuth)
    return inputs


def make_target(az: np.ndarray, scale: float) -> np.ndarray:
    """Target (n_columns, 2, length) float32 = [I, Q] of an az window (length, n_columns), same scale as rc."""
    return np.stack([az.real.T, az.imag.T], axis=1).astype(np.float32) / np.float32(scale)


def output_to_complex(output: np.ndarray | torch.Tensor, scale: float) -> np.ndarray:
    """Invert the normalisation of model output (n_columns, 2, length): complex64 (length, n_columns)."""
    values = output.detach().cpu().numpy() if isinstance(output, torch.Tensor) else np.asarray(output)
    return ((values[:, 0] + 1j * values[:, 1]).T * scale).astype(np.complex64)
