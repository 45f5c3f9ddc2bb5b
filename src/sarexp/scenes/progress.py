"""The scene progress bar (rich): tiles done of all, tiles per second, time left; one bar per scene."""

from types import TracebackType

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class TilesPerSecond(ProgressColumn):
    """The task's speed in tiles per second (rich's own speed columns count bytes)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("? tiles/s" if speed is None else f"{speed:.2f} tiles/s", style="progress.data.speed")


class SceneProgress:
    """A rich progress display of tiles; :meth:`scene` starts the bar of one scene."""

    def __init__(self, enabled: bool = True) -> None:
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("tiles"), TilesPerSecond(), TimeElapsedColumn(), TextColumn("ETA"),
                                 TimeRemainingColumn(), disable=not enabled)
        self.task = None

    def __enter__(self) -> "SceneProgress":
        self.progress.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.progress.__exit__(kind, error, traceback)

    def scene(self, name: str, total: int, done: int) -> None:
        """A new bar for ``total`` tiles, ``done`` of them already finished by an earlier run."""
        self.task = self.progress.add_task(name, total=total, completed=done)

    def advance(self, tiles: int) -> None:
        self.progress.advance(self.task, tiles)
