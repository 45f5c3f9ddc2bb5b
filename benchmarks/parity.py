"""Does sarexp cost speed? Each system's training step, sampler / prediction rate and data-loading rate against
the original implementation and a lean loop, measured in one process in alternating rounds.

    python benchmarks/parity.py --reference pdm=/tmp/refs/pdm --reference mstpp=/tmp/refs/mstpp \
        --reference sarwmixmae=/tmp/refs/sarwmixmae [--sections train infer data] [--systems pdm hsi_mstpp ...] \
        [--steps 20] [--warmup 3] [--rounds 3] [--threads 1] [--device cpu|cuda]
    python benchmarks/parity.py --smoke        # tiny sizes, seconds: the test suite runs this

Columns: `sarexp` (the shipped experiment built by sarexp's own builders: system, the experiment's callbacks and
loggers, the Lightning Trainer; sizes overridden to match), `reference` (the original implementation's own step,
imported from the checkout named by --reference; a missing checkout skips the column), `lean` (the same work in
a plain loop without logging: the floor on this machine; the reference for systems whose original is not public).
Ratios are medians over the kept steps: sarexp/lean (goal ≤ 1.05) and sarexp/reference (goal ≤ 1.00). Peak
memory: RSS while the column ran (CPU), allocated (CUDA). Reference checkouts: docs/performance.md.
"""

import argparse
import logging
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from parity_support import Row, Settings, Skip, alternate, markdown  # noqa: E402

SECTIONS = ("train", "infer", "data")
COLUMNS = {
    "train": ("system", "column", "ms/step", "mean ms", "peak MiB", "× lean", "× reference", "note"),
    "infer": ("system", "column", "ms/call", "items/s", "peak MiB", "× reference rate", "note"),
    "data": ("system", "column", "workers", "items/s", "× reference rate", "note"),
}


def registry(section: str) -> dict:
    if section == "train":
        from parity_train import SYSTEMS
        from parity_train_gan_ldm import SYSTEMS as MORE
        return {**SYSTEMS, **MORE}
    if section == "infer":
        from parity_infer import SYSTEMS
        return SYSTEMS
    from parity_data import SYSTEMS
    return SYSTEMS


def overrides_for(settings: Settings) -> dict[str, list[str]]:
    """Sizes per system: the shipped defaults (CPU-sized) for a measurement, tiny ones for the smoke run."""
    if not settings.smoke:
        return {}
    from parity_sizes import SMOKE
    return SMOKE


def run_section(section: str, systems: list[str], settings: Settings) -> list[Row]:
    rows: list[Row] = []
    cases = registry(section)
    sizes = overrides_for(settings)
    for name in systems:
        if name not in cases:
            continue
        started = time.perf_counter()
        try:
            produced = cases[name](settings, sizes.get(name, []))
            if section == "train":  # training cases give columns; the ratios are to the lean loop and the original
                produced = train_rows(alternate(produced, settings))
            rows.extend({"system": name, **row} for row in produced)
        except Skip as reason:
            rows.append({"system": name, "note": f"skipped: {reason}"})
        except Exception as error:  # one failing case must not hide the others' figures; the smoke test fails on it
            rows.append({"system": name, "note": f"failed: {type(error).__name__}: {str(error).splitlines()[0][:120]}"})
        print(f"[{section} {name}: {time.perf_counter() - started:.0f} s]", file=sys.stderr, flush=True)
    return rows


def main(argv: list[str] | None = None) -> dict[str, list[Row]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", action="append", default=[], metavar="NAME=PATH",
                        help="a checkout of an original implementation: pdm, mstpp, sarwmixmae")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--systems", nargs="+", default=None)
    parser.add_argument("--steps", type=int, default=20, help="timed units per column and round")
    parser.add_argument("--warmup", type=int, default=3, help="units dropped at the start of every round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, 1 round of 2 steps")
    args = parser.parse_args(argv)
    references = dict(item.split("=", 1) for item in args.reference)
    threads, lightning_log = torch.get_num_threads(), logging.getLogger("lightning.pytorch")
    level = lightning_log.level
    torch.set_num_threads(args.threads)
    lightning_log.setLevel(logging.ERROR)
    results = {}
    try:  # the smoke test calls main() in the test process: leave threads, logging and warnings as they were
        with warnings.catch_warnings(), tempfile.TemporaryDirectory(prefix="sarexp-parity-") as scratch:
            warnings.filterwarnings("ignore")
            settings = Settings(device=args.device, steps=2 if args.smoke else args.steps,
                                warmup=1 if args.smoke else args.warmup, rounds=1 if args.smoke else args.rounds,
                                workdir=Path(scratch), references={k: Path(v) for k, v in references.items()},
                                smoke=args.smoke, workers=(0,) if args.smoke else (0, 2))
            device = (torch.cuda.get_device_name() if args.device.startswith("cuda")
                      else f"CPU, {args.threads} thread(s)")
            print(f"sarexp parity — {device}, torch {torch.__version__}, {settings.rounds} rounds × "
                  f"{settings.steps} units (+{settings.warmup} warm-up each)")
            for section in args.sections:
                systems = args.systems or list(registry(section))
                results[section] = run_section(section, systems, settings)
                print(f"\n## {section}\n" + markdown(COLUMNS[section], results[section]), flush=True)
    finally:
        torch.set_num_threads(threads)
        lightning_log.setLevel(level)
    return results


def train_rows(measured: dict[str, Row]) -> list[Row]:
    """Rows of a training comparison with the ratios to the lean loop and to the reference."""
    lean, reference = measured.get("lean", {}).get("ms"), measured.get("reference", {}).get("ms")
    rows = []
    for name, row in measured.items():
        if "ms" not in row:
            rows.append({"column": name, "note": row["note"]})
            continue
        rows.append({"column": name, "ms/step": row["ms"], "mean ms": row["mean ms"], "peak MiB": row["peak MiB"],
                     "× lean": row["ms"] / lean if lean else None,
                     "× reference": row["ms"] / reference if reference else None, "note": row["note"]})
    return rows


if __name__ == "__main__":
    main()
