"""Season and climate region of a scene from its own metadata (colorization's prompt, ``from_metadata: true``).

- Acquisition date: the first of the GDAL metadata items ``ACQUISITION_START_TIME`` (Sentinel-1 SAFE read by
  GDAL), ``ACQUISITION_TIME``, ``DATE_ACQUIRED``, ``TIFFTAG_DATETIME`` (``YYYY:MM:DD HH:MM:SS``, the time the
  file was written: the last resort), else a Sentinel-1 style ``YYYYMMDDTHHMMSS`` in the file name.
- Latitude of the scene centre, from its CRS and transform (WGS 84).
- Season: meteorological seasons, months 12–2 winter, 3–5 spring, 6–8 summer, 9–11 autumn in the northern
  hemisphere, shifted by six months in the southern one (latitude < 0).
- Region: |latitude| < 23.44° tropical (between the tropics), < 66.56° temperate, else arctic (the polar
  circles; the Antarctic is "arctic" too, the only polar class of the training prompts).
"""

import re
from datetime import datetime

from rasterio.warp import transform as transform_points

from sarexp.errors import DataError
from sarexp.io.raster import RasterInfo

DATE_TAGS = ("ACQUISITION_START_TIME", "ACQUISITION_TIME", "DATE_ACQUIRED", "TIFFTAG_DATETIME")
NORTHERN_SEASONS = {12: "winter", 1: "winter", 2: "winter", 3: "spring", 4: "spring", 5: "spring",
                    6: "summer", 7: "summer", 8: "summer", 9: "autumn", 10: "autumn", 11: "autumn"}
TROPIC, POLAR_CIRCLE = 23.44, 66.56


def acquisition_date(info: RasterInfo) -> datetime:
    """When the scene was acquired (see the module docstring); DataError naming the file when nothing says."""
    for key in DATE_TAGS:
        text = info.tags.get(key)
        if text:
            match = re.search(r"(\d{4})[-:]?(\d{2})[-:]?(\d{2})", text)
            if match:
                return datetime(*(int(part) for part in match.groups()))
    match = re.search(r"(\d{4})(\d{2})(\d{2})T\d{6}", info.path.name)
    if match:
        return datetime(*(int(part) for part in match.groups()))
    raise DataError(f"{info.path}: no acquisition date in its metadata ({', '.join(DATE_TAGS)}) or its name "
                    "(YYYYMMDDTHHMMSS); set scene.predictor.season (and region) instead of from_metadata")


def centre_latitude(info: RasterInfo) -> float:
    """Latitude (degrees, WGS 84) of the scene centre; DataError when the scene has no CRS."""
    if info.crs is None:
        raise DataError(f"{info.path}: no CRS, so no latitude for the region; set scene.predictor.region and "
                        "season instead of from_metadata")
    x, y = info.transform @ (info.width / 2, info.height / 2)
    _, (latitude,) = transform_points(info.crs, "EPSG:4326", [x], [y])
    return float(latitude)


def season_of(date: datetime, latitude: float) -> str:
    month = date.month if latitude >= 0 else (date.month + 5) % 12 + 1
    return NORTHERN_SEASONS[month]


def region_of(latitude: float) -> str:
    if abs(latitude) < TROPIC:
        return "tropical"
    return "temperate" if abs(latitude) < POLAR_CIRCLE else "arctic"


def scene_region_season(info: RasterInfo) -> tuple[str, str]:
    """(region, season) of a scene from its metadata."""
    latitude = centre_latitude(info)
    return region_of(latitude), season_of(acquisition_date(info), latitude)
