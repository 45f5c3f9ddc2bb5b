"""A W&B logger whose run continues when the sarexp run does (auto-resume, SLURM requeue).

The W&B run id is created once per run dir and kept in `<save_dir>/wandb_run_id`; every later start in
that dir (resume, requeue, another rank) reuses it with `resume="allow"`, so W&B shows one run, not one
per attempt. Offline runs with the same id are merged by `wandb sync`.
"""

import os
import secrets
import tempfile
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import WandbLogger

ID_FILE = "wandb_run_id"


class ResumableWandbLogger(WandbLogger):
    """Lightning's WandbLogger with a run id tied to the run dir (same arguments otherwise)."""

    def __init__(
        self,
        save_dir: str,
        project: str | None = None,
        name: str | None = None,
        group: str | None = None,
        tags: list[str] | None = None,
        offline: bool = False,
        log_model: bool | str = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(save_dir=save_dir, project=project, name=name, group=group, tags=tags, offline=offline,
                         log_model=log_model, id=run_id(Path(save_dir)), resume="allow", **kwargs)


def run_id(directory: Path) -> str:
    """The W&B id stored in `directory`, created (atomically, first writer wins) when there is none."""
    path = directory / ID_FILE
    if not path.is_file():
        directory.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=f".{ID_FILE}.")
        with os.fdopen(handle, "w") as stream:
            stream.write(secrets.token_hex(8))
        try:
            os.link(temporary, path)  # fails if another process created it first
        except FileExistsError:
            pass
        finally:
            os.unlink(temporary)
    return path.read_text().strip()
