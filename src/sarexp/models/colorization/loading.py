"""Reading one network of a sarexp colorization checkpoint without the config that trained it.

A colorization stage's Lightning checkpoint keeps, under ``exports/<tower>``, plain values (strings, numbers,
dicts) that rebuild its network: the text config and tokenizer, or the VAE config, plus the prefix of that
network's tensors in ``state_dict``. Everything is read with ``torch.load(weights_only=True)``.
"""

from pathlib import Path
from typing import Any

import torch

from sarexp.io.checkpoint_io import load_weights_file
from sarexp.errors import ConfigError, first_line


def read_export(file: Path, key: str, marker: str, stage: str) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(the export holding ``marker``, that network's state dict with its prefix removed); ConfigError naming
    ``key`` and the file when it is unreadable or not a checkpoint of ``stage``."""
    blob = load_weights_file(file, key)
    exports = blob.get("exports") if isinstance(blob, dict) else None
    found = [value for value in (exports or {}).values() if isinstance(value, dict) and marker in value]
    if len(found) != 1 or not isinstance(blob.get("state_dict"), dict):
        raise ConfigError(f"{key}={file}: not a {stage} checkpoint (no exported '{marker}')")
    prefix = found[0]["state_dict_prefix"]
    state = {name[len(prefix):]: value for name, value in blob["state_dict"].items() if name.startswith(prefix)}
    return found[0], state


def load_weights(module: torch.nn.Module, state: dict[str, torch.Tensor], key: str, file: Path) -> None:
    """Strict state-dict loading; a mismatch is a ConfigError naming the file."""
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise ConfigError(f"{key}={file}: weights do not fit the stored config ({first_line(error)})") from None
