"""Seeded SAR / optical patch pairs in the colorization seed's layout, where colour depends on what SAR cannot see.

Layout (as the seed's ``Dataset/`` folder)::

    <root>/r_NNN/s1_NNN/img_pK.png   SAR, 8-bit grey ('L')
    <root>/r_NNN/s2_NNN/img_pK.png   optical, 8-bit 'RGB'
    <root>/data_r_NNN.csv            one row per pair: s1_fileName, s2_fileName, coordinates, country,
                                     date-time, scale, region, season, operational-mode, polarisation, bands

Each ``r_NNN`` is a scene with one climate region (tropical / temperate / arctic) and one acquisition season;
scenes cycle through all region × season combinations so every prompt occurs. Every patch is a warped Voronoi
land-cover map (water, forest, cropland, grassland, urban, bare soil), drawn with the same class frequencies in
every region and season.

- SAR: per-class C-band VV backscatter in dB plus smooth texture, multiplied by gamma speckle (``looks``),
  mapped from [−25, 0] dB to 0..255. It depends on the land cover only, whose distribution is the same for
  every region and season: the SAR image carries no information about either.
- Optical: per-class colour chosen by (region, season) — snow over everything but water in arctic winter,
  ice on arctic winter water, evergreen tropical vegetation, autumn foliage and stubble in temperate autumn,
  bare brown fields in temperate winter with patchy snow, golden crops in summer — plus smooth brightness
  texture and sensor noise. So the prompt carries information the SAR image does not.
"""

import csv
import io
from pathlib import Path

import numpy as np
from PIL import Image

from sarexp.data.synthetic.land_cover import land_cover_map, smooth_field
from sarexp.data.synthetic.staging import write_atomically

REGIONS = ("tropical", "temperate", "arctic")
SEASONS = ("winter", "spring", "summer", "autumn")
COLUMNS = ("s1_fileName", "s2_fileName", "coordinates", "country", "date-time", "scale", "region", "season",
           "operational-mode", "polarisation", "bands")
CLASSES = ("water", "forest", "cropland", "grassland", "urban", "bare")

# VV backscatter (dB) per class: calm water darkest, urban brightest by double bounce.
CLASS_VV_DB = np.array([-21.0, -8.0, -11.5, -13.0, -4.0, -16.0])
SAR_DB_RANGE = (-25.0, 0.0)

# Relative class frequencies, the same in every region: land cover (hence SAR) must not reveal the region.
CLASS_FREQUENCY = np.array([1.0, 2.0, 2.0, 2.0, 1.0, 1.0])

_SNOW, _ICE = (236, 240, 245), (205, 222, 235)
_WATER = {"tropical": (30, 80, 95), "temperate": (25, 55, 90), "arctic": (20, 40, 70)}
_URBAN, _BARE = (130, 128, 125), (150, 120, 90)
# RGB of each vegetated class by region and season (water, urban and bare are added below).
_VEGETATION = {
    "tropical": {season: {"forest": (20, 90, 30), "cropland": (90, 150, 50), "grassland": (110, 160, 60)}
                 for season in SEASONS},
    "temperate": {
        "winter": {"forest": (85, 70, 55), "cropland": (120, 95, 70), "grassland": (125, 120, 90)},
        "spring": {"forest": (90, 160, 60), "cropland": (120, 180, 80), "grassland": (110, 175, 70)},
        "summer": {"forest": (35, 100, 35), "cropland": (210, 180, 80), "grassland": (80, 140, 50)},
        "autumn": {"forest": (200, 100, 30), "cropland": (140, 100, 60), "grassland": (160, 140, 70)},
    },
    "arctic": {
        "winter": {"forest": _SNOW, "cropland": _SNOW, "grassland": _SNOW},
        "spring": {"forest": (50, 75, 55), "cropland": (150, 140, 115), "grassland": (140, 135, 100)},
        "summer": {"forest": (40, 90, 45), "cropland": (100, 140, 70), "grassland": (110, 150, 80)},
        "autumn": {"forest": (60, 75, 45), "cropland": (170, 120, 60), "grassland": (180, 110, 50)},
    },
}
_COUNTRIES = {"tropical": ("Brazil", "Indonesia", "Congo"), "temperate": ("France", "Germany", "Canada"),
              "arctic": ("Norway", "Russia", "Greenland")}
_LATITUDES = {"tropical": (-15.0, 15.0), "temperate": (35.0, 55.0), "arctic": (66.0, 78.0)}
_MONTHS = {"winter": 1, "spring": 4, "summer": 7, "autumn": 10}


def palette(region: str, season: str) -> np.ndarray:
    """float (len(CLASSES), 3) RGB of each class in [0, 255] for one region and season."""
    colours = {"water": _ICE if (region, season) == ("arctic", "winter") else _WATER[region],
               "urban": _SNOW if (region, season) == ("arctic", "winter") else _URBAN,
               "bare": _SNOW if (region, season) == ("arctic", "winter") else _BARE,
               **_VEGETATION[region][season]}
    return np.array([colours[name] for name in CLASSES], dtype=np.float64)


def sar_patch(rng: np.random.Generator, classes: np.ndarray, looks: float) -> np.ndarray:
    """uint8 (S, S) grey SAR patch of a land-cover map: dB backscatter + texture, speckled, scaled to 0..255."""
    size = classes.shape[0]
    db = CLASS_VV_DB[classes] + 1.0 * smooth_field(rng, (size, size), size / 16)
    intensity = 10.0 ** (db / 10.0) * rng.gamma(looks, 1.0 / looks, size=db.shape)
    low, high = SAR_DB_RANGE
    scaled = (10.0 * np.log10(np.maximum(intensity, 1e-12)) - low) / (high - low)
    return np.clip(np.round(255.0 * scaled), 0, 255).astype(np.uint8)


def optical_patch(rng: np.random.Generator, classes: np.ndarray, region: str, season: str) -> np.ndarray:
    """uint8 (S, S, 3) RGB patch: the class colours of (region, season), texture, patchy snow, noise."""
    size = classes.shape[0]
    rgb = palette(region, season)[classes]
    if (region, season) == ("temperate", "winter"):  # patchy snow on land
        snow = (smooth_field(rng, (size, size), size / 10) > 0.6) & (classes != 0)
        rgb[snow] = _SNOW
    brightness = 1.0 + 0.08 * smooth_field(rng, (size, size), size / 12)
    rgb = rgb * brightness[..., None] + rng.normal(0.0, 4.0, size=rgb.shape)
    return np.clip(np.round(rgb), 0, 255).astype(np.uint8)


def draw_land_cover(rng: np.random.Generator, size: int) -> np.ndarray:
    """int64 (size, size) class map with 1–4 classes drawn by :data:`CLASS_FREQUENCY` (whatever the region)."""
    count = int(rng.integers(1, 5))
    chosen = rng.choice(len(CLASSES), size=count, replace=False, p=CLASS_FREQUENCY / CLASS_FREQUENCY.sum())
    return land_cover_map(rng, chosen, size)


def _png(array: np.ndarray, path: Path) -> None:
    """uint8 (S, S) → 'L' PNG, (S, S, 3) → 'RGB' PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def write_colorization_dataset(
    root: str | Path,
    scenes: int = 24,
    patches_per_scene: int = 12,
    size: int = 64,
    looks: float = 4.4,
    path_separator: str = "/",
    seed: int = 0,
) -> Path:
    """Write ``scenes`` × ``patches_per_scene`` pairs of ``size`` px into ``root`` (atomically; see module doc).

    ``path_separator`` is the separator of the CSV file names ("\\\\" writes them as on Windows).
    """
    if scenes < 1 or patches_per_scene < 1 or size < 8 or looks <= 0:
        raise ValueError("scenes and patches_per_scene must be >= 1, size >= 8 and looks > 0")
    if path_separator not in ("/", "\\"):
        raise ValueError(f"path_separator must be '/' or '\\\\', got {path_separator!r}")
    combinations = [(region, season) for region in REGIONS for season in SEASONS]
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(combinations))

    def fill(staging: Path) -> None:
        for scene in range(scenes):
            region, season = combinations[order[scene % len(combinations)]]
            rows = _write_scene(staging, rng, scene, region, season, patches_per_scene, size, looks, path_separator)
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
            (staging / f"data_r_{scene:03d}.csv").write_text(buffer.getvalue())

    return write_atomically(Path(root), fill)


def _write_scene(staging: Path, rng: np.random.Generator, scene: int, region: str, season: str, patches: int,
                 size: int, looks: float, separator: str) -> list[dict[str, str]]:
    low, high = _LATITUDES[region]
    latitude, longitude = rng.uniform(low, high), rng.uniform(-180.0, 180.0)
    country = _COUNTRIES[region][int(rng.integers(len(_COUNTRIES[region])))]
    date = f"2017-{_MONTHS[season]:02d}-{int(rng.integers(1, 29)):02d}T10:{int(rng.integers(60)):02d}:00"
    rows = []
    for patch in range(patches):
        classes = draw_land_cover(rng, size)
        s1 = ("r_%03d" % scene, "s1_%03d" % scene, f"img_p{patch}.png")
        s2 = ("r_%03d" % scene, "s2_%03d" % scene, f"img_p{patch}.png")
        _png(sar_patch(rng, classes, looks), staging.joinpath(*s1))
        _png(optical_patch(rng, classes, region, season), staging.joinpath(*s2))
        rows.append({
            "s1_fileName": separator.join(s1), "s2_fileName": separator.join(s2),
            "coordinates": f"({latitude:.4f}, {longitude:.4f})", "country": country, "date-time": date,
            "scale": "10", "region": region, "season": season, "operational-mode": "IW",
            "polarisation": "VV", "bands": "B4,B3,B2",
        })
    return rows
