"""The S4D Vandermonde sum as a pykeops reduction.

pykeops generates a fused kernel that reduces over the state modes, evaluating each exp(z·l) where it is
needed and deriving the backward reduction symbolically, so nothing of size modes × length is stored.
The torch path of :mod:`sarexp.models.s4d` (a blocked product with ~2√L exponentials per mode) is faster
on CPU (benchmarks/s4d_kernel.py); the keops path is there for GPUs and very long lines.

pykeops is optional at run time: :func:`keops_available` probes one compile (forward and backward) and,
on any failure, warns once and reports ``False`` so callers use the torch path instead.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable

import torch

# K[h, l] = Σ_n Re(c_n · exp(z_n · l)) in real arithmetic, with the mode packed as p = (Re z, Im z, Re c, Im c).
# Packing the four per-mode values into one variable makes the backward pass a single reduction
# (one compile) instead of one reduction per input.
_FORMULA = "Exp(l * Elem(p, 0)) * (Elem(p, 2) * Cos(l * Elem(p, 1)) - Elem(p, 3) * Sin(l * Elem(p, 1)))"
_ALIASES = ["l = Vi(1)", "p = Vj(4)"]
_PROBE_SHAPE = (2, 3)  # (channels, modes) of the tiny compile probe: any small size compiles the same code


@functools.cache
def _reduction() -> Callable[..., torch.Tensor]:
    """Build the Genred object once; pykeops compiles it lazily per dtype and caches that on disk."""
    from pykeops.torch import Genred

    return Genred(_FORMULA, _ALIASES, reduction_op="Sum", axis=1)


def vandermonde_keops(log_z: torch.Tensor, coeff: torch.Tensor, length: int) -> torch.Tensor:
    """Return ``2 · Re(Σ_n coeff[h, n] · exp(log_z[h, n] · l))`` for l in [0, length) as (H, length).

    ``log_z`` and ``coeff`` are complex (H, N/2); the factor 2 adds the conjugate partner of each mode.
    Channels are a keops batch dimension, positions the i-axis and modes the reduced j-axis.
    """
    params = torch.stack([log_z.real, log_z.imag, coeff.real, coeff.imag], dim=-1)
    positions = torch.arange(length, dtype=params.dtype, device=params.device).view(1, length, 1)
    return 2 * _reduction()(positions, params).squeeze(-1)


def _probe() -> None:
    """Compile and run the forward and backward reductions on a tiny float32 input; raise on any failure."""
    log_z = torch.complex(-torch.rand(_PROBE_SHAPE), torch.rand(_PROBE_SHAPE)).requires_grad_()
    coeff = torch.randn(_PROBE_SHAPE, dtype=torch.complex64)
    kernel = vandermonde_keops(log_z, coeff, length=_PROBE_SHAPE[1])
    (grad,) = torch.autograd.grad(kernel.sum(), [log_z])
    if not (torch.isfinite(kernel).all() and torch.isfinite(torch.view_as_real(grad)).all()):
        raise RuntimeError("the probe reduction returned non-finite values")


@functools.cache
def keops_unavailable_reason() -> str | None:
    """Return why pykeops cannot be used here, or None when it works; warns once per process on failure.

    The result is cached so the compile probe and the warning happen once, not per forward call.
    Any exception counts (missing package, no compiler, failed compile), since each means "use torch".
    """
    try:
        _probe()
    except Exception as error:  # noqa: BLE001 - every failure mode leads to the same fallback
        reason = f"{type(error).__name__}: {error}"
        warnings.warn(
            f"pykeops is unavailable ({reason}); S4D kernels fall back to the torch Vandermonde path.",
            RuntimeWarning,
            stacklevel=2,
        )
        return reason
    return None


def keops_available() -> bool:
    """Whether the pykeops Vandermonde reduction compiles and runs on this machine (cached)."""
    return keops_unavailable_reason() is None
