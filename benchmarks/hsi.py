"""HSI training cost: step time and peak memory of one optimiser step, and MACs against the published figure.

    python benchmarks/hsi.py [--batch 20] [--patch 128] [--steps 3] [--device cpu|cuda] [--threads N]

Rows: MST++ (Adam, MRAE loss, as hsi_mstpp trains it). A step is forward, loss, backward and optimiser step
on random RGB patches with positive random spectra (speed does not depend on the values); the first step is
a warm-up. Peak memory: torch.cuda.max_memory_allocated on a GPU; on a CPU the growth of the process's
peak resident set (ru_maxrss) over the run, a rough figure. MACs: torch.utils.flop_counter at 1×3×256×256
(convolutions, linear layers and matrix products; half its FLOP count), beside MST++'s published 23.05 G.
"""

import argparse
import copy
import resource
import time
from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from sarexp.losses.spectral import mrae
from sarexp.models.mstpp import MSTPlusPlus

PUBLISHED_GMACS = {"MST++": 23.05}


def mstpp_step(device: torch.device) -> tuple[torch.nn.Module, Callable[[torch.Tensor, torch.Tensor], None]]:
    model = MSTPlusPlus().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=4e-4, betas=(0.9, 0.999))

    def step(rgb: torch.Tensor, hsi: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        mrae(model(rgb), hsi).backward()
        optimizer.step()

    return model, step


SYSTEMS = {"MST++": mstpp_step}


def giga_macs(model: torch.nn.Module) -> float:
    meta = copy.deepcopy(model).to("meta")
    with FlopCounterMode(display=False) as counter:
        meta(torch.zeros(1, 3, 256, 256, device="meta"))
    return counter.get_total_flops() / 2e9


def peak_memory_mb(device: torch.device, rss_before_kb: int) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before_kb) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--patch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up step")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    rgb = torch.rand(args.batch, 3, args.patch, args.patch, device=device)
    hsi = torch.rand(args.batch, 31, args.patch, args.patch, device=device) + 0.05
    print(f"device {device}, batch {args.batch}, patch {args.patch}, threads {torch.get_num_threads()}")
    print("| System | Params (M) | G-MACs@256 (published) | s / step | peak memory (MB) |")
    print("|--------|------------|------------------------|----------|------------------|")
    for name, build in SYSTEMS.items():
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        model, step = build(device)
        step(rgb, hsi)  # warm-up
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        for _ in range(args.steps):
            step(rgb, hsi)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = (time.perf_counter() - start) / args.steps
        params = sum(p.numel() for p in model.parameters()) / 1e6
        published = PUBLISHED_GMACS.get(name)
        macs = f"{giga_macs(model):.2f} ({published})" if published else f"{giga_macs(model):.2f}"
        print(f"| {name} | {params:.4f} | {macs} | {seconds:.3f} | {peak_memory_mb(device, rss_before):.0f} |")


if __name__ == "__main__":
    main()
