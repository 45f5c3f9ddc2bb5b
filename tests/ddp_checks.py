"""Callbacks and data that check what DDP (and a device) must guarantee, used inside real runs (tests/ddp_worker.py,
tests/test_gpu.py).

- `ReplicaCheck`: at the end of training every rank hashes each tensor of its LightningModule's state (parameters,
  buffers, EMA copies) and the hashes are compared across ranks; the start-of-training hashes show which tensors
  training changed (identical ranks that never trained would prove nothing).
- `GradientRecorder`: the gradients each optimizer is about to apply (after DDP's all-reduce, before clipping).
- `DeviceRecorder`: the device and precision a run really trained with.
- `FixedSamples`: a data module over given samples, without shuffling or augmentation, so a DDP job and a
  single process can be fed the same samples.
- `UnsynchronisedDDPStrategy`: the negative control, ranks that never all-reduce (what the seed's trainer did: its
  DDP wrapper's forward was never called), which `ReplicaCheck` must catch.
"""

import hashlib
import json
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset

from sarexp.strategies.ddp import HydraDDPStrategy


def digests(module: torch.nn.Module) -> dict[str, str]:
    """sha1 of every state tensor's bytes (dtype and shape included)."""
    result = {}
    for name, tensor in module.state_dict().items():
        data = tensor.detach().cpu().contiguous()
        raw = data.reshape(-1).view(torch.uint8)
        result[name] = hashlib.sha1(f"{data.dtype}{tuple(data.shape)}".encode() + raw.numpy().tobytes()).hexdigest()
    return result


class ReplicaCheck(pl.Callback):
    """Writes `<report_dir>/<name>.json` on rank 0: tensors compared, those differing between ranks, those training
    changed, and the steps each rank took."""

    def __init__(self, report_dir: str, name: str) -> None:
        self.report = Path(report_dir) / f"{name}.json"
        self.start: dict[str, str] = {}

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.start = digests(pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        end = digests(pl_module)
        ranks: list[Any] = [None] * trainer.world_size
        record = {"digests": end, "global_step": trainer.global_step}
        if trainer.world_size > 1:
            dist.all_gather_object(ranks, record)
        else:
            ranks = [record]
        if trainer.global_rank != 0:
            return
        names = sorted(end)
        report = {
            "world_size": trainer.world_size,
            "steps": [rank["global_step"] for rank in ranks],
            "tensors": names,
            "differing": [name for name in names if len({rank["digests"][name] for rank in ranks}) > 1],
            "changed": [name for name in names if self.start.get(name) != end[name]],
            "trainable": [name for name, p in pl_module.named_parameters() if p.requires_grad],
        }
        self.report.parent.mkdir(parents=True, exist_ok=True)
        self.report.write_text(json.dumps(report))


class GradientRecorder(pl.Callback):
    """Gradients at each optimizer step, by parameter name, in call order (saved by rank 0 to `path`)."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.steps: list[dict[str, torch.Tensor]] = []

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Any) -> None:
        owned = {id(p) for group in optimizer.param_groups for p in group["params"]}
        self.steps.append({name: p.grad.detach().clone() for name, p in pl_module.named_parameters()
                           if id(p) in owned and p.grad is not None})

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.global_rank == 0:
            torch.save(self.steps, self.path)


class DeviceRecorder(pl.Callback):
    """Writes {"device": "cuda", "precision": "bf16-mixed"} to `path` when training starts."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.global_rank == 0:
            self.path.write_text(json.dumps({"device": pl_module.device.type, "precision": trainer.precision}))


class _Samples(Dataset):
    def __init__(self, samples: dict[str, torch.Tensor]) -> None:
        self.samples = samples

    def __len__(self) -> int:
        return len(next(iter(self.samples.values())))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {key: value[index] for key, value in self.samples.items()}


class FixedSamples(pl.LightningDataModule):
    """Batches of `batch_size` over `samples`, in order (under DDP, rank r gets samples r, r + W, …)."""

    def __init__(self, samples: dict[str, torch.Tensor], batch_size: int) -> None:
        super().__init__()
        self.samples, self.batch_size = samples, batch_size

    def train_dataloader(self) -> DataLoader:
        return DataLoader(_Samples(self.samples), batch_size=self.batch_size, shuffle=False)


def rank_order(samples: dict[str, torch.Tensor], world_size: int) -> dict[str, torch.Tensor]:
    """The samples in the order the ranks' batches are concatenated by an all-gather (rank 0's first)."""
    return {key: torch.cat([value[rank::world_size] for rank in range(world_size)]) for key, value in samples.items()}


class UnsynchronisedDDPStrategy(HydraDDPStrategy):
    """Joins the process group but wraps nothing: every rank trains its own copy on its own shard."""

    def configure_ddp(self) -> None:
        pass
