"""Turn Lightning's checkpoint-loading failures into one-line errors that name the file.

Lightning is always given ``weights_only=True`` (see :mod:`sarexp.io.checkpoint_io`); a file it refuses
becomes the same one line as for any other entry point.
"""

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sarexp.io.checkpoint_io import refusals_as_config_errors
from sarexp.errors import ConfigError
from sarexp.rundir import check_checkpoint_file


def required_checkpoint(ckpt_path: str | None, task: str) -> Path:
    if not ckpt_path:
        raise ConfigError(f"task={task} needs a checkpoint: pass ckpt_path=PATH (e.g. <run dir>/checkpoints/last.ckpt)")
    return check_checkpoint_file(Path(ckpt_path))


@contextmanager
def loading(checkpoint: Path | None, key: str = "ckpt_path") -> Iterator[None]:
    """Wrap a Lightning call that loads `checkpoint` (weights only); a refused or corrupt file, or a state dict
    that does not fit, becomes a ConfigError."""
    try:
        with refusals_as_config_errors(key, checkpoint):
            yield
    except RuntimeError as error:
        message = str(error)
        if checkpoint is None or "state_dict" not in message:
            raise
        first = message.strip().splitlines()[0]
        raise ConfigError(
            f"checkpoint {checkpoint} does not fit the configured model ({first}); use the model settings "
            f"of the run that wrote it (its .hydra/config.yaml)"
        ) from None
