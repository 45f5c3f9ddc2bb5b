"""What a scene file holds and how it becomes what a model was trained on.

Bands
-----
``bands`` names the bands a model needs, in its channel order: a band's description as the writer set it
(matched case-insensitively as a whole word, so ``VH`` finds SNAP's ``Sigma0_VH`` and GDAL's ``VH``), or its
1-based index (``[2, 1]`` when a file has no descriptions). A file without descriptions that has exactly as
many bands as the model needs is read in order (a warning says so).

Sentinel-1 units (``units``)
---------------------------
Models trained on backscatter in dB get dB, whatever the file stores:

- ``db``: σ⁰ in dB, taken as is.
- ``linear``: σ⁰ in linear power (SNAP's calibrated ``Sigma0_*``): dB = 10·log10(σ⁰), non-positive σ⁰ replaced
  by ``floor``.
- ``amplitude``: GRD digital numbers (the measurement TIFFs of a SAFE product): σ⁰ = DN² / A², with A the
  calibration constant ``calibration`` (Sentinel-1's sigmaNought calibration vector varies slowly across range;
  one value is an approximation: calibrate with SNAP for exact values), then dB as for ``linear``.

``floor`` (1e-6, −60 dB: SEN12-FLOOD's value for no-data zeros) keeps log10 finite for zero or negative values.
"""

import logging
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sarexp.errors import ConfigError, DataError
from sarexp.io.raster import RasterInfo

log = logging.getLogger(__name__)
UNITS = ("db", "linear", "amplitude")
SCENE_SUFFIXES = (".tif", ".tiff", ".vrt", ".jp2", ".img", ".png", ".jpg", ".jpeg")


def check_units(units: str, calibration: float, floor: float) -> None:
    if units not in UNITS:
        raise ConfigError(f"scene.predictor.units must be one of {', '.join(UNITS)}, got {units!r}")
    if calibration <= 0 or floor <= 0:
        raise ConfigError(f"scene.predictor.calibration and floor must be > 0, got {calibration}, {floor}")


def to_db(values: np.ndarray, units: str, calibration: float = 1.0, floor: float = 1e-6) -> np.ndarray:
    """Backscatter in ``units`` (see the module docstring) as float32 dB."""
    values = values.astype(np.float32, copy=False)
    if units == "db":
        return values
    power = values if units == "linear" else (values / np.float32(calibration)) ** 2
    return (10.0 * np.log10(np.where(power > 0, power, np.float32(floor)))).astype(np.float32)


def resolve_bands(info: RasterInfo, wanted: Sequence[str | int]) -> list[int]:
    """1-based indices of the ``wanted`` bands (descriptions or indices); DataError naming the file and what it has.
    A file without band descriptions that has exactly as many bands as wanted gives them in order (logged)."""
    if info.count == len(wanted) and not any(info.descriptions) and not all(_is_index(b) for b in wanted):
        log.warning("%s: no band descriptions; taking its %d band(s) as %s", info.path, info.count, list(wanted))
        return list(range(1, info.count + 1))
    indices = []
    for band in wanted:
        if _is_index(band):
            index = int(band)
            if not 1 <= index <= info.count:
                raise DataError(f"{info.path}: has {info.count} band(s), no band {index}; set scene.predictor.bands "
                                f"to the 1-based indices of the bands the model needs")
            indices.append(index)
            continue
        pattern = re.compile(rf"(^|[^a-z0-9]){re.escape(str(band).lower())}([^a-z0-9]|$)")
        found = [i for i, description in enumerate(info.descriptions, start=1)
                 if description and pattern.search(description.lower())]
        if len(found) != 1:
            have = [d or f"band {i} (no description)" for i, d in enumerate(info.descriptions, start=1)]
            reason = "no band" if not found else f"{len(found)} bands"
            raise DataError(f"{info.path}: {reason} described as {band!r} among {have}; the model needs "
                            f"{list(wanted)}: set scene.predictor.bands to their 1-based indices, e.g. "
                            f"{list(range(1, len(wanted) + 1))}")
        indices.append(found[0])
    return indices


def _is_index(band: str | int) -> bool:
    return isinstance(band, int) or str(band).isdigit()


def scene_files(inputs: Sequence[str | Path]) -> list[Path]:
    """The files named by ``data.predict_inputs``: files as given, folders by their rasters (sorted)."""
    files: list[Path] = []
    for entry in inputs:
        path = Path(entry).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in SCENE_SUFFIXES)
            if not found:
                raise DataError(f"data.predict_inputs: {path} holds no scene ({', '.join(SCENE_SUFFIXES)})")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise DataError(f"data.predict_inputs: {path} is neither a file nor a folder")
    stems = [path.stem for path in files]
    repeated = sorted({stem for stem in stems if stems.count(stem) > 1})
    if repeated:
        raise DataError(f"data.predict_inputs: several scenes named {repeated}; outputs are named after the file, "
                        "so predict them in separate runs")
    return files
