"""Time per training step through sarexp (Lightning Trainer + RegressionSystem, as `task=train` builds it)
against a plain PyTorch loop on the same model, loss, optimizer and batch.

    python benchmarks/train_step_overhead.py [--steps 200] [--batch 16] [--length 1024] [--device cpu]

Prints a table: median and mean ms per step for both, and the ratio. Both sides see one fixed batch that
is already on the device, so the difference is framework overhead (hooks, logging, optimizer wrapping).
"""

import argparse
import statistics
import time
from functools import partial

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, Dataset

from sarexp.losses.focusing import FocusingLoss
from sarexp.models.s4d import SSM4SARNet
from sarexp.optim.param_groups import build_optimizer
from sarexp.systems.regression import RegressionSystem


class RepeatedBatch(Dataset):
    """The same pre-built batch, `steps` times (batch_size=None: items are whole batches)."""

    def __init__(self, batch: dict[str, torch.Tensor], steps: int) -> None:
        self.batch, self.steps = batch, steps

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.batch


class StepTimer(pl.Callback):
    def __init__(self) -> None:
        self.times: list[float] = []

    def on_train_batch_start(self, *args) -> None:
        self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.strategy.root_device.type == "cuda":
            torch.cuda.synchronize()
        self.times.append(time.perf_counter() - self.start)


def make_parts(args: argparse.Namespace):
    torch.manual_seed(0)
    net = SSM4SARNet(d_model=args.d_model, num_layers=args.layers, hidden_state_size=args.state)
    loss = FocusingLoss()
    optimizer = partial(torch.optim.AdamW, lr=1e-3, weight_decay=0.01)
    batch = {
        "input": torch.randn(args.batch, 3, args.length, device=args.device),
        "target": torch.randn(args.batch, 2, args.length, device=args.device),
    }
    return net, loss, optimizer, batch


def time_plain(args: argparse.Namespace) -> list[float]:
    net, loss, optimizer_factory, batch = make_parts(args)
    net = net.to(args.device)
    optimizer = build_optimizer(optimizer_factory, net)
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        value = loss(net(batch["input"]), batch["target"])["loss"]
        value.backward()
        optimizer.step()
        if args.device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times


def time_sarexp(args: argparse.Namespace, log_dir: str) -> list[float]:
    net, loss, optimizer_factory, batch = make_parts(args)
    system = RegressionSystem(net=net, loss=loss, optimizer=optimizer_factory)
    timer = StepTimer()
    trainer = pl.Trainer(
        accelerator=args.device, devices=1, max_steps=args.steps, logger=pl.loggers.CSVLogger(log_dir),
        callbacks=[timer], enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
        log_every_n_steps=10, limit_val_batches=0,
    )
    loader = DataLoader(RepeatedBatch(batch, args.steps), batch_size=None)
    trainer.fit(system, train_dataloaders=loader)
    return timer.times


def summarise(times: list[float], warmup: int) -> tuple[float, float]:
    kept = times[warmup:]
    return 1e3 * statistics.median(kept), 1e3 * statistics.fmean(kept)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2, help="alternate the two loops this many times")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--length", type=int, default=1024)
    parser.add_argument("--d-model", type=int, default=32)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--state", type=int, default=64)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--log-dir", default="outputs/benchmarks/train_step_overhead")
    args = parser.parse_args()

    loops = {"plain PyTorch": time_plain, "sarexp (Lightning)": partial(time_sarexp, log_dir=args.log_dir)}
    kept: dict[str, list[float]] = {name: [] for name in loops}
    for _ in range(args.rounds):  # alternate, so neither loop profits from running later (warm caches, clocks)
        for name, run in loops.items():
            kept[name].extend(run(args)[args.warmup:])
    rows = [(name, *summarise(times, 0)) for name, times in kept.items()]
    plain_median = rows[0][1]
    print(f"\ntrain step, batch {args.batch} × L {args.length}, d_model {args.d_model}, {args.layers} layers, "
          f"N {args.state}, device {args.device}, {args.rounds} rounds × {args.steps} steps "
          f"({args.warmup} warm-up steps dropped per round)")
    print(f"{'loop':<20} {'median ms':>10} {'mean ms':>10} {'ratio':>7}")
    for name, median, mean in rows:
        print(f"{name:<20} {median:>10.2f} {mean:>10.2f} {median / plain_median:>7.3f}")


if __name__ == "__main__":
    main()
