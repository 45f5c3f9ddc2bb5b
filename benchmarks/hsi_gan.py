"""Sinkhorn-GAN costs: one GAN training step (D step with R1 + G step, generator + discriminator as the
experiment configures them) and the Sinkhorn loss against the number of feature points, in-house vs geomloss.

    python benchmarks/hsi_gan.py [--experiment hsi_cswin_gan_paper] [--batch 20] [--patch 128] [--steps 3]
                                 [--points 64 256 1024 2048] [--dim 64] [--device cpu|cuda]

The step runs the system's own loss code (ConditionalGANSystem._discriminator_terms / _generator_terms) with
Adam on both networks. Peak memory: torch.cuda.max_memory_allocated on a GPU; on the CPU the growth of the
process's peak resident set (ru_maxrss) over the step, a coarse figure.
"""

import argparse
import resource
import statistics
import time

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from sarexp.config.locate import config_dir
from sarexp.config.schema import register_schema
from sarexp.losses.sinkhorn import sinkhorn_divergence
from sarexp.systems.gan import ConditionalGANSystem


def build_system(experiment: str) -> ConditionalGANSystem:
    register_schema()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("config", overrides=[f"experiment={experiment}", "paths.run_dir=/tmp/unused"])
    system = cfg.system
    return ConditionalGANSystem(
        generator=instantiate(cfg.model), discriminator=instantiate(system.discriminator),
        generator_optimizer=instantiate(system.generator_optimizer),
        discriminator_optimizer=instantiate(system.discriminator_optimizer),
        adversarial=instantiate(system.adversarial), n_critic=1, use_r1_regularization=system.use_r1_regularization,
        r1_gamma=system.r1_gamma)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def gan_step(system: ConditionalGANSystem, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
             rgb: torch.Tensor, hsi: torch.Tensor) -> None:
    fake = system.generator(rgb)
    system.discriminator.requires_grad_(True)
    d_loss = system._discriminator_terms(rgb, hsi, fake.detach())["d_loss"]
    opt_d.zero_grad(set_to_none=True)
    d_loss.backward()
    opt_d.step()
    system.discriminator.requires_grad_(False)
    g_loss = system._generator_terms(rgb, hsi, fake)["g_loss"]
    opt_g.zero_grad(set_to_none=True)
    g_loss.backward()
    opt_g.step()


def bench_step(args: argparse.Namespace, device: torch.device) -> None:
    system = build_system(args.experiment).to(device)
    opt_g = torch.optim.Adam(system.generator.parameters(), lr=1e-4)
    opt_d = torch.optim.Adam(system.discriminator.parameters(), lr=1e-4)
    rgb = torch.rand(args.batch, 3, args.patch, args.patch, device=device)
    hsi = torch.rand(args.batch, 31, args.patch, args.patch, device=device)
    g_params = sum(p.numel() for p in system.generator.parameters())
    d_params = sum(p.numel() for p in system.discriminator.parameters())
    rss_before = peak_rss_mib()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    gan_step(system, opt_g, opt_d, rgb, hsi)  # warm-up
    times = []
    for _ in range(args.steps):
        sync(device)
        start = time.perf_counter()
        gan_step(system, opt_g, opt_d, rgb, hsi)
        sync(device)
        times.append(time.perf_counter() - start)
    peak = (torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda"
            else peak_rss_mib() - rss_before)
    print(f"\nGAN training step ({args.experiment}, batch {args.batch}, patch {args.patch}, {device.type}, "
          f"{torch.get_num_threads()} threads)")
    print("| generator params | discriminator params | median s/step | min s/step | peak memory MiB |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    print(f"| {g_params:,} | {d_params:,} | {statistics.median(times):.3f} | {min(times):.3f} | {peak:.0f} |")


def bench_sinkhorn(args: argparse.Namespace, device: torch.device) -> None:
    try:
        from geomloss import SamplesLoss
    except ImportError:
        SamplesLoss = None
    print(f"\nSinkhorn divergence, forward + backward, D = {args.dim}, ε = {args.epsilon}, "
          f"in-house {args.iters} iterations; geomloss tensorized, scaling {args.scaling} ({device.type})")
    print("| points N (= M) | in-house ms | geomloss ms | |S_in-house − S_geomloss| |")
    print("| ---: | ---: | ---: | ---: |")
    for n in args.points:
        x = torch.randn(1, n, args.dim, device=device, requires_grad=True)
        y = (torch.randn(1, n, args.dim, device=device) + 0.5).requires_grad_()
        ours, ours_value = timed(lambda: sinkhorn_divergence(x, y, args.epsilon, args.iters).sum(), device)
        if SamplesLoss is None:
            print(f"| {n} | {ours:.1f} | – | – |")
            continue
        loss = SamplesLoss("sinkhorn", p=2, blur=args.epsilon ** 0.5, scaling=args.scaling, debias=True,
                           backend="tensorized")
        theirs, their_value = timed(lambda: loss(x, y).sum(), device)
        print(f"| {n} | {ours:.1f} | {theirs:.1f} | {abs(ours_value - their_value):.2e} |")


def timed(fn, device: torch.device, repeats: int = 3) -> tuple[float, float]:
    """Median ms of forward + backward over `repeats` runs after one warm-up, and the value."""
    value = fn()
    value.backward()
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        value = fn()
        value.backward()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3, float(value.detach())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="hsi_cswin_gan_paper")
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--patch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--points", type=int, nargs="+", default=[64, 256, 1024, 2048])
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--epsilon", type=float, default=0.1)
    parser.add_argument("--iters", type=int, default=50)
    parser.add_argument("--scaling", type=float, default=0.9)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--skip-step", action="store_true", help="only the Sinkhorn table")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    if not args.skip_step:
        bench_step(args, device)
    bench_sinkhorn(args, device)


if __name__ == "__main__":
    main()
