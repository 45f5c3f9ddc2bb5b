"""Time one S4D layer (forward + backward) and its kernel alone, torch vs keops backend, over lengths.

SAR azimuth lines are long (thousands to tens of thousands of samples), so the question this answers is
how the kernel backends scale with L. Prints a Markdown table of medians in milliseconds; the keops
columns read n/a where pykeops cannot compile here.

    python benchmarks/s4d_kernel.py --lengths 1024 4096 --batch 4 --repeats 3 --device cpu
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence

import torch

from sarexp.models.keops_vandermonde import keops_available, keops_unavailable_reason
from sarexp.models.s4d import S4DLayer

BACKENDS = ("torch", "keops")
DEFAULT_LENGTHS = [1024 * 2**k for k in range(7)]  # 1k … 64k
NOT_AVAILABLE = "n/a"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", type=int, nargs="+", default=DEFAULT_LENGTHS, help="sequence lengths L")
    parser.add_argument("--batch", type=int, default=16, help="batch size B of the layer input")
    parser.add_argument("--d-model", type=int, default=32, help="channels H")
    parser.add_argument("--d-state", type=int, default=64, help="state size N (N/2 complex modes)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per cell (median reported)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs per cell before timing")
    parser.add_argument("--causal", action="store_true", help="one kernel instead of the bidirectional pair")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    parser.add_argument(
        "--threads",
        type=int,
        default=torch.get_num_threads(),
        help="torch CPU threads (keops' OpenMP threads follow the OMP_NUM_THREADS environment variable)",
    )
    return parser.parse_args(argv)


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work so wall-clock times cover the computation, not just its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_ms(step: Callable[[], None], repeats: int, warmup: int, device: torch.device) -> float:
    """Median wall time of ``step`` in ms; warm-up runs absorb keops compiles and allocator growth."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        step()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def layer_step(layer: S4DLayer, u: torch.Tensor) -> Callable[[], None]:
    """Forward and backward through the whole layer (kernel, FFT convolution, GLU mixing)."""

    def step() -> None:
        layer.zero_grad(set_to_none=True)
        u.grad = None
        layer(u).sum().backward()

    return step


def kernel_step(layer: S4DLayer, length: int) -> Callable[[], None]:
    """Forward and backward through the kernel generation only (the part the backend changes)."""

    def step() -> None:
        layer.zero_grad(set_to_none=True)
        layer.kernel(length).sum().backward()

    return step


def build_layers(args: argparse.Namespace, device: torch.device) -> dict[str, S4DLayer | None]:
    """One layer per backend with identical weights; None for keops when it does not work here."""
    layers: dict[str, S4DLayer | None] = {}
    reference: S4DLayer | None = None
    for backend in BACKENDS:
        if backend == "keops" and not keops_available():
            layers[backend] = None
            continue
        layer = S4DLayer(
            args.d_model, state_size=args.d_state, bidirectional=not args.causal, kernel_backend=backend
        ).to(device)
        if reference is None:
            reference = layer
        else:
            layer.load_state_dict(reference.state_dict())
        layers[backend] = layer
    return layers


def format_ms(value: float | None) -> str:
    return NOT_AVAILABLE if value is None else f"{value:.1f}"


def benchmark_row(
    layers: dict[str, S4DLayer | None], length: int, args: argparse.Namespace, device: torch.device
) -> list[str]:
    """Layer then kernel times for each backend at one length."""
    u = torch.randn(args.batch, args.d_model, length, device=device, requires_grad=True)
    layer_times, kernel_times = [], []
    for backend in BACKENDS:
        layer = layers[backend]
        if layer is None:
            layer_times.append(None)
            kernel_times.append(None)
            continue
        layer_times.append(median_ms(layer_step(layer, u), args.repeats, args.warmup, device))
        kernel_times.append(median_ms(kernel_step(layer, length), args.repeats, args.warmup, device))
    return [str(length), *map(format_ms, layer_times), *map(format_ms, kernel_times)]


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    layers = build_layers(args, device)
    direction = "causal" if args.causal else "bidirectional"
    print(
        f"S4DLayer forward+backward, median of {args.repeats} after {args.warmup} warm-up, ms | "
        f"B={args.batch} H={args.d_model} N={args.d_state} {direction} | device={device} "
        f"torch threads={torch.get_num_threads()} | keops: {keops_unavailable_reason() or 'ok'}"
    )
    header = ["L", *(f"layer {b}" for b in BACKENDS), *(f"kernel {b}" for b in BACKENDS)]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for length in args.lengths:
        print("| " + " | ".join(benchmark_row(layers, length, args, device)) + " |", flush=True)


if __name__ == "__main__":
    main()
