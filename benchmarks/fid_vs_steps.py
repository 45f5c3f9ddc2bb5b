"""Sample quality against the number of sampling steps, per sampler, for a trained diffusion model.

    python benchmarks/fid_vs_steps.py --run-dir outputs/pdm_sar_lowres/runs/<…> \
        --extractor outputs/pdm_feature_extractor/runs/<…>/checkpoints/last.ckpt \
        [--num-samples 96] [--steps 10 20 50 full] [--samplers ddpm ddim dpmsolver dpmsolver++] [--order 2] [--eta 0]

Run it from the directory the training ran in (the data root in the run's config is relative to it). Every
sampler starts from the same noise and (class-conditional models) the same balanced labels. Per sampler and
number of steps ("full" = the T training steps) it prints the network evaluations (NFE), the speed, FID,
precision and recall in the extractor's features against the real test split, the class-recognition
rate, and γ₁ gen/real: the generated/real ratio of the semivariogram at lag 1 pixel, which is dominated by
speckle (pixel-to-pixel variance) in SAR images; a value well below 1 means over-smoothed samples. The first
row is the real-vs-real reference (training images against the test split, same count). ``--output FILE``
also writes the rows as JSON.
"""

import argparse
import json
import time
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from omegaconf import OmegaConf

from sarexp.diffusion.samplers import AncestralSampler, DDIMSampler, DPMSolverSampler, Sampler
from sarexp.metrics.generative import feature_frechet_distance, precision_recall
from sarexp.metrics.semivariogram import semivariogram
from sarexp.systems.diffusion import model_function
from sarexp.tasks.evaluate_generative import extract, real_images
from sarexp.tasks.feature_extractors import load_feature_extractor
from sarexp.tasks.generative import load_diffusion_system


def make_sampler(name: str, steps: int, order: int, eta: float) -> Sampler:
    if name == "ddpm":
        return AncestralSampler(steps=steps)
    if name == "ddim":
        return DDIMSampler(steps=steps, eta=eta)
    return DPMSolverSampler(steps=steps, order=order, algorithm=name)


def draw(system, sampler: Sampler, noise: torch.Tensor, labels: torch.Tensor | None, batch_size: int) -> np.ndarray:
    net = system.sampling_network(True).eval()
    images = []
    for start in range(0, len(noise), batch_size):
        conditioning = {} if labels is None else {"label": labels[start : start + batch_size]}
        batch = sampler.sample(system.diffusion, model_function(net, conditioning), noise[start : start + batch_size])
        images.append(batch.clamp(-1.0, 1.0).float().numpy())
    return np.concatenate(images)


def scores(network, real_features: np.ndarray, real: np.ndarray, images: np.ndarray, labels: np.ndarray | None,
           batch_size: int) -> dict[str, float]:
    features, logits = extract(network, images, batch_size, torch.device("cpu"))
    precision, recall = precision_recall(real_features, features, k=3)
    gamma_real = semivariogram(real, 1)[1][:, 0]
    gamma_generated = semivariogram(images, 1)[1][:, 0]
    row = {"fid": feature_frechet_distance(real_features, features), "precision": precision, "recall": recall,
           "gamma1_ratio": float(np.mean(gamma_generated / gamma_real))}
    if labels is not None:
        row["class_recognition"] = float((logits.argmax(axis=1) == labels).mean())
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, required=True, help="run directory of a pdm_* training run")
    parser.add_argument("--checkpoint", type=Path, help="default: <run dir>/checkpoints/last.ckpt")
    parser.add_argument("--extractor", type=Path, required=True, help="checkpoint of a pdm_feature_extractor run")
    parser.add_argument("--num-samples", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=96)
    parser.add_argument("--steps", nargs="+", default=["10", "20", "50", "full"])
    parser.add_argument("--samplers", nargs="+", default=["ddpm", "ddim", "dpmsolver", "dpmsolver++"],
                        choices=["ddpm", "ddim", "dpmsolver", "dpmsolver++"])
    parser.add_argument("--order", type=int, default=2, help="DPM-Solver order")
    parser.add_argument("--eta", type=float, default=0.0, help="DDIM η: 0 deterministic (ODE), 1 ancestral-like")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args()

    pl.seed_everything(args.seed, verbose=False)  # the shuffled draw of real training images for the reference
    cfg = OmegaConf.load(args.run_dir / ".hydra" / "config.yaml")
    system = load_diffusion_system(cfg, args.checkpoint or args.run_dir / "checkpoints" / "last.ckpt")
    network = load_feature_extractor(str(args.extractor), None)
    real, _ = real_images(cfg, "test", None)
    real_features, _ = extract(network, real, args.batch_size, torch.device("cpu"))
    reference, _ = real_images(cfg, "train", len(real))

    net = system.sampling_network(True)
    generator = torch.Generator().manual_seed(args.seed)
    noise = torch.randn((args.num_samples, net.in_channels, net.image_size, net.image_size), generator=generator)
    num_classes = int(getattr(net, "num_classes", 0) or 0)
    labels = torch.arange(args.num_samples) % num_classes if num_classes else None
    label_array = labels.numpy() if labels is not None else None

    rows = [{"sampler": "real (train vs test)", "steps": 0, "nfe": 0, "seconds": 0.0,
             **scores(network, real_features, real, reference, None, args.batch_size)}]
    header = f"{'sampler':<22}{'steps':>6}{'NFE':>6}{'s':>8}{'samples/s':>10}{'FID':>9}{'prec':>6}{'rec':>6}"
    header += f"{'class':>7}{'γ₁ gen/real':>13}"
    print(f"{len(real)} real test images, {args.num_samples} samples, T = {system.diffusion.num_timesteps}")
    print(header)

    def show(row: dict) -> None:
        speed = args.num_samples / row["seconds"] if row["seconds"] else float("nan")
        recognition = row.get("class_recognition", float("nan"))
        print(f"{row['sampler']:<22}{row['steps']:>6}{row['nfe']:>6}{row['seconds']:>8.1f}{speed:>10.2f}"
              f"{row['fid']:>9.3f}{row['precision']:>6.2f}{row['recall']:>6.2f}{recognition:>7.2f}"
              f"{row['gamma1_ratio']:>13.2f}", flush=True)

    show(rows[0])
    for name in args.samplers:
        for steps_text in args.steps:
            steps = system.diffusion.num_timesteps if steps_text == "full" else int(steps_text)
            sampler = make_sampler(name, steps, args.order, args.eta)
            started = time.perf_counter()
            images = draw(system, sampler, noise, labels, args.batch_size)
            seconds = time.perf_counter() - started
            label = {"ddpm": name, "ddim": f"ddim (η = {args.eta:g})"}.get(name, f"{name} (order {args.order})")
            row = {"sampler": label, "steps": steps,
                   "nfe": sampler.last_nfe, "seconds": seconds,
                   **scores(network, real_features, real, images, label_array, args.batch_size)}
            rows.append(row)
            show(row)
    if args.output:
        args.output.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
