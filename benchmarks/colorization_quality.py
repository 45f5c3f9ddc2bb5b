"""Colorization quality on the embedded synthetic data (issue item 13): trains the three stages and the season
classifier through the CLI, colorizes the validation pairs, and prints the table of scores against the baselines.

    python benchmarks/colorization_quality.py --out /tmp/colq [--num-samples 96] [--steps 25] \
        [--data data.simulator.scenes=48] [--stage ldm=trainer.max_epochs=60] [--guidance 7.5 3]

Each stage is `python -m sarexp experiment=colorization_<stage> hydra.run.dir=OUT/<stage>` with the experiment's
defaults plus `--data` overrides (all stages) and `--stage NAME=OVERRIDE` ones; a stage whose run directory
already holds metrics.json is reused, so a rerun only redoes what is missing (delete the folder to retrain).
The evaluation is `task=colorize task.mode=dataset` with the classifier as FID feature network and season judge,
once per guidance scale. Rows: the LDM (each guidance scale, and 0: the prompt unused), the per-(region, season)
mean training image (what the prompt alone predicts), the VAE reconstruction of the truth (the latent ceiling),
real optical patches (season recognition of the truth).
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

STAGES = ("clip", "vae", "season_classifier", "ldm")


def run_stage(name: str, out: Path, overrides: list[str]) -> Path:
    """Train one stage unless its run directory already has metrics.json; returns the run directory."""
    directory = out / name
    if (directory / "metrics.json").exists():
        print(f"[{name}] reusing {directory}", flush=True)
        return directory
    command = [sys.executable, "-m", "sarexp", f"experiment=colorization_{name}", f"hydra.run.dir={directory}",
               "callbacks.progress_bar=null", *overrides]
    started = time.perf_counter()
    print(f"[{name}] {' '.join(command[2:])}", flush=True)
    with open(out / f"{name}.log", "w") as log:
        result = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        raise SystemExit(f"stage {name} failed (exit {result.returncode}); see {out / f'{name}.log'}")
    print(f"[{name}] {time.perf_counter() - started:.0f} s", flush=True)
    return directory


def evaluate(out: Path, guidance: float, args: argparse.Namespace, classifier: Path) -> dict[str, float]:
    directory = out / f"eval_g{guidance:g}"
    if not (directory / "metrics.json").exists():
        checkpoint = classifier / "checkpoints" / "last.ckpt"
        command = [sys.executable, "-m", "sarexp", "task=colorize", f"ckpt_path={out / 'ldm/checkpoints/last.ckpt'}",
                   "task.mode=dataset", f"task.num_samples={args.num_samples}", f"task.guidance_scale={guidance}",
                   f"task.num_inference_steps={args.steps}", f"task.strength={args.strength}",
                   f"task.extractor_checkpoint={checkpoint}", f"task.season_classifier_checkpoint={checkpoint}",
                   f"hydra.run.dir={directory}", *args.data]
        with open(out / f"eval_g{guidance:g}.log", "w") as log:
            if subprocess.run(command, stdout=log, stderr=subprocess.STDOUT).returncode != 0:
                raise SystemExit(f"evaluation failed; see {out / f'eval_g{guidance:g}.log'}")
    return json.loads((directory / "metrics.json").read_text())


def row(name: str, metrics: dict[str, float], prefix: str | None, season: str | None) -> str:
    """One table row: the image scores under `prefix` (None: none) and the season recognition key `season`."""
    cells = [None if prefix is None else metrics.get(f"{prefix}{key}") for key in ("psnr", "ssim", "sam", "fid")]
    cells.append(metrics.get(season) if season else None)
    return f"| {name} | " + " | ".join("—" if v is None else f"{v:.3f}" for v in cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--data", nargs="*", default=[], help="overrides for every stage, e.g. data.root=…")
    parser.add_argument("--stage", nargs="*", default=[], help="NAME=OVERRIDE for one stage (NAME in clip, vae, "
                        "season_classifier, ldm)")
    parser.add_argument("--num-samples", type=int, default=96)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--strength", type=float, default=0.8)
    parser.add_argument("--guidance", type=float, nargs="+", default=[7.5])
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    extra: dict[str, list[str]] = {name: [] for name in STAGES}
    for item in args.stage:
        name, _, override = item.partition("=")
        if name not in extra or not override:
            raise SystemExit(f"--stage {item!r}: use NAME=KEY=VALUE with NAME in {', '.join(STAGES)}")
        extra[name].append(override)
    runs = {name: run_stage(name, args.out, [*args.data, *extra[name]]) for name in STAGES[:3]}
    run_stage("ldm", args.out, [*args.data, *extra["ldm"], f"clip_checkpoint={runs['clip'] / 'checkpoints/last.ckpt'}",
                                f"vae_checkpoint={runs['vae'] / 'checkpoints/last.ckpt'}"])
    print(f"\n{args.num_samples} validation pairs, {args.steps} steps, strength {args.strength}, DDIM\n")
    print("| | PSNR | SSIM | SAM (°) | FID | season recognised |\n|---|---|---|---|---|---|")
    results = {guidance: evaluate(args.out, guidance, args, runs["season_classifier"]) for guidance in args.guidance}
    first = results[args.guidance[0]]
    for guidance, metrics in results.items():
        print(row(f"LDM, guidance {guidance:g}", metrics, "", "season_recognition"))
        print(row(f"LDM, guidance {guidance:g}, prompted with another season", metrics, None,
                  "other_season/season_recognition"))
    print(row("LDM, guidance 0 (prompt unused)", first, "unguided/", "unguided/season_recognition"))
    print(row("mean training image of the (region, season)", first, "baseline_mean/", None))
    print(row("VAE reconstruction of the truth (ceiling)", first, "vae_reconstruction/", None))
    print(row("real optical patches", first, None, "real_season_recognition"))
    print(f"\nseason recognition chance: {first.get('season_recognition_chance', float('nan')):.3f}")


if __name__ == "__main__":
    main()
