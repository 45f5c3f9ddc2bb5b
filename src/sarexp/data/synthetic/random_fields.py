"""Gaussian random fields with a prescribed power spectrum, the texture source of the synthetic scenes.

A field is white Gaussian noise filtered in the Fourier domain by the square root of the power
spectrum P(kx, ky) (cycles per pixel, periodic grid), so its spectrum is P up to sampling noise. Fields are
returned with zero mean and unit standard deviation; callers scale them to physical units.
"""

import numpy as np


def wavenumbers(size: int) -> tuple[np.ndarray, np.ndarray]:
    """(kx, ky) grids of a size × size image in cycles per pixel, FFT order; kx varies along columns."""
    frequencies = np.fft.fftfreq(size)
    kx, ky = np.meshgrid(frequencies, frequencies)
    return kx, ky


def field_from_spectrum(rng: np.random.Generator, power: np.ndarray) -> np.ndarray:
    """A real zero-mean, unit-variance field whose power spectrum is proportional to ``power``."""
    noise = np.fft.fft2(rng.standard_normal(power.shape))
    field = np.fft.ifft2(noise * np.sqrt(np.maximum(power, 0.0))).real
    field -= field.mean()
    std = field.std()
    return field / std if std > 0 else field


def power_law_field(rng: np.random.Generator, size: int, exponent: float) -> np.ndarray:
    """Field with P(k) ∝ |k|^(−exponent) (no mean term), e.g. 8/3 for Kolmogorov turbulence in 2-D."""
    kx, ky = wavenumbers(size)
    k = np.hypot(kx, ky)
    power = np.zeros_like(k)
    power[k > 0] = k[k > 0] ** (-exponent)
    return field_from_spectrum(rng, power)


def smooth_field(rng: np.random.Generator, size: int, correlation: float) -> np.ndarray:
    """Isotropic field with a Gaussian spectrum: features about ``correlation`` pixels across."""
    kx, ky = wavenumbers(size)
    return field_from_spectrum(rng, np.exp(-0.5 * (np.hypot(kx, ky) * 2.0 * np.pi * correlation) ** 2))


def oriented_band_field(
    rng: np.random.Generator, size: int, wavelength: float, direction: float, radial_width: float, angular_width: float
) -> np.ndarray:
    """Narrow-band field: energy near wavevectors ±k0 of ``wavelength`` pixels along ``direction`` (radians).

    ``radial_width`` is the relative spread of |k| (fraction of k0), ``angular_width`` the spread of the
    direction in radians — a swell spectrum when both are small.
    """
    kx, ky = wavenumbers(size)
    k = np.hypot(kx, ky)
    k0 = 1.0 / wavelength
    angle = np.arctan2(ky, kx)
    offset = np.angle(np.exp(1j * 2.0 * (angle - direction))) / 2.0  # ±k0 alike: angle modulo π
    power = np.exp(-0.5 * ((k - k0) / (radial_width * k0)) ** 2) * np.exp(-0.5 * (offset / angular_width) ** 2)
    power[0, 0] = 0.0
    return field_from_spectrum(rng, power)
