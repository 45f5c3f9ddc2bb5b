"""Spectral building blocks of the synthetic ARAD-1K scenes: bands, camera, illuminants, material library.

- Bands: 31, 400–700 nm every 10 nm (ARAD-1K / NTIRE 2022).
- Camera: the CIE 1931 2° colour-matching functions from the multi-lobe piecewise-Gaussian fit of Wyman,
  Sloan & Shirley (2013, JCGT 2(2)), combined into linear-sRGB sensitivities (the XYZ → sRGB matrix of
  IEC 61966-2-1) and clipped at zero, so the camera is a physical, non-negative, linear sensor.
- Illuminants: Planck black bodies of a correlated colour temperature, scaled to a maximum of 1 over the bands.
- Materials: a library of reflectance spectra defined here from analytic shapes of the classic families —
  green vegetation (chlorophyll absorption near 430 and 670 nm, green peak, red edge rising at 690–700 nm),
  dry vegetation, soils (rising, iron-oxide shoulder), water (dark, falling), paints (smooth steps and
  bands at many hues), man-made greys (concrete, asphalt, metal). Every material comes in several surfaces
  that are *metamers* of one another: they differ by a smooth "metameric black", a spectrum the camera does
  not see under any of the scene illuminants, so RGB does not determine the spectrum and no pixel-wise
  RGB → spectrum map can tell the surfaces apart (the scenes give each surface its own texture).
"""

import numpy as np

WAVELENGTHS = np.arange(400.0, 701.0, 10.0)  # nm, the 31 ARAD-1K bands

# Wyman, Sloan & Shirley 2013, multi-lobe fit: (weight, mean nm, sigma below the mean, sigma above it).
_CMF_LOBES = {
    "x": [(1.056, 599.8, 37.9, 31.0), (0.362, 442.0, 16.0, 26.7), (-0.065, 501.1, 20.4, 26.2)],
    "y": [(0.821, 568.8, 46.9, 40.5), (0.286, 530.9, 16.3, 31.1)],
    "z": [(1.217, 437.0, 11.8, 36.0), (0.681, 459.0, 26.0, 13.8)],
}

# XYZ → linear sRGB (IEC 61966-2-1, D65 white).
XYZ_TO_SRGB = np.array([[3.2406, -1.5372, -0.4986], [-0.9689, 1.8758, 0.0415], [0.0557, -0.2040, 1.0570]])

_PLANCK_C2 = 1.4387769e7  # second radiation constant, nm·K


def cie_cmf(wavelengths: np.ndarray) -> np.ndarray:
    """(len, 3) x̄, ȳ, z̄ of CIE 1931 (2°) at ``wavelengths`` nm, from the Wyman et al. piecewise-Gaussian fit."""
    wavelengths = np.asarray(wavelengths, dtype=np.float64)
    columns = []
    for lobes in _CMF_LOBES.values():
        total = np.zeros_like(wavelengths)
        for weight, mean, below, above in lobes:
            sigma = np.where(wavelengths < mean, below, above)
            total += weight * np.exp(-0.5 * ((wavelengths - mean) / sigma) ** 2)
        columns.append(total)
    return np.stack(columns, axis=-1)


def camera_sensitivities(wavelengths: np.ndarray = WAVELENGTHS) -> np.ndarray:
    """(len, 3) non-negative R, G, B spectral sensitivities: linear-sRGB combinations of the CIE CMFs."""
    return np.clip(cie_cmf(wavelengths) @ XYZ_TO_SRGB.T, 0.0, None)


def blackbody(temperature: float, wavelengths: np.ndarray = WAVELENGTHS) -> np.ndarray:
    """Planck spectral radiance at ``temperature`` K, scaled to a maximum of 1 over ``wavelengths``."""
    radiance = wavelengths ** -5.0 / np.expm1(_PLANCK_C2 / (wavelengths * temperature))
    return radiance / radiance.max()


def band_weights(wavelengths: np.ndarray = WAVELENGTHS) -> np.ndarray:
    """Trapezoid-rule weights (nm) of the bands, so Σ wᵢ f(λᵢ) ≈ ∫ f dλ over the sampled range."""
    step = np.diff(wavelengths)
    weights = np.zeros_like(wavelengths)
    weights[:-1] += step / 2
    weights[1:] += step / 2
    return weights


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _gauss(wavelengths: np.ndarray, centre: float, width: float) -> np.ndarray:
    return np.exp(-0.5 * ((wavelengths - centre) / width) ** 2)


def _vegetation(rng: np.random.Generator, lam: np.ndarray) -> np.ndarray:
    green = rng.uniform(0.08, 0.18)
    edge = rng.uniform(695.0, 715.0)
    base = 0.04 + green * _gauss(lam, rng.uniform(545.0, 560.0), rng.uniform(22.0, 32.0))
    red_edge = rng.uniform(0.35, 0.55) * _sigmoid((lam - edge) / rng.uniform(7.0, 11.0))
    absorption = 1.0 - 0.5 * _gauss(lam, 670.0, 14.0) - 0.3 * _gauss(lam, 430.0, 20.0)
    return (base + red_edge) * absorption


def _dry_vegetation(rng: np.random.Generator, lam: np.ndarray) -> np.ndarray:
    return 0.08 + rng.uniform(0.2, 0.35) * _sigmoid((lam - rng.uniform(520.0, 580.0)) / rng.uniform(30.0, 50.0))


def _soil(rng: np.random.Generator, lam: np.ndarray) -> np.ndarray:
    level = rng.uniform(0.08, 0.2)
    slope = rng.uniform(0.1, 0.3)
    shoulder = rng.uniform(0.0, 0.08) * _sigmoid((lam - rng.uniform(540.0, 580.0)) / 15.0)
    return level + slope * ((lam - 400.0) / 300.0) ** rng.uniform(0.7, 1.5) + shoulder


def _water(rng: np.random.Generator, lam: np.ndarray) -> np.ndarray:
    return 0.02 + rng.uniform(0.03, 0.08) * np.exp(-(lam - 400.0) / rng.uniform(80.0, 160.0)) \
        + rng.uniform(0.0, 0.03) * _gauss(lam, 560.0, 30.0)  # suspended sediment / algae


def _paint(rng: np.random.Generator, lam: np.ndarray) -> np.ndarray:
    low, high = sorted(rng.uniform(0.04, 0.85, size=2))
    if rng.uniform() < 0.5:  # a step (yellow, orange, red) or a reversed step (blue, cyan)
        step = _sigmoid((lam - rng.uniform(440.0, 660.0)) / rng.uniform(8.0, 25.0))
        shape = step if rng.uniform() < 0.6 else 1.0 - step
    else:  # a band (green, blue, magenta via 1 − band)
        band = _gauss(lam, rng.uniform(420.0, 680.0), rng.uniform(20.0, 60.0))
        shape = band if rng.uniform() < 0.6 else 1.0 - band
    return low + (high - low) * shape


def _man_made(rng: np.random.Generator, lam: np.ndarray) -> np.ndarray:
    level = rng.uniform(0.05, 0.45)  # asphalt … concrete, galvanised metal
    return level * (1.0 + rng.uniform(-0.15, 0.25) * (lam - 550.0) / 150.0)


FAMILIES = {
    "vegetation": _vegetation,
    "dry_vegetation": _dry_vegetation,
    "soil": _soil,
    "water": _water,
    "paint": _paint,
    "man_made": _man_made,
}


def metameric_blacks(sensitivities: np.ndarray, illuminants: np.ndarray, wavelengths: np.ndarray = WAVELENGTHS,
                     basis_size: int = 10, visibility: float = 1e-3) -> np.ndarray:
    """(31, m) orthonormal smooth spectra the camera (nearly) does not see under any of ``illuminants``.

    ``illuminants`` is (bands,) or (n, bands). A smooth basis (the first ``basis_size`` cosines over the band
    range) is restricted to the null space of the stacked (3n × basis) rendering matrix, where directions
    whose singular value is below ``visibility`` × the largest count as unseen: black bodies of nearby
    temperatures are nearly collinear, so a few directions stay invisible under a whole temperature range.
    """
    illuminants = np.atleast_2d(illuminants)
    position = np.linspace(0.0, np.pi, illuminants.shape[1])
    basis = np.stack([np.cos(order * position) for order in range(basis_size)], axis=1)
    weights = band_weights(wavelengths)
    response = np.concatenate([(sensitivities * (weights * light)[:, None]).T @ basis for light in illuminants])
    _, singular, vt = np.linalg.svd(response)
    seen = int(np.sum(singular > visibility * singular[0]))
    q, _ = np.linalg.qr(basis @ vt[seen:].T)
    return q


def scene_illuminants(temperature_range: tuple[float, float], count: int = 16,
                      wavelengths: np.ndarray = WAVELENGTHS) -> np.ndarray:
    """(count, bands) black bodies spanning ``temperature_range``, evenly in reciprocal temperature (mired)."""
    low, high = temperature_range
    return np.stack([blackbody(1.0 / mired, wavelengths) for mired in np.linspace(1.0 / low, 1.0 / high, count)])


def material_library(
    rng: np.random.Generator,
    counts: dict[str, int],
    surfaces: int,
    metamer_strength: float,
    illuminants: np.ndarray,
    visibility: float = 1e-3,
    wavelengths: np.ndarray = WAVELENGTHS,
) -> tuple[np.ndarray, list[str]]:
    """(M, 31) reflectances in [0.01, 0.99] and their names: ``counts`` per family, each in ``surfaces`` finishes.

    Every base spectrum comes as a metameric group of ``surfaces`` members, in surface order: surface 0 is the
    base itself, surface k > 0 adds that surface's own metameric black d_k (one per surface, shared by all
    materials; invisible under every one of ``illuminants`` to ``visibility``, see :func:`metameric_blacks`)
    of RMS ``metamer_strength`` × the material's mean reflectance, shrunk if needed to stay in range. So a
    group's members render to the same RGB under every scene light, and which one a pixel shows is told
    only by its surface (texture, see :mod:`sarexp.data.synthetic.arad`), not by its colour.
    """
    blacks = metameric_blacks(camera_sensitivities(wavelengths), illuminants, wavelengths, visibility=visibility)
    signatures = [blacks @ rng.standard_normal(blacks.shape[1]) for _ in range(surfaces - 1)]
    signatures = [d / np.sqrt(np.mean(d ** 2)) for d in signatures]
    spectra, names = [], []
    for family, count in counts.items():
        if family not in FAMILIES:
            raise ValueError(f"unknown material family {family!r}; known: {sorted(FAMILIES)}")
        for index in range(count):
            base = np.clip(FAMILIES[family](rng, wavelengths), 0.01, 0.99)
            spectra.append(base)
            names.append(f"{family}_{index}")
            for surface, signature in enumerate(signatures, start=1):
                direction = metamer_strength * base.mean() * signature
                room = np.where(direction > 0, (0.99 - base) / np.maximum(direction, 1e-12),
                                (base - 0.01) / np.maximum(-direction, 1e-12))
                spectra.append(base + min(1.0, float(room.min())) * direction)
                names.append(f"{family}_{index}_metamer{surface}")
    return np.stack(spectra), names
