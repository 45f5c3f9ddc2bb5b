"""Figures of the tasks that run without a Trainer (sample, evaluate, colorize) in the configured loggers.

Callbacks send each figure to the run dir as a PNG and, the same pixels, to TensorBoard and W&B
(:mod:`sarexp.loggers.images`); a task does the same through :func:`task_figures`, which builds the loggers of
`logger=[...]` for the task's run dir. Tags are stable (``sample/grid``, ``evaluate/semivariogram``, …) and the
step is 0: a task draws each figure once. With no image logger configured (the default `logger: csv`), only the
PNG files are written.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from sarexp.loggers.images import ImageLike, image_loggers, log_image_to, save_png
from sarexp.tasks.builders import build_loggers


class TaskFigures:
    """Writes a task's figures as PNG files and logs them to `loggers` (those without images are ignored)."""

    def __init__(self, loggers: list[Any]) -> None:
        self.loggers = image_loggers(loggers)

    def save(self, tag: str, image: ImageLike, path: Path, dpi: int = 100) -> None:
        """`image` (a uint8 array or a matplotlib figure) as a PNG at `path`, and in the loggers under `tag`."""
        log_image_to(self.loggers, tag, save_png(image, path, dpi), step=0)

    def log_png(self, tag: str, path: Path) -> None:
        """A PNG the task has written, in the loggers under `tag`."""
        log_image_to(self.loggers, tag, path, step=0)


@contextmanager
def task_figures(cfg: DictConfig) -> Iterator[TaskFigures]:
    """The task's figure writer; its loggers are finalized (written out) when the block ends."""
    figures = TaskFigures(build_loggers(cfg))
    status = "failed"
    try:
        yield figures
        status = "success"
    finally:
        for logger in figures.loggers:
            logger.finalize(status)
