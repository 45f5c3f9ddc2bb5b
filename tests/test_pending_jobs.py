"""Pending SLURM jobs: reasons that never clear end the launch with one line (and cancel the jobs), reasons
that clear (Resources, Priority) are waited out, and a request sbatch refuses is one line. squeue and
scancel are replaced by recorded answers here; tests/test_slurm_nodes.py runs the real ones."""

import subprocess

import pytest

from sarexp.errors import ConfigError
from sarexp.launchers.pending import pending_reasons, submission_error, wait_until_started

REQUEST = {"nodes": 1, "tasks_per_node": 1, "cpus_per_task": 8, "mem_gb": None, "gpus_per_node": 0,
           "partition": "debug", "timeout_min": 240}


class FakeSlurm:
    """Answers squeue with one prepared output per poll and records every command."""

    def __init__(self, polls: list[str]) -> None:
        self.polls = polls
        self.commands: list[list[str]] = []

    def __call__(self, command, **kwargs):
        self.commands.append(command)
        stdout = self.polls.pop(0) if command[0] == "squeue" else ""
        return subprocess.CompletedProcess(command, 0, stdout=stdout, stderr="")


def test_array_tasks_are_listed_with_their_reasons():
    slurm = FakeSlurm(["12_0|PENDING|Resources\n12_1|RUNNING|None\n13|PENDING|PartitionConfig\n"])
    assert pending_reasons(["12_0", "12_1", "13"], slurm) == {"12_0": "Resources", "13": "PartitionConfig"}
    assert slurm.commands[0] == ["squeue", "-h", "-r", "-o", "%i|%T|%r", "-j", "12,13"]


def test_a_reason_that_never_clears_cancels_and_is_one_line():
    slurm = FakeSlurm(["7_0|PENDING|None\n", "7_0|PENDING|PartitionConfig\n"])
    naps = []
    with pytest.raises(ConfigError) as error:
        wait_until_started(["7_0"], REQUEST, run=slurm, sleep=naps.append)
    assert str(error.value) == (
        "SLURM job 7_0 can never start: pending with reason PartitionConfig (the request exceeds every node of the "
        "partition (CPUs per task, memory, GPUs or node count): nodes=1, tasks_per_node=1, cpus_per_task=8, "
        "gpus_per_node=0, partition=debug, timeout_min=240); cancelled; lower the launcher.* request to what the "
        "nodes have (sinfo -o '%P %D %c %m %G' lists nodes, CPUs, memory in MB and GPUs per partition)")
    assert slurm.commands[-1][0] == "scancel" and slurm.commands[-1][1:] == ["7"]
    assert len(naps) == 1


def test_waiting_for_resources_ends_when_the_jobs_start():
    slurm = FakeSlurm(["9_0|PENDING|Priority\n9_1|PENDING|Resources\n", "9_1|PENDING|Resources\n", ""])
    naps = []
    wait_until_started(["9_0", "9_1"], REQUEST, run=slurm, sleep=naps.append)
    assert len(naps) == 2 and all(command[0] == "squeue" for command in slurm.commands)


def test_a_refused_submission_is_one_line():
    stderr = ("sbatch: error: Memory specification can not be satisfied\n"
              "sbatch: error: Batch job submission failed: Requested node configuration is not available")
    message = str(submission_error(RuntimeError(stderr), {**REQUEST, "mem_gb": 100000}))
    assert "\n" not in message
    assert message.startswith("sbatch refused the job: Memory specification can not be satisfied (")
    assert "mem_gb=100000" in message
