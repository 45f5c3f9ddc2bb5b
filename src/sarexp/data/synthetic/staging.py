"""Write a synthetic dataset so that its root is either untouched or complete, even when processes race.

Processes that start on the same empty root at once take turns on a lock file beside it: the first
generates, the others wait and then find the complete dataset (and generate nothing).
"""

import errno
import fcntl
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sarexp.errors import DataError

log = logging.getLogger(__name__)


def is_missing_or_empty(path: Path) -> bool:
    """True when ``path`` does not exist or is an empty directory (a dataset may be written there)."""
    return not path.exists() or (path.is_dir() and not any(path.iterdir()))


def write_atomically(root: Path, fill: Callable[[Path], None]) -> Path:
    """Call ``fill(staging)`` on a hidden sibling directory of ``root``, then rename it to ``root``.

    A non-empty ``root`` is never overwritten: FileExistsError, also when another process published its
    (complete) dataset first, while this one waited for the lock.
    """
    if root.exists() and not root.is_dir():
        raise DataError(f"{root}: exists and is not a directory; point data.root at a directory")
    if not is_missing_or_empty(root):
        raise FileExistsError(errno.EEXIST, "dataset directory is not empty", str(root))
    root.parent.mkdir(parents=True, exist_ok=True)
    with generation_lock(root):
        if not is_missing_or_empty(root):
            raise FileExistsError(errno.EEXIST, "another process generated the dataset", str(root))
        return _stage_and_publish(root, fill)


_HELD: set[Path] = set()  # roots whose lock this process holds: flock on a second descriptor would wait forever


@contextmanager
def generation_lock(root: Path) -> Iterator[None]:
    """Exclusive lock on ``.<root name>.lock`` beside ``root`` (released by the OS if the holder dies).

    Re-entrant within a process: a generator that, while holding it, publishes the same root again (as a
    callback or a test may) goes on, and the rename race in ``_stage_and_publish`` decides, as between processes.
    """
    key = root.resolve()
    if key in _HELD:
        yield
        return
    with open(root.parent / f".{root.name}.lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for another process that is generating %s", root)
            fcntl.flock(handle, fcntl.LOCK_EX)
        _HELD.add(key)
        try:
            yield
        finally:
            _HELD.discard(key)
            fcntl.flock(handle, fcntl.LOCK_UN)


def _stage_and_publish(root: Path, fill: Callable[[Path], None]) -> Path:
    staging = root.parent / f".{root.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        fill(staging)
        os.rename(staging, root)
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        if error.errno in (errno.ENOTEMPTY, errno.EEXIST):
            raise FileExistsError(errno.EEXIST, "a dataset was written there concurrently", str(root)) from error
        raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return root
