"""Checkpoint files that are either the old version or the new one, never half a file.

Lightning's own writer serialises to memory, then copies the bytes through an fsspec "transaction" that
stages them in the temp dir; a full disk leaves a truncated target behind. Here the checkpoint is written to
a hidden temporary file beside the target (same file system), flushed to disk, and renamed over the
target; a failed write removes the temporary file and leaves the previous target as it was.
"""

import errno
import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.fabric.utilities.types import _PATH

from sarexp.errors import StorageError

_NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def write_file_atomically(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write(handle)`` on a temporary file beside ``path``, fsync it, then rename it to ``path``.

    OSError while writing (disk full, quota) becomes a one-line StorageError; ``path`` is untouched.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile("wb", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False)
    temporary = Path(handle.name)
    try:
        with handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        temporary.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise StorageError(describe_write_error(path, error)) from None
        raise
    _sync_directory(path.parent)


def describe_write_error(path: Path, error: OSError) -> str:
    """One line naming the file and the reason (disk full, or the system's message)."""
    reason = "disk full" if error.errno in _NO_SPACE else (error.strerror or str(error))
    return f"could not write {path} ({reason}); the previous file is intact: free space or fix permissions, then rerun"


def _sync_directory(directory: Path) -> None:
    """Persist the rename itself (POSIX); a no-op where directories cannot be opened."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning CheckpointIO for every checkpoint the trainer writes (best, last, periodic, preemption)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        write_file_atomically(Path(path), lambda handle: torch.save(checkpoint, handle))
