"""S4D layer and SSM4SARNet: the FFT path against a step-by-step recurrence, and the keops backend.

The reference recurrences below are written independently of the FFT code: they only share the
discretised (dA, dB, C), whose ZOH formula is itself checked against a matrix exponential.
"""

from __future__ import annotations

import sys
import warnings

import pytest
import torch

from sarexp.models import keops_vandermonde
from sarexp.models.keops_vandermonde import keops_available, keops_unavailable_reason
from sarexp.models.s4d import (
    ACTIVATIONS,
    DiscreteSSM,
    S4DKernel,
    S4DLayer,
    SSM4SARNet,
    fft_convolve,
)

F64 = torch.float64
SEED = 0
CHANNELS = 3
STATE_SIZE = 8
LENGTHS = (37, 200)  # 37: kernel block size does not divide L; 200: several blocks


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(SEED)


def make_layer(init: str = "lin", bidirectional: bool = False, **kwargs: object) -> S4DLayer:
    return S4DLayer(
        CHANNELS, state_size=STATE_SIZE, bidirectional=bidirectional, init=init, **kwargs
    ).to(F64)


def forward_recurrence(ssm: DiscreteSSM, u: torch.Tensor) -> torch.Tensor:
    """y_k = 2 Re(C x_k), x_k = dA x_{k-1} + dB u_k, x_{-1} = 0; u is (B, H, L)."""
    dA = torch.exp(ssm.log_dA)
    state = torch.zeros(u.shape[0], *dA.shape, dtype=dA.dtype)
    outputs = []
    for k in range(u.shape[-1]):
        state = dA * state + ssm.dB * u[..., k, None]
        outputs.append(2 * (ssm.C * state).sum(-1).real)
    return torch.stack(outputs, dim=-1)


def backward_recurrence(ssm: DiscreteSSM, u: torch.Tensor) -> torch.Tensor:
    """Anti-causal: s_l = dA s_{l+1} + dB u_{l+1}, s_{L-1} = 0, y_l = 2 Re(C s_l) (strictly future inputs)."""
    dA = torch.exp(ssm.log_dA)
    state = torch.zeros(u.shape[0], *dA.shape, dtype=dA.dtype)
    outputs = [2 * (ssm.C * state).sum(-1).real]
    for k in range(u.shape[-1] - 1, 0, -1):
        state = dA * state + ssm.dB * u[..., k, None]
        outputs.append(2 * (ssm.C * state).sum(-1).real)
    return torch.stack(outputs[::-1], dim=-1)


def split_directions(ssm: DiscreteSSM) -> tuple[DiscreteSSM, DiscreteSSM]:
    """The bidirectional kernel stacks causal channels first, anti-causal channels second."""
    halves = [tensor.chunk(2, dim=0) for tensor in ssm]
    return DiscreteSSM(*(h[0] for h in halves)), DiscreteSSM(*(h[1] for h in halves))


def test_zoh_matches_matrix_exponential() -> None:
    """dA, dB equal the blocks of expm(dt·[[A, B], [0, 0]]), the definition of zero-order hold."""
    kernel = S4DKernel(CHANNELS, STATE_SIZE, init="inv").to(F64)
    ssm = kernel.discretize()
    A = torch.complex(-torch.exp(kernel.log_neg_A_real), kernel.A_imag).detach()
    B = torch.view_as_complex(kernel.B).detach()
    dt = torch.exp(kernel.log_dt).detach()[:, None]
    block = torch.zeros(*A.shape, 2, 2, dtype=A.dtype)
    block[..., 0, 0] = A * dt
    block[..., 0, 1] = B * dt
    expm = torch.linalg.matrix_exp(block)
    torch.testing.assert_close(torch.exp(ssm.log_dA).detach(), expm[..., 0, 0], rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(ssm.dB.detach(), expm[..., 0, 1], rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("init", ["lin", "inv"])
def test_causal_fft_conv_equals_recurrence(init: str, length: int) -> None:
    """(a) kernel + 2L zero-padded FFT convolution + D skip == the naive recurrence, float64."""
    layer = make_layer(init)
    u = torch.randn(2, CHANNELS, length, dtype=F64)
    with torch.no_grad():
        expected = forward_recurrence(layer.kernel.discretize(), u) + layer.D[:, None] * u
        torch.testing.assert_close(layer.ssm(u), expected, rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("init", ["lin", "inv"])
def test_bidirectional_fft_conv_equals_two_recurrences(init: str) -> None:
    """(a, bidirectional) causal recurrence + anti-causal recurrence on the second kernel + D skip."""
    layer = make_layer(init, bidirectional=True)
    u = torch.randn(2, CHANNELS, LENGTHS[-1], dtype=F64)
    with torch.no_grad():
        causal, anticausal = split_directions(layer.kernel.discretize())
        expected = forward_recurrence(causal, u) + backward_recurrence(anticausal, u)
        expected = expected + layer.D[:, None] * u
        torch.testing.assert_close(layer.ssm(u), expected, rtol=1e-6, atol=1e-10)


def test_circular_length_l_convolution_does_not_match() -> None:
    """(b) negative control: without the 2L zero padding the kernel tail wraps onto early outputs."""
    layer = make_layer("lin", dt_min=1e-3, dt_max=1e-2)  # slow decay: the kernel spans the sequence
    length = LENGTHS[-1]
    u = torch.randn(2, CHANNELS, length, dtype=F64)
    with torch.no_grad():
        expected = forward_recurrence(layer.kernel.discretize(), u)
        circular = fft_convolve(u, layer.kernel(length))
    relative_error = (circular - expected).norm() / expected.norm()
    assert relative_error > 0.1


@pytest.mark.parametrize("bidirectional", [False, True])
def test_future_input_reaches_output_only_when_bidirectional(bidirectional: bool) -> None:
    """(c) perturbing u after position l changes y[l] for the bidirectional layer, not for the causal one."""
    layer = make_layer("lin", bidirectional=bidirectional).eval()
    length, probe, perturbed = 64, 20, 40
    u = torch.randn(1, CHANNELS, length, dtype=F64)
    v = u.clone()
    v[..., perturbed] += 1.0
    with torch.no_grad():
        change = (layer(v) - layer(u))[..., probe].abs().max().item()
    if bidirectional:
        assert change > 1e-3
    else:
        assert change < 1e-12  # FFT rounding only


def requires_keops() -> pytest.MarkDecorator:
    available = keops_available()
    return pytest.mark.skipif(not available, reason=f"pykeops unusable: {keops_unavailable_reason()}")


@requires_keops()
@pytest.mark.parametrize("init", ["lin", "inv"])
def test_keops_and_torch_kernels_agree(init: str) -> None:
    """(d) same parameters → same kernel and same parameter gradients from both backends (float32)."""
    torch_kernel = S4DKernel(4, 16, init=init, backend="torch")
    keops_kernel = S4DKernel(4, 16, init=init, backend="keops")
    keops_kernel.load_state_dict(torch_kernel.state_dict())
    length = 300
    weights = torch.randn(4, length)
    results = []
    for kernel in (torch_kernel, keops_kernel):
        k = kernel(length)
        grads = torch.autograd.grad((k * weights).sum(), list(kernel.parameters()))
        results.append((k.detach(), grads))
    (k_torch, g_torch), (k_keops, g_keops) = results
    scale = k_torch.abs().max()
    torch.testing.assert_close(k_keops, k_torch, rtol=1e-4, atol=1e-5 * scale)
    for name, a, b in zip(dict(torch_kernel.named_parameters()), g_keops, g_torch, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4 * b.abs().max(), msg=name)


@pytest.fixture
def fresh_keops_probe():
    """Forget the cached probe so it runs again under the test's simulated failure, and afterwards."""

    def clear() -> None:
        keops_vandermonde._reduction.cache_clear()
        keops_vandermonde.keops_unavailable_reason.cache_clear()

    clear()
    yield
    clear()


def fail_compile() -> None:
    raise RuntimeError("simulated keops compile failure")


@pytest.mark.parametrize("failure", ["import", "compile"])
def test_keops_failure_falls_back_with_one_warning(
    failure: str, fresh_keops_probe: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(e) pykeops missing or not compiling → exactly one warning, and the torch path's results."""
    if failure == "import":
        monkeypatch.setitem(sys.modules, "pykeops.torch", None)
    else:
        monkeypatch.setattr(keops_vandermonde, "_reduction", fail_compile)
    reference = SSM4SARNet(d_model=8, num_layers=2, kernel_backend="torch")
    x = torch.randn(2, 3, 50)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        net = SSM4SARNet(d_model=8, num_layers=2, kernel_backend="keops")
        net.load_state_dict(reference.state_dict())
        outputs = [net(x), net(x)]
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1, messages
    assert "pykeops is unavailable" in messages[0]
    assert ("pykeops.torch" if failure == "import" else "simulated keops compile failure") in messages[0]
    assert not keops_available()
    expected = reference(x)
    for output in outputs:
        assert torch.equal(output, expected)


def test_optim_hints_exactly_on_a_dt_b() -> None:
    """(f) the SSM optimizer group gets A (both parts), dt and B; C, D and everything else do not."""
    ssm_lr = 5e-4
    net = SSM4SARNet(d_model=8, num_layers=2, hidden_state_size=4, ssm_lr=ssm_lr)
    hinted = {name for name, p in net.named_parameters() if hasattr(p, "_optim")}
    expected = {
        f"blocks.{i}.layer.kernel.{leaf}"
        for i in range(2)
        for leaf in ("log_neg_A_real", "A_imag", "log_dt", "B")
    }
    assert hinted == expected
    for name in hinted:
        assert net.get_parameter(name)._optim == {"lr": ssm_lr, "weight_decay": 0.0}


@pytest.mark.parametrize("length", [1, 2, 17, 256, 1000])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_net_shapes_any_length(length: int, bidirectional: bool) -> None:
    """(g) one network handles any L: (B, 3, L) → (B, 2, L), with gradients reaching every parameter."""
    net = SSM4SARNet(d_model=8, num_layers=2, hidden_state_size=4, bidirectional=bidirectional)
    y = net(torch.randn(2, 3, length))
    assert y.shape == (2, 2, length)
    y.square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_every_activation_builds(activation: str) -> None:
    net = SSM4SARNet(d_model=4, num_layers=1, hidden_state_size=2, activation=activation)
    assert net(torch.randn(1, 3, 10)).shape == (1, 2, 10)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"activation": "swish"}, "gelu, relu, silu, tanh"),
        ({"init": "legs"}, "lin, inv"),
        ({"kernel_backend": "cuda"}, "torch, keops"),
        ({"hidden_state_size": 3}, "even"),
        ({"dt_min": 0.1, "dt_max": 0.01}, "dt_min"),
    ],
)
def test_bad_config_raises_value_error(kwargs: dict[str, object], fragment: str) -> None:
    """(g) a wrong config value fails at construction with a message naming the valid choices."""
    with pytest.raises(ValueError, match=fragment):
        SSM4SARNet(**kwargs)


def test_wrong_input_channels_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"\(B, 3, L\)"):
        SSM4SARNet(d_model=4, num_layers=1)(torch.randn(1, 2, 10))
