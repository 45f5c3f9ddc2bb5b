"""Step time of a training batch with 2 DDP ranks (gloo, one CPU thread each) against one process, on CPU.

    OMP_NUM_THREADS=1 python benchmarks/ddp_step.py                 # hsi_cswin_gan and hsi_mstpp as shipped
    OMP_NUM_THREADS=1 python benchmarks/ddp_step.py --steps 30 --experiments hsi_cswin_gan

Each rank trains on the same fixed batch of the experiment's real loader (its shipped batch size: weak scaling,
so 2 ranks on 2 cores ideally take the time of one process). For the GAN the table also has the alternative to
sarexp's design: one DDP wrapper around the whole module with `find_unused_parameters=True` (DDP searches the
graph after every forward and all-reduces the idle network's zero gradients). A batch is one discriminator and
one generator step. Time it alone: other processes on the cores distort every figure.
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_measure import FixedBatch, StepTimer, batch_items, compose  # noqa: E402
from gpu_suite import Scale, cpu_scale  # noqa: E402

DATA = ["data.simulator.scenes={train:2,validation:1,test:1}", "data.num_workers=0"]
MODES = {"hsi_cswin_gan": ("one process", "ddp: a wrapper per network", "ddp: one wrapper, find_unused=True"),
         "hsi_mstpp": ("one process", "ddp")}


def rank_main(experiment: str, mode: str, steps: int, workdir: Path, result: Path) -> None:
    """One rank: build the shipped experiment, take one real batch, time `steps` batches after 3 warm-up ones."""
    import lightning.pytorch as pl
    from lightning.pytorch.strategies import DDPStrategy

    from sarexp.strategies.ddp import HydraDDPStrategy
    from sarexp.tasks.builders import build_datamodule, build_system

    scale: Scale = cpu_scale(workdir, compile_on_cpu=False)
    scale.warmup, scale.steps = 3, steps
    cfg = compose(scale, [f"experiment={experiment}", *DATA])
    datamodule = build_datamodule(cfg)
    datamodule.prepare_data()
    datamodule.setup("fit")
    batch = next(iter(datamodule.train_dataloader()))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    strategy = {"ddp": HydraDDPStrategy(process_group_backend="gloo"),
                "ddp: a wrapper per network": HydraDDPStrategy(process_group_backend="gloo"),
                "ddp: one wrapper, find_unused=True": DDPStrategy(process_group_backend="gloo",
                                                                   find_unused_parameters=True)}.get(mode, "auto")
    timer = StepTimer(scale)
    trainer = pl.Trainer(accelerator="cpu", devices=world, strategy=strategy, max_epochs=1, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         limit_val_batches=0, num_sanity_val_steps=0, use_distributed_sampler=False,
                         callbacks=[timer])
    torch.manual_seed(0)
    trainer.fit(build_system(cfg), datamodule=FixedBatch(datamodule, batch, scale.warmup + steps))
    if trainer.global_rank == 0:
        result.write_text(json.dumps({"ms": 1e3 * timer.wall_s / steps, "batch": batch_items(batch)}))


def prepare_data(experiment: str, workdir: Path) -> None:
    """Generate the synthetic dataset once, before ranks that would all write it."""
    from sarexp.tasks.builders import build_datamodule

    build_datamodule(compose(cpu_scale(workdir, compile_on_cpu=False), [f"experiment={experiment}", *DATA])).prepare_data()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def measure(experiment: str, mode: str, steps: int, workdir: Path) -> dict:
    """Run `mode` in fresh processes (2 ranks for the DDP modes) and return rank 0's figures."""
    world = 1 if mode == "one process" else 2
    result = workdir / "result.json"
    result.unlink(missing_ok=True)
    base = {**os.environ, "OMP_NUM_THREADS": "1"}
    if world > 1:
        base.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), WORLD_SIZE=str(world), NODE_RANK="0")
    command = [sys.executable, __file__, "--rank", experiment, mode, str(steps), str(workdir), str(result)]
    ranks = [subprocess.Popen(command, env={**base, "RANK": str(r), "LOCAL_RANK": str(r)} if world > 1 else base,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for r in range(world)]
    errors = [rank.communicate()[1] for rank in ranks]
    if any(rank.returncode for rank in ranks):
        return {"note": f"failed: {errors[0].strip().splitlines()[-1][:100] if errors[0].strip() else '?'}"}
    return json.loads(result.read_text())


def main() -> None:
    if sys.argv[1:2] == ["--rank"]:
        experiment, mode, steps, workdir, result = sys.argv[2:7]
        rank_main(experiment, mode, int(steps), Path(workdir), Path(result))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20, help="timed batches per measurement")
    parser.add_argument("--repeats", type=int, default=2, help="measurements per mode (the median is shown)")
    parser.add_argument("--experiments", nargs="+", choices=sorted(MODES), default=list(MODES))
    args = parser.parse_args()
    print("| experiment | mode | ranks | batch per rank | ms per batch | vs one process |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="sarexp-ddp-step-") as scratch:
        for experiment in args.experiments:
            prepare_data(experiment, Path(scratch))
            baseline = None
            for mode in MODES[experiment]:
                runs = [measure(experiment, mode, args.steps, Path(scratch)) for _ in range(args.repeats)]
                if any("note" in run for run in runs):
                    print(f"| {experiment} | {mode} | | | {runs[0].get('note', runs[-1].get('note'))} | |")
                    continue
                ms = statistics.median(run["ms"] for run in runs)
                baseline = baseline or ms
                ranks = 1 if mode == "one process" else 2
                print(f"| {experiment} | {mode} | {ranks} | {runs[0]['batch']} | {ms:.0f} | {ms / baseline:.2f}× |",
                      flush=True)


if __name__ == "__main__":
    main()
