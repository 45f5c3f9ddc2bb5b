"""The SSM4SAR dataset writer: scenes of the stripmap simulator (:mod:`sarexp.data.synthetic.stripmap`) in the
zarr layout :mod:`sarexp.data.sar_focusing` reads, seeded per scene and published atomically.

On-disk layout
--------------
``<root>/<split>/scene_NNN.zarr`` for each split in ``scenes`` (``training``, ``validation``), a zarr v3
group with the arrays

- ``rc``: complex64 (azimuth, range), range-compressed input,
- ``az``: complex64 (azimuth, range), azimuth-compressed reference, same shape and chunks,

and the group attributes (units in brackets):

- :class:`RadarParameters` fields: ``wavelength`` [m], ``platform_velocity`` [m/s], ``prf`` [Hz],
  ``antenna_length`` [m], ``near_range`` [m, closest-approach slant range of range bin 0],
  ``range_sampling_rate`` [Hz], ``range_bandwidth`` [Hz], ``beamwidth_factor`` [processed beamwidth in
  units of λ/La], ``antenna_weighting`` [bool];
- derived, for readers without this module: ``azimuth_spacing`` [m, V/PRF], ``range_spacing``
  [m, c/(2·fs)], ``aperture_samples`` [azimuth samples, at near range], ``doppler_bandwidth`` [Hz],
  ``azimuth_resolution`` [m, 0.886·V/B_D], ``range_resolution`` [m, 0.886·c/(2·Br)],
  ``range_cell_migration`` [m, at far range];
- ``snr_db`` [dB, null: no noise], ``noise_power`` [rc power units], ``land_cover`` [the
  :class:`LandCover` fields, null: no background], ``point_targets`` [list of (azimuth sample, range bin,
  amplitude dB), fractional positions], ``seed`` [the integers seeding the scene], ``generator``
  [this module's name].
"""

import os
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

import numpy as np
import zarr

from sarexp.data.synthetic.staging import write_atomically
from sarexp.data.synthetic.stripmap import (
    LandCover,
    RadarParameters,
    SimulatedScene,
    random_point_targets,
    simulate_scene,
)
from sarexp.errors import ConfigError

DEFAULT_SCENES = MappingProxyType({"training": 4, "validation": 1})

_Settings = TypeVar("_Settings")


def _settings(cls: type[_Settings], value: _Settings | Mapping[str, Any], key: str) -> _Settings:
    """Accept a settings dataclass or a mapping of its fields (from YAML), naming unknown keys."""
    if isinstance(value, cls):
        return value
    if not isinstance(value, Mapping):
        raise ConfigError(f"simulator key '{key}' must be a mapping of {cls.__name__} fields, got {value!r}")
    known = [field.name for field in fields(cls)]
    unknown = sorted(set(value) - set(known))
    if unknown:
        raise ConfigError(f"simulator key '{key}': unknown field(s) {unknown}; known fields: {known}")
    return cls(**{name: _plain(item) for name, item in value.items()})


def _plain(value: Any) -> Any:
    """YAML lists (possibly OmegaConf ListConfig) as tuples, so frozen settings hold immutable values."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        return tuple(value)
    return value


def _check_layout(
    n_azimuth: int, n_range: int, scenes: Mapping[str, int], chunks: Sequence[int], point_targets: int, seed: int
) -> None:
    """Reject sizes that cannot make a dataset, naming the simulator key."""
    if n_azimuth < 1 or n_range < 1:
        raise ConfigError(f"simulator n_azimuth and n_range must be >= 1, got {n_azimuth}, {n_range}")
    if point_targets < 0:
        raise ConfigError(f"simulator key 'point_targets' must be >= 0, got {point_targets}")
    if len(chunks) != 2 or min(chunks) < 1:
        raise ConfigError(f"simulator key 'chunks' must be two positive integers (azimuth, range), got {chunks}")
    if any(count < 0 for count in scenes.values()) or sum(scenes.values()) < 1:
        raise ConfigError(f"simulator key 'scenes' must map split names to counts >= 0, not all 0; got {dict(scenes)}")
    if seed < 0:
        raise ConfigError(f"simulator key 'seed' must be >= 0, got {seed}")


def scene_seed(seed: int, split: str, index: int) -> list[int]:
    """Entropy of one scene's generator: depends on its split and index only, not on the other scenes."""
    return [seed, zlib.crc32(split.encode()), index]


def _write_scene(path: Path, scene: SimulatedScene, chunks: Sequence[int], attrs: dict[str, Any]) -> None:
    """Write one scene as a zarr v3 group with ``rc``, ``az`` and attributes."""
    group = zarr.open_group(path, mode="w-", zarr_format=3)
    chunk_shape = tuple(min(size, chunk) for size, chunk in zip(scene.rc.shape, chunks))
    group.create_array("rc", data=scene.rc, chunks=chunk_shape)
    group.create_array("az", data=scene.az, chunks=chunk_shape)
    group.attrs.update(attrs)


def write_synthetic_dataset(
    root: str | os.PathLike[str],
    *,
    params: RadarParameters | Mapping[str, Any] = RadarParameters(),
    n_azimuth: int = 1024,
    n_range: int = 128,
    scenes: Mapping[str, int] = DEFAULT_SCENES,
    land_cover: LandCover | Mapping[str, Any] | None = LandCover(),
    point_targets: int = 8,
    point_target_db: Sequence[float] = (10.0, 25.0),
    snr_db: float | None = 20.0,
    chunks: Sequence[int] = (256, 32),
    seed: int = 0,
) -> Path:
    """Write a seeded synthetic dataset ``<root>/<split>/scene_NNN.zarr`` and return ``root``.

    The dataset is built in a hidden sibling directory and renamed into place, so ``root`` is either
    untouched or complete. A non-empty ``root`` is never overwritten: FileExistsError, also when another
    process published first (its dataset is then complete and can be used).
    """
    root = Path(root)
    radar = _settings(RadarParameters, params, "params")
    cover = None if land_cover is None else _settings(LandCover, land_cover, "land_cover")
    _check_layout(n_azimuth, n_range, scenes, chunks, point_targets, seed)
    def fill(staging: Path) -> None:
        for split, count in scenes.items():
            (staging / split).mkdir()
            for index in range(count):
                entropy = scene_seed(seed, split, index)
                rng = np.random.default_rng(entropy)
                targets = random_point_targets(rng, point_targets, n_azimuth, n_range, point_target_db)
                scene = simulate_scene(radar, n_azimuth, n_range, rng, land_cover=cover, targets=targets, snr_db=snr_db)
                attrs = {
                    **radar.attributes(n_range),
                    "snr_db": snr_db,
                    "noise_power": scene.noise_power,
                    "land_cover": None if cover is None else asdict(cover),
                    "point_targets": scene.targets.tolist(),
                    "seed": entropy,
                    "generator": __name__,
                }
                _write_scene(staging / split / f"scene_{index:03d}.zarr", scene, chunks, attrs)

    return write_atomically(root, fill)
