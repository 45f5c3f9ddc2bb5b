"""The one way sarexp reads a checkpoint or weights file: never running code from it.

``torch.load(weights_only=True)`` unpickles tensors, plain containers and a short allow-list of types
only, so a file crafted to run code when unpickled (a downloaded ``.ckpt``, a stranger's ``.pth``) is
refused before anything runs; ``.safetensors`` files hold no code at all. Every entry point that takes a
path (``ckpt_path`` of train/eval/predict/sample/likelihood, ``task.extractor_checkpoint``,
``task.inception_weights``, ``model.pretrained``) reads through :func:`load_weights_file` or hands Lightning
``weights_only=True`` and wraps the call in :func:`refusals_as_config_errors`; both turn a refused,
truncated or corrupt file into one ``ConfigError`` line naming the key and the path.

torch is imported inside the functions: ``sarexp.run`` imports this module's users at start-up.
"""

import pickle
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from sarexp.errors import ConfigError

SAFETENSORS_SUFFIX = ".safetensors"


def allow_numpy_arrays() -> None:
    """Allow-list plain NumPy arrays (deliberately): the NumPy RNG state a resumable checkpoint stores is one.

    Unpickling an array calls NumPy's own reconstructor with a dtype; an object array would still need the
    globals of its objects, which stay refused. Idempotent.
    """
    import numpy as np
    import torch

    reconstruct = np.zeros(1).__reduce__()[0]
    dtype_classes = {type(np.dtype(code)) for code in "?bBhHiIlLqQefdgFDGUS"}
    torch.serialization.add_safe_globals([reconstruct, np.ndarray, np.dtype, *dtype_classes])


def refused_message(key: str, path: Path | str, culprit: str) -> str:
    """One line for a file that names Python globals beyond tensors and plain containers."""
    return (
        f"{key}={path}: refused to load: the file holds Python objects that could run code when unpickled "
        f"({culprit}); sarexp loads weights only: re-save it as a plain state dict (torch.save(model.state_dict(), "
        f"PATH)) or as .safetensors, from a source you trust"
    )


def _culprit(error: BaseException) -> str:
    """The line of torch's refusal that names the offending global."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return next((line for line in lines if "GLOBAL" in line), lines[0] if lines else type(error).__name__)


def refuse_unsafe_globals(path: Path, key: str) -> None:
    """Fail before anything is built when a zip checkpoint names globals weights-only loading would refuse.

    Reads only the archive's pickle opcodes (milliseconds, no tensors), so a bad file is reported before data
    generation or model construction; the load itself is weights-only as well.
    """
    if not zipfile.is_zipfile(path):
        return
    import torch

    allow_numpy_arrays()

    try:
        found = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except (RuntimeError, OSError, ValueError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile) as error:
        raise ConfigError(corrupt_message(key, path, error)) from None
    if found:
        raise ConfigError(refused_message(key, path, "it names " + ", ".join(sorted(found))))


def corrupt_message(key: str, path: Path | str, error: BaseException) -> str:
    first = next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)
    return (
        f"{key}={path}: not a readable PyTorch checkpoint or weights file (truncated or corrupt? {first}); "
        f"use another copy of the file"
    )


def is_refusal(error: BaseException) -> bool:
    """Whether `error` is torch's weights-only unpickler refusing a global (not a corrupt archive, whose bytes
    it reports as an "Unsupported operand")."""
    text = str(error)
    return isinstance(error, pickle.UnpicklingError) and "Weights only load failed" in text and "GLOBAL" in text


def load_weights_file(path: Path | str, key: str) -> Any:
    """The contents of a ``.ckpt``/``.pt``/``.pth`` (weights-only unpickling) or ``.safetensors`` file, on CPU."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"{key}={path}: no such file; pass the path of a checkpoint or weights file")
    if file.suffix == SAFETENSORS_SUFFIX:
        return _load_safetensors(file, key)
    refuse_unsafe_globals(file, key)
    import torch

    allow_numpy_arrays()

    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if is_refusal(error):
            raise ConfigError(refused_message(key, path, _culprit(error))) from None
        raise ConfigError(corrupt_message(key, path, error)) from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, AttributeError, KeyError) as error:
        raise ConfigError(corrupt_message(key, path, error)) from None


def _load_safetensors(file: Path, key: str) -> dict[str, Any]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(file), device="cpu")
    except (SafetensorError, OSError, ValueError) as error:
        raise ConfigError(corrupt_message(key, file, error)) from None


@contextmanager
def refusals_as_config_errors(key: str, path: Path | str | None) -> Iterator[None]:
    """Wrap a Lightning call given ``ckpt_path=path, weights_only=True``: its unpickling failures become one line."""
    if path is not None:
        allow_numpy_arrays()
    try:
        yield
    except pickle.UnpicklingError as error:
        if path is None:
            raise
        if is_refusal(error):
            raise ConfigError(refused_message(key, path, _culprit(error))) from None
        raise ConfigError(corrupt_message(key, path, error)) from None
    except (EOFError, zipfile.BadZipFile) as error:
        if path is None:
            raise
        raise ConfigError(corrupt_message(key, path, error)) from None
