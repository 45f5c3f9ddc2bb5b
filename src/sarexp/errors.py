"""User-facing errors.

Anything raised as a ``SarexpError`` is a problem with the user's input (config, data, paths), not a bug:
the entry point prints its message as one line and exits non-zero instead of showing a traceback.
"""


class SarexpError(Exception):
    """Base class for errors the user can fix; the message must name the key, file or path and the fix."""


class ConfigError(SarexpError, ValueError):
    """A configuration value is missing, misspelled, of the wrong type or out of range (also a ValueError,
    so code that validates its arguments can be used outside sarexp's configs too)."""


class DataError(SarexpError):
    """A dataset path is missing, empty or unreadable."""


class TrainingError(SarexpError):
    """Training diverged (non-finite loss): usually a learning rate too high for the data."""


class StorageError(SarexpError):
    """An output (checkpoint, predictions, samples) could not be written: disk full, quota, permissions.
    The previous version of the file is left intact."""


class Interrupted(SarexpError):
    """Training was stopped by a signal (Ctrl-C, SIGTERM) after saving a checkpoint it can resume from."""


def first_line(error: BaseException) -> str:
    """The first non-empty line of an exception's message, else its type name: a library's multi-line message
    quoted inside a one-line SarexpError."""
    return next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)
