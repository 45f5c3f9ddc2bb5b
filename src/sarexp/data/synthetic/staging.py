"""Write a synthetic dataset so that its root is either untouched or complete, even when processes race."""

import errno
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from sarexp.errors import DataError


def is_missing_or_empty(path: Path) -> bool:
    """True when ``path`` does not exist or is an empty directory (a dataset may be written there)."""
    return not path.exists() or (path.is_dir() and not any(path.iterdir()))


def write_atomically(root: Path, fill: Callable[[Path], None]) -> Path:
    """Call ``fill(staging)`` on a hidden sibling directory of ``root``, then rename it to ``root``.

    A non-empty ``root`` is never overwritten: FileExistsError, also when another process published its
    (complete) dataset first.
    """
    if root.exists() and not root.is_dir():
        raise DataError(f"{root}: exists and is not a directory; point data.root at a directory")
    if not is_missing_or_empty(root):
        raise FileExistsError(errno.EEXIST, "dataset directory is not empty", str(root))
    root.parent.mkdir(parents=True, exist_ok=True)
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
