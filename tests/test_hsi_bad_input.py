"""Bad ARAD-1K input gives one-line errors naming the file (issue 13, item 15)."""

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from sarexp.data.arad import ARADDataModule
from sarexp.data.arad_files import write_cube
from sarexp.data.synthetic.arad import write_arad
from sarexp.errors import DataError


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_arad(tmp_path_factory.mktemp("arad") / "root", height=16, width=24,
                      scenes={"train": 2, "validation": 1})


@pytest.fixture
def root(pristine: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(pristine, tmp_path / "root"))


def _setup(root: Path, mode: str = "standard") -> None:
    ARADDataModule(str(root), synthetic=False, patch_size=8, memory_mode=mode).setup("fit")


def _single_line(error: pytest.ExceptionInfo, name: str) -> None:
    assert "\n" not in str(error.value) and name in str(error.value)


def test_missing_train_spec(root: Path) -> None:
    shutil.rmtree(root / "Train_Spec")
    with pytest.raises(DataError) as error:
        _setup(root)
    _single_line(error, "Train_Spec")


def test_missing_root_without_synthetic(tmp_path: Path) -> None:
    with pytest.raises(DataError) as error:
        _setup(tmp_path / "nowhere")
    _single_line(error, "nowhere")


@pytest.mark.parametrize("mode", ["standard", "lazy"])
def test_mat_without_cube(root: Path, mode: str) -> None:
    path = root / "Train_Spec/ARAD_1K_0001.mat"
    path.unlink()
    with h5py.File(path, "w") as mat:
        mat["rad"] = np.zeros((31, 24, 16), np.float32)
    with pytest.raises(DataError, match="no dataset 'cube'") as error:
        _setup(root, mode)
    _single_line(error, "ARAD_1K_0001.mat")


def test_wrong_band_count(root: Path) -> None:
    write_cube(root / "Train_Spec/ARAD_1K_0002.mat", np.ones((30, 16, 24), np.float32))
    with pytest.raises(DataError, match="31 bands") as error:
        _setup(root)
    _single_line(error, "ARAD_1K_0002.mat")


@pytest.mark.parametrize("mode", ["standard", "lazy"])
def test_rgb_and_cube_sizes_differ(root: Path, mode: str) -> None:
    write_cube(root / "Train_Spec/ARAD_1K_0001.mat", np.ones((31, 16, 20), np.float32))
    with pytest.raises(DataError, match="must match") as error:
        _setup(root, mode)
    _single_line(error, "ARAD_1K_0001.jpg")


def test_corrupt_jpeg(root: Path) -> None:
    (root / "Train_RGB/ARAD_1K_0002.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(DataError, match="not a readable image") as error:
        _setup(root)
    _single_line(error, "ARAD_1K_0002.jpg")


def test_split_list_names_a_missing_scene(root: Path) -> None:
    with open(root / "split_txt/train_list.txt", "a") as split:
        split.write("ARAD_1K_0314\n")
    with pytest.raises(DataError, match="not found") as error:
        _setup(root)
    _single_line(error, "ARAD_1K_0314.mat")
