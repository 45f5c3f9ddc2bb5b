"""What a dataset generator left in a directory, for tests that check it left no staging directory behind."""

from pathlib import Path


def published(directory: Path) -> list[str]:
    """The sorted names in `directory`, without the generation lock files (`.<root>.lock`), which stay on purpose:
    unlinking a lock file another process may be waiting on would let two processes generate at once."""
    return sorted(path.name for path in directory.iterdir() if not path.name.endswith(".lock"))
