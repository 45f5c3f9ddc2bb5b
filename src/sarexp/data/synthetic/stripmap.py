"""Stripmap SAR simulator: the physics of the SSM4SAR synthetic data.

SSM4SAR learns azimuth focusing: range-compressed ``rc`` in, azimuth-compressed ``az`` out. Tests, CI and
first experiments need data with the real physics without a download, so this module simulates a zero-squint
stripmap acquisition from a straight flight path (:func:`simulate_scene`); it reads and writes no files.

Signal model
------------
Azimuth sample ``i`` is recorded at slow time η_i = i/PRF, when the platform is at along-track position
V·η_i = i·Δx with Δx = V/PRF. Range bin ``k`` has the closest-approach slant range
R0_k = near_range + k·c/(2·fs). A scatterer of complex reflectivity σ at along-track position x and
closest-approach range R0 is seen at the range R(η) = sqrt(R0² + (V·η − x)²) and adds

    rc(η, τ_k) = σ · sinc(Br·(τ_k − 2R(η)/c)) · exp(−j4πR(η)/λ) · w_az(η),    τ_k = 2·R0_k/c,

to the range-compressed signal. w_az is the two-way azimuth amplitude pattern sinc²(La·sinθ/λ) of an
antenna of length La (θ the angle off broadside, tanθ = (V·η − x)/R0), cut to the processed beam
|θ| ≤ θ_p/2 with θ_p = beamwidth_factor·λ/La; ``antenna_weighting=False`` makes it 1 inside that beam.

- Point targets are evaluated exactly: off-grid positions, hyperbolic range history with range migration.
- The distributed background is a circular complex Gaussian (speckle) reflectivity on the sample grid
  whose mean intensity follows a random land-cover map (:class:`LandCover`: fields with smoothed edges and
  bright linear features). It is band-limited in range by the same sinc(Br·τ) and put through the azimuth
  phase history of each range bin by FFT convolution. Range cell migration is neglected for this part:
  RCM = (L_s/2)²/(2·R0), with L_s = 2·R0·tan(θ_p/2) the synthetic aperture, is 0.08 m at the defaults
  against a 2.3 m range bin (see :meth:`RadarParameters.range_cell_migration`).
- Thermal noise is circular complex Gaussian added to ``rc`` with power = mean power of the noiseless
  ``rc`` / 10^(snr_db/10).
- The reference ``az`` is the matched-filter azimuth compression of the noisy ``rc``
  (:func:`azimuth_compress`): per range bin a linear correlation with h(η) = w_az(η)·exp(−j4πR(η)/λ) for
  that bin's R0 over the processed aperture, normalised to unit energy: white noise keeps its RMS, a
  point target gains √N_aperture, and a point at along-track x peaks at azimuth sample x/Δx. The focused
  background is oversampled in azimuth (PRF > B_D), so its power grows by about PRF/B_D (uniform
  illumination; more with antenna weighting) against ``rc``.

Scenes are simulated with two half-apertures of extra lines on each side and cropped, so ``rc`` at the
scene edges holds echoes of scatterers just outside it and ``az`` is focused with the full aperture
everywhere, as for a crop of a longer acquisition.

:mod:`sarexp.data.synthetic.stripmap_dataset` writes such scenes in the zarr layout :mod:`sarexp.data.sar_focusing`
reads.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
from scipy import fft
from scipy.ndimage import gaussian_filter
from scipy.signal import fftconvolve

from sarexp.errors import ConfigError

SPEED_OF_LIGHT = 299_792_458.0  # m/s


@dataclass(frozen=True)
class RadarParameters:
    """Sensor and processing parameters of a zero-squint stripmap acquisition (SI units).

    Sentinel-1-like (C band; S1 IW range bandwidth and sampling rate), but the near slant range is 30 km
    instead of ~850 km: the synthetic aperture shrinks to ~33 azimuth samples so models train on a CPU.
    """

    wavelength: float = 0.0555
    platform_velocity: float = 7000.0
    prf: float = 1700.0
    antenna_length: float = 12.3
    near_range: float = 30_000.0
    range_sampling_rate: float = 64.345e6
    range_bandwidth: float = 56.5e6
    beamwidth_factor: float = 1.0
    antenna_weighting: bool = True

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if field.type is bool:
                if not isinstance(value, bool):
                    raise ConfigError(f"radar parameter '{field.name}' must be true or false, got {value!r}")
            elif isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
                raise ConfigError(f"radar parameter '{field.name}' must be a positive number, got {value!r}")
        if self.processed_beamwidth >= math.pi:
            raise ConfigError(
                f"radar parameters: processed beamwidth {self.processed_beamwidth:.3g} rad is not below π; "
                "lower beamwidth_factor or wavelength/antenna_length"
            )
        if self.doppler_bandwidth >= self.prf:
            raise ConfigError(
                f"radar parameters: Doppler bandwidth {self.doppler_bandwidth:.0f} Hz is not below "
                f"prf {self.prf:.0f} Hz (azimuth aliasing); raise prf or lower beamwidth_factor"
            )
        if self.range_bandwidth > self.range_sampling_rate:
            raise ConfigError(
                f"radar parameters: range_bandwidth {self.range_bandwidth:.3g} Hz exceeds "
                f"range_sampling_rate {self.range_sampling_rate:.3g} Hz (range aliasing)"
            )

    @property
    def azimuth_spacing(self) -> float:
        """Along-track distance between azimuth samples, V/PRF [m]."""
        return self.platform_velocity / self.prf

    @property
    def range_spacing(self) -> float:
        """Slant-range distance between range bins, c/(2·fs) [m]."""
        return SPEED_OF_LIGHT / (2.0 * self.range_sampling_rate)

    @property
    def processed_beamwidth(self) -> float:
        """Full azimuth angle θ_p inside which a target contributes to the processed aperture [rad]."""
        return self.beamwidth_factor * self.wavelength / self.antenna_length

    def slant_range(self, range_bin: float | np.ndarray) -> np.ndarray:
        """Closest-approach slant range of (possibly fractional) range bins [m]."""
        return self.near_range + np.asarray(range_bin, dtype=np.float64) * self.range_spacing

    def synthetic_aperture_length(self, slant_range: float | None = None) -> float:
        """Along-track length L_s = 2·R0·tan(θ_p/2) over which a target is processed [m] (R0: near range)."""
        r0 = self.near_range if slant_range is None else slant_range
        return 2.0 * r0 * math.tan(self.processed_beamwidth / 2.0)

    def aperture_samples(self, slant_range: float | None = None) -> int:
        """Azimuth samples N of the processed aperture of a target on the sample grid (R0: near range)."""
        half = self.synthetic_aperture_length(slant_range) / 2.0
        return 2 * math.floor(half / self.azimuth_spacing) + 1

    @property
    def doppler_bandwidth(self) -> float:
        """Doppler bandwidth B_D = 4·V·sin(θ_p/2)/λ of the processed aperture [Hz]; must stay below PRF."""
        return 4.0 * self.platform_velocity * math.sin(self.processed_beamwidth / 2.0) / self.wavelength

    @property
    def azimuth_resolution(self) -> float:
        """3-dB azimuth resolution 0.886·V/B_D of the matched filter under uniform illumination [m]."""
        return 0.886 * self.platform_velocity / self.doppler_bandwidth

    @property
    def range_resolution(self) -> float:
        """3-dB slant-range resolution 0.886·c/(2·Br) of the range-compressed pulse [m]."""
        return 0.886 * SPEED_OF_LIGHT / (2.0 * self.range_bandwidth)

    def range_cell_migration(self, slant_range: float | None = None) -> float:
        """Range walk (L_s/2)²/(2·R0) of a target across its processed aperture [m] (R0: near range)."""
        r0 = self.near_range if slant_range is None else slant_range
        return (self.synthetic_aperture_length(r0) / 2.0) ** 2 / (2.0 * r0)

    def attributes(self, n_range: int) -> dict[str, Any]:
        """The fields and derived quantities as JSON-ready zarr attributes of a scene with n_range bins."""
        far_range = float(self.slant_range(n_range - 1))
        return {
            **asdict(self),
            "azimuth_spacing": self.azimuth_spacing,
            "range_spacing": self.range_spacing,
            "aperture_samples": self.aperture_samples(),
            "doppler_bandwidth": self.doppler_bandwidth,
            "azimuth_resolution": self.azimuth_resolution,
            "range_resolution": self.range_resolution,
            "range_cell_migration": self.range_cell_migration(far_range),
        }

    @classmethod
    def from_attributes(cls, attrs: Mapping[str, Any]) -> "RadarParameters":
        """Rebuild the parameters a scene was written with from its zarr attributes."""
        return cls(**{field.name: attrs[field.name] for field in fields(cls)})


@dataclass(frozen=True)
class LandCover:
    """Random land-cover map that sets the mean intensity of the speckled background.

    ``regions`` fields (Voronoi cells) get a uniform random level in ``backscatter_db``; the dB map is
    smoothed with a Gaussian of ``edge_smoothing`` samples; ``linear_features`` random straight lines of
    level ``linear_feature_db`` and Gaussian profile of ``linear_feature_width`` samples (roads, dikes)
    are blended on top. Levels are reflectivity intensities per sample in dB.
    """

    regions: int = 6
    backscatter_db: tuple[float, float] = (-18.0, -6.0)
    edge_smoothing: float = 4.0
    linear_features: int = 1
    linear_feature_db: float = 0.0
    linear_feature_width: float = 1.5

    def __post_init__(self) -> None:
        low, high = self.backscatter_db
        if not low <= high:
            raise ConfigError(f"land_cover.backscatter_db must be [low, high] with low <= high, got {low}, {high}")
        if self.regions < 1 or self.linear_features < 0:
            raise ConfigError("land_cover.regions must be >= 1 and land_cover.linear_features >= 0")
        if self.edge_smoothing < 0 or self.linear_feature_width <= 0:
            raise ConfigError("land_cover.edge_smoothing must be >= 0 and land_cover.linear_feature_width > 0")


@dataclass(frozen=True)
class SimulatedScene:
    """One simulated scene: ``rc`` and ``az`` complex64 (azimuth, range), targets as written to attrs."""

    rc: np.ndarray
    az: np.ndarray
    targets: np.ndarray
    noise_power: float


def beam_weights(params: RadarParameters, offset: np.ndarray, slant_range: np.ndarray) -> np.ndarray:
    """Two-way azimuth amplitude pattern at along-track offset (m) from a target, zero outside θ_p."""
    inside = np.abs(offset) <= slant_range * math.tan(params.processed_beamwidth / 2.0)
    if not params.antenna_weighting:
        return inside.astype(np.float64)
    sin_theta = offset / np.hypot(slant_range, offset)
    return np.where(inside, np.sinc(params.antenna_length * sin_theta / params.wavelength) ** 2, 0.0)


def phase_history(params: RadarParameters, offset: np.ndarray, slant_range: np.ndarray) -> np.ndarray:
    """Azimuth phase history w_az·exp(−j4πR/λ) of a target at along-track offset (m), closest range R0 (m)."""
    distance = np.hypot(slant_range, offset)
    return beam_weights(params, offset, slant_range) * np.exp(-4j * np.pi * distance / params.wavelength)


def azimuth_kernels(params: RadarParameters, slant_range: np.ndarray, *, unit_energy: bool) -> np.ndarray:
    """Phase histories of range bins at the given R0 on the azimuth grid: (2M+1, n_range), row M at offset 0."""
    half = int(np.max(np.floor(slant_range * math.tan(params.processed_beamwidth / 2.0) / params.azimuth_spacing)))
    offsets = np.arange(-half, half + 1, dtype=np.float64)[:, None] * params.azimuth_spacing
    kernels = phase_history(params, offsets, slant_range[None, :])
    if unit_energy:
        kernels /= np.linalg.norm(kernels, axis=0, keepdims=True)
    return kernels


def _kernel_spectrum(kernels: np.ndarray, n_fft: int) -> np.ndarray:
    """FFT along azimuth of centred kernels placed circularly (offset m at index m mod n_fft)."""
    placed = np.zeros((n_fft, kernels.shape[1]), dtype=np.complex128)
    placed[: kernels.shape[0]] = kernels
    return fft.fft(np.roll(placed, -(kernels.shape[0] // 2), axis=0), axis=0)


def _azimuth_filter(signal: np.ndarray, kernels: np.ndarray, *, correlate: bool) -> np.ndarray:
    """Linear convolution (or correlation) of each column with its kernel, output aligned to the input.

    Zero padding to n_lines + M makes the circular FFT product equal to the linear one on the kept lines.
    """
    n_fft = fft.next_fast_len(signal.shape[0] + kernels.shape[0] // 2)
    spectrum = _kernel_spectrum(kernels, n_fft)
    if correlate:
        spectrum = np.conj(spectrum)
    return fft.ifft(fft.fft(signal, n=n_fft, axis=0) * spectrum, axis=0)[: signal.shape[0]]


def azimuth_compress(rc: np.ndarray, params: RadarParameters, first_range_bin: int = 0) -> np.ndarray:
    """Matched-filter azimuth compression of ``rc`` (azimuth, range) into complex64 of the same shape.

    Column k uses the unit-energy reference of R0 = slant_range(first_range_bin + k), so noise RMS is
    kept and a point target gains √N; lines outside ``rc`` count as zero (linear correlation).
    As in range-Doppler processors, the reference compensates only the hyperbolic part R(η) − R0 of the
    phase: a focused pixel keeps its two-way range phase exp(−j4πR0/λ), the SLC phase interferometry
    relies on. The filter is then the same for every column up to the slow change of the azimuth chirp
    rate with R0, which is what lets one model focus all range columns.
    """
    slant_range = params.slant_range(first_range_bin + np.arange(rc.shape[1]))
    range_phase = np.exp(-4j * np.pi * slant_range / params.wavelength)
    kernels = azimuth_kernels(params, slant_range, unit_energy=True) / range_phase[None, :]
    return _azimuth_filter(rc, kernels, correlate=True).astype(np.complex64)


def land_cover_intensity(shape: tuple[int, int], rng: np.random.Generator, cover: LandCover) -> np.ndarray:
    """Mean reflectivity intensity (linear) of a random land-cover map on a (azimuth, range) grid."""
    lines, bins = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    centres = rng.uniform((0, 0), shape, size=(cover.regions, 2))
    levels_db = rng.uniform(*cover.backscatter_db, size=cover.regions)
    nearest = np.zeros(shape, dtype=np.intp)
    best = np.full(shape, np.inf)
    for index, (line, bin_) in enumerate(centres):
        distance = (lines - line) ** 2 + (bins - bin_) ** 2
        closer = distance < best
        nearest[closer], best[closer] = index, distance[closer]
    intensity = 10.0 ** (gaussian_filter(levels_db[nearest], cover.edge_smoothing) / 10.0)
    for _ in range(cover.linear_features):
        line, bin_ = rng.uniform((0, 0), shape)
        angle = rng.uniform(0.0, np.pi)
        distance = np.abs((lines - line) * np.sin(angle) - (bins - bin_) * np.cos(angle))
        weight = np.exp(-0.5 * (distance / cover.linear_feature_width) ** 2)
        intensity = (1.0 - weight) * intensity + weight * 10.0 ** (cover.linear_feature_db / 10.0)
    return intensity


def _speckle(intensity: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Circular complex Gaussian reflectivity with the given mean intensity per sample."""
    noise = rng.standard_normal(intensity.shape) + 1j * rng.standard_normal(intensity.shape)
    return np.sqrt(intensity / 2.0) * noise


def _range_band_limit(reflectivity: np.ndarray, params: RadarParameters) -> np.ndarray:
    """Convolve each line with the sampled range impulse response sinc(Br·τ) (linear, untruncated)."""
    n_bins = reflectivity.shape[1]
    taps = np.sinc(params.range_bandwidth / params.range_sampling_rate * np.arange(-(n_bins - 1), n_bins))
    return fftconvolve(reflectivity, taps[None, :], mode="same", axes=1)


def point_target_echoes(
    params: RadarParameters,
    targets: np.ndarray,
    phases: np.ndarray,
    lines: range,
    n_range: int,
) -> np.ndarray:
    """Exact range-compressed echoes (len(lines), n_range) of point targets, incl. range migration.

    ``targets`` rows are (azimuth sample, range bin, amplitude dB), fractional positions allowed;
    ``phases`` are the reflectivity phases [rad]; ``lines`` the azimuth samples to evaluate.
    """
    echoes = np.zeros((len(lines), n_range), dtype=np.complex128)
    bin_ranges = params.slant_range(np.arange(n_range))
    half_tan = math.tan(params.processed_beamwidth / 2.0)
    spacing = params.azimuth_spacing
    for (line, range_bin, amplitude_db), phase in zip(targets, phases):
        position, slant_range = line * spacing, float(params.slant_range(range_bin))
        half = slant_range * half_tan
        first = max(math.ceil((position - half) / spacing), lines.start)
        last = min(math.floor((position + half) / spacing), lines.stop - 1)
        seen = np.arange(first, last + 1)
        offset = seen * spacing - position
        distance = np.hypot(slant_range, offset)
        azimuth = 10.0 ** (amplitude_db / 20.0) * np.exp(1j * phase) * phase_history(params, offset, slant_range)
        delay = params.range_bandwidth * 2.0 * (bin_ranges[None, :] - distance[:, None]) / SPEED_OF_LIGHT
        echoes[seen - lines.start] += azimuth[:, None] * np.sinc(delay)
    return echoes


def random_point_targets(
    rng: np.random.Generator, count: int, n_azimuth: int, n_range: int, amplitude_db: Sequence[float]
) -> np.ndarray:
    """``count`` targets (azimuth sample, range bin, amplitude dB) uniform over the scene and dB range."""
    low, high = amplitude_db
    return np.column_stack(
        [rng.uniform(0, n_azimuth, count), rng.uniform(0, n_range - 1, count), rng.uniform(low, high, count)]
    )


def simulate_scene(
    params: RadarParameters,
    n_azimuth: int,
    n_range: int,
    rng: np.random.Generator,
    *,
    land_cover: LandCover | None = LandCover(),
    targets: np.ndarray | None = None,
    snr_db: float | None = 20.0,
) -> SimulatedScene:
    """Simulate ``rc`` and its matched-filter reference ``az`` of one (n_azimuth, n_range) scene.

    ``land_cover=None`` leaves out the speckled background, ``targets`` (rows: azimuth sample, range bin,
    amplitude dB) are point scatterers with random phase, ``snr_db=None`` adds no noise.
    """
    kernels = azimuth_kernels(params, params.slant_range(np.arange(n_range)), unit_energy=False)
    pad = 2 * (kernels.shape[0] // 2)
    lines = range(-pad, n_azimuth + pad)
    rc = np.zeros((len(lines), n_range), dtype=np.complex128)
    if land_cover is not None:
        reflectivity = _speckle(land_cover_intensity(rc.shape, rng, land_cover), rng)
        rc += _azimuth_filter(_range_band_limit(reflectivity, params), kernels, correlate=False)
    targets = np.empty((0, 3)) if targets is None else np.asarray(targets, dtype=np.float64).reshape(-1, 3)
    rc += point_target_echoes(params, targets, rng.uniform(0.0, 2.0 * np.pi, len(targets)), lines, n_range)
    noise_power = 0.0
    if snr_db is not None:
        noise_power = float(np.mean(np.abs(rc) ** 2)) / 10.0 ** (snr_db / 10.0)
        rc += np.sqrt(noise_power / 2.0) * (rng.standard_normal(rc.shape) + 1j * rng.standard_normal(rc.shape))
    az = azimuth_compress(rc, params)
    crop = slice(pad, pad + n_azimuth)
    return SimulatedScene(rc=rc[crop].astype(np.complex64), az=az[crop], targets=targets, noise_power=noise_power)
