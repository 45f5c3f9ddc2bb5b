"""What a run leaves in its directory besides Lightning's own files: run_info.json, metrics.json, and the
choice of the checkpoint a run starts from (auto-resume)."""

import json
import os
import platform
import socket
import subprocess
import sys
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sarexp.io.atomic import write_file_atomically
from sarexp.io.checkpoint_io import refuse_unsafe_globals
from sarexp.errors import ConfigError

LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    """Write JSON through a temporary file and a rename, so readers never see half a file."""
    text = json.dumps(payload, indent=2, sort_keys=True) + "\n"
    write_file_atomically(path, lambda handle: handle.write(text.encode()))


def write_metrics(run_dir: Path, metrics: dict[str, Any]) -> dict[str, float]:
    """Write `metrics.json`: a flat object of floats, one per logged metric.

    Lightning also reports metrics logged both per step and per epoch as `<name>_step` and `<name>_epoch`
    beside `<name>` (the epoch value); only `<name>` is kept.
    """
    kept = {key: value for key, value in metrics.items() if not key.endswith(("_step", "_epoch"))}
    flat = {key: _as_float(value) for key, value in sorted(kept.items())}
    flat = {key: value for key, value in flat.items() if value is not None}
    write_json_atomic(run_dir / "metrics.json", flat)
    return flat


def _as_float(value: Any) -> float | None:
    try:
        return float(value.item() if hasattr(value, "item") else value)
    except (TypeError, ValueError):
        return None


def git_state(directory: Path) -> dict[str, Any]:
    """Commit, branch and dirtiness of the git checkout holding `directory` (nulls outside a checkout)."""

    def git(*args: str) -> str | None:
        try:
            result = subprocess.run(
                ["git", "-C", str(directory), *args], capture_output=True, text=True, timeout=10, check=True
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return result.stdout.strip()

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "branch": None, "dirty": None}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "branch": git("rev-parse", "--abbrev-ref", "HEAD"), "dirty": bool(status)}


def source_checkout() -> Path:
    """The directory whose git state describes the code that runs: the sarexp sources."""
    return Path(__file__).resolve().parent


def record_run_info(run_dir: Path, seed: int | None) -> dict[str, Any]:
    """Write `run_info.json` (git state, command, host, seed, SLURM job) and return it for the loggers."""
    info = {
        "git": git_state(source_checkout()),
        "command": [_program(), *sys.argv[1:]],
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "python": platform.python_version(),
        "seed": seed,
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
    }
    write_json_atomic(run_dir / "run_info.json", info)
    return info


def _program() -> str:
    name = Path(sys.argv[0]).name
    return "python -m sarexp" if name == "__main__.py" else name


def check_checkpoint_file(path: Path, key: str = "ckpt_path") -> Path:
    """Fail early, naming the file, when a checkpoint is missing, not a readable torch archive, or holds objects
    that weights-only loading refuses."""
    if not path.is_file():
        raise ConfigError(f"{key}={path}: no such checkpoint file; pass the path of a .ckpt file")
    if not zipfile.is_zipfile(path):
        raise ConfigError(
            f"{key}={path}: not a readable PyTorch checkpoint (truncated or corrupt?); use another checkpoint"
        )
    refuse_unsafe_globals(path, key)
    return path


def start_checkpoint(run_dir: Path, ckpt_path: str | None, resume: bool) -> Path | None:
    """The checkpoint a training run starts from.

    `last.ckpt` of this run dir wins when `resume` is on, so a re-run or a requeued job continues where it
    stopped even if its command line also names `ckpt_path`; otherwise `ckpt_path`; otherwise none.
    """
    last = run_dir / LAST_CHECKPOINT
    if resume and last.exists():
        return check_checkpoint_file(last, key="resume")
    if ckpt_path:
        return check_checkpoint_file(Path(ckpt_path))
    return None
