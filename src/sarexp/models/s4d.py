"""S4D diagonal state-space layers and the SSM4SAR azimuth-focusing network.

SAR azimuth focusing maps a range-compressed I/Q line to a focused one; it is (close to) a long linear
filter along azimuth, so a stack of S4D convolutions is a natural fit: each channel is a linear
time-invariant system x' = A x + B u, y = C x + D u with diagonal complex A, evaluated as one long
convolution whose kernel is a Vandermonde product (Gu et al., "On the Parameterization and Initialization
of Diagonal State Space Models", 2022).

Conventions:
- Tensors are channel-first, (batch, channels, length), so the sequence axis is contiguous for the FFT.
- A has N/2 modes per channel; each stands for a conjugate pair, hence the ``2 · Re`` in the kernel.
- A, dt and B carry ``_optim = {"lr": ssm_lr, "weight_decay": 0.0}`` (the S4 convention); the optimizer
  builder gives them their own group. C and D are ordinary parameters.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import nn

from sarexp.errors import ConfigError
from sarexp.models.keops_vandermonde import keops_available, vandermonde_keops

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "leakyrelu": nn.LeakyReLU,
    "gelu": nn.GELU,
    "relu": nn.ReLU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
}
INITS = ("lin", "inv")
KERNEL_BACKENDS = ("torch", "keops")
INPUT_CHANNELS = 3  # I, Q, normalised azimuth position
IQ_CHANNELS = 2
A_REAL_INIT = -0.5  # real part of every initial eigenvalue, for both S4D-Lin and S4D-Inv


def _check_choice(what: str, value: str, valid: tuple[str, ...]) -> None:
    """Reject a config string early, naming the accepted values, instead of failing deep inside forward."""
    if value not in valid:
        raise ConfigError(f"unknown {what} {value!r}; expected one of {', '.join(valid)}")


def make_activation(name: str) -> nn.Module:
    """Build the activation named in the config (``leakyrelu`` is the SSM4SAR seed default)."""
    _check_choice("activation", name, tuple(ACTIVATIONS))
    return ACTIVATIONS[name]()


def initial_imag(init: str, state_size: int) -> torch.Tensor:
    """Imaginary parts of the N/2 initial eigenvalues (S4D paper, section 4).

    ``lin`` (S4D-Lin): π n, frequencies evenly spaced like a Fourier basis.
    ``inv`` (S4D-Inv): (N/π)(N/(2n+1) − 1), the asymptotics of the HiPPO-LegS spectrum.
    """
    _check_choice("init", init, INITS)
    n = torch.arange(state_size // 2, dtype=torch.float64)
    if init == "lin":
        return math.pi * n
    return state_size / math.pi * (state_size / (2 * n + 1) - 1)


def log_uniform(size: int, low: float, high: float) -> torch.Tensor:
    """Log of ``size`` samples drawn log-uniformly in [low, high]: timescales spread over decades."""
    return torch.rand(size, dtype=torch.float64) * (math.log(high) - math.log(low)) + math.log(low)


def ssm_parameter(value: torch.Tensor, ssm_lr: float) -> nn.Parameter:
    """Wrap a tensor as a Parameter tagged for the SSM optimizer group (own lr, no weight decay).

    These are log- or frequency-parameterised, so decay towards 0 is not a prior of "small weights":
    it drags dt towards 1 and Re(A) towards −1 and collapses the frequencies A_imag, undoing the init.
    """
    parameter = nn.Parameter(value)
    parameter._optim = {"lr": ssm_lr, "weight_decay": 0.0}
    return parameter


def vandermonde_torch(log_z: torch.Tensor, coeff: torch.Tensor, length: int) -> torch.Tensor:
    """Return ``2 · Re(Σ_n coeff[h, n] · exp(log_z[h, n] · l))`` for l in [0, length) as (H, length).

    The Vandermonde matrix is factored in blocks: with l = qP + r (P ≈ √L), z^l = z^(qP) · z^r, so
    K[h, qP + r] = 2 Re Σ_n (coeff_n z_n^(qP)) z_n^r is a batched (Q × N/2) @ (N/2 × P) matrix product.
    That needs only H·N/2·2√L complex exponentials instead of H·N/2·L and never stores an (H, N/2, L)
    tensor, which keeps long kernels fast and small on CPU. Each power is still exp(l · log z) up to
    one extra rounding, not a cumulative product, so errors do not grow along the sequence.
    """
    block = math.isqrt(length - 1) + 1  # ceil(sqrt(length)) for length >= 1
    blocks = -(-length // block)
    real_dtype = log_z.real.dtype
    inner = torch.arange(block, dtype=real_dtype, device=log_z.device)
    outer = torch.arange(blocks, dtype=real_dtype, device=log_z.device) * block
    rows = coeff.unsqueeze(-2) * torch.exp(outer.unsqueeze(-1) * log_z.unsqueeze(-2))  # (H, Q, N/2)
    cols = torch.exp(log_z.unsqueeze(-1) * inner)  # (H, N/2, P)
    real_part = rows.real @ cols.real - rows.imag @ cols.imag  # Re(rows @ cols), (H, Q, P)
    return 2 * real_part.flatten(-2)[..., :length]


class DiscreteSSM(NamedTuple):
    """ZOH-discretised diagonal SSM per channel: x_k = exp(log_dA) x_{k-1} + dB u_k, y_k = 2 Re(C x_k)."""

    log_dA: torch.Tensor
    dB: torch.Tensor
    C: torch.Tensor


class S4DKernel(nn.Module):
    """Convolution kernels of ``channels`` independent diagonal SSMs with ``state_size`` (N) states each.

    A = −exp(log_neg_A_real) + i·A_imag keeps Re(A) < 0 (stable) for any parameter value.
    B and C are complex, stored as real (…, 2) tensors so optimizers and DDP see real parameters.
    """

    def __init__(
        self,
        channels: int,
        state_size: int = 64,
        init: str = "lin",
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        ssm_lr: float = 1e-3,
        backend: str = "torch",
    ) -> None:
        super().__init__()
        if state_size < 2 or state_size % 2:
            raise ConfigError(f"state_size must be even and >= 2 (conjugate pairs), got {state_size}")
        if not 0 < dt_min <= dt_max:
            raise ConfigError(f"need 0 < dt_min <= dt_max, got dt_min={dt_min}, dt_max={dt_max}")
        _check_choice("kernel_backend", backend, KERNEL_BACKENDS)
        self.backend = backend
        modes = state_size // 2
        dtype = torch.get_default_dtype()
        a_real = torch.full((channels, modes), -A_REAL_INIT, dtype=dtype)
        a_imag = initial_imag(init, state_size).to(dtype).expand(channels, modes).clone()
        b = torch.view_as_real(torch.ones(channels, modes, dtype=torch.complex64)).to(dtype)
        c = torch.view_as_real(torch.randn(channels, modes, dtype=torch.complex64)).to(dtype)
        self.log_neg_A_real = ssm_parameter(torch.log(a_real), ssm_lr)
        self.A_imag = ssm_parameter(a_imag, ssm_lr)
        self.log_dt = ssm_parameter(log_uniform(channels, dt_min, dt_max).to(dtype), ssm_lr)
        self.B = ssm_parameter(b, ssm_lr)
        self.C = nn.Parameter(c)

    def discretize(self) -> DiscreteSSM:
        """Zero-order hold: dA = exp(dt·A), dB = (exp(dt·A) − 1)/A · B (expm1 keeps small dt·A accurate)."""
        A = torch.complex(-torch.exp(self.log_neg_A_real), self.A_imag)
        dtA = A * torch.exp(self.log_dt).unsqueeze(-1)
        dB = torch.expm1(dtA) / A * torch.view_as_complex(self.B)
        return DiscreteSSM(log_dA=dtA, dB=dB, C=torch.view_as_complex(self.C))

    def forward(self, length: int) -> torch.Tensor:
        """Real kernel K[h, l] = 2 Re(Σ_n C·dB·dA^l) of shape (channels, length)."""
        ssm = self.discretize()
        vandermonde = vandermonde_keops if self._use_keops() else vandermonde_torch
        return vandermonde(ssm.log_dA, ssm.C * ssm.dB, length)

    def _use_keops(self) -> bool:
        """keops when asked for and working here; otherwise torch (the probe has warned once)."""
        return self.backend == "keops" and keops_available()


def two_sided_filter(causal: torch.Tensor, anticausal: torch.Tensor | None) -> torch.Tensor:
    """Lay out (H, L) kernels as one (H, 2L) circular filter for an FFT of length 2L.

    The causal kernel fills [0, L) and the second half stays zero, so the circular convolution of a
    length-L input equals the linear one (no wrap-around). The anti-causal kernel, reversed, fills
    [L, 2L): index 2L−1−m holds anticausal[m] and so multiplies u[l+1+m] (strictly future inputs).
    """
    tail = torch.zeros_like(causal) if anticausal is None else anticausal.flip(-1)
    return torch.cat([causal, tail], dim=-1)


def fft_convolve(u: torch.Tensor, filt: torch.Tensor) -> torch.Tensor:
    """Circular convolution of u (B, H, L) with filt (H, n) over length n, cropped to the first L outputs.

    With n = 2L (``two_sided_filter``) this is the exact linear convolution; with n = L it wraps.
    """
    n = filt.shape[-1]
    spectrum = torch.fft.rfft(u, n=n) * torch.fft.rfft(filt, n=n)
    return torch.fft.irfft(spectrum, n=n)[..., : u.shape[-1]]


class S4DLayer(nn.Module):
    """(B, H, L) → (B, H, L): S4D convolution + D skip, activation, dropout, then 1×1 conv H→2H + GLU.

    The GLU output mixing (as in S4) is the only place channels interact; its gate lets each position
    choose how much of the filtered signal passes. ``bidirectional`` adds a second, independent kernel
    applied to future inputs, because a focused SAR pixel depends on echoes before and after it.
    Dropout is element-wise (``nn.Dropout``) on the activated SSM output, before the mixing.
    """

    def __init__(
        self,
        d_model: int,
        state_size: int = 64,
        bidirectional: bool = True,
        activation: str = "gelu",
        dropout: float = 0.0,
        init: str = "lin",
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        ssm_lr: float = 1e-3,
        kernel_backend: str = "torch",
    ) -> None:
        super().__init__()
        self.bidirectional = bidirectional
        directions = 2 if bidirectional else 1
        self.kernel = S4DKernel(
            d_model * directions, state_size, init, dt_min, dt_max, ssm_lr, kernel_backend
        )
        self.D = nn.Parameter(torch.randn(d_model))
        self.activation = make_activation(activation)
        self.dropout = nn.Dropout(dropout)
        self.output_linear = nn.Sequential(nn.Conv1d(d_model, 2 * d_model, kernel_size=1), nn.GLU(dim=1))

    def conv_filter(self, length: int) -> torch.Tensor:
        """The (H, 2·length) FFT filter: causal kernel, plus the anti-causal one when bidirectional."""
        kernels = self.kernel(length)
        if self.bidirectional:
            causal, anticausal = kernels.chunk(2, dim=0)
            return two_sided_filter(causal, anticausal)
        return two_sided_filter(kernels, None)

    def ssm(self, u: torch.Tensor) -> torch.Tensor:
        """The linear SSM part alone, y = K * u + D·u, before activation and mixing."""
        return fft_convolve(u, self.conv_filter(u.shape[-1])) + self.D.unsqueeze(-1) * u

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self.output_linear(self.dropout(self.activation(self.ssm(u))))


class PreNormBlock(nn.Module):
    """x + S4DLayer(LayerNorm(x)) over channels.

    Pre-norm keeps the residual path an identity from the lift to the output layer: focusing is
    essentially linear, and a per-position normalisation on the main path would distort amplitudes.
    """

    def __init__(self, d_model: int, layer: S4DLayer) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        normed = self.norm(x.transpose(-1, -2)).transpose(-1, -2)
        return x + self.layer(normed)


class SSM4SARNet(nn.Module):
    """(B, 3, L) [I, Q, normalised azimuth position] → (B, 2, L) focused [I, Q]; any L.

    Position embedding (3→2, the seed's mixing) → lift 2→d_model → ``num_layers`` pre-norm residual
    S4D blocks → linear d_model→2. Position-wise linear maps are 1×1 convolutions on the channel-first
    tensor, which equal nn.Linear per position without transposing the sequence. There is no final
    norm, so the output keeps the input's global amplitude scale (the target shares it).
    """

    def __init__(
        self,
        d_model: int = 32,
        num_layers: int = 4,
        hidden_state_size: int = 8,
        bidirectional: bool = True,
        activation: str = "leakyrelu",
        dropout: float = 0.0,
        init: str = "lin",
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        ssm_lr: float = 1e-3,
        kernel_backend: str = "torch",
    ) -> None:
        super().__init__()
        self.position_embedding = nn.Conv1d(INPUT_CHANNELS, IQ_CHANNELS, kernel_size=1)
        self.lift = nn.Conv1d(IQ_CHANNELS, d_model, kernel_size=1)
        self.blocks = nn.ModuleList(
            PreNormBlock(
                d_model,
                S4DLayer(
                    d_model,
                    state_size=hidden_state_size,
                    bidirectional=bidirectional,
                    activation=activation,
                    dropout=dropout,
                    init=init,
                    dt_min=dt_min,
                    dt_max=dt_max,
                    ssm_lr=ssm_lr,
                    kernel_backend=kernel_backend,
                ),
            )
            for _ in range(num_layers)
        )
        self.output_layer = nn.Conv1d(d_model, IQ_CHANNELS, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[1] != INPUT_CHANNELS:
            raise ValueError(f"SSM4SARNet expects (B, 3, L) [I, Q, position], got {tuple(x.shape)}")
        h = self.lift(self.position_embedding(x))
        for block in self.blocks:
            h = block(h)
        return self.output_layer(h)
