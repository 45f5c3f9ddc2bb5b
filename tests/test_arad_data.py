"""ARAD-1K: the synthetic generator's physics, the MST++-compatible reader, and the data module."""

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from sarexp.data.arad import ARADDataModule, add_rgb_noise, random_dihedral
from sarexp.data.arad_datasets import PatchDataset
from sarexp.data.arad_files import read_cube, read_rgb, write_cube
from sarexp.data.synthetic.arad import render_linear_rgb, write_arad
from sarexp.data.synthetic.spectra import (
    WAVELENGTHS,
    blackbody,
    camera_sensitivities,
    cie_cmf,
    material_library,
)

SMALL = {"height": 24, "width": 32, "scenes": {"train": 3, "validation": 2, "test": 1}}


@pytest.fixture(scope="module")
def arad_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_arad(tmp_path_factory.mktemp("arad") / "root", **SMALL)


def test_cie_fit_matches_tabulated_cie_1931() -> None:
    # CIE 1931 2° observer, tabulated x̄, ȳ, z̄ at 450, 500, 550, 600, 650 nm.
    table = np.array([[0.3362, 0.0380, 1.7721], [0.0049, 0.3230, 0.2720], [0.4334, 0.9950, 0.0087],
                      [1.0622, 0.6310, 0.0008], [0.2835, 0.1070, 0.0000]])
    np.testing.assert_allclose(cie_cmf(np.array([450.0, 500.0, 550.0, 600.0, 650.0])), table, atol=0.01)


def test_rendering_is_the_integral_of_spectrum_illuminant_sensitivity() -> None:
    fine = np.arange(400.0, 700.01, 0.25)

    def reflectance(lam: np.ndarray) -> np.ndarray:
        return 0.3 + 0.2 * np.sin(lam / 40.0) + 0.1 * np.exp(-0.5 * ((lam - 620.0) / 25.0) ** 2)

    def radiance(lam: np.ndarray) -> np.ndarray:  # black body at 4000 K, any scale
        return reflectance(lam) * lam ** -5.0 / np.expm1(1.4387769e7 / (lam * 4000.0))

    expected = np.trapezoid(radiance(fine)[:, None] * camera_sensitivities(fine), fine, axis=0)
    rendered = render_linear_rgb(radiance(WAVELENGTHS), camera_sensitivities())
    np.testing.assert_allclose(rendered, expected, rtol=0.01)
    np.testing.assert_allclose(blackbody(4000.0), radiance(WAVELENGTHS) / reflectance(WAVELENGTHS)
                               / (radiance(WAVELENGTHS) / reflectance(WAVELENGTHS)).max())


def test_metamers_match_in_rgb_but_not_in_spectrum() -> None:
    library, names = material_library(np.random.default_rng(0), {"vegetation": 2, "paint": 3}, 2, 0.3,
                                      blackbody(5500.0))  # metamers under one light (scene lights: test_arad_surfaces)
    assert len(names) == 10 and names[1] == "vegetation_0_metamer1"
    assert library.min() >= 0.01 - 1e-12 and library.max() <= 0.99 + 1e-12
    rgb = render_linear_rgb(library * blackbody(5500.0), camera_sensitivities())
    np.testing.assert_allclose(rgb[0::2], rgb[1::2], rtol=1e-8)  # same colour under the reference light
    assert np.sqrt(np.mean((library[1::2] / library[0::2] - 1.0) ** 2, axis=1)).min() > 0.1  # relative RMS
    rgb_warm = render_linear_rgb(library * blackbody(3000.0), camera_sensitivities())
    assert np.abs(rgb_warm[0::2] - rgb_warm[1::2]).max() > 1e-3  # metamerism breaks under another light


def test_generator_writes_the_arad_layout(arad_root: Path) -> None:
    assert (arad_root / "split_txt/train_list.txt").read_text().split() == [f"ARAD_1K_{i:04d}" for i in (1, 2, 3)]
    assert (arad_root / "split_txt/valid_list.txt").read_text().split() == ["ARAD_1K_0004", "ARAD_1K_0005"]
    assert sorted(p.name for p in (arad_root / "Test_RGB").iterdir()) == ["ARAD_1K_0006.jpg"]
    mat = arad_root / "Train_Spec/ARAD_1K_0001.mat"
    assert mat.read_bytes()[:19] == b"MATLAB 7.3 MAT-file"
    with h5py.File(mat, "r") as stored:
        raw = np.array(stored["cube"])
        assert raw.shape == (31, 32, 24)  # MATLAB's H × W × 31, column-major: h5py sees (31, W, H)
        assert stored["cube"].attrs["MATLAB_class"] == b"single"
    cube = read_cube(mat)
    assert cube.shape == (31, 24, 32) and cube.dtype == np.float32 and cube.min() > 0
    np.testing.assert_array_equal(cube, np.transpose(raw, [0, 2, 1]))  # exactly MST++'s reading
    rgb = read_rgb(arad_root / "Train_RGB/ARAD_1K_0001.jpg")
    assert rgb.shape == (3, 24, 32) and rgb.min() == 0.0 and rgb.max() == 1.0


def test_write_then_read_cube_round_trip(tmp_path: Path) -> None:
    cube = np.random.default_rng(1).uniform(0.01, 1, size=(31, 5, 7)).astype(np.float32)
    write_cube(tmp_path / "x.mat", cube, WAVELENGTHS)
    np.testing.assert_array_equal(read_cube(tmp_path / "x.mat"), cube)


class _Store:
    names = ["a"]

    def __len__(self) -> int:
        return 1

    def shape(self, index: int) -> tuple[int, int]:
        return (482, 512)


def test_mst_patch_count_per_real_image() -> None:
    assert len(PatchDataset(_Store(), 128, 8)) == 2205  # 45 rows × 49 columns, as MST++


def test_data_module_standard_and_lazy_agree(arad_root: Path) -> None:
    modules = [ARADDataModule(str(arad_root), synthetic=False, patch_size=16, stride=8, batch_size=4,
                              memory_mode=mode, lazy_cache_size=1) for mode in ("standard", "lazy")]
    for module in modules:
        module.setup("fit")
    standard, lazy = (module.datasets["train"] for module in modules)
    assert len(standard) == len(lazy) == 3 * 2 * 3
    for index in (0, 7, 17, 3):
        a, b = standard[index], lazy[index]
        assert a["name"] == b["name"] and torch.equal(a["hsi"], b["hsi"]) and torch.equal(a["rgb"], b["rgb"])
    assert len(lazy.store.cache) == 1
    batch = next(iter(modules[0].val_dataloader()))
    assert batch["rgb"].shape == (1, 3, 24, 32) and batch["hsi"].shape == (1, 31, 24, 32)
    assert batch["name"] == ["ARAD_1K_0004"]


def test_predict_inputs_default_to_test_rgb_with_reference_when_present(arad_root: Path) -> None:
    module = ARADDataModule(str(arad_root), synthetic=False)
    module.setup("predict")
    (item,) = list(module.datasets["predict"])
    assert item["name"] == "ARAD_1K_0006" and "hsi" not in item
    module = ARADDataModule(str(arad_root), synthetic=False,
                            predict_inputs=[str(arad_root / "Train_RGB/ARAD_1K_0002.jpg")])
    module.setup("predict")
    (item,) = list(module.datasets["predict"])
    assert item["hsi"].shape == (31, 24, 32)


def test_dihedral_augmentation_transforms_rgb_and_hsi_alike() -> None:
    torch.manual_seed(0)
    rgb = torch.rand(16, 3, 8, 8)
    hsi = torch.cat([rgb] * 10 + [rgb[:, :1]], dim=1)
    out_rgb, out_hsi = random_dihedral(rgb, hsi)
    assert torch.equal(out_hsi[:, :3], out_rgb) and out_hsi.shape == hsi.shape
    assert not torch.equal(out_rgb, rgb)


def test_rgb_noise_levels() -> None:
    torch.manual_seed(0)
    flat = torch.full((1, 3, 200, 200), 0.5)
    assert torch.equal(add_rgb_noise(flat, 0.0, 0.0), flat)
    assert abs(float(add_rgb_noise(flat, 0.0, 0.05).std()) - 0.05) < 0.002
    shot = add_rgb_noise(flat, 1000.0, 0.0)  # variance 0.5 / 1000
    assert abs(float(shot.var()) - 0.5 / 1000) < 5e-5 and abs(float(shot.mean()) - 0.5) < 1e-3
