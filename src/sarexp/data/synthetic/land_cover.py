"""Synthetic land-cover maps and their Sentinel-1 (VH, VV) backscatter with speckle.

Shared by the BigEarthNet and SEN12-FLOOD generators, so their images carry what a classifier needs:
the classes in a patch are visible in its backscatter.

- Map: the classes of a patch (1–5, drawn without replacement with :data:`CLASS_FREQUENCY`, so frequent
  classes are frequent and rare ones rare, as in BigEarthNet) own the cells of a Voronoi partition whose
  coordinates are warped by smooth noise, giving irregular field and forest boundaries.
- Backscatter: each class has a mean (VH, VV) σ⁰ in dB (:data:`CLASS_BACKSCATTER_DB`, typical C-band
  values: calm water darkest, about −25/−18 dB for inland water; forest about −15/−8 dB by volume
  scattering; urban brightest by double bounce; crops and grassland in between), plus a smooth texture
  field (``texture_db`` standard deviation) for within-class variation.
- Speckle: fully developed, multiplicative on intensity, gamma distributed with mean 1 and ``looks``
  equivalent looks (Sentinel-1 IW GRDH has about 4.4).
"""

import numpy as np
from scipy.ndimage import gaussian_filter

# Mean (VH, VV) backscatter in dB of each BigEarthNet-19 class, in class order.
CLASS_BACKSCATTER_DB = np.array(
    [
        (-12.0, -5.0),   # Urban fabric
        (-11.0, -3.5),   # Industrial or commercial units
        (-19.5, -12.0),  # Arable land
        (-16.5, -10.0),  # Permanent crops
        (-20.5, -12.5),  # Pastures
        (-18.0, -11.0),  # Complex cultivation patterns
        (-17.0, -10.5),  # Agriculture with natural vegetation
        (-16.0, -9.5),   # Agro-forestry areas
        (-15.5, -8.5),   # Broad-leaved forest
        (-14.5, -8.0),   # Coniferous forest
        (-15.0, -8.2),   # Mixed forest
        (-22.0, -14.0),  # Natural grassland and sparsely vegetated areas
        (-19.0, -11.5),  # Moors, heathland and sclerophyllous vegetation
        (-17.0, -10.0),  # Transitional woodland, shrub
        (-26.0, -17.0),  # Beaches, dunes, sands
        (-21.0, -13.0),  # Inland wetlands
        (-22.5, -15.0),  # Coastal wetlands
        (-25.0, -18.0),  # Inland waters
        (-27.0, -20.0),  # Marine waters
    ],
    dtype=np.float64,
)

# Relative class frequencies, roughly those of the BigEarthNet-19 training set (thousands of patches).
CLASS_FREQUENCY = np.array(
    [72, 11, 196, 31, 103, 107, 148, 30, 150, 211, 217, 12, 15, 174, 1.5, 24, 1.5, 56, 81], dtype=np.float64
)

# How many classes a patch has: 1 to 5 with these probabilities (BigEarthNet averages about 3 labels).
CLASS_COUNT_PROBABILITY = np.array([0.15, 0.3, 0.3, 0.15, 0.1])

ROAD_BACKSCATTER_DB = (-13.0, -6.0)

def smooth_field(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Gaussian random field with unit standard deviation and correlation length ``sigma`` pixels."""
    field = gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return field / max(float(field.std()), 1e-12)


def draw_classes(rng: np.random.Generator, frequency: np.ndarray = CLASS_FREQUENCY) -> np.ndarray:
    """Distinct class indices of one patch, frequent classes more often."""
    count = 1 + int(rng.choice(len(CLASS_COUNT_PROBABILITY), p=CLASS_COUNT_PROBABILITY))
    return rng.choice(len(frequency), size=count, replace=False, p=frequency / frequency.sum())


def land_cover_map(rng: np.random.Generator, classes: np.ndarray, size: int, warp: float = 0.12) -> np.ndarray:
    """int64 (size, size) map of class indices: a warped Voronoi partition with 1–2 cells per class.

    Every class gets at least one cell; a class whose cells are all swallowed by the warping is simply
    absent, so the classes *present* are always ``np.unique`` of the map.
    """
    cells = np.concatenate([classes, rng.choice(classes, size=rng.integers(0, len(classes) + 1))])
    seeds = rng.uniform(0, size, size=(len(cells), 2))
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float64)
    rows = rows + warp * size * smooth_field(rng, (size, size), size / 8)
    cols = cols + warp * size * smooth_field(rng, (size, size), size / 8)
    distance = (rows[None] - seeds[:, 0, None, None]) ** 2 + (cols[None] - seeds[:, 1, None, None]) ** 2
    return cells[np.argmin(distance, axis=0)].astype(np.int64)


def road_mask(rng: np.random.Generator, size: int, width: float = 1.5) -> np.ndarray:
    """bool (size, size) mask of one straight road crossing the patch."""
    angle = rng.uniform(0, np.pi)
    offset = rng.uniform(-0.3, 0.3) * size
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float64) - (size - 1) / 2
    return np.abs(rows * np.cos(angle) - cols * np.sin(angle) - offset) <= width / 2


def mean_backscatter_db(land_cover: np.ndarray, roads: np.ndarray | None = None) -> np.ndarray:
    """(2, H, W) class-mean (VH, VV) σ⁰ in dB of a map; roads override the class below them."""
    mean = np.moveaxis(CLASS_BACKSCATTER_DB[land_cover], -1, 0)
    if roads is not None:
        mean = np.where(roads[None], np.array(ROAD_BACKSCATTER_DB)[:, None, None], mean)
    return mean


def speckled_intensity(
    rng: np.random.Generator, mean_db: np.ndarray, looks: float = 4.4, texture_db: float = 1.0
) -> np.ndarray:
    """float64 linear intensity (2, H, W): class means with smooth texture, times gamma speckle of mean 1."""
    size = mean_db.shape[-2:]
    texture = np.stack([texture_db * smooth_field(rng, size, 3.0) for _ in range(mean_db.shape[0])])
    speckle = rng.gamma(shape=looks, scale=1.0 / looks, size=mean_db.shape)
    return 10.0 ** ((mean_db + texture) / 10.0) * speckle


def to_db(intensity: np.ndarray, floor: float = 1e-6) -> np.ndarray:
    """10·log10 of a linear intensity, floored to keep zeros finite."""
    return 10.0 * np.log10(np.maximum(intensity, floor))
