"""Colorization data: the seeded generator's layout, the CSV reader (Windows paths, 'fall'), splits, bad input."""

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sarexp.data.colorization import ColorizationDataModule, load_sar_image, make_prompt
from sarexp.data.colorization_csv import dataset_path, read_csv
from sarexp.data.synthetic.colorization import COLUMNS, REGIONS, SEASONS, palette, write_colorization_dataset
from sarexp.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_colorization_dataset(tmp_path_factory.mktemp("c") / "Dataset", scenes=12, patches_per_scene=3,
                                      size=16, path_separator="\\", seed=3)


def copy_of(dataset: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(dataset, tmp_path / "Dataset"))


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def write_rows(path: Path, table: list[dict[str, str]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(table)


def test_generator_writes_the_seed_layout(dataset: Path, tmp_path: Path) -> None:
    assert sorted(p.name for p in dataset.glob("data_r_*.csv")) == [f"data_r_{i:03d}.csv" for i in range(12)]
    table = rows(dataset / "data_r_004.csv")
    assert list(table[0]) == list(COLUMNS) and len(table) == 3
    assert table[2]["s1_fileName"] == "r_004\\s1_004\\img_p2.png"
    with Image.open(dataset / "r_004" / "s1_004" / "img_p2.png") as sar:
        assert (sar.mode, sar.size) == ("L", (16, 16))
    with Image.open(dataset / "r_004" / "s2_004" / "img_p2.png") as optical:
        assert (optical.mode, optical.size) == ("RGB", (16, 16))
    combos = {(r["region"], r["season"]) for f in dataset.glob("*.csv") for r in rows(f)}
    assert combos == {(region, season) for region in REGIONS for season in SEASONS}
    again = write_colorization_dataset(tmp_path / "again", scenes=12, patches_per_scene=3, size=16,
                                       path_separator="\\", seed=3)
    for name in ("data_r_007.csv", "r_007/s1_007/img_p1.png", "r_007/s2_007/img_p1.png"):
        assert (again / name).read_bytes() == (dataset / name).read_bytes()


def test_colours_follow_region_and_season() -> None:
    forest = 1
    assert palette("arctic", "winter").min() > 200                       # snow everywhere (ice on water)
    tropical = palette("tropical", "summer")[forest]
    autumn = palette("temperate", "autumn")[forest]
    assert tropical[1] > tropical[0] and autumn[0] > autumn[1]             # green canopy vs autumn foliage
    assert not np.allclose(palette("temperate", "summer"), palette("temperate", "winter"))


def explained_variance(values: list[float], groups: list[str]) -> float:
    """η²: the share of the variance of ``values`` explained by the group means."""
    data, labels = np.array(values), np.array(groups)
    between = sum((labels == g).sum() * (data[labels == g].mean() - data.mean()) ** 2 for g in set(groups))
    return float(between / ((data - data.mean()) ** 2).sum())


def test_region_and_season_show_in_the_optical_image_only(tmp_path: Path) -> None:
    root = write_colorization_dataset(tmp_path / "d", scenes=24, patches_per_scene=6, size=16, seed=3)
    table = [row for file in sorted(root.glob("*.csv")) for row in rows(file)]
    prompts = [row["region"] + row["season"] for row in table]
    sar = [np.asarray(Image.open(root / row["s1_fileName"])).mean() for row in table]
    optical = [np.asarray(Image.open(root / row["s2_fileName"])).mean() for row in table]
    # 12 groups, 144 patches: a mean unrelated to the groups explains about 11/143 = 0.08 by chance
    assert explained_variance(sar, prompts) < 0.15
    assert explained_variance(optical, prompts) > 0.6


def test_reader_accepts_windows_paths_and_fall(dataset: Path, tmp_path: Path) -> None:
    root = copy_of(dataset, tmp_path)
    table = rows(root / "data_r_000.csv")
    assert "\\" in table[0]["s1_fileName"]
    table[0]["season"] = " Fall"
    table[1]["s2_fileName"] = "Dataset\\" + table[1]["s2_fileName"]     # a leading dataset-folder name
    write_rows(root / "data_r_000.csv", table)
    records = read_csv(root / "data_r_000.csv", root, REGIONS, SEASONS)
    assert records[0].season == "autumn"
    assert records[0].sar == root / "r_000" / "s1_000" / "img_p0.png"
    assert records[1].optical == root / "r_000" / "s2_000" / "img_p1.png"
    assert dataset_path(root, "r_1/s1_1/a.png") == dataset_path(root, "r_1\\s1_1\\a.png")


def test_batches_splits_and_prompts(dataset: Path) -> None:
    module = ColorizationDataModule(str(dataset), synthetic=False, image_size=16, batch_size=5, split_seed=1)
    module.setup("fit")
    train, val = module.datasets["train"].records, module.datasets["validation"].records
    assert len(train) + len(val) == 36
    assert not {r.scene for r in train} & {r.scene for r in val}          # whole r_NNN folders held out
    assert len({r.scene for r in val}) == round(0.2 * 12)
    batch = next(iter(module.train_dataloader()))
    assert batch["sar"].shape == (5, 1, 16, 16) and batch["optical"].shape == (5, 3, 16, 16)
    assert batch["sar"].min() >= -1 and batch["optical"].max() <= 1 and batch["optical"].dtype == torch.float32
    assert batch["prompt"][0] == f"Colorize the image, Region: {batch['region'][0]}, Season: {batch['season'][0]}"
    other = ColorizationDataModule(str(dataset), synthetic=False, image_size=16, split_seed=2)
    assert {r.scene for r in other.split_records()["validation"]} != {r.scene for r in val}
    by_pair = ColorizationDataModule(str(dataset), synthetic=False, image_size=16, split_by="pair")
    assert len(by_pair.split_records()["validation"]) == 36 - round(0.8 * 36)
    assert len(module.prompt_corpus()) == 12
    assert make_prompt("{country}, {season}", train[0].metadata).endswith(train[0].season)
    sar = load_sar_image(train[0].sar)
    assert sar.shape == (1, 1, 16, 16) and torch.equal(sar[0], module.datasets["train"][0]["sar"])


def test_bad_input_is_one_line_naming_it(dataset: Path, tmp_path: Path) -> None:
    root = copy_of(dataset, tmp_path)
    module = ColorizationDataModule(str(root), synthetic=False, image_size=16)
    (root / "r_002" / "s2_002" / "img_p1.png").unlink()
    with pytest.raises(DataError, match=r"data_r_002.csv, line 3: s2_fileName .* does not exist"):
        module.setup()
    table = rows(root / "data_r_002.csv")[:1]
    table[0]["region"] = "desert"
    write_rows(root / "data_r_002.csv", table)
    with pytest.raises(DataError, match=r"data_r_002.csv, line 2: unknown region 'desert'"):
        module.prepare_data()
    table[0].update(region="arctic", season="monsoon")
    write_rows(root / "data_r_002.csv", table)
    with pytest.raises(DataError, match="unknown season 'monsoon'"):
        module.prepare_data()
    shutil.rmtree(root / "r_002")
    for file in root.glob("*.csv"):
        file.unlink()
    with pytest.raises(DataError, match="no data_r_NNN.csv"):
        module.prepare_data()
    Image.new("RGB", (16, 16)).save(tmp_path / "rgb.png")
    with pytest.raises(DataError, match=r"rgb.png: sar image has mode 'RGB', expected 'L'"):
        load_sar_image(tmp_path / "rgb.png")
    Image.new("L", (20, 16)).save(tmp_path / "big.png")
    with pytest.raises(DataError, match=r"big.png: sar image is 20x16 px, expected 16x16 \(data.image_size\)"):
        load_sar_image(tmp_path / "big.png", image_size=16)
    with pytest.raises(DataError, match="missing.png: SAR image not found"):
        load_sar_image(tmp_path / "missing.png")
    with pytest.raises(DataError, match="dataset directory is missing"):
        ColorizationDataModule(str(tmp_path / "nothing"), synthetic=False).prepare_data()
    with pytest.raises(ConfigError, match="data.train_split"):
        ColorizationDataModule(str(root), train_split=1.0)


def test_wrong_image_size_in_a_batch_names_the_file(dataset: Path) -> None:
    module = ColorizationDataModule(str(dataset), synthetic=False, image_size=32)
    module.setup()
    with pytest.raises(DataError, match=r"img_p\d.png: sar image is 16x16 px, expected 32x32"):
        module.datasets["train"][0]
