"""ARAD-1K data module (NTIRE 2022 spectral recovery) for RGB → hyperspectral reconstruction.

Files are read as MST++ reads them (:mod:`sarexp.data.arad_files`). Batches are dicts:

- train: ``rgb`` float32 (B, 3, p, p), ``hsi`` float32 (B, bands, p, p), ``name`` list[str] — patches of
  ``patch_size`` every ``stride`` pixels of the ``split_txt/train_list.txt`` scenes (MST++: 128 every 8);
  on the device, each sample gets a random rot90 (k ∈ 0..3), vertical and horizontal flip (MST++'s
  augmentation, applied alike to rgb and hsi) and, when configured, noise on ``rgb`` only: Poisson shot
  noise with ``rgb_noise.shot_photons`` photons at full scale and Gaussian read noise of standard deviation
  ``rgb_noise.read_sigma`` (the noise-robust training of the seed).
- validation and test: whole images of ``split_txt/valid_list.txt`` (ARAD's test scenes have no cubes;
  MST++ reports the validation split), same keys.
- predict: ``rgb`` and ``name`` (the file stem) of ``data.predict_inputs`` (files or folders; default
  ``<root>/Test_RGB``), plus ``hsi`` when ``<root>/Train_Spec/<name>.mat`` exists. Batch size 1.
"""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader, Dataset

from sarexp.data.arad_datasets import ImageDataset, PatchDataset, PredictDataset, SceneStore
from sarexp.data.arad_files import (
    RGB_DIR,
    SPEC_DIR,
    SPLIT_DIR,
    SPLIT_FILES,
    TEST_RGB_DIR,
    read_split,
    rgb_files,
)
from sarexp.data.config_values import check_positive, plain
from sarexp.data.resumable import split_loader
from sarexp.data.sar_patches import simulator_arguments
from sarexp.data.synthetic.arad import write_arad
from sarexp.data.synthetic.staging import is_missing_or_empty
from sarexp.errors import ConfigError, DataError


def random_dihedral(rgb: torch.Tensor, hsi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sample: rot90 by a random k, then a random vertical and horizontal flip, alike on both tensors."""
    out_rgb, out_hsi = [], []
    draws = torch.randint(0, 2, (rgb.shape[0], 3), device="cpu")
    turns = torch.randint(0, 4, (rgb.shape[0],), device="cpu")
    for index in range(rgb.shape[0]):
        pair = [torch.rot90(t[index], int(turns[index]), dims=(-2, -1)) for t in (rgb, hsi)]
        if draws[index, 0]:
            pair = [t.flip(-1) for t in pair]
        if draws[index, 1]:
            pair = [t.flip(-2) for t in pair]
        out_rgb.append(pair[0])
        out_hsi.append(pair[1])
    return torch.stack(out_rgb), torch.stack(out_hsi)


def add_rgb_noise(rgb: torch.Tensor, shot_photons: float, read_sigma: float) -> torch.Tensor:
    """Poisson shot noise (``shot_photons`` at full scale; 0: none) then Gaussian read noise (σ; 0: none)."""
    if shot_photons > 0:
        rgb = torch.poisson(rgb.clamp(min=0) * shot_photons) / shot_photons
    if read_sigma > 0:
        rgb = rgb + read_sigma * torch.randn_like(rgb)
    return rgb


class ARADDataModule(LightningDataModule):
    """Train/validation/test/predict loaders of an ARAD-1K root; see the module docstring."""

    def __init__(
        self,
        root: str,
        synthetic: bool = True,
        bands: int = 31,
        patch_size: int = 128,
        stride: int = 8,
        batch_size: int = 20,
        val_batch_size: int = 1,
        num_workers: int = 0,
        memory_mode: str = "standard",
        lazy_cache_size: int = 3,
        augment: bool = True,
        rgb_noise: Mapping[str, float] | None = None,
        predict_inputs: Sequence[str] | None = None,
        pin_memory: bool = False,
        simulator: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        check_positive(bands=bands, patch_size=patch_size, stride=stride, batch_size=batch_size,
                       val_batch_size=val_batch_size, lazy_cache_size=lazy_cache_size)
        if num_workers < 0:
            raise ConfigError(f"data.num_workers must be >= 0, got {num_workers}")
        if memory_mode not in ("standard", "lazy"):
            raise ConfigError(f"data.memory_mode must be standard or lazy, got {memory_mode!r}")
        noise = {"shot_photons": 0.0, "read_sigma": 0.0, **plain(rgb_noise or {})}
        if set(noise) != {"shot_photons", "read_sigma"} or min(noise.values()) < 0:
            raise ConfigError(f"data.rgb_noise takes shot_photons and read_sigma, both ≥ 0; got {noise}")
        self.root = Path(root)
        self.synthetic = synthetic
        self.bands = bands
        self.patch_size = patch_size
        self.stride = stride
        self.batch_size = batch_size
        self.val_batch_size = val_batch_size
        self.num_workers = num_workers
        self.memory_mode = memory_mode
        self.lazy_cache_size = lazy_cache_size
        self.augment = augment
        self.rgb_noise = noise
        self.predict_inputs = [Path(path) for path in plain(predict_inputs or [])]
        self.pin_memory = pin_memory
        self.simulator = simulator_arguments(plain(simulator or {}), write_arad)
        self.datasets: dict[str, Dataset] = {}

    def prepare_data(self) -> None:
        """Generate the synthetic dataset into an empty root (safe when processes race)."""
        if self.synthetic and is_missing_or_empty(self.root):
            try:
                write_arad(self.root, **self.simulator)
            except FileExistsError:
                pass  # another process published a complete dataset first

    def _check_root(self) -> None:
        if is_missing_or_empty(self.root):
            raise DataError(f"{self.root}: dataset directory is missing or empty; set data.root to an ARAD-1K "
                            "root (Train_Spec/, Train_RGB/, split_txt/) or data.synthetic=true to generate one")
        if not (self.root / SPEC_DIR).is_dir():
            raise DataError(f"{self.root / SPEC_DIR}: directory not found; an ARAD-1K root holds the cubes "
                            f"in {SPEC_DIR}/ARAD_1K_NNNN.mat")

    def scene_store(self, split: str) -> SceneStore:
        """The scenes of ``train`` or ``validation`` named by their split list."""
        names = read_split(self.root / SPLIT_DIR / SPLIT_FILES[split])
        return SceneStore(names, [self.root / SPEC_DIR / f"{name}.mat" for name in names],
                          [self.root / RGB_DIR / f"{name}.jpg" for name in names], self.bands,
                          self.memory_mode, self.lazy_cache_size)

    def predict_dataset(self) -> PredictDataset:
        inputs = self.predict_inputs or [self.root / TEST_RGB_DIR]
        files = [file for path in inputs for file in rgb_files(path)]
        spec_dir = self.root / SPEC_DIR
        return PredictDataset(files, spec_dir if spec_dir.is_dir() else None, self.bands)

    def setup(self, stage: str | None = None) -> None:
        """Build the datasets the stage needs (once each); prediction on explicit inputs needs no root."""
        if stage == "predict":
            if not self.predict_inputs:
                self._check_root()
            self.datasets["predict"] = self.predict_dataset()
            return
        self._check_root()
        if stage in ("fit", None) and "train" not in self.datasets:
            self.datasets["train"] = PatchDataset(self.scene_store("train"), self.patch_size, self.stride)
        if "validation" not in self.datasets:
            self.datasets["validation"] = ImageDataset(self.scene_store("validation"))

    def _loader(self, split: str, batch_size: int, shuffle: bool) -> DataLoader:
        if split not in self.datasets:
            raise RuntimeError(f"ARADDataModule.setup() must run before the {split} dataloader is requested")
        return split_loader(self.datasets[split], batch_size=batch_size, train=shuffle,
                            num_workers=self.num_workers, pin_memory=self.pin_memory)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("validation", self.val_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("validation", self.val_batch_size, shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader("predict", 1, shuffle=False)

    def on_after_batch_transfer(self, batch: dict[str, Any], dataloader_idx: int) -> dict[str, Any]:
        """Training batches: random rot90/flips, then optional RGB noise (see the module docstring)."""
        if self.trainer is None or not self.trainer.training:
            return batch
        rgb, hsi = batch["rgb"], batch["hsi"]
        if self.augment:
            rgb, hsi = random_dihedral(rgb, hsi)
        rgb = add_rgb_noise(rgb, self.rgb_noise["shot_photons"], self.rgb_noise["read_sigma"])
        return {**batch, "rgb": rgb, "hsi": hsi}
