"""Samples per second and network evaluations (NFE) of each sampler on the PDM UNet.

    python benchmarks/diffusion_samplers.py [--preset cpu|seed] [--batch 8] [--timesteps 2000] [--device cpu]
                                            [--threads 1] [--full]

The network has the experiments' architecture (`cpu`: the CPU-sized default of pdm_sar_lowres, 32 px;
`seed`: the seed's 128 px SAR model) with random weights: speed does not depend on the weights. Sampling
cost is NFE × the cost of one network call (the samplers' own arithmetic is negligible), so the table also
prints ms per evaluation; `--full` adds ancestral DDPM over all T steps (slow on a CPU).
"""

import argparse
import time

import torch

from sarexp.diffusion.gaussian import gaussian_diffusion
from sarexp.diffusion.samplers import AncestralSampler, DDIMSampler, DPMSolverSampler, Sampler
from sarexp.models.unet import UNet

PRESETS = {
    "cpu": {"image_size": 32, "model_channels": 32, "num_res_blocks": 1, "channel_mult": [1, 2, 2],
            "attention_resolutions": [8]},
    "seed": {"image_size": 128, "model_channels": 128, "num_res_blocks": 3, "channel_mult": [1, 1, 2, 3, 4],
             "attention_resolutions": [16, 8]},
}


def samplers(timesteps: int, full: bool) -> list[tuple[str, Sampler]]:
    chosen = [
        ("DDPM respaced 100", AncestralSampler(steps=100)),
        ("DDPM respaced 50", AncestralSampler(steps=50)),
        ("DDIM 50", DDIMSampler(steps=50)),
        ("DDIM 20", DDIMSampler(steps=20)),
        ("DDIM 10", DDIMSampler(steps=10)),
        ("DPM-Solver 2M 20", DPMSolverSampler(steps=20, order=2, algorithm="dpmsolver")),
        ("DPM-Solver++ 2M 20", DPMSolverSampler(steps=20, order=2)),
        ("DPM-Solver++ 3M 20", DPMSolverSampler(steps=20, order=3)),
        ("DPM-Solver++ 2M 10", DPMSolverSampler(steps=10, order=2)),
    ]
    if full:
        chosen.insert(0, (f"DDPM full {timesteps}", AncestralSampler()))
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--timesteps", type=int, default=2000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--full", action="store_true", help="also time ancestral DDPM over all T steps")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    preset = PRESETS[args.preset]
    net = UNet(in_channels=1, num_classes=6, learn_sigma=True, dropout=0.0, **preset).to(args.device).eval()
    diffusion = gaussian_diffusion(steps=args.timesteps, noise_schedule="cosine", learn_sigma=True)
    labels = torch.arange(args.batch, device=args.device) % 6
    shape = (args.batch, 1, preset["image_size"], preset["image_size"])

    def model_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return net(x, t, label=labels)

    with torch.no_grad():  # warm-up (allocations, kernel selection)
        model_fn(torch.randn(shape, device=args.device), torch.zeros(args.batch, dtype=torch.long, device=args.device))
    print(f"preset {args.preset}: {sum(p.numel() for p in net.parameters()) / 1e6:.2f} M parameters, "
          f"{preset['image_size']} px, batch {args.batch}, T = {args.timesteps}, device {args.device}, "
          f"{torch.get_num_threads()} threads")
    print(f"{'sampler':<22} {'NFE':>5} {'seconds':>9} {'samples/s':>10} {'ms/NFE':>8}")
    for name, sampler in samplers(args.timesteps, args.full):
        noise = torch.randn(shape, device=args.device)
        start = time.perf_counter()
        sampler.sample(diffusion, model_fn, noise)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        print(f"{name:<22} {sampler.last_nfe:>5} {seconds:>9.2f} {args.batch / seconds:>10.3g} "
              f"{1000 * seconds / sampler.last_nfe:>8.1f}")


if __name__ == "__main__":
    main()
