"""What the generative tasks (sample, likelihood) share: their start (run dir, seed, the trained diffusion system
from a checkpoint, its sampling network on the device) and atomic writers of sample files."""

import logging
import os
import tempfile
from pathlib import Path
from typing import NamedTuple

import h5py
import numpy as np
import torch
from omegaconf import DictConfig
from torch import nn

from sarexp.io.atomic import describe_write_error, write_file_atomically
from sarexp.io.checkpoint_io import load_weights_file
from sarexp.errors import ConfigError, StorageError
from sarexp.systems.diffusion import DiffusionSystem
from sarexp.rundir import record_run_info
from sarexp.tasks.builders import build_system, run_dir, seed_everything
from sarexp.tasks.checkpoints import loading

log = logging.getLogger(__name__)


def resolve_device(device: str) -> torch.device:
    """``auto``: the GPU when there is one, else the CPU; otherwise any torch device name."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError:
        raise ConfigError(f"task.device={device!r} is not a torch device; use auto, cpu or cuda[:N]") from None


def load_diffusion_system(cfg: DictConfig, checkpoint: Path | None) -> DiffusionSystem:
    """The configured system with the checkpoint's weights (raw and EMA) loaded; with no checkpoint, the weights
    the network was built with (`model.pretrained`)."""
    system = build_system(cfg)
    if not isinstance(system, DiffusionSystem):
        raise ConfigError(f"system={type(system).__name__} is not a diffusion system; use an experiment pdm_*")
    if checkpoint is None:
        return system
    state = load_weights_file(checkpoint, "ckpt_path")
    with loading(checkpoint):
        system.load_state_dict(state["state_dict"])
    log.info("loaded %s (global step %s)", checkpoint, state.get("global_step"))
    return system


class GenerativeRun(NamedTuple):
    directory: Path
    seed: int
    system: DiffusionSystem
    net: nn.Module  # the sampling network (EMA or raw), in eval mode on `device`
    device: torch.device


def start_generative_run(cfg: DictConfig, checkpoint: Path | None, use_ema: bool, device: str) -> GenerativeRun:
    """The run dir (with the run info), the seed, the system with its weights and its sampling network."""
    directory = run_dir(cfg)
    seed = seed_everything(cfg)
    record_run_info(directory, seed)
    system = load_diffusion_system(cfg, checkpoint)
    target = resolve_device(device)
    return GenerativeRun(directory, seed, system, system.sampling_network(use_ema).to(target).eval(), target)


def write_npz_atomic(path: Path, **arrays: np.ndarray) -> None:
    write_file_atomically(path, lambda handle: np.savez(handle, **arrays))


def write_hdf5_atomic(path: Path, **arrays: np.ndarray) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".h5")
    os.close(handle)
    try:
        with h5py.File(temporary, "w") as file:
            for name, array in arrays.items():
                file.create_dataset(name, data=array)
    except OSError as error:
        os.unlink(temporary)
        raise StorageError(describe_write_error(path, error)) from None
    os.replace(temporary, path)
