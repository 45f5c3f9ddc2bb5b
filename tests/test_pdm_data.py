"""Diffusion data: scaling to [−1, 1], image-folder and HDF5 readers, data modules, synthetic SAR/InSAR generators."""

from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile
import torch
from PIL import Image
from torch.utils.data import DataLoader

from sarexp.data.hdf5_images import HDF5ImageDataModule, HDF5ImageDataset
from sarexp.data.image_folder import ImageFolderDataModule, read_image
from sarexp.data.scaling import ImageScaling, phase_from_cos_sin
from sarexp.data.synthetic.insar import (
    CLASSES,
    interferogram,
    line_of_sight,
    mogi_displacement,
    wrap,
    write_insar_dataset,
)
from sarexp.data.synthetic.random_fields import oriented_band_field, power_law_field
from sarexp.data.synthetic.wavemode import PATTERNS, speckled_db, write_wavemode_dataset
from sarexp.errors import ConfigError, DataError
from sarexp.tasks.builders import build_datamodule

DATA_CONFIGS = ["sar_wavemode", "sar_wavemode_h5", "sar_wavemode_superres", "insar_phase", "insar_noise"]


# --- scaling -----------------------------------------------------------------------------------------------


def test_unit_scaling_uses_the_full_range_of_the_stored_integer_type():
    scaling = ImageScaling("unit")
    assert scaling(np.array([[[0, 255]]], dtype=np.uint8)).tolist() == [[[-1.0, 1.0]]]
    assert scaling(np.array([[[0, 65535]]], dtype=np.uint16)).tolist() == [[[-1.0, 1.0]]]
    assert scaling(np.array([[[0.25]]], dtype=np.float32)).tolist() == [[[-0.5]]]
    with pytest.raises(DataError, match="data.scaling=range"):
        scaling(np.array([[[-20.0]]], dtype=np.float32), "x.tif")


def test_range_scaling_maps_the_value_range_and_clips():
    scaling = ImageScaling("range", [-30.0, 10.0])
    assert scaling(np.array([[[-30.0, -10.0, 10.0, 50.0, -99.0]]])).tolist() == [[[-1.0, 0.0, 1.0, 1.0, -1.0]]]
    with pytest.raises(ConfigError, match="data.value_range"):
        ImageScaling("range")


def test_phase_becomes_cos_sin_channels_where_minus_pi_equals_pi():
    scaling = ImageScaling("phase")
    phase = np.array([[[-np.pi, np.pi, 0.5, -2.0]]], dtype=np.float32)
    channels = scaling(phase)
    assert channels.shape == (2, 1, 4) and scaling.output_channels(1) == 2
    np.testing.assert_allclose(channels[:, 0, 0], channels[:, 0, 1], atol=1e-6)
    np.testing.assert_allclose(phase_from_cos_sin(channels[None])[0, 0, 0, 2:], [0.5, -2.0], atol=1e-6)
    codes = ImageScaling("phase", [0, 256])(np.array([[[0, 128]]], dtype=np.uint16))  # integer codes of [−π, π)
    np.testing.assert_allclose(codes[:, 0, 1], [1.0, 0.0], atol=1e-6)  # code 128 = phase 0


# --- readers -----------------------------------------------------------------------------------------------


def test_read_image_handles_8_and_16_bit_png_rgb_and_float_tiff(tmp_path):
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    Image.fromarray(grey).save(tmp_path / "g.png")
    Image.fromarray(grey.astype(np.uint16) * 5000).save(tmp_path / "g16.png")
    Image.fromarray(np.stack([grey] * 3, axis=-1)).save(tmp_path / "rgb.png")
    tifffile.imwrite(tmp_path / "f.tif", np.full((2, 3, 4), -12.5, dtype=np.float32))
    tifffile.imwrite(tmp_path / "hwc.tif", np.zeros((8, 9, 2), dtype=np.float32))
    assert read_image(tmp_path / "g.png").tolist() == [grey.tolist()]
    sixteen = read_image(tmp_path / "g16.png")
    assert sixteen.dtype == np.uint16 and sixteen.max() == 55000
    assert read_image(tmp_path / "rgb.png").shape == (3, 3, 4)
    assert read_image(tmp_path / "f.tif").dtype == np.float32 and read_image(tmp_path / "f.tif").shape == (2, 3, 4)
    assert read_image(tmp_path / "hwc.tif").shape == (2, 8, 9)
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match="bad.png"):
        read_image(tmp_path / "bad.png")


def _folder_dataset(root: Path, classes: dict[str, list[str]], size: int = 8) -> None:
    rng = np.random.default_rng(0)
    for split, names in classes.items():
        for name in names:
            (root / split / name).mkdir(parents=True)
            for index in range(3):
                pixels = rng.integers(0, 256, (size, size), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / name / f"{index}.png")


def _folder_module(root: Path, **overrides) -> ImageFolderDataModule:
    settings = {"root": str(root), "synthetic": False, "image_size": 8, "channels": 1, "batch_size": 4,
                "val_batch_size": 4}
    return ImageFolderDataModule(**{**settings, **overrides})


def test_image_folder_labels_follow_sorted_class_folders_and_test_falls_back_to_val(tmp_path):
    _folder_dataset(tmp_path, {"train": ["rain", "ice", "waves"], "val": ["waves", "ice"]})
    module = _folder_module(tmp_path, num_classes=3)
    module.prepare_data()
    module.setup()
    assert module.class_names == ["ice", "rain", "waves"]
    val = module.datasets["val"]
    assert [label for _, label in val.files] == [0, 0, 0, 2, 2, 2]
    assert module.datasets["test"].directory == tmp_path / "val"
    batch = next(iter(module.train_dataloader()))
    assert batch["image"].shape == (4, 1, 8, 8) and batch["image"].dtype == torch.float32
    assert batch["label"].dtype == torch.long and batch["image"].abs().max() <= 1.0


def test_image_folder_errors_name_the_key_or_path(tmp_path):
    _folder_dataset(tmp_path / "d", {"train": ["a", "b"], "val": ["a", "c"]})
    module = _folder_module(tmp_path / "d")
    with pytest.raises(DataError, match=r"class folders \['c'\]"):
        module.setup("fit")
    with pytest.raises(DataError, match="data.num_classes=2"):
        _folder_module(tmp_path / "d", num_classes=5).setup("fit")
    with pytest.raises(DataError, match="data.channels=1"):
        _folder_module(tmp_path / "d", channels=3)._dataset("train")
    with pytest.raises(DataError, match=str(tmp_path / "missing")):
        _folder_module(tmp_path / "missing").prepare_data()


def test_unlabelled_folder_and_super_resolution_pairs(tmp_path):
    (tmp_path / "train").mkdir()
    image = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    Image.fromarray(image).save(tmp_path / "train" / "x.png")
    item = _folder_module(tmp_path, low_res_size=4).build_dataset("train")[0]
    assert "label" not in item and item["low_res"].shape == (1, 4, 4)
    expected = (image.astype(np.float64) / 255 * 2 - 1).reshape(4, 2, 4, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(item["low_res"][0].numpy(), expected, atol=1e-6)  # 2×2 block averages


def test_images_of_another_size_are_centre_cropped_and_resized(tmp_path):
    (tmp_path / "train").mkdir()
    Image.fromarray(np.zeros((16, 24), dtype=np.uint8)).save(tmp_path / "train" / "x.png")
    assert _folder_module(tmp_path).build_dataset("train")[0]["image"].shape == (1, 8, 8)


def _h5(path: Path, **datasets) -> None:
    with h5py.File(path, "w") as handle:
        for key, value in datasets.items():
            handle.create_dataset(key, data=value)


def test_hdf5_stacks_named_datasets_as_channels_in_any_layout(tmp_path):
    rng = np.random.default_rng(1)
    vv = rng.integers(0, 256, (5, 8, 8), dtype=np.uint8)
    pair = rng.integers(0, 256, (5, 8, 8, 2), dtype=np.uint8)
    for split in ("train", "val"):
        _h5(tmp_path / f"{split}.h5", vv=vv, pair=pair, labels=np.arange(5) % 2)
    module = HDF5ImageDataModule(str(tmp_path), image_keys=["vv", "pair"], label_key="labels", channels_last=True,
                                 synthetic=False, image_size=8, channels=3, num_classes=2)
    module.prepare_data()
    module.setup("fit")
    item = module.datasets["train"][3]
    np.testing.assert_allclose(item["image"][0].numpy(), vv[3] / 255 * 2 - 1, atol=1e-6)
    np.testing.assert_allclose(item["image"][2].numpy(), pair[3, ..., 1] / 255 * 2 - 1, atol=1e-6)
    assert item["label"].item() == 1 and module.class_names == ["0", "1"]
    with pytest.raises(DataError, match="no dataset 'nope'"):
        HDF5ImageDataModule(str(tmp_path), image_keys=["nope"], synthetic=False, image_size=8).setup("fit")


def test_hdf5_phase_is_read_as_cos_sin(tmp_path):
    phase = np.full((2, 8, 8), np.pi, dtype=np.float32)
    for split in ("train", "val"):
        _h5(tmp_path / f"{split}.h5", phase=phase)
    module = HDF5ImageDataModule(str(tmp_path), image_keys=["phase"], scaling="phase", synthetic=False, image_size=8,
                                 channels=2)
    image = module._dataset("train")[0]["image"]
    np.testing.assert_allclose(image[:, 0, 0].numpy(), [-1.0, 0.0], atol=1e-6)


@pytest.mark.parametrize("config", DATA_CONFIGS)
def test_shipped_data_configs_generate_and_serve_batches(compose_config, config):
    cfg = compose_config([f"data={config}", "data.generator.counts={train:4,val:2,test:2}"])
    module = build_datamodule(cfg)
    module.prepare_data()
    module.setup()
    batch = next(iter(module.train_dataloader()))
    assert batch["image"].shape[1:] == (cfg.data.channels, cfg.data.image_size, cfg.data.image_size)
    assert batch["image"].min() >= -1.0 and batch["image"].max() <= 1.0
    assert ("label" in batch) == (cfg.data.num_classes > 0)
    if cfg.data.low_res_size:
        assert batch["low_res"].shape[-1] == cfg.data.low_res_size
    assert len(module.datasets["test"]) > 0


# --- synthetic generators ----------------------------------------------------------------------------------


def _radial_spectrum_peak(field: np.ndarray) -> tuple[float, float]:
    """Wavelength (pixels) and direction (radians, modulo π) of the strongest Fourier component."""
    power = np.abs(np.fft.fft2(field)) ** 2
    power[0, 0] = 0.0
    row, col = np.unravel_index(np.argmax(power), power.shape)
    ky, kx = np.fft.fftfreq(field.shape[0])[row], np.fft.fftfreq(field.shape[1])[col]
    return 1.0 / np.hypot(kx, ky), np.arctan2(ky, kx) % np.pi


def test_swell_field_has_its_energy_at_the_chosen_wavelength_and_direction():
    field = oriented_band_field(np.random.default_rng(3), 128, wavelength=16.0, direction=0.6, radial_width=0.05,
                                angular_width=0.05)
    wavelength, direction = _radial_spectrum_peak(field)
    assert wavelength == pytest.approx(16.0, rel=0.15) and direction == pytest.approx(0.6, abs=0.15)
    assert field.mean() == pytest.approx(0.0, abs=1e-9) and field.std() == pytest.approx(1.0)


def test_power_law_field_has_the_requested_spectral_slope():
    size, exponent = 256, 8.0 / 3.0
    power = np.zeros(size // 2 - 2)
    for seed in range(8):
        spectrum = np.abs(np.fft.fft2(power_law_field(np.random.default_rng(seed), size, exponent))) ** 2
        k = np.hypot(*np.meshgrid(np.fft.fftfreq(size), np.fft.fftfreq(size)))
        bins = np.rint(k * size).astype(int)
        power += np.array([spectrum[bins == ring].mean() for ring in range(2, size // 2)])
    slope = np.polyfit(np.log(np.arange(2, size // 2)), np.log(power), 1)[0]
    assert slope == pytest.approx(-exponent, abs=0.15)


def test_speckle_has_the_statistics_of_multilook_intensity():
    looks = 4
    db = speckled_db(np.random.default_rng(0), np.full((400, 500), -10.0), looks)
    ratio = 10 ** (db / 10) / 0.1  # intensity / mean intensity: Gamma(L, 1/L), mean 1, variance 1/L
    assert ratio.mean() == pytest.approx(1.0, abs=0.01) and ratio.var() == pytest.approx(1 / looks, rel=0.03)
    assert set(PATTERNS) >= {"pure_ocean_waves", "wind_streaks", "rain_cells", "sea_ice"}


def test_wavemode_dataset_is_seeded_atomic_and_identical_in_both_formats(tmp_path):
    settings = {"classes": ["rain_cells", "sea_ice"], "counts": {"train": 2, "val": 1}, "image_size": 16,
                "formats": ["folder", "hdf5"], "seed": 5}
    write_wavemode_dataset(tmp_path / "a", **settings)
    write_wavemode_dataset(tmp_path / "b", **settings)
    first = np.asarray(Image.open(tmp_path / "a" / "train" / "sea_ice" / "sea_ice_00001.png"))
    second = np.asarray(Image.open(tmp_path / "b" / "train" / "sea_ice" / "sea_ice_00001.png"))
    np.testing.assert_array_equal(first, second)
    with h5py.File(tmp_path / "a" / "train.h5") as handle:
        np.testing.assert_array_equal(handle["images"][3], first)  # sorted classes: rain_cells 0–1, sea_ice 2–3
        assert handle["labels"][:].tolist() == [0, 0, 1, 1]
        assert list(handle.attrs["class_names"]) == ["rain_cells", "sea_ice"]
    with pytest.raises(FileExistsError):
        write_wavemode_dataset(tmp_path / "a", **settings)
    assert not list(tmp_path.glob(".*tmp*"))
    with pytest.raises(ConfigError, match="unknown"):
        write_wavemode_dataset(tmp_path / "c", classes=["tornado"])


def test_wavemode_classes_differ_in_the_orientation_of_their_spectra():
    """Swell (one direction) and wind streaks (across the wind) are anisotropic, convective cells are not."""

    def anisotropy(name: str) -> float:
        ky, kx = np.meshgrid(np.fft.fftfreq(64), np.fft.fftfreq(64), indexing="ij")
        k = np.maximum(np.hypot(kx, ky), 1e-12)
        values = []
        for seed in range(6):
            pattern = PATTERNS[name](np.random.default_rng(seed), 64)
            power = np.abs(np.fft.fft2(pattern - pattern.mean())) ** 2
            ux, uy = kx / k, ky / k  # orientation tensor of the spectrum, power-weighted
            tensor = np.array([[np.sum(power * ux * ux), np.sum(power * ux * uy)],
                               [np.sum(power * ux * uy), np.sum(power * uy * uy)]])
            low, high = np.linalg.eigvalsh(tensor)
            values.append(high / low)
        return float(np.median(values))

    isotropic = anisotropy("micro_convective_cells")
    assert isotropic < 2.0
    assert anisotropy("pure_ocean_waves") > 4 * isotropic and anisotropy("wind_streaks") > 4 * isotropic


def test_mogi_source_matches_its_closed_form():
    depth, peak = 2000.0, 0.05
    x = np.array([0.0, 2000.0, 4000.0])
    east, north, up = mogi_displacement(x, np.zeros(3), (0.0, 0.0, depth), peak)
    # u_z = peak·d³/(r² + d²)^{3/2}, u_r/u_z = r/d
    np.testing.assert_allclose(up, peak * depth**3 / (x**2 + depth**2) ** 1.5)
    np.testing.assert_allclose(east[1:] / up[1:], x[1:] / depth)
    assert north.tolist() == [0.0, 0.0, 0.0]
    assert line_of_sight(0.0, 0.0, 1.0, 35.0, 0.0) == pytest.approx(np.cos(np.radians(35.0)))


def test_interferogram_is_wrapped_and_unwrapped_data_is_in_millimetres(tmp_path):
    wrapped, _ = interferogram(np.random.default_rng(0), 32)
    assert wrapped.min() > -np.pi - 1e-6 and wrapped.max() <= np.pi + 1e-6
    wrapped_values = wrap(np.array([np.pi + 0.1, -np.pi - 0.1, 3 * np.pi]))
    np.testing.assert_allclose(wrapped_values, [-np.pi + 0.1, np.pi - 0.1, np.pi])
    rng = np.random.default_rng(0)
    los, label = interferogram(rng, 64, wrapped=False, deformation_probability=1.0, peak_mm=(50.0, 50.0),
                               atmosphere_mm=(0.0, 0.0), noise_rad=0.0, incidence_deg=0.0)
    assert np.abs(los).max() == pytest.approx(50.0, rel=0.05)  # peak uplift seen straight from above
    assert CLASSES[label] == ("inflation" if los.max() > 40 else "deflation")
    write_insar_dataset(tmp_path / "ifg", counts={"train": 2, "val": 1}, image_size=16, formats=["folder", "hdf5"])
    with h5py.File(tmp_path / "ifg" / "train.h5") as handle:
        label = handle["labels"][1]
        stored = tifffile.imread(tmp_path / "ifg" / "train" / CLASSES[label] / "ifg_00001.tif")
        np.testing.assert_array_equal(handle["phase"][1], stored)
        assert list(handle.attrs["class_names"]) == list(CLASSES)


def test_hdf5_batches_read_at_once_equal_the_items_read_one_by_one(tmp_path):
    """`__getitems__` (one HDF5 read per dataset for a whole batch) gives what `__getitem__` gives, for
    shuffled indices with a repeat, two stacked channels-last datasets and one-hot labels."""
    rng = np.random.default_rng(0)
    path = tmp_path / "train.h5"
    with h5py.File(path, "w") as handle:
        handle["vv"] = rng.uniform(-30, 10, size=(12, 8, 8, 1)).astype(np.float32)
        handle["vh"] = rng.uniform(-30, 10, size=(12, 8, 8, 1)).astype(np.float32)
        handle["label"] = np.eye(3, dtype=np.uint8)[rng.integers(0, 3, size=12)]
    dataset = HDF5ImageDataset(path, ["vv", "vh"], ImageScaling("range", [-30.0, 10.0]), 8, label_key="label",
                               channels_last=True, class_names=["a", "b", "c"])
    indices = [7, 2, 11, 2, 0]
    batch = dataset.__getitems__(indices)
    for item, index in zip(batch, indices, strict=True):
        expected = dataset[index]
        assert item.keys() == expected.keys() and item["image"].shape == (2, 8, 8)
        for key in item:
            assert torch.equal(item[key], expected[key])
    loader = DataLoader(dataset, batch_size=4, shuffle=False)
    first = next(iter(loader))
    assert torch.equal(first["image"], torch.stack([dataset[i]["image"] for i in range(4)]))
    with pytest.raises(IndexError):
        dataset.__getitems__([3, 12])
