"""The finished blocks of a scene prediction, on disk, so a killed prediction continues where it stopped.

``<output dir>/.<scene>.partial/`` holds ``manifest.json`` (what is being predicted: the input file's path, size
and modification time, the model checkpoint and every setting that changes the result) and one
``block_NNNNNN.npy`` per finished block (float32, NaN where there is no prediction), each written atomically
(temporary file, fsync, rename). Started again with the same command, a prediction whose manifest matches
skips the blocks already on disk; a different input, checkpoint or setting starts over. The outputs are
assembled from the blocks only when all are there, so a resumed run ends with the same file as an
uninterrupted one.
"""

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from sarexp.io.atomic import write_file_atomically

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"
EMPTY = "empty"  # marker content of a block without a single valid input pixel


def file_identity(path: Path) -> dict[str, Any]:
    """Path, size and modification time: a file replaced since the last run is noticed."""
    stat = path.stat()
    return {"path": str(path.resolve()), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}


class BlockStore:
    """Blocks of one scene under ``directory``, valid for the prediction described by ``manifest``."""

    def __init__(self, directory: Path, manifest: dict[str, Any]) -> None:
        self.directory = directory
        text = json.dumps(manifest, sort_keys=True, default=str)
        existing = directory / MANIFEST
        if existing.is_file() and existing.read_text() == text:
            for stale in directory.glob(".*.tmp"):  # a write the kill interrupted
                stale.unlink(missing_ok=True)
            log.info("%s: continuing with %d finished block(s)", directory, len(list(directory.glob("block_*"))))
            return
        if directory.exists():
            log.warning("%s: partial prediction of other settings or another input; starting over", directory)
            shutil.rmtree(directory)
        directory.mkdir(parents=True)
        write_file_atomically(existing, lambda handle: handle.write(text.encode()))

    def _path(self, index: int, suffix: str) -> Path:
        return self.directory / f"block_{index:06d}.{suffix}"

    def done(self, index: int) -> bool:
        return self._path(index, "npy").is_file() or self._path(index, EMPTY).is_file()

    def save(self, index: int, values: np.ndarray | None) -> None:
        """Store a block's prediction (float32 (bands, h, w), NaN = none), or None for a block with no data."""
        if values is None:
            write_file_atomically(self._path(index, EMPTY), lambda handle: handle.write(b""))
            return
        array = np.ascontiguousarray(values, dtype=np.float32)
        write_file_atomically(self._path(index, "npy"), lambda handle: np.save(handle, array))

    def load(self, index: int) -> np.ndarray | None:
        """A stored block, memory-mapped (only the part that is used is read); None for an empty block."""
        path = self._path(index, "npy")
        return np.load(path, mmap_mode="r") if path.is_file() else None

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
