"""Single-machine DDP under Hydra, in single runs and in multiruns.

Lightning starts ranks 1…N−1 of a one-machine DDP job by running the command line again. Under
`--multirun` that command is the whole sweep, so every rank would start the sweep anew (Lightning
#11300, Hydra #2070), and the run dir it passes is Hydra's `run.dir`, not the job's sweep dir. Here the
ranks re-run *this job*: its own overrides, its output dir as `hydra.run.dir`, no `.hydra/` and no log
file of their own. Under SLURM (or torchrun) the ranks exist already and nothing is launched.

A system that lists networks in `ddp_parts` (sarexp.strategies.parts: a GAN) gets one DDP wrapper per
network instead of one around the whole module, so `find_unused_parameters` can stay false.
"""

import ctypes
import os
import signal
import subprocess
import sys
from pathlib import Path

import torch.distributed
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.overrides.distributed import _register_ddp_comm_hook
from lightning.pytorch.strategies import DDPStrategy
from lightning.pytorch.strategies.launchers.subprocess_script import _SubprocessScriptLauncher

from sarexp.errors import ConfigError
from sarexp.strategies.parts import has_parts, part_wrappers, unwrap_parts, wrap_parts

_DDP_VARIABLES = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")
_saved_environment: dict[str, str | None] | None = None


class HydraDDPStrategy(DDPStrategy):
    """`DDPStrategy` whose locally launched ranks re-run the current Hydra job, and which wraps the networks
    of a system with `ddp_parts` one by one."""

    def _configure_launcher(self) -> None:
        if self._start_method == "popen" and HydraConfig.initialized():
            self._launcher = _HydraJobLauncher(self.cluster_environment, self.num_processes, self.num_nodes)
        else:
            super()._configure_launcher()

    def configure_ddp(self) -> None:
        if not has_parts(self.model):
            super().configure_ddp()
            return
        wrap_parts(self.model, self._setup_model)  # self.model stays the LightningModule: no outer wrapper
        self._register_ddp_hooks()

    def _register_ddp_hooks(self) -> None:
        wrappers = part_wrappers(self.lightning_module)
        if not wrappers:
            super()._register_ddp_hooks()
            return
        if self.root_device.type == "cuda":  # communication hooks: NCCL only, as in Lightning
            for wrapper in wrappers.values():
                _register_ddp_comm_hook(model=wrapper, ddp_comm_state=self._ddp_comm_state,
                                        ddp_comm_hook=self._ddp_comm_hook, ddp_comm_wrapper=self._ddp_comm_wrapper)

    def teardown(self) -> None:
        unwrap_parts(self.lightning_module)
        super().teardown()


class _HydraJobLauncher(_SubprocessScriptLauncher):
    def _call_children_scripts(self) -> None:
        global _saved_environment
        self._check_can_spawn_children()
        _saved_environment = {name: os.environ.get(name) for name in _DDP_VARIABLES}
        os.environ["MASTER_ADDR"] = self.cluster_environment.main_address
        os.environ["MASTER_PORT"] = str(self.cluster_environment.main_port)
        os.environ["NODE_RANK"] = str(self.cluster_environment.node_rank())
        os.environ["LOCAL_RANK"] = str(self.cluster_environment.local_rank())
        os.environ["WORLD_SIZE"] = str(self.num_processes * self.num_nodes)
        job = HydraConfig.get()
        for local_rank in range(1, self.num_processes):
            environment = {**os.environ, "LOCAL_RANK": str(local_rank)}
            command = rank_command(list(job.overrides.task), Path(job.runtime.output_dir), local_rank)
            self.procs.append(subprocess.Popen(command, env=environment, cwd=job.runtime.cwd,
                                               preexec_fn=_die_with_parent if sys.platform == "linux" else None))


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Linux: a rank gets SIGTERM when rank 0 dies, instead of waiting out the rendezvous timeout."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def rank_command(task_overrides: list[str], output_dir: Path, local_rank: int) -> list[str]:
    """The command that runs one more rank of the job whose overrides and output dir are given."""
    if "'" in str(output_dir):
        raise ConfigError(f"hydra run dir {output_dir} contains a quote; DDP ranks cannot be pointed at it")
    return [
        sys.executable, "-m", "sarexp", *task_overrides,
        f"hydra.run.dir='{output_dir}'",
        "hydra.output_subdir=null",
        "hydra/job_logging=stdout",
        f"hydra.job.name=rank{local_rank}",
    ]


def release_local_ranks() -> None:
    """After a job that launched ranks: close the process group and restore the environment, so the next
    job of a multirun starts its own ranks on a fresh port instead of waiting for the old ones."""
    global _saved_environment
    if _saved_environment is None:
        return
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    for name, value in _saved_environment.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    _saved_environment = None
