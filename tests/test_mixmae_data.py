"""SAR-W-MixMAE data: BigEarthNet v1 (folders, zarr) / v2 and SEN12-FLOOD generators and loaders, round trip."""

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import tifffile
import torch
import torchvision.transforms.functional as TF
from torchmetrics.functional.classification import multilabel_average_precision

from sarexp.data.bigearthnet import (
    BENV1_MEAN,
    BENV1_STD,
    BigEarthNetV1DataModule,
    BigEarthNetV1ZarrDataModule,
    BigEarthNetV2DataModule,
)
from sarexp.data.bigearthnet_labels import BEN19_CLASSES, CLC43_CLASSES, CLC43_TO_BEN19, clc43_to_ben19_multi_hot
from sarexp.data.bigearthnet_zarr import convert_benv1_to_zarr
from sarexp.data.sar_patches import PatchBatchTransform
from sarexp.data.sen12flood import SEN12FloodDataModule
from sarexp.data.synthetic.bigearthnet import synthetic_patch, v2_folder
from sarexp.data.synthetic.land_cover import CLASS_BACKSCATTER_DB, CLASS_FREQUENCY, speckled_intensity
from sarexp.data.synthetic.sen12flood import folder_series, pair_indices
from sarexp.errors import ConfigError, DataError
from dataset_dirs import published

TINY = {"patches": {"train": 6, "validation": 3, "test": 4}}
BEN_MODULES = {
    "benv1": BigEarthNetV1DataModule,
    "benv1_zarr": BigEarthNetV1ZarrDataModule,
    "benv2": BigEarthNetV2DataModule,
}
MEAN, STD = (-20.0, -10.0), (2.0, 4.0)  # not the shipped statistics: shows the configured ones are applied


def _ben(kind: str, root: Path, **kwargs) -> BigEarthNetV1DataModule:
    return BEN_MODULES[kind](str(root), simulator=TINY, mean=MEAN, std=STD, batch_size=4, val_batch_size=4, **kwargs)


def _prepared(module):
    module.prepare_data()
    module.setup("fit")
    module.setup("test")
    return module


def _batch(module, loader, training: bool) -> dict[str, torch.Tensor]:
    module.trainer = SimpleNamespace(training=training)
    return module.on_after_batch_transfer(next(iter(loader)), 0)


# Published BigEarthNet-19 conversion (label_indices.json "label_conversion"): 43-class index → 19-class index.
REFERENCE_CONVERSION = {
    0: 0, 1: 0, 2: 1, 11: 2, 12: 2, 13: 2, 14: 3, 15: 3, 16: 3, 18: 3, 17: 4, 19: 5, 20: 6, 21: 7, 22: 8, 23: 9,
    24: 10, 25: 11, 31: 11, 26: 12, 27: 12, 28: 13, 29: 14, 33: 15, 34: 15, 35: 16, 36: 16, 38: 17, 39: 17,
    40: 18, 41: 18, 42: 18,
}


def test_43_to_19_conversion_matches_the_published_table():
    assert len(CLC43_CLASSES) == 43 and len(BEN19_CLASSES) == 19
    for index43, name in enumerate(CLC43_CLASSES):
        merged = CLC43_TO_BEN19[name]
        expected = REFERENCE_CONVERSION.get(index43)
        assert (None if merged is None else BEN19_CLASSES.index(merged)) == expected, name
    target = clc43_to_ben19_multi_hot(["Water bodies", "Water courses", "Airports", "Peatbogs"])
    assert np.flatnonzero(target).tolist() == [15, 17]


def test_class_tables_cover_the_19_classes_and_water_is_darkest():
    assert CLASS_BACKSCATTER_DB.shape == (19, 2) and CLASS_FREQUENCY.shape == (19,)
    assert (CLASS_BACKSCATTER_DB[:, 0] < CLASS_BACKSCATTER_DB[:, 1]).all()  # VH below VV everywhere
    water = [BEN19_CLASSES.index("Inland waters"), BEN19_CLASSES.index("Marine waters")]
    urban = BEN19_CLASSES.index("Industrial or commercial units")
    assert CLASS_BACKSCATTER_DB[water, 1].max() < CLASS_BACKSCATTER_DB[:, 1].min() + 3.5
    assert CLASS_BACKSCATTER_DB[urban, 1] == CLASS_BACKSCATTER_DB[:, 1].max()


def test_speckle_is_gamma_with_unit_mean_and_variance_one_over_looks():
    rng = np.random.default_rng(0)
    mean_db = np.full((2, 256, 256), -10.0)
    intensity = speckled_intensity(rng, mean_db, looks=4.0, texture_db=0.0) / 0.1
    assert intensity.mean() == pytest.approx(1.0, abs=0.01)
    assert intensity.var() == pytest.approx(1 / 4.0, rel=0.03)


def test_resize_matches_torchvision_and_commutes_with_normalisation():
    transform = PatchBatchTransform(128, BENV1_MEAN, BENV1_STD)
    image_db = torch.randn(3, 2, 120, 120) * 3 - 15
    resized = transform.resize(image_db)
    reference = TF.resize(image_db, [128, 128], interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
    torch.testing.assert_close(resized, reference, atol=1e-5, rtol=0)
    torch.testing.assert_close(transform.normalise(resized), transform.resize(transform.normalise(image_db)))


@pytest.mark.parametrize("kind", sorted(BEN_MODULES))
def test_bigearthnet_loader_reads_its_generated_layout(tmp_path, kind):
    module = _prepared(_ben(kind, tmp_path / kind))
    assert [len(module.datasets[split]) for split in ("train", "validation", "test")] == [6, 3, 4]
    batch = _batch(module, module.test_dataloader(), training=False)
    assert batch["image"].shape == batch["image_db"].shape == (4, 2, 128, 128)
    assert batch["label"].shape == (4, 19)
    assert {value.dtype for value in batch.values()} == {torch.float32}
    mean, std = torch.tensor(MEAN).reshape(2, 1, 1), torch.tensor(STD).reshape(2, 1, 1)
    torch.testing.assert_close(batch["image"], (batch["image_db"] - mean) / std)
    for index in range(4):
        patch = synthetic_patch(0, "test", index)
        item = module.datasets["test"][index]
        np.testing.assert_array_equal(item["image_db"].numpy(), patch.image_db)
        visible = patch.land_cover if patch.roads is None else patch.land_cover[~patch.roads]
        assert np.flatnonzero(item["label"].numpy()).tolist() == np.unique(visible).tolist()


@pytest.mark.parametrize("kind", sorted(BEN_MODULES))
def test_flips_only_in_training(tmp_path, kind):
    module = _prepared(_ben(kind, tmp_path / kind, image_size=120))
    loader = module.val_dataloader()
    raw = next(iter(loader))["image_db"]
    torch.testing.assert_close(_batch(module, loader, training=False)["image_db"], raw)
    torch.manual_seed(3)
    flipped = _batch(module, loader, training=True)["image_db"]
    for sample, original in zip(flipped, raw):
        candidates = [original, original.flip(-1), original.flip(-2), original.flip(-1).flip(-2)]
        assert any(torch.equal(sample, candidate) for candidate in candidates)
    assert not torch.equal(flipped, raw)


def test_v1_json_and_v2_metadata_follow_the_real_layouts(tmp_path):
    v1 = _prepared(_ben("benv1", tmp_path / "v1"))
    name = v1.split_names("train")[0]
    metadata = json.loads((tmp_path / "v1" / "BigEarthNet-S1-v1.0" / name / f"{name}_labels_metadata.json").read_text())
    assert set(metadata) == {"labels", "coordinates", "projection", "corresponding_s2_patch", "scene_source",
                             "acquisition_time"}
    assert all(label in CLC43_CLASSES for label in metadata["labels"])
    with tifffile.TiffFile(tmp_path / "v1" / "BigEarthNet-S1-v1.0" / name / f"{name}_VH.tif") as tif:
        geo = tif.geotiff_metadata
        assert tif.pages[0].shape == (120, 120) and tif.pages[0].dtype == np.float32
    assert geo["ProjectedCSTypeGeoKey"] in range(32601, 32661)
    assert geo["ModelTiepoint"][3:5] == [metadata["coordinates"]["ulx"], metadata["coordinates"]["uly"]]
    _prepared(_ben("benv2", tmp_path / "v2"))
    table = pd.read_parquet(tmp_path / "v2" / "metadata.parquet")
    assert list(table.columns) == ["patch_id", "labels", "split", "country", "s1_name", "s2v1_name",
                                   "contains_seasonal_snow", "contains_cloud_or_shadow"]
    s1_name = table["s1_name"].iloc[0]
    assert (tmp_path / "v2" / "BigEarthNet-S1" / v2_folder(s1_name) / s1_name / f"{s1_name}_VV.tif").is_file()
    assert v2_folder("S1A_IW_GRDH_1SDV_20170613T165043_33UUP_61_39") == "S1A_IW_GRDH_1SDV_20170613T165043"


def test_generation_is_seeded_and_atomic(tmp_path):
    for root in (tmp_path / "a", tmp_path / "b"):
        _ben("benv2", root).prepare_data()
    first, second = (pd.read_parquet(root / "metadata.parquet") for root in (tmp_path / "a", tmp_path / "b"))
    pd.testing.assert_frame_equal(first, second)
    assert published(tmp_path) == ["a", "b"]  # no staging directory left behind
    other = BigEarthNetV2DataModule(str(tmp_path / "c"), simulator={**TINY, "seed": 1})
    other.prepare_data()
    assert pd.read_parquet(tmp_path / "c" / "metadata.parquet")["s1_name"].tolist() != first["s1_name"].tolist()


SEN12_TINY = {"folders": {"train": 3, "test": 1}, "size": 32}


def test_sen12flood_loader_reads_its_generated_layout(tmp_path):
    module = _prepared(SEN12FloodDataModule(str(tmp_path / "sen12"), simulator=SEN12_TINY, image_size=48,
                                            validation_fraction=1 / 3, batch_size=64, val_batch_size=64))
    folders = {split: {path.name.split("__")[0] for path in module.datasets[split].paths} for split in module.datasets}
    assert len(folders["validation"]) == 1 and not folders["validation"] & folders["train"]
    batch = _batch(module, module.train_dataloader(), training=False)
    size = len(module.datasets["train"])
    assert batch["image"].shape == batch["image_db"].shape == (size, 2, 2, 48, 48)
    assert batch["label"].shape == (size,) and batch["label"].dtype == torch.float32
    mean, std = torch.tensor(BENV1_MEAN).reshape(2, 1, 1), torch.tensor(BENV1_STD).reshape(2, 1, 1)
    torch.testing.assert_close(batch["image"], (batch["image_db"] - mean) / std)
    test_set = module.datasets["test"]
    names, flags, masks, images = folder_series(0, "test", 0, dates=3, size=32, looks=4.4, flood_probability=0.5,
                                                permanent_water=0.05)
    pairs = pair_indices(flags)
    assert len(test_set) == len(pairs)
    for path, label in zip(test_set.paths, test_set.labels):
        first, second = (names.index(name) for name in path.stem.split("__")[1:3])
        assert not flags[first] and label == int(flags[second])
        if label:  # water grows between the dates of a flood pair
            assert masks[second].mean() > masks[first].mean() + 0.1
        stored = np.load(path)
        np.testing.assert_array_equal(stored, np.stack([images[first], images[second]]))
    item = test_set[0]
    stored = np.load(test_set.paths[0]).astype(np.float64)
    expected = 10 * np.log10(np.where(stored > 0, stored, 1e-6))
    np.testing.assert_allclose(item["image_db"].numpy(), expected, atol=1e-4)


def test_sen12flood_flips_move_both_dates_together(tmp_path):
    module = _prepared(SEN12FloodDataModule(str(tmp_path / "s"), simulator=SEN12_TINY, flip=True, image_size=32,
                                            batch_size=64))
    batch = next(iter(module.val_dataloader()))
    raw = batch["image_db"]
    torch.manual_seed(0)
    module.trainer = SimpleNamespace(training=True)
    flipped = module.on_after_batch_transfer(batch, 0)["image_db"]
    for sample, original in zip(flipped, raw):
        candidates = [original, original.flip(-1), original.flip(-2), original.flip(-1).flip(-2)]
        assert any(torch.equal(sample, candidate) for candidate in candidates)


ALL_MODULES = {**BEN_MODULES, "sen12flood": SEN12FloodDataModule}


@pytest.mark.parametrize("kind", sorted(ALL_MODULES))
def test_missing_root_without_synthetic_names_the_path(tmp_path, kind):
    module = ALL_MODULES[kind](str(tmp_path / "absent"), synthetic=False)
    with pytest.raises(DataError, match=str(tmp_path / "absent")):
        module.prepare_data()


def _corrupt_v1_tif(root: Path) -> Path:
    return next((root / "BigEarthNet-S1-v1.0").glob("*/*_VH.tif"))


def _corrupt_v1_json(root: Path) -> Path:
    return next((root / "BigEarthNet-S1-v1.0").glob("*/*_labels_metadata.json"))


def _corrupt_v2_tif(root: Path) -> Path:
    return next((root / "BigEarthNet-S1").glob("*/*/*_VV.tif"))


def _corrupt_zarr_chunk(root: Path) -> Path:
    chunks = (path for path in (root / "BigEarthNet-S1-v1.0.zarr" / "sentinel1").rglob("*") if path.is_file())
    return next(path for path in chunks if "c" in path.parts and path.parts[path.parts.index("c") - 1] == "VH")


@pytest.mark.parametrize(
    "kind, locate",
    [("benv1", _corrupt_v1_tif), ("benv1", _corrupt_v1_json), ("benv2", _corrupt_v2_tif),
     ("benv1_zarr", _corrupt_zarr_chunk)],
)
def test_a_corrupt_file_is_a_data_error_naming_it(tmp_path, kind, locate):
    module = _prepared(_ben(kind, tmp_path / kind))
    path = locate(tmp_path / kind)
    path.write_bytes(b"\x00garbage")
    patch = next(part for part in path.parts if part.startswith("S1"))
    with pytest.raises(DataError, match=patch):
        for split in ("train", "validation", "test"):
            for index in range(len(module.datasets[split])):
                module.datasets[split][index]


def test_a_corrupt_parquet_or_pair_is_a_data_error_naming_it(tmp_path):
    (tmp_path / "v2").mkdir()
    (tmp_path / "v2" / "BigEarthNet-S1").mkdir()
    (tmp_path / "v2" / "metadata.parquet").write_bytes(b"not parquet")
    with pytest.raises(DataError, match="metadata.parquet"):
        BigEarthNetV2DataModule(str(tmp_path / "v2"), synthetic=False).prepare_data()
    module = _prepared(SEN12FloodDataModule(str(tmp_path / "s"), simulator=SEN12_TINY, validation_fraction=0))
    path = module.datasets["test"].paths[0]
    path.write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(DataError, match=path.name):
        module.datasets["test"][0]
    path.rename(path.with_name("no_label.npy"))
    with pytest.raises(DataError, match="no_label.npy"):
        SEN12FloodDataModule(str(tmp_path / "s"), synthetic=False).prepare_data()


def test_train_splits_merge_splits_for_pretraining(tmp_path):
    module = _prepared(_ben("benv2", tmp_path / "v2", train_splits=["train", "validation"]))
    assert len(module.datasets["train"]) == 6 + 3 and len(module.datasets["validation"]) == 3


def test_config_mistakes_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match="data.simulator.patchs"):
        BigEarthNetV1DataModule(str(tmp_path), simulator={"patchs": {}})
    with pytest.raises(ConfigError, match="data.num_classes"):
        BigEarthNetV2DataModule(str(tmp_path), num_classes=43)
    with pytest.raises(ConfigError, match="data.train_splits"):
        SEN12FloodDataModule(str(tmp_path), train_splits=["training"])


def _histogram_features(dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-patch histograms of VH and VV dB values: what a classifier can see of the land cover."""
    features, labels = [], []
    for index in range(len(dataset)):
        item = dataset[index]
        bins = [torch.histc(channel, bins=24, min=-35.0, max=5.0) / channel.numel() for channel in item["image_db"]]
        features.append(torch.cat(bins))
        labels.append(item["label"])
    return torch.stack(features), torch.stack(labels)


def test_synthetic_labels_are_learnable_beyond_the_label_frequency_baseline(tmp_path):
    module = BigEarthNetV1DataModule(str(tmp_path / "ben"))
    _prepared(module)
    train_x, train_y = _histogram_features(module.datasets["train"])
    test_x, test_y = _histogram_features(module.datasets["test"])
    torch.manual_seed(0)
    classifier = torch.nn.Linear(train_x.shape[1], 19)
    optimiser = torch.optim.Adam(classifier.parameters(), lr=0.05)
    for _ in range(300):
        optimiser.zero_grad()
        torch.nn.functional.binary_cross_entropy_with_logits(classifier(train_x * 10), train_y).backward()
        optimiser.step()
    present = test_y.sum(0) > 0
    scores = classifier(test_x * 10).detach()
    learned = multilabel_average_precision(scores[:, present], test_y[:, present].long(), num_labels=int(present.sum()))
    baseline = test_y[:, present].mean(0).mean()  # AP of constant scores = the class's prevalence
    assert learned > baseline + 0.15, (float(learned), float(baseline))


def test_folders_converted_to_zarr_read_like_the_folders(tmp_path):
    folders = _prepared(_ben("benv1", tmp_path / "v1"))
    root = tmp_path / "converted"
    root.mkdir()
    for split_file in folders.split_files.values():
        (root / split_file).write_bytes((tmp_path / "v1" / split_file).read_bytes())
    count = convert_benv1_to_zarr(tmp_path / "v1" / "BigEarthNet-S1-v1.0", root / "BigEarthNet-S1-v1.0.zarr")
    assert count == 13
    converted = _prepared(_ben("benv1_zarr", root, synthetic=False))
    for index in range(len(folders.datasets["test"])):
        expected, actual = folders.datasets["test"][index], converted.datasets["test"][index]
        assert all(torch.equal(expected[key], actual[key]) for key in ("image_db", "label"))
