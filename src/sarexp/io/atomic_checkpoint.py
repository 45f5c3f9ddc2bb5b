"""Checkpoint files that are either the old version or the new one, never half a file.

Lightning's own writer serialises to memory, then copies the bytes through an fsspec "transaction" that
stages them in the temp dir; a full disk leaves a truncated target behind. This CheckpointIO writes through
:func:`sarexp.io.atomic.write_file_atomically` instead.
"""

from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.fabric.utilities.types import _PATH

from sarexp.io.atomic import write_file_atomically


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning CheckpointIO for every checkpoint the trainer writes (best, last, periodic, preemption)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        write_file_atomically(Path(path), lambda handle: torch.save(checkpoint, handle))
