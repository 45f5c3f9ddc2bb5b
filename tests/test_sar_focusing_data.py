"""SSM4SAR zarr reading: items, normalisation, chunk-aware sampling, workers and data errors."""

import multiprocessing
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr

from sarexp.data.chunk_sampler import ChunkAwareSampler
from sarexp.data.sar_focusing import SARFocusingDataModule, SARFocusingDataset
from sarexp.data.sar_scenes import make_input, open_scene, output_to_complex
from sarexp.data.synthetic import stripmap_dataset
from sarexp.data.synthetic.stripmap_dataset import write_synthetic_dataset
from sarexp.errors import ConfigError, DataError
from dataset_dirs import published

N_AZIMUTH, N_RANGE, CHUNKS = 256, 48, (64, 16)
PATCH, STRIDE = 64, 32
SIMULATOR = dict(
    n_azimuth=N_AZIMUTH, n_range=N_RANGE, chunks=list(CHUNKS), scenes={"training": 2, "validation": 1}, seed=4
)


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory) -> Path:
    return write_synthetic_dataset(tmp_path_factory.mktemp("data") / "ssm4sar", **SIMULATOR)


@pytest.fixture
def writable_root(dataset_root, tmp_path) -> Path:
    """A private copy of the dataset that a test may corrupt."""
    return Path(shutil.copytree(dataset_root, tmp_path / "copy"))


def _dataset(root: Path, cls=SARFocusingDataset, **kwargs) -> SARFocusingDataset:
    options = dict(scale_blocks=12, patches_per_block=2, cache_blocks=2) | kwargs
    return cls(sorted((root / "training").glob("*.zarr")), PATCH, STRIDE, **options)


class CountingDataset(SARFocusingDataset):
    """Counts block reads in every process through a shared counter."""

    def __init__(self, *args, counter, **kwargs):
        super().__init__(*args, **kwargs)
        self.counter = counter

    def load_block(self, index):
        with self.counter.get_lock():
            self.counter.value += 1
        return super().load_block(index)


def test_items_shapes_normalisation_and_position(dataset_root):
    dataset = _dataset(dataset_root)
    n_starts = (N_AZIMUTH - PATCH) // STRIDE + 1
    assert len(dataset) == 2 * N_RANGE * n_starts
    items = [dataset[index] for index in range(len(dataset))]
    item = items[123]
    assert item["input"].shape == (3, PATCH) and item["input"].dtype == torch.float32
    assert item["target"].shape == (2, PATCH) and item["target"].dtype == torch.float32

    scene, column, start = item["location"].tolist()
    store = zarr.open_group(dataset.scenes[scene].path, mode="r")
    scale = dataset.scales[scene]
    rc = store["rc"][start : start + PATCH, column]
    az = store["az"][start : start + PATCH, column]
    np.testing.assert_allclose(item["input"][0] + 1j * item["input"][1], rc / scale, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(item["target"][0] + 1j * item["target"][1], az / scale, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(item["input"][2], np.arange(start, start + PATCH) / (N_AZIMUTH - 1), rtol=1e-6)

    inputs = torch.stack([item["input"] for item in items])
    assert torch.sqrt((inputs[:, :2] ** 2).sum(1).mean()).item() == pytest.approx(1.0, rel=0.1)
    assert sorted({tuple(item["location"].tolist()) for item in items}) == sorted(
        (scene, column, start)
        for scene in range(2)
        for column in range(N_RANGE)
        for start in range(0, N_AZIMUTH - PATCH + 1, STRIDE)
    )


def test_prediction_helpers_invert_the_normalisation(dataset_root):
    store = open_scene(next((dataset_root / "validation").glob("*.zarr")))
    rc = store.rc[10:90, 3:7]
    inputs = make_input(rc, 10, N_AZIMUTH, scale=2.5)
    assert inputs.shape == (4, 3, 80)
    np.testing.assert_allclose(output_to_complex(torch.from_numpy(inputs[:, :2]), 2.5), rc, rtol=1e-6)


def test_sampler_is_a_permutation_that_reads_each_block_once(dataset_root):
    counter = multiprocessing.Value("i", 0)
    dataset = _dataset(dataset_root, CountingDataset, counter=counter)
    sampler = ChunkAwareSampler(dataset.block_ranges, shuffle=True, seed=0, batch_size=8, mix_blocks=2)
    orders = []
    for epoch in range(2):
        sampler.set_epoch(epoch)
        counter.value = 0
        order = list(sampler)
        assert sorted(order) == list(range(len(dataset)))
        for index in order:
            dataset[index]
        assert counter.value == len(dataset.blocks)
        orders.append(order)
    assert orders[0] != orders[1]
    sampler.set_epoch(0)
    assert list(sampler) == orders[0]


def test_worker_lanes_keep_each_block_in_one_worker(dataset_root):
    dataset = _dataset(dataset_root)
    sampler = ChunkAwareSampler(dataset.block_ranges, seed=1, batch_size=5, num_workers=2, mix_blocks=2)
    order = np.asarray(list(sampler))
    assert sorted(order.tolist()) == list(range(len(dataset)))
    starts = np.asarray([start for start, _ in dataset.block_ranges])
    blocks = np.searchsorted(starts, order, side="right") - 1
    workers = (np.arange(len(order)) // 5) % 2  # the DataLoader hands batch k to worker k mod 2
    readers = {block: set(workers[blocks == block].tolist()) for block in range(len(dataset.blocks))}
    shared = sum(len(worker_set) > 1 for worker_set in readers.values())
    assert shared <= 2


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_dataloader_with_two_workers(dataset_root, context):
    counter = multiprocessing.get_context(context).Value("i", 0)
    dataset = _dataset(dataset_root, CountingDataset, counter=counter)
    sampler = ChunkAwareSampler(dataset.block_ranges, seed=0, batch_size=16, num_workers=2, mix_blocks=2)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=16, sampler=sampler, num_workers=2, multiprocessing_context=context
    )
    batches = list(loader)
    assert batches[0]["input"].shape == (16, 3, PATCH) and batches[0]["target"].shape == (16, 2, PATCH)
    locations = torch.cat([batch["location"] for batch in batches])
    assert len({tuple(location) for location in locations.tolist()}) == len(dataset)
    assert len(dataset.blocks) <= counter.value <= len(dataset.blocks) + 4


def test_datamodule_generates_and_serves_batches(tmp_path):
    module = SARFocusingDataModule(
        root=str(tmp_path / "generated"),
        simulator=SIMULATOR,
        patch_length=PATCH,
        stride=STRIDE,
        batch_size=8,
        val_batch_size=16,
    )
    module.prepare_data()
    assert len(module.scene_paths("training")) == 2 and len(module.scene_paths("validation")) == 1
    module.setup("fit")
    batch = next(iter(module.train_dataloader()))
    assert batch["input"].shape == (8, 3, PATCH) and batch["target"].shape == (8, 2, PATCH)
    assert next(iter(module.val_dataloader()))["input"].shape == (16, 3, PATCH)
    module.setup("test")
    assert len(module.test_dataloader().dataset) == N_RANGE * ((N_AZIMUTH - PATCH) // STRIDE + 1)


def test_datamodule_uses_a_dataset_published_concurrently(tmp_path, monkeypatch):
    root = tmp_path / "generated"
    original = stripmap_dataset._write_scene
    raced = []

    def write_scene_while_another_process_publishes(*args, **kwargs):
        if not raced:
            raced.append(True)
            write_synthetic_dataset(root, **SIMULATOR)
        original(*args, **kwargs)

    monkeypatch.setattr(stripmap_dataset, "_write_scene", write_scene_while_another_process_publishes)
    module = SARFocusingDataModule(root=str(root), simulator=SIMULATOR, patch_length=PATCH, stride=STRIDE)
    module.prepare_data()
    assert published(tmp_path) == ["generated"]  # no staging directory left behind


def test_missing_root_without_synthetic_names_the_path(tmp_path):
    root = tmp_path / "nowhere"
    module = SARFocusingDataModule(root=str(root), synthetic=False)
    with pytest.raises(DataError, match=f"{root}.*data.synthetic=true"):
        module.prepare_data()
    assert not root.exists()


def test_split_without_scenes_names_the_split(writable_root):
    shutil.rmtree(writable_root / "validation")
    (writable_root / "validation").mkdir()
    module = SARFocusingDataModule(root=str(writable_root), synthetic=False)
    with pytest.raises(DataError, match=str(writable_root / "validation")):
        module.prepare_data()


def test_unknown_simulator_key_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="data.simulator.n_azimut"):
        SARFocusingDataModule(root=str(tmp_path), simulator={"n_azimut": 64})


def test_garbage_metadata_names_the_store(writable_root):
    scene = writable_root / "training" / "scene_001.zarr"
    (scene / "zarr.json").write_text("{not json")
    with pytest.raises(DataError, match=f"{scene}: not a readable zarr store"):
        _dataset(writable_root)


def test_garbage_array_metadata_names_the_store(writable_root):
    scene = writable_root / "training" / "scene_000.zarr"
    (scene / "az" / "zarr.json").write_text("garbage")
    with pytest.raises(DataError, match=f"{scene}: array 'az'"):
        open_scene(scene)


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_chunk_found_while_reading_names_store_and_array(writable_root, damage):
    dataset = _dataset(writable_root)
    block = dataset.blocks[0]
    path = dataset.scenes[block.scene].path
    chunk = path / "rc" / "c" / str(block.lines[0] // CHUNKS[0]) / str(block.columns[0] // CHUNKS[1])
    content = chunk.read_bytes()
    chunk.write_bytes(content[: len(content) // 2] if damage == "truncate" else b"\x00garbage" * 16)
    with pytest.raises(DataError, match=f"{path}: cannot read array 'rc'"):
        dataset[0]


def test_missing_rc_and_mismatched_shapes_are_data_errors(writable_root):
    first, second = sorted((writable_root / "training").glob("*.zarr"))
    shutil.rmtree(first / "rc")
    with pytest.raises(DataError, match=f"{first}: no array 'rc'"):
        open_scene(first)
    group = zarr.open_group(second, mode="r+")
    del group["az"]
    group.create_array("az", shape=(8, 8), dtype="complex64")
    with pytest.raises(DataError, match=f"{second}: 'rc' has shape"):
        open_scene(second)


def test_scene_shorter_than_a_patch_is_a_data_error(dataset_root):
    with pytest.raises(DataError, match="fewer than data.patch_length"):
        SARFocusingDataset(sorted((dataset_root / "training").glob("*.zarr")), N_AZIMUTH + 1, STRIDE)


def test_rc_only_store_serves_inputs_without_target(writable_root):
    scene = writable_root / "validation" / "scene_000.zarr"
    del zarr.open_group(scene, mode="r+")["az"]
    with pytest.raises(DataError, match="no reference array 'az'"):
        SARFocusingDataset([scene], PATCH, STRIDE)
    item = SARFocusingDataset([scene], PATCH, STRIDE, with_target=False)[0]
    assert set(item) == {"input", "location"}

