"""Find code that would break on a GPU while running on the CPU: every tensor is tagged with where it would live
if the module and its inputs were on CUDA, and an operation that would mix devices there is reported.

Why tags and not another device:
- `torch.set_default_device("meta")` does move device-less factory calls off the CPU, but then every legitimate
  host tensor breaks too: optimizers keep their step counters as CPU scalars on purpose, Lightning and
  torchmetrics create CPU scalars, and meta tensors have no values, so `.item()`, the Sinkhorn loop's ε schedule
  and the non-finite checks (data-dependent control flow) fail. Every system would be "caught".
- `FakeTensorMode` can pretend tensors are on CUDA without one, but it refuses data-dependent operations for the
  same reason, so no real training step runs under it.
- Tagging keeps the computation on the CPU, exact, and applies CUDA's rule to the tags: an operation whose
  inputs include a host tensor with at least one dimension and a device tensor raises on CUDA ("Expected all
  tensors to be on the same device"); a 0-dim host tensor mixes freely (CUDA allows CPU scalars), and indexing a
  device tensor with host indices or copying between devices is allowed.

Host (would stay on the CPU): factory calls without `device=` (`torch.zeros(n)`, `torch.randn(shape)`,
`torch.arange(n)`, `torch.tensor([...])`) or with `device="cpu"`; `torch.from_numpy`; `.cpu()`, `.to("cpu")`;
plain tensor attributes of the modules (not parameters or buffers: `.to(device)` leaves them behind); results of
operations on host tensors only. Device: everything else (parameters, buffers, inputs moved by Lightning,
`.to(x.device)`, `device=x.device`, results of operations on device tensors). Limits: `torch.device("cpu")`
objects count as device (indistinguishable from `x.device` on a CPU); a CPU `torch.Generator` passed with a CUDA
device is not flagged; operations inside C++ (autograd's backward) are not seen, but they follow the forward's
devices.
"""

import linecache
import sys
import weakref
from typing import Any, Iterable

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

FACTORIES = {
    torch.zeros, torch.ones, torch.empty, torch.full, torch.rand, torch.randn, torch.randint, torch.randperm,
    torch.arange, torch.linspace, torch.logspace, torch.eye, torch.empty_strided, torch.scalar_tensor,
    torch.tensor, torch.as_tensor, torch.asarray, torch.tril_indices, torch.triu_indices,
    torch.hann_window, torch.hamming_window, torch.blackman_window, torch.kaiser_window, torch.bartlett_window,
}
FROM_DATA = {torch.tensor, torch.as_tensor, torch.asarray}  # a tensor argument keeps its own place
MOVES = {"cpu", "cuda", "to"}
ALLOWED_MIXES = {"__getitem__", "__setitem__", "copy_", "to", "__index__", "index_put_", "__len__", "__iter__",
                 "__set__", "_has_compatible_shallow_copy_type"}  # (re)placing a tensor's data moves it


class DeviceProvenance(TorchFunctionMode):
    """Use as a context manager around training/validation/sampling; `violations` lists each would-be CUDA
    error with the torch function and the first frame outside torch and Lightning."""

    def __init__(self, modules: Iterable[nn.Module] = ()) -> None:
        super().__init__()
        self._host: "weakref.WeakValueDictionary[int, torch.Tensor]" = weakref.WeakValueDictionary()
        self._origin: dict[int, str] = {}  # where each host tensor was made (valid while is_host says so)
        self.violations: list[str] = []
        for module in modules:
            for tensor in stray_tensors(module):
                self._mark(tensor, host=True, origin=f"a tensor attribute of {type(module).__name__}")

    def is_host(self, tensor: torch.Tensor) -> bool:
        return self._host.get(id(tensor)) is tensor

    def _mark(self, tensor: torch.Tensor, host: bool, origin: str = "") -> None:
        if host:
            self._host[id(tensor)] = tensor
            self._origin[id(tensor)] = origin or _user_frame()
            if len(self._origin) > 4 * len(self._host) + 10_000:
                self._origin = {key: value for key, value in self._origin.items() if key in self._host}
        else:
            self._host.pop(id(tensor), None)

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        inputs = [x for x in tree_flatten((args, kwargs))[0] if isinstance(x, torch.Tensor)]
        host = self._output_is_host(func, args, kwargs, inputs)
        if getattr(func, "__name__", "") in MOVES and result is args[0] and self.is_host(result) != host:
            result = result.clone()  # a move between devices copies on a GPU; on the CPU it returned its input
        for output in tree_flatten(result)[0]:
            if isinstance(output, torch.Tensor) and not any(output is tensor for tensor in inputs):
                self._mark(output, host)  # an op returning an input (in place, a no-op) leaves its tag alone
        return result

    def _output_is_host(self, func: Any, args: tuple, kwargs: dict, inputs: list[torch.Tensor]) -> bool:
        name = getattr(func, "__name__", "")
        if func in FACTORIES and not (func in FROM_DATA and inputs):
            return _names_host(kwargs.get("device"))
        if name == "from_numpy" or name == "cpu":
            return True
        if name == "cuda":
            return False
        if name == "to":
            return self._to_is_host(args, kwargs)
        if name.endswith("_like") or name.startswith("new_"):
            if "device" in kwargs:
                return _names_host(kwargs["device"])
            return bool(inputs) and self.is_host(inputs[0])
        host = [t for t in inputs if self.is_host(t)]
        device = [t for t in inputs if not self.is_host(t)]
        if host and device:
            self._check_mix(name, args, host, device)
        return bool(host) and not device

    def _to_is_host(self, args: tuple, kwargs: dict) -> bool:
        source = args[0]
        targets = [*args[1:], kwargs.get("device"), kwargs.get("other")]
        for target in targets:
            if isinstance(target, torch.Tensor):
                return self.is_host(target)
            if isinstance(target, (str, torch.device, int)):
                return _names_host(target) if isinstance(target, str) else False
        return self.is_host(source)

    def _check_mix(self, name: str, args: tuple, host: list[torch.Tensor], device: list[torch.Tensor]) -> None:
        if name == "__getitem__" and args and self.is_host(args[0]):
            message = "a host tensor indexed with device indices"
        elif name in ALLOWED_MIXES or all(t.dim() == 0 for t in host):
            return
        else:
            made = "; ".join(f"{tuple(t.shape)} made at {self._origin.get(id(t), '?')}" for t in host if t.dim())
            message = f"host tensor(s) with device tensor(s) [{made}]"
        self.violations.append(f"{name}: {message} at {_user_frame()}")


def _names_host(device: Any) -> bool:
    """A factory's `device=`: absent or "cpu" means the host; a torch.device object is taken for `x.device`."""
    return device is None or (isinstance(device, str) and device.split(":")[0] == "cpu")


def stray_tensors(module: nn.Module) -> list[torch.Tensor]:
    """Tensors held by modules (or plain objects they hold) outside parameters and buffers: `.to()` skips them.
    torchmetrics states are exempt (Metric moves them itself)."""
    found = []
    for submodule in module.modules():
        moved = set(getattr(submodule, "_defaults", {}))  # torchmetrics.Metric states
        for name, value in vars(submodule).items():
            if name.startswith("_") or name in moved or isinstance(value, nn.Module):
                continue
            found += _tensors_in(value, depth=2)
    return found


def _tensors_in(value: Any, depth: int) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if depth == 0 or isinstance(value, (nn.Module, type, str, bytes)):
        return []
    if isinstance(value, (list, tuple)):
        return [t for item in value for t in _tensors_in(item, depth - 1)]
    if isinstance(value, dict):
        return [t for item in value.values() for t in _tensors_in(item, depth - 1)]
    if hasattr(value, "__dict__") and type(value).__module__.startswith("sarexp"):
        return [t for item in vars(value).values() for t in _tensors_in(item, depth - 1)]
    return []


def _user_frame() -> str:
    """file:line (code) of the innermost caller outside torch, Lightning and this module."""
    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_code.co_filename
        if "/torch/" not in name and "/lightning/" not in name and name != __file__:
            return f"{name}:{frame.f_lineno} ({linecache.getline(name, frame.f_lineno).strip()})"
        frame = frame.f_back
    return "?"
