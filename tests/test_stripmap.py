"""Physics and on-disk layout of the stripmap SAR simulator."""

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import zarr
from scipy.signal import resample

from sarexp.data.synthetic import stripmap_dataset
from sarexp.data.synthetic.stripmap import RadarParameters, azimuth_compress, simulate_scene
from sarexp.data.synthetic.stripmap_dataset import write_synthetic_dataset
from sarexp.errors import ConfigError
from dataset_dirs import published

UNIFORM = RadarParameters(antenna_weighting=False)
SMALL = dict(n_azimuth=192, n_range=40, scenes={"training": 2, "validation": 1}, chunks=(64, 16), point_targets=3)


def _point_scene(params: RadarParameters, target: tuple[float, float, float], shape=(256, 40)):
    rng = np.random.default_rng(0)
    return simulate_scene(params, *shape, rng, land_cover=None, targets=[target], snr_db=None)


def _upsampled_peak(signal: np.ndarray, factor: int = 32) -> tuple[np.ndarray, int]:
    """Fourier-interpolated power and index of its peak (the data are band-limited below the sampling rate)."""
    power = np.abs(resample(signal.astype(np.complex128), len(signal) * factor)) ** 2
    return power, int(np.argmax(power))


def _half_power_width(power: np.ndarray, peak: int) -> float:
    """Width in samples of the main lobe at half the peak power, crossings linearly interpolated."""
    half = power[peak] / 2
    left = peak
    while power[left] > half:
        left -= 1
    right = peak
    while power[right] > half:
        right += 1
    left_crossing = left + (half - power[left]) / (power[left + 1] - power[left])
    right_crossing = right - 1 + (power[right - 1] - half) / (power[right - 1] - power[right])
    return right_crossing - left_crossing


def test_point_target_focuses_at_its_position_with_closed_form_resolution():
    line, range_bin = 100.37, 17.6
    scene = _point_scene(UNIFORM, (line, range_bin, 0.0))
    assert np.unravel_index(np.argmax(np.abs(scene.az)), scene.az.shape)[1] == round(range_bin)

    factor = 32
    power, peak = _upsampled_peak(scene.az[:, round(range_bin)], factor)
    assert peak / factor == pytest.approx(line, abs=0.05)
    width_m = _half_power_width(power, peak) / factor * UNIFORM.azimuth_spacing
    assert width_m == pytest.approx(UNIFORM.azimuth_resolution, rel=0.10)

    _, range_peak = _upsampled_peak(scene.az[round(line)], factor)
    assert range_peak / factor == pytest.approx(range_bin, abs=0.1)


def test_point_target_gains_sqrt_aperture_samples():
    scene = _point_scene(UNIFORM, (128.0, 20.0, 0.0))
    column = scene.rc[:, 20]
    n_aperture = np.count_nonzero(np.abs(column) > 0)
    assert n_aperture == UNIFORM.aperture_samples(float(UNIFORM.slant_range(20)))
    assert np.flatnonzero(np.abs(column) > 0).mean() == 128  # rc aperture centred on the target
    assert np.abs(column).max() == pytest.approx(1.0, rel=0.01)
    gain = np.abs(scene.az[:, 20]).max() / np.abs(column).max()
    assert gain == pytest.approx(math.sqrt(n_aperture), rel=0.01)
    assert np.argmax(np.abs(scene.az[:, 20])) == 128


def test_antenna_weighting_widens_the_focused_response():
    weighted = _point_scene(RadarParameters(), (128.0, 20.0, 0.0))
    uniform = _point_scene(UNIFORM, (128.0, 20.0, 0.0))
    widths = [_half_power_width(*_upsampled_peak(scene.az[:, 20])) for scene in (weighted, uniform)]
    assert widths[0] > 1.1 * widths[1]


def test_default_geometry_is_small_and_range_migration_negligible():
    params = RadarParameters()
    assert 30 <= params.aperture_samples() <= 60
    assert params.doppler_bandwidth < params.prf
    far_range = float(params.slant_range(511))
    half = params.synthetic_aperture_length(far_range) / 2
    exact_walk = math.hypot(far_range, half) - far_range
    assert params.range_cell_migration(far_range) == pytest.approx(exact_walk, rel=0.01)
    assert exact_walk < 0.05 * params.range_spacing


def test_reference_is_the_compression_of_the_stored_rc():
    params = RadarParameters()
    scene = simulate_scene(params, 300, 24, np.random.default_rng(2), targets=[(150.0, 12.0, 20.0)])
    margin = params.aperture_samples(float(params.slant_range(23)))
    recomputed = azimuth_compress(scene.rc, params)[margin:-margin]
    np.testing.assert_allclose(recomputed, scene.az[margin:-margin], rtol=0, atol=1e-4 * np.abs(scene.az).max())


def test_azimuth_compression_keeps_white_noise_rms():
    rng = np.random.default_rng(1)
    noise = (rng.standard_normal((4096, 8)) + 1j * rng.standard_normal((4096, 8))) / math.sqrt(2)
    focused = azimuth_compress(noise, RadarParameters())
    assert np.sqrt(np.mean(np.abs(focused[64:-64]) ** 2)) == pytest.approx(1.0, rel=0.03)


def test_invalid_parameters_are_config_errors():
    with pytest.raises(ConfigError, match="prf"):
        replace(RadarParameters(), prf=1000.0)
    with pytest.raises(ConfigError, match="wavelength"):
        RadarParameters(wavelength=-1.0)
    with pytest.raises(ConfigError, match="land_cover"):
        write_synthetic_dataset("unused", land_cover={"regionz": 3})


def _arrays(root: Path) -> dict[str, np.ndarray]:
    return {
        f"{path.relative_to(root)}/{name}": zarr.open_group(path, mode="r")[name][:]
        for path in sorted(root.glob("*/*.zarr"))
        for name in ("rc", "az")
    }


def test_written_layout_arrays_and_attributes(tmp_path):
    root = write_synthetic_dataset(tmp_path / "dataset", seed=3, **SMALL)
    assert published(tmp_path) == ["dataset"]  # no staging directory left behind
    assert sorted(p.name for p in root.iterdir()) == ["training", "validation"]
    assert sorted(p.name for p in (root / "training").iterdir()) == ["scene_000.zarr", "scene_001.zarr"]
    group = zarr.open_group(root / "validation" / "scene_000.zarr", mode="r")
    for name in ("rc", "az"):
        assert group[name].dtype == np.complex64
        assert group[name].shape == (192, 40)
        assert group[name].chunks == (64, 16)
    attrs = dict(group.attrs)
    assert RadarParameters.from_attributes(attrs) == RadarParameters()
    assert attrs["aperture_samples"] == RadarParameters().aperture_samples()
    assert len(attrs["point_targets"]) == 3 and attrs["snr_db"] == 20.0
    assert attrs["noise_power"] > 0 and attrs["land_cover"]["regions"] == 6


def test_generation_is_deterministic_by_seed(tmp_path):
    first = _arrays(write_synthetic_dataset(tmp_path / "a", seed=5, **SMALL))
    again = _arrays(write_synthetic_dataset(tmp_path / "b", seed=5, **SMALL))
    other = _arrays(write_synthetic_dataset(tmp_path / "c", seed=6, **SMALL))
    assert first.keys() == again.keys() == other.keys()
    assert all(np.array_equal(first[key], again[key]) for key in first)
    assert not any(np.array_equal(first[key], other[key]) for key in first)


def test_never_overwrites_a_non_empty_root(tmp_path):
    root = tmp_path / "dataset"
    root.mkdir()
    (root / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        write_synthetic_dataset(root, **SMALL)
    assert [p.name for p in root.iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset"]


def test_empty_root_directory_is_filled(tmp_path):
    root = tmp_path / "dataset"
    root.mkdir()
    write_synthetic_dataset(root, **SMALL)
    assert len(list(root.glob("*/*.zarr"))) == 3


def test_losing_a_concurrent_write_keeps_the_winners_dataset(tmp_path, monkeypatch):
    root = tmp_path / "dataset"
    original = stripmap_dataset._write_scene
    raced = []

    def write_scene_while_another_process_publishes(*args, **kwargs):
        if not raced:
            raced.append(True)
            write_synthetic_dataset(root, seed=9, **SMALL)
        original(*args, **kwargs)

    monkeypatch.setattr(stripmap_dataset, "_write_scene", write_scene_while_another_process_publishes)
    with pytest.raises(FileExistsError):
        write_synthetic_dataset(root, seed=1, **SMALL)
    assert published(tmp_path) == ["dataset"]
    assert zarr.open_group(root / "training" / "scene_000.zarr", mode="r").attrs["seed"][0] == 9
