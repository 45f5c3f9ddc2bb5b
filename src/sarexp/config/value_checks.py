"""Values that fit their type but not the world: a batch size of 0, a negative learning rate, an accelerator
this machine does not have, more devices than exist. Each becomes one ConfigError line naming the key,
before any data is read (instead of a ZeroDivisionError in a sampler, a silently diverging optimizer or a
Lightning traceback after data generation).

The hardware checks run where training will run: not on a login node that only submits SLURM jobs (the
job checks again on its node). torch and Lightning are imported only when an accelerator is named.
"""

import os
from collections.abc import Iterator
from typing import Any

from sarexp.errors import ConfigError

_KNOWN_ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")


def check_values(container: dict[str, Any]) -> None:
    """Raise ConfigError for the first out-of-range value of the resolved config (``hydra`` node excluded)."""
    for key, value in _leaves(container, ""):
        name = key.rsplit(".", 1)[-1]
        if name == "batch_size" or name.endswith("_batch_size"):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
                raise ConfigError(f"config key '{key}' = {value!r} must be a positive whole number of samples")
        elif name == "lr" or name.endswith("_lr"):
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
                raise ConfigError(f"config key '{key}' = {value!r}: a learning rate cannot be negative")
    trainer = container.get("trainer")
    if isinstance(trainer, dict) and _trains_here(container):
        _check_hardware(trainer)


def _leaves(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _leaves(child, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _leaves(child, f"{path}[{index}]")
    else:
        yield path, value


def _trains_here(container: dict[str, Any]) -> bool:
    """False on the submitting side of a SLURM launcher and for task=slurm_script (no training here)."""
    task_target = str((container.get("task") or {}).get("_target_", ""))
    if task_target.endswith("slurm_script"):
        return False
    launcher = container.get("launcher") or {}
    return not ("partition" in launcher and "SLURM_JOB_ID" not in os.environ)


def _check_hardware(trainer: dict[str, Any]) -> None:
    accelerator = trainer.get("accelerator", "auto")
    devices = trainer.get("devices", "auto")
    if not isinstance(accelerator, str):
        return  # an Accelerator object: Lightning checks it
    accelerator = accelerator.lower()
    if accelerator not in _KNOWN_ACCELERATORS:
        raise ConfigError(
            f"config key 'trainer.accelerator' = {accelerator!r} is not one of {', '.join(_KNOWN_ACCELERATORS)}"
        )
    requested = _requested_devices(devices)
    if accelerator == "cpu" or (accelerator == "auto" and (requested is None or not _has_cuda())):
        return  # CPU processes: any positive count runs
    available = _available_devices(accelerator)
    if available == 0:
        raise ConfigError(
            f"config key 'trainer.accelerator' = {accelerator!r}, but this machine has no {accelerator.upper()} "
            "device; use trainer.accelerator=cpu (or auto)"
        )
    if requested is not None and requested > available:
        raise ConfigError(
            f"config key 'trainer.devices' = {devices!r} asks for {requested} {accelerator} devices, but this machine "
            f"has {available}; lower trainer.devices (launcher.devices) or use -1 for all of them"
        )


def _requested_devices(devices: Any) -> int | None:
    """How many devices (or the highest index + 1) ``trainer.devices`` asks for; None for auto/-1."""
    if devices in (None, "auto", -1, "-1"):
        return None
    if isinstance(devices, bool):
        raise ConfigError(f"config key 'trainer.devices' = {devices!r} must be a count, a list of indices or auto")
    if isinstance(devices, int):
        if devices <= 0:
            raise ConfigError(f"config key 'trainer.devices' = {devices} must be positive, -1 (all) or auto")
        return devices
    if isinstance(devices, str):
        parts = [part for part in devices.split(",") if part.strip()]
        if devices.strip().lstrip("-").isdigit() and len(parts) == 1:
            return _requested_devices(int(devices))
        devices = [int(part) for part in parts] if all(part.strip().isdigit() for part in parts) else None
    if isinstance(devices, list) and devices and all(isinstance(index, int) and index >= 0 for index in devices):
        return max(devices) + 1
    raise ConfigError(f"config key 'trainer.devices' = {devices!r} must be a count, a list of indices or auto")


def _has_cuda() -> bool:
    """Whether ``auto`` means CUDA here (then a device count is checked against the GPUs)."""
    from lightning.pytorch.accelerators import CUDAAccelerator

    return CUDAAccelerator.is_available()


def _available_devices(accelerator: str) -> int:
    from lightning.pytorch.accelerators import CUDAAccelerator, MPSAccelerator, XLAAccelerator

    if accelerator in ("gpu", "cuda", "auto"):
        count = CUDAAccelerator.auto_device_count() if CUDAAccelerator.is_available() else 0
        if count == 0 and accelerator == "gpu" and MPSAccelerator.is_available():
            return 1
        return count
    if accelerator == "mps":
        return 1 if MPSAccelerator.is_available() else 0
    return XLAAccelerator.auto_device_count() if XLAAccelerator.is_available() else 0
