"""Start the ranks of a tests/ddp_worker.py job as torchrun would: one process per rank with the rendezvous in
its environment, so Lightning (which sees LOCAL_RANK) joins them instead of launching its own."""

import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

WORKER = Path(__file__).resolve().parent / "ddp_worker.py"


@dataclass
class JobResult:
    returncodes: list[int]
    logs: list[str]

    @property
    def ok(self) -> bool:
        return all(code == 0 for code in self.returncodes)

    def tail(self, characters: int = 4000) -> str:
        return "\n".join(f"--- rank {rank} (exit {code})\n{log[-characters:]}"
                         for rank, (code, log) in enumerate(zip(self.returncodes, self.logs)))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch(plan: dict, workdir: Path, world_size: int = 2, timeout: float = 600,
           environment: dict[str, str] | None = None) -> JobResult:
    """Run the plan on `world_size` ranks; a rank still running at `timeout` is killed (with the others)."""
    workdir.mkdir(parents=True, exist_ok=True)
    plan_file = workdir / "plan.json"
    plan_file.write_text(json.dumps(plan))
    base = {key: value for key, value in os.environ.items() if key != "HYDRA_FULL_ERROR"}
    base.update(environment or {})
    base.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), WORLD_SIZE=str(world_size), NODE_RANK="0",
                PYTHONUNBUFFERED="1", OMP_NUM_THREADS=base.get("OMP_NUM_THREADS", "1"))
    logs = [workdir / f"rank{rank}.log" for rank in range(world_size)]
    processes = []
    for rank in range(world_size):
        env = {**base, "RANK": str(rank), "LOCAL_RANK": str(rank)}
        with open(logs[rank], "w") as log:
            processes.append(subprocess.Popen([sys.executable, str(WORKER), str(plan_file)], env=env, stdout=log,
                                              stderr=subprocess.STDOUT, cwd=workdir))
    try:
        for process in processes:
            process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        for process in processes:
            process.kill()
        for process in processes:
            process.wait()
    return JobResult([process.returncode for process in processes], [log.read_text() for log in logs])
