"""The Sinkhorn divergence: sarexp's in-house loop against geomloss at equal iterations, time and accuracy.

    python benchmarks/sinkhorn.py [--points 64 256 1024] [--batches 1 8] [--dim 16] [--iters 50] [--rounds 3]
                                  [--online]

Forward + backward of S_ε on unit-sphere clouds (the GAN's `normalize: true`, diameter 2), ε = 0.1. geomloss gets
`scaling` such that its ε-schedule has `--iters` values, so both run the same number of Sinkhorn iterations
(4 c-transforms each). Backends: in-house, geomloss tensorized, and with --online geomloss KeOps `online`
(pykeops compiles its CPU kernels on first use, seconds). Rounds alternate between the implementations; the
table shows the median ms and each one's error against a converged value (in-house at 10 × iters).
"""

import argparse
import math
import statistics
import time

import torch
import torch.nn.functional as F

from sarexp.losses.sinkhorn import sinkhorn_divergence


def geomloss_loss(epsilon: float, iters: int, backend: str):
    from geomloss import SamplesLoss

    scaling = math.exp(math.log(math.sqrt(epsilon) / 2.0) / (iters - 2.5))  # 2 + (iters − 2) values of ε
    return SamplesLoss("sinkhorn", p=2, blur=math.sqrt(epsilon), debias=True, scaling=scaling, diameter=2.0,
                       backend=backend)


def timed(loss, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    x, y = x.clone().requires_grad_(), y.clone().requires_grad_()
    start = time.perf_counter()
    value = loss(x, y).sum()
    value.backward()
    return time.perf_counter() - start, float(value.detach())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--dim", type=int, default=16)
    parser.add_argument("--epsilon", type=float, default=0.1)
    parser.add_argument("--iters", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--online", action="store_true", help="also geomloss's KeOps backend")
    args = parser.parse_args()
    torch.manual_seed(0)
    losses = {"in-house": lambda x, y: sinkhorn_divergence(x, y, args.epsilon, args.iters),
              "geomloss tensorized": geomloss_loss(args.epsilon, args.iters, "tensorized")}
    if args.online:
        losses["geomloss online"] = geomloss_loss(args.epsilon, args.iters, "online")
    print(f"Sinkhorn S_ε forward + backward, ε {args.epsilon}, {args.iters} iterations each, D = {args.dim}, "
          f"{torch.get_num_threads()} thread(s); ms (median of {args.rounds}) and |S − S_converged|")
    print(f"{'batch':>5} {'points':>6} " + " ".join(f"{name:>28}" for name in losses))
    for batch in args.batches:
        for points in args.points:
            x = F.normalize(torch.randn(batch, points, args.dim), dim=-1)
            y = F.normalize(torch.randn(batch, points, args.dim) + 0.3, dim=-1)
            with torch.no_grad():
                converged = float(sinkhorn_divergence(x, y, args.epsilon, 10 * args.iters).sum())
            times = {name: [] for name in losses}
            values = {}
            for _ in range(args.rounds + 1):  # the first round warms up (KeOps compiles there)
                for name, loss in losses.items():
                    seconds, values[name] = timed(loss, x, y)
                    times[name].append(seconds)
            cells = [f"{1e3 * statistics.median(times[name][1:]):>12.1f} ms  err {abs(values[name] - converged):8.1e}"
                     for name in losses]
            print(f"{batch:>5} {points:>6} " + " ".join(cells), flush=True)


if __name__ == "__main__":
    main()
