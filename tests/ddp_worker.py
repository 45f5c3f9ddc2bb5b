"""One rank of a DDP job that runs many experiments in turn, in this process (tests/test_ddp_experiments.py and
the GPU tests start one per rank).

    python tests/ddp_worker.py PLAN.json      # with MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK, LOCAL_RANK set

The environment makes Lightning join the ranks instead of launching them, and the process group the first
experiment's Trainer creates serves all the others (Lightning does not initialise an existing one again): the
experiments cost one process start-up, not one each. Every experiment runs its real `task=train` (fit, test,
metrics.json, checkpoints, figures) with `ddp_checks.ReplicaCheck` added; then, when the plan asks for it, one
GAN step on fixed samples records the synchronised gradients (`GradientRecorder`) for a comparison with one
process. Plan keys: root, experiments, extra_runs, common (overrides for all), gan_gradients (null or {samples,
batch_size, modes, overrides}).
"""

import json
import sys
import time
import traceback
from pathlib import Path

import torch

from ddp_checks import FixedSamples, GradientRecorder
from experiment_sizes import QUIET, TINY, ordered, stage_overrides
from inprocess import compose_run, run_task


def run_experiments(plan: dict, rank: int) -> None:
    """Each experiment of the plan (LDM stages first), then each extra run ({name, experiment, overrides})."""
    runs = [{"name": name, "experiment": name, "overrides": []} for name in ordered(plan["experiments"])]
    runs += plan.get("extra_runs", [])
    root = Path(plan["root"])
    reports = root / "reports"
    run_dirs: dict[str, Path] = {}
    for run in runs:
        name, experiment = run["name"], run["experiment"]
        run_dirs[name] = root / "runs" / name
        check = ["+callbacks.replica_check._target_=ddp_checks.ReplicaCheck",
                 f"+callbacks.replica_check.report_dir={reports}", f"+callbacks.replica_check.name={name}"]
        overrides = [f"experiment={experiment}", *TINY[experiment], *QUIET, *stage_overrides(experiment, run_dirs),
                     *plan["common"], *run["overrides"], *check]
        started = time.perf_counter()
        _guarded(reports, name, rank, lambda: run_task(compose_run(root, run_dirs[name], overrides)))
        if rank == 0:
            with open(reports / "seconds.jsonl", "a") as log:
                log.write(json.dumps({"run": name, "seconds": time.perf_counter() - started}) + "\n")


def gan_gradients(plan: dict, rank: int) -> None:
    """One GAN batch (a discriminator and a generator step) per adversarial_batch mode, gradients saved."""
    from sarexp.tasks.builders import build_system, build_trainer, seed_everything

    torch.backends.cudnn.allow_tf32 = False  # CUDA: full fp32, comparable with one process on the CPU
    torch.backends.cuda.matmul.allow_tf32 = False
    options = plan["gan_gradients"]
    root = Path(plan["root"])
    samples = torch.load(options["samples"], weights_only=True)
    for mode in options["modes"]:
        overrides = ["experiment=hsi_cswin_gan", *TINY["hsi_cswin_gan"], *options["overrides"],
                     f"system.adversarial_batch={mode}"]
        cfg = compose_run(root, root / "runs" / f"gradients_{mode}", overrides)

        def step() -> None:
            seed_everything(cfg)
            trainer = build_trainer(cfg, [GradientRecorder(str(root / f"gradients_{mode}.pt"))], [])
            trainer.fit(build_system(cfg), datamodule=FixedSamples(samples, options["batch_size"]))

        _guarded(root / "reports", f"gradients_{mode}", rank, step)


def _guarded(reports: Path, name: str, rank: int, action) -> None:
    """Run `action`; on an exception write its traceback to reports/<name>.rank<r>.error and exit 1 (a rank that
    went on would wait for the failed one in the next collective)."""
    try:
        action()
    except BaseException:
        reports.mkdir(parents=True, exist_ok=True)
        (reports / f"{name}.rank{rank}.error").write_text(traceback.format_exc())
        raise


def main() -> None:
    import os

    plan = json.loads(Path(sys.argv[1]).read_text())
    rank = int(os.environ["RANK"])
    run_experiments(plan, rank)
    if plan.get("gan_gradients"):
        gan_gradients(plan, rank)


if __name__ == "__main__":
    main()
