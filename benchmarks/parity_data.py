"""Data parity: items/s of sarexp's data modules on their real on-disk layout (the synthetic generators write
it) against the original's dataset class reading the same files, with 0 and 2 loader workers. A unit is one
training batch taken from the loader; sarexp's count includes its batch transform (augmentation, resizing,
normalisation: `on_after_batch_transfer` in training mode), the originals' their per-sample transform. Rates
are items over the mean batch time after the warm-up batches (worker start-up); dataset construction is not
timed (both load what they load at construction)."""

import io
import json
import os
from contextlib import redirect_stdout
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterable

from torch.utils.data import DataLoader

from parity_support import Column, Row, Settings, Skip, alternate, compose, timed_loop

Case = Callable[[Settings, list[str]], list[Row]]


def batches(make_loader: Callable[[], Iterable], transform: Callable[[Any], Any] | None = None) -> Callable[[], Any]:
    """A step function taking the next batch (a new pass when one ends), transformed."""
    state: dict[str, Any] = {"iterator": None}

    def step() -> None:
        try:
            batch = next(state["iterator"])
        except (StopIteration, TypeError):
            state["iterator"] = iter(make_loader())
            batch = next(state["iterator"])
        if transform is not None:
            transform(batch)
    return step


def sarexp_module(settings: Settings, overrides: list[str], workers: int) -> tuple[Any, Any]:
    """The experiment's data module (prepared, set up) and its training-mode batch transform."""
    from sarexp.tasks.builders import build_datamodule

    datamodule = build_datamodule(compose(settings, [*overrides, f"data.num_workers={workers}"]))
    datamodule.prepare_data()
    datamodule.setup("fit")
    datamodule.trainer = SimpleNamespace(training=True)  # what the batch transform asks of a Trainer
    return datamodule, lambda batch: datamodule.on_after_batch_transfer(batch, 0)


def compare(settings: Settings, overrides: list[str], batch_size: int,
            reference: Callable[[Any, int], Callable[[], Iterable]] | None, note: str = "") -> list[Row]:
    """Rows for 0 and 2 workers: sarexp's module, and the reference loader built on the module's files
    (reference None: no original to compare with, `note` says why)."""
    rows = []
    for workers in settings.workers:
        datamodule, transform = sarexp_module(settings, overrides, workers)
        columns = [Column("sarexp", timed_loop(batches(datamodule.train_dataloader, transform), settings.device),
                          items=batch_size)]
        if reference is None:
            columns.append(Column("reference", None, note=note))
        else:
            try:
                columns.append(Column("reference", timed_loop(batches(reference(datamodule, workers)),
                                                              settings.device), items=batch_size, note=note))
            except Skip as reason:
                columns.append(Column("reference", None, note=f"skipped: {reason}"))
        measured = alternate(columns, settings, steps=2 if settings.smoke else 10, warmup=1 if settings.smoke else 3)
        rate = {name: 1e3 * batch_size / row["mean ms"] for name, row in measured.items() if "mean ms" in row}
        for name, row in measured.items():
            ratio = rate[name] / rate["reference"] if name in rate and "reference" in rate else None
            rows.append({"column": name, "workers": workers, "items/s": rate.get(name),
                         "× reference rate": ratio if name == "sarexp" else None, "note": row["note"]})
    return rows


def _quiet(make: Callable[[], Any]) -> Any:
    with redirect_stdout(io.StringIO()):
        return make()


# --- systems -------------------------------------------------------------------------------------------


def hsi(settings: Settings, overrides: list[str]) -> list[Row]:
    """ARAD-1K: MST++'s TrainDataset (its crop 128, stride 8, random rot/flip per sample; 482 × 512 images)."""
    from parity_references import reference_context

    size = [] if settings.smoke else ["data.root=${paths.data_dir}/arad1k_482x512",
                                      "data.simulator.height=482", "data.simulator.width=512",
                                      "data.simulator.scenes={train:4,validation:1,test:1}", "data.patch_size=128",
                                      "data.stride=8", "data.batch_size=20"]
    overrides = ["experiment=hsi_mstpp", *overrides, *size]
    batch_size = int(compose(settings, overrides).data.batch_size)
    crop = int(compose(settings, overrides).data.patch_size)

    def reference(datamodule: Any, workers: int) -> Callable[[], Iterable]:
        if settings.smoke:
            raise Skip("MST++'s TrainDataset needs 482 × 512 images (not in the smoke run)")
        with reference_context(settings, "mstpp") as modules:
            dataset = _quiet(lambda: modules["hsi_dataset"].TrainDataset(
                data_root=str(datamodule.root), crop_size=crop, bgr2rgb=True, arg=True, stride=8))
        return lambda: DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers, drop_last=True)

    return compare(settings, overrides, batch_size, reference, "MST++ TrainDataset")


def pdm_hdf5(settings: Settings, overrides: list[str]) -> list[Row]:
    """InSAR HDF5 (pdm_insar_noise): the seed's Hdf5Dataset with its contiguous-chunk Sampler, on the same file."""
    from parity_references import reference_context

    overrides = ["experiment=pdm_insar_noise", *overrides]
    batch_size = int(compose(settings, overrides).data.batch_size)

    def reference(datamodule: Any, workers: int) -> Callable[[], Iterable]:
        folder = Path(datamodule.root) / "seed_view"  # the seed lists *.hdf5: a link to sarexp's train.h5
        folder.mkdir(exist_ok=True)
        if not (folder / "train.hdf5").exists():
            os.symlink(Path(datamodule.root) / "train.h5", folder / "train.hdf5")
        keys = list(compose(settings, overrides).data.image_keys)
        with reference_context(settings, "pdm") as modules:
            hdf5 = modules["improved_diffusion.datasets_hdf5"]
            dataset = hdf5.Hdf5Dataset(f"{folder}/", C=1, N=int(datamodule.image_size),
                                       list_keys_hdf5_original=_hdf5_keys(folder / "train.hdf5"), key_data=keys[0],
                                       key_other=None)
        return lambda: DataLoader(dataset, sampler=hdf5.Sampler(dataset, batch_size), num_workers=workers,
                                  collate_fn=hdf5.our_collate_fn)

    return compare(settings, overrides, batch_size, reference, "PDM seed Hdf5Dataset")


def _hdf5_keys(path: Path) -> list[str]:
    import h5py

    with h5py.File(path, "r") as handle:
        return list(handle.keys())


def pdm_images(settings: Settings, overrides: list[str]) -> list[Row]:
    """SAR wave-mode PNGs (pdm_sar_lowres): the seed's ImageDataset over the same files (its load_data)."""
    from parity_references import reference_context

    overrides = ["experiment=pdm_sar_lowres", *[item for item in overrides if "generator.counts" not in item]]
    if settings.smoke:
        overrides += ["data.image_size=16", "data.generator.counts={train:4,val:2,test:2}", "data.batch_size=2"]
    cfg = compose(settings, overrides)
    batch_size = int(cfg.data.batch_size)

    def reference(datamodule: Any, workers: int) -> Callable[[], Iterable]:
        with reference_context(settings, "pdm") as modules:
            images = modules["improved_diffusion.datasets_image"]
            files = images.list_image_files_recursively(str(Path(datamodule.root) / "train"))
            dataset = images.ImageDataset(int(cfg.data.image_size), int(cfg.data.channels), files)
        return lambda: DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers, drop_last=True)

    return compare(settings, overrides, batch_size, reference, "PDM seed ImageDataset")


def mixmae(settings: Settings, overrides: list[str]) -> list[Row]:
    """BigEarthNet v1 in SAR-W-MixMAE's zarr store: its BigEarthNetv1 (resize to 128, flips, normalisation,
    polarization weights per sample) against sarexp's data=benv1_zarr."""
    import torchvision.transforms as transforms

    from parity_references import reference_context

    overrides = ["experiment=mixmae_benv1", "data=benv1_zarr", "data.root=${paths.data_dir}/benv1_zarr",
                 *[o for o in overrides if "simulator" not in o]]
    if settings.smoke:
        overrides += ["data.simulator.patches={train:4,validation:2,test:2}"]
    cfg = compose(settings, overrides)
    batch_size = int(cfg.data.batch_size)

    def reference(datamodule: Any, workers: int) -> Callable[[], Iterable]:
        root = Path(datamodule.root)
        transform = transforms.Compose([
            transforms.Resize(size=(int(cfg.data.image_size), int(cfg.data.image_size))),
            transforms.RandomHorizontalFlip(), transforms.RandomVerticalFlip(),
            transforms.Normalize(mean=list(cfg.data.mean), std=list(cfg.data.std))])
        with reference_context(settings, "sarwmixmae_data") as modules:
            dataset = modules["bigearthnetv1"].BigEarthNetv1(
                zarr_path=str(root / cfg.data.zarr_store), csv_path=[str(root / cfg.data.split_files.train)],
                transform=transform, label_json=str(_label_json(settings.workdir)), id_col=int(cfg.data.id_column))
        return lambda: DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers)

    return compare(settings, overrides, batch_size, reference, "SAR-W-MixMAE BigEarthNetv1")


def _label_json(workdir: Path) -> Path:
    """The BigEarthNet-19 `label_indices.json` its loader reads (not in the repository), from sarexp's tables."""
    from sarexp.data.bigearthnet_labels import BEN19_CLASSES, CLC43_CLASSES, CLC43_TO_BEN19

    path = workdir / "label_indices.json"
    conversion = [[index for index, name in enumerate(CLC43_CLASSES) if CLC43_TO_BEN19[name] == target]
                  for target in BEN19_CLASSES]
    path.write_text(json.dumps({"original_labels": {name: i for i, name in enumerate(CLC43_CLASSES)},
                                "label_conversion": conversion, "BigEarthNet-19_labels": list(BEN19_CLASSES)}))
    return path


def sarexp_only(experiment: str, why: str) -> Case:
    def case(settings: Settings, overrides: list[str]) -> list[Row]:
        overrides = [f"experiment={experiment}", *[item for item in overrides if not item.startswith("vae.")]]
        batch_size = int(compose(settings, overrides).data.batch_size)
        return compare(settings, overrides, batch_size, None, why)
    return case


SYSTEMS: dict[str, Case] = {
    "hsi_mstpp": hsi,
    "pdm": pdm_hdf5,
    "pdm_images": pdm_images,
    "mixmae": mixmae,
    "ssm4sar": sarexp_only("ssm4sar", "the original is not public"),
    "colorization_ldm": sarexp_only("colorization_ldm", "the original is not public"),
    "mixmae_sen12flood": sarexp_only(
        "mixmae_sen12flood_ft", "SAR-W-MixMAE's FloodDataset reads the .npy pairs of its own preparation scripts, "
        "not the SEN12-FLOOD folders sarexp reads: no same-files comparison"),
}
