"""Sample quality per sampler and network-evaluation budget, over several seeds, against the real-vs-real floor.

    python benchmarks/fid_vs_sampler.py --run-dir outputs/pdm_sar_lowres/runs/<…> \
        --extractor outputs/pdm_feature_extractor/runs/<…>/checkpoints/last.ckpt \
        --num-samples 500 --seeds 0 1 2 --device cuda --batch-size 500 \
        --samplers ddpm:full ddpm:100 sde:25:quadratic sde:20:quadratic sde:25 ddim1:25 ddpm:25 karras:13 \
        [--override data.root=/data/TenGeoP-SARwv data.synthetic=false] [--output rows.json]

Samplers are NAME:STEPS[:SPACING] (`full` = the T training steps; SPACING: uniform, quadratic, logsnr,
trailing, else each sampler's default): ``ddpm`` ancestral (respaced), ``ddim`` (η = 0),
``ddim1`` (η = 1), ``dpmpp`` DPM-Solver++(2M), ``sde`` DPM-Solver++(2M) SDE (logSNR grid), ``sde1`` its first
order, ``sdeu`` the SDE solver on a grid uniform in t,
``karras`` Karras et al. 2022 churn + Heun (STEPS grid points = 2·STEPS − 1 evaluations). Per seed every sampler
starts from the same noise and balanced class labels; the floor is the FID of as many real training images
(drawn with that seed) against the real test split. Prints one row per sampler: NFE, FID mean ± std over the
seeds, FID / FID of the first sampler (the reference, e.g. ddpm:full), precision, recall, class recognition,
γ₁ gen/real (lag-1 semivariogram ratio: speckle). Needs as many real test images as samples for the FID to
mean something: `--override` sets config keys of the run (e.g. a bigger synthetic test split in another root).
With `--output`, every row is written as soon as it is measured and rows already in that file are kept and not
measured again, so a long run can be resumed or extended (e.g. a slow reference on one more seed). On a CPU,
`--batch-size 50` is faster per image than 500 for the 32 px model (7.7 against 14 ms per image and evaluation).
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from sarexp.diffusion.samplers import AncestralSampler, DDIMSampler, DPMSolverSampler, Sampler
from sarexp.diffusion.stochastic_samplers import DPMSolverSDESampler, KarrasStochasticSampler
from sarexp.metrics.generative import feature_frechet_distance
from sarexp.systems.diffusion import model_function
from sarexp.tasks.evaluate_generative import extract, real_images
from sarexp.tasks.feature_extractors import load_feature_extractor
from sarexp.tasks.generative import load_diffusion_system

sys.path.insert(0, str(Path(__file__).parent))
from fid_vs_steps import scores  # noqa: E402  (the per-sample-set metrics, shared with fid_vs_steps)

BUILDERS = {  # name: (sampler class, fixed arguments, spacing unless the spec names one)
    "ddpm": (AncestralSampler, {}, "uniform"),
    "ddim": (DDIMSampler, {"eta": 0.0}, "uniform"),
    "ddim1": (DDIMSampler, {"eta": 1.0}, "uniform"),
    "dpmpp": (DPMSolverSampler, {"order": 2}, "logsnr"),
    "sde": (DPMSolverSDESampler, {"order": 2}, "logsnr"),
    "sde1": (DPMSolverSDESampler, {"order": 1}, "logsnr"),
    "sdeu": (DPMSolverSDESampler, {"order": 2}, "uniform"),
    "karras": (KarrasStochasticSampler, {}, "logsnr"),
}


def make_sampler(spec: str, total_steps: int) -> Sampler:
    name, _, rest = spec.partition(":")
    steps, _, spacing = rest.partition(":")
    if name not in BUILDERS or not steps:
        raise SystemExit(f"--samplers {spec!r}: use NAME:STEPS[:SPACING] with NAME in {', '.join(BUILDERS)}")
    cls, arguments, default_spacing = BUILDERS[name]
    return cls(steps=total_steps if steps == "full" else int(steps), spacing=spacing or default_spacing, **arguments)


@torch.no_grad()
def draw(system, sampler: Sampler, noise: torch.Tensor, labels: torch.Tensor | None, batch_size: int,
         device: torch.device) -> np.ndarray:
    net = system.sampling_network(True).to(device).eval()
    images = []
    for start in range(0, len(noise), batch_size):
        conditioning = {} if labels is None else {"label": labels[start : start + batch_size].to(device)}
        batch = sampler.sample(system.diffusion, model_function(net, conditioning),
                               noise[start : start + batch_size].to(device))
        images.append(batch.clamp(-1.0, 1.0).float().cpu().numpy())
    return np.concatenate(images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, help="run directory of a pdm_* training run")
    parser.add_argument("--checkpoint", type=Path, help="default: <run dir>/checkpoints/last.ckpt")
    parser.add_argument("--extractor", type=Path, help="checkpoint of a pdm_feature_extractor run")
    parser.add_argument("--num-samples", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=250)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--samplers", nargs="+",
                        default=["ddpm:full", "ddpm:100", "sde:25:quadratic", "sde:20:quadratic", "ddim1:25", "ddpm:25"])
    parser.add_argument("--override", nargs="*", default=[], help="KEY=VALUE config overrides of the run's config")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--output", type=Path, help="also write every (sampler, seed) row as JSON here")
    parser.add_argument("--report", nargs="+", type=Path,
                        help="measure nothing: print the table of the rows in these --output files (e.g. parts run "
                             "on different machines); the reference is the first of --samplers")
    args = parser.parse_args()
    if args.report:
        merged = {(row["sampler"], row["seed"]): row for path in reversed(args.report)
                  for row in json.loads(path.read_text())}  # a row in several files: the first file's
        rows = list(merged.values())
        summary(rows, list(dict.fromkeys([*args.samplers, *(row["sampler"] for row in rows)])))
        return
    if args.run_dir is None or args.extractor is None:
        parser.error("--run-dir and --extractor are required unless --report is given")

    cfg = OmegaConf.merge(OmegaConf.load(args.run_dir / ".hydra" / "config.yaml"), OmegaConf.from_dotlist(args.override))
    system = load_diffusion_system(cfg, args.checkpoint or args.run_dir / "checkpoints" / "last.ckpt")
    device = torch.device(args.device)
    network = load_feature_extractor(str(args.extractor), None)
    real, _ = real_images(cfg, "test", None)
    train, _ = real_images(cfg, "train", None)
    real_features, _ = extract(network, real, args.batch_size, torch.device("cpu"))
    train_features, _ = extract(network, train, args.batch_size, torch.device("cpu"))
    net = system.sampling_network(True)
    num_classes = int(getattr(net, "num_classes", 0) or 0)
    labels = torch.arange(args.num_samples) % num_classes if num_classes else None
    print(f"{len(real)} real test images, {len(train)} real training images, {args.num_samples} samples per seed, "
          f"seeds {args.seeds}, T = {system.diffusion.num_timesteps}", flush=True)
    if len(real) < args.num_samples or len(train) < args.num_samples:
        print("warning: fewer real images than samples; the FID floor below is what this size allows", flush=True)

    rows = json.loads(args.output.read_text()) if args.output and args.output.exists() else []
    done = {(row["sampler"], row["seed"]) for row in rows}
    for seed in args.seeds:
        pick = np.random.default_rng(seed).permutation(len(train))[: min(args.num_samples, len(train))]
        if ("real (train vs test)", seed) not in done:
            rows.append({"sampler": "real (train vs test)", "seed": seed, "nfe": 0, "seconds": 0.0,
                         "fid": feature_frechet_distance(train_features[pick], real_features)})
        noise = torch.randn((args.num_samples, net.in_channels, net.image_size, net.image_size),
                            generator=torch.Generator().manual_seed(seed))
        for spec in args.samplers:
            if (spec, seed) in done:
                continue
            sampler = make_sampler(spec, system.diffusion.num_timesteps)
            torch.manual_seed(seed)
            started = time.perf_counter()
            images = draw(system, sampler, noise, labels, args.batch_size, device)
            row = {"sampler": spec, "seed": seed, "nfe": sampler.last_nfe, "seconds": time.perf_counter() - started,
                   **scores(network, real_features, real, images, None if labels is None else labels.numpy(),
                            args.batch_size)}
            rows.append(row)
            print(f"seed {seed} {spec:<12} NFE {row['nfe']:>5}  FID {row['fid']:8.2f}  "
                  f"{row['seconds']:7.1f} s", flush=True)
            if args.output:
                save(rows, args.output)
    summary(rows, list(dict.fromkeys([*args.samplers, *(row["sampler"] for row in rows)])))


def save(rows: list[dict], path: Path) -> None:
    """Write the rows measured so far, atomically (a killed run leaves the last complete file)."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(rows, indent=2))
    temporary.replace(path)


def summary(rows: list[dict], order: list[str]) -> None:
    """One line per sampler (the reference: the first of `order`); seeds: how many seeds its row averages."""
    names = ["real (train vs test)", *(name for name in order if name != "real (train vs test)")]
    reference = np.mean([row["fid"] for row in rows if row["sampler"] == order[0]])
    print(f"\n{'sampler':<22}{'NFE':>6}{'seeds':>6}{'FID mean':>10}{'± std':>8}{'/ ref':>7}{'prec':>6}{'rec':>6}"
          f"{'class':>7}{'γ₁ ratio':>10}{'s/seed':>8}")
    for name in names:
        picked = [row for row in rows if row["sampler"] == name]
        if not picked:
            continue
        fids = np.array([row["fid"] for row in picked])
        mean = lambda key: float(np.mean([row.get(key, np.nan) for row in picked]))  # noqa: E731
        print(f"{name:<22}{picked[0]['nfe']:>6}{len(fids):>6}{fids.mean():>10.2f}{fids.std(ddof=1) if len(fids) > 1 else 0:>8.2f}"
              f"{fids.mean() / reference:>7.2f}{mean('precision'):>6.2f}{mean('recall'):>6.2f}"
              f"{mean('class_recognition'):>7.2f}{mean('gamma1_ratio'):>10.2f}{mean('seconds'):>8.1f}")


if __name__ == "__main__":
    main()
