"""Cost of the preemption flag check that PreemptionCheckpoint makes after every training step.

With one process it is a Python attribute read; under DDP it is one all-reduce of a single integer
(`Strategy.reduce_boolean_decision`). This times that all-reduce over gloo between local CPU processes
(NCCL on GPUs is in the same tens-of-microseconds range) and prints a table.

    python benchmarks/preemption_flag.py --world-sizes 2 4 --iterations 2000
"""

import argparse
import os
import statistics
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _worker(rank: int, world_size: int, iterations: int, port: int, results: "mp.Queue") -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    flag = torch.zeros(1, dtype=torch.int32)
    for _ in range(100):  # warm-up
        dist.all_reduce(flag)
    timings = []
    for _ in range(iterations):
        start = time.perf_counter()
        dist.all_reduce(flag)
        timings.append(time.perf_counter() - start)
    if rank == 0:
        results.put((statistics.median(timings) * 1e6, sorted(timings)[int(0.99 * len(timings))] * 1e6))
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world-sizes", type=int, nargs="+", default=[2])
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--port", type=int, default=29617)
    args = parser.parse_args()
    context = mp.get_context("spawn")
    print(f"{'processes':>9} | {'median µs':>9} | {'p99 µs':>9}")
    print(f"{'-' * 9}-+-{'-' * 9}-+-{'-' * 9}")
    for offset, world_size in enumerate(args.world_sizes):
        results = context.Queue()
        mp.start_processes(_worker, args=(world_size, args.iterations, args.port + offset, results),
                           nprocs=world_size, start_method="spawn")
        median, p99 = results.get()
        print(f"{world_size:>9} | {median:>9.1f} | {p99:>9.1f}")


if __name__ == "__main__":
    main()
