"""Wall time of sarexp's config commands against a bare Hydra app composing the same config (the floor).

    python benchmarks/startup.py [--repeats 3] [--experiment ssm4sar] [--no-train]

Each command runs in a fresh Python process (as a user types it); the table shows the median seconds
over the repeats, the floor's seconds for the same command and the ratio. The bare app registers the same
typed schema and resolvers and composes conf/config.yaml, and its task function only prints; so the ratio
is what sarexp adds to Hydra itself. The last row is a whole training run of one tiny step (`task=train`:
imports, data generation, Trainer set-up, one step, checkpoint), for comparison.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_BARE_APP = '''
import hydra
from sarexp.config.locate import config_dir
from sarexp.config.schema import register_schema

register_schema()


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="config")
def app(cfg):
    print(cfg.name)


if __name__ == "__main__":
    app()
'''

_TINY_TRAIN = [
    "data.simulator.n_azimuth=256", "data.simulator.n_range=32", "data.simulator.scenes={training:1,validation:1}",
    "data.simulator.chunks=[128,16]", "data.simulator.point_targets=2", "data.patch_length=64", "data.stride=64",
    "data.batch_size=8", "model.d_model=8", "model.num_layers=1", "model.hidden_state_size=8",
    "callbacks.progress_bar=null", "callbacks.model_summary=null", "trainer.max_steps=1",
    "trainer.limit_val_batches=0", "trainer.num_sanity_val_steps=0", "task.test=false",
]


def _commands(experiment: str) -> list[tuple[str, list[str]]]:
    chosen = f"experiment={experiment}"
    return [
        ("--cfg job", [chosen, "--cfg", "job"]),
        ("--cfg hydra", [chosen, "--cfg", "hydra"]),
        ("--cfg all --resolve", [chosen, "--cfg", "all", "--resolve"]),
        ("--help", [chosen, "--help"]),
        ("--info", [chosen, "--info"]),
        ("unknown experiment", ["experiment=no_such_experiment"]),
        ("misspelled override", [chosen, "trainer.max_step=3"]),
        ("misspelled key (+model.…)", [chosen, "+model.hiden_size=3"]),  # sarexp's validation; the floor runs
    ]


def _seconds(command: list[str], cwd: Path, repeats: int) -> tuple[float, int]:
    times, code = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        code = subprocess.run(command, cwd=cwd, capture_output=True, env=_environment()).returncode
        times.append(time.perf_counter() - start)
    return statistics.median(times), code


def _environment() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
            "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--experiment", default="ssm4sar")
    parser.add_argument("--no-train", action="store_true", help="skip the one-step training run")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        bare = workdir / "bare_hydra_app.py"
        bare.write_text(_BARE_APP)
        rows = []
        for label, command_args in _commands(args.experiment):
            mine, code = _seconds([sys.executable, "-m", "sarexp", *command_args], workdir, args.repeats)
            floor, _ = _seconds([sys.executable, str(bare), *command_args], workdir, args.repeats)
            rows.append((label, mine, floor, code))
        if not args.no_train:
            train = [sys.executable, "-m", "sarexp", f"experiment={args.experiment}", *_TINY_TRAIN,
                     f"hydra.run.dir={workdir / 'run'}", f"paths.root_dir={workdir}", "resume=false"]
            mine, code = _seconds(train, workdir, 1)
            rows.append(("train, 1 tiny step (whole run)", mine, float("nan"), code))

    print(f"\nstart-up, python -m sarexp experiment={args.experiment} …, median of {args.repeats} runs "
          f"(train: 1 run), floor = bare Hydra app composing the same config")
    print(f"{'command':<32} {'sarexp s':>9} {'floor s':>8} {'ratio':>6} {'exit':>5}")
    for label, mine, floor, code in rows:
        ratio = mine / floor if floor == floor else float("nan")
        print(f"{label:<32} {mine:>9.2f} {floor:>8.2f} {ratio:>6.2f} {code:>5}")


if __name__ == "__main__":
    main()
