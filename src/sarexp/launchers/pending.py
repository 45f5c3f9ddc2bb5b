"""Jobs SLURM accepted but can never start, told apart from jobs that wait their turn.

A request beyond every node of the partition (8 CPUs per task on 2-CPU nodes, more nodes than exist) is
accepted by ``sbatch`` when the partition does not enforce its limits, and then stays PENDING forever
with a reason naming the partition's configuration; a sweep would wait for it forever. ``squeue``'s
pending reason (``%r``) tells: ``Resources`` or ``Priority`` clear when other jobs end, the reasons in
:data:`NEVER_CLEARS` do not. The launcher polls until every job has left the pending state and cancels
the jobs with one line as soon as one of them can never start. Requests SLURM refuses outright (memory,
GPUs the nodes do not have) fail at submission; :func:`submission_error` makes that one line too.
"""

import logging
import subprocess
import time
from collections.abc import Callable, Sequence
from typing import Any

from sarexp.errors import ConfigError

log = logging.getLogger(__name__)

NEVER_CLEARS = {
    "PartitionConfig": "the request exceeds every node of the partition (CPUs per task, memory, GPUs or node count)",
    "BadConstraints": "no node of the partition can satisfy the request's constraints",
    "PartitionNodeLimit": "more nodes than the partition allows",
    "PartitionTimeLimit": "a time limit beyond the partition's",
    "InvalidAccount": "the account does not exist or may not use the partition",
    "InvalidQOS": "the QOS does not exist or may not be used",
}
REQUEST_KEYS = ("nodes", "tasks_per_node", "cpus_per_task", "mem_gb", "gpus_per_node", "partition", "timeout_min")
FIX = ("lower the launcher.* request to what the nodes have (sinfo -o '%P %D %c %m %G' lists nodes, CPUs, "
       "memory in MB and GPUs per partition)")


def pending_reasons(job_ids: Sequence[str], run: Callable[..., Any] = subprocess.run) -> dict[str, str]:
    """Pending reason of every listed job (array tasks expanded) that is still PENDING."""
    arrays = sorted({str(job_id).split("_")[0] for job_id in job_ids})
    result = run(["squeue", "-h", "-r", "-o", "%i|%T|%r", "-j", ",".join(arrays)],
                 capture_output=True, text=True, timeout=30)
    reasons = {}
    for line in result.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 3 and parts[1] == "PENDING":
            reasons[parts[0]] = parts[2]
    return reasons


def describe(request: dict[str, Any]) -> str:
    return ", ".join(f"{key}={request[key]}" for key in REQUEST_KEYS if request.get(key) is not None)


def wait_until_started(job_ids: Sequence[str], request: dict[str, Any], poll_s: float = 3.0,
                       run: Callable[..., Any] = subprocess.run, sleep: Callable[[float], None] = time.sleep) -> None:
    """Return once no job is pending any more; cancel all and raise ConfigError when one never can start."""
    while True:
        reasons = pending_reasons(job_ids, run)
        hopeless = {job: reason for job, reason in reasons.items() if reason.split(",")[0] in NEVER_CLEARS}
        if hopeless:
            job, reason = sorted(hopeless.items())[0]
            run(["scancel", *sorted({str(job_id).split("_")[0] for job_id in job_ids})],
                capture_output=True, text=True, timeout=30)
            cause = NEVER_CLEARS[reason.split(",")[0]]
            raise ConfigError(
                f"SLURM job {job} can never start: pending with reason {reason} ({cause}: {describe(request)}); "
                f"cancelled; {FIX}"
            )
        if not reasons:
            return
        log.debug("pending: %s", reasons)
        sleep(poll_s)


def submission_error(error: BaseException, request: dict[str, Any]) -> ConfigError:
    """One line for a request ``sbatch`` refused (its last error line, the request, the fix)."""
    lines = [line.strip().removeprefix("sbatch: error: ") for line in str(error).splitlines() if line.strip()]
    refusal = "; ".join(line for line in lines if not line.startswith("Batch job submission failed")) or (
        lines[-1] if lines else type(error).__name__)
    return ConfigError(f"sbatch refused the job: {refusal} ({describe(request)}); {FIX}")
