"""Files that are either the old version or the new one, never half a file.

A file is written to a hidden temporary file beside the target (same file system), flushed to disk, and
renamed over the target; a failed write removes the temporary file and leaves the previous target as it
was. Standard library only: every floor of sarexp writes through it (checkpoints, metrics, outputs).
"""

import errno
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

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
