"""Pictures in every logger: one helper that every callback and task (sarexp.tasks.figures) calls for its figures.

A figure is written as a PNG in the run dir (atomically: temp file beside the target, then rename) and
the very same pixels are logged to each active logger under a stable tag with the global step:
TensorBoard as an image (`add_image`, HWC uint8), W&B as a `wandb.Image` (offline runs included; the
logger's `log_image` keeps the step as `trainer/global_step`). Loggers without images (CSV) are skipped.
"""

import io
from pathlib import Path
from typing import Any, Union

import numpy as np
from PIL import Image

from sarexp.io.atomic import write_file_atomically

ImageLike = Union[str, Path, np.ndarray, "matplotlib.figure.Figure"]  # noqa: F821 (matplotlib is optional)


def to_rgb_array(image: ImageLike) -> np.ndarray:
    """An H×W×3 uint8 array from a PNG path, a matplotlib figure or an array (H×W grey or H×W×3/4)."""
    if isinstance(image, (str, Path)):
        with Image.open(image) as opened:
            return np.asarray(opened.convert("RGB"))
    if hasattr(image, "savefig"):
        return to_rgb_array_from_png(figure_png_bytes(image))
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise TypeError(f"images to log must be uint8 arrays (got {array.dtype}); scale them to 0…255 first")
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(f"images to log must be H×W, H×W×3 or H×W×4, got shape {array.shape}")
    return np.ascontiguousarray(array[:, :, :3])


def figure_png_bytes(figure: Any, dpi: int = 100) -> bytes:
    """A matplotlib figure rendered as PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def to_rgb_array_from_png(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as opened:
        return np.asarray(opened.convert("RGB"))


def save_png(image: ImageLike, path: Path, dpi: int = 100) -> np.ndarray:
    """Write `image` to `path` as a PNG atomically and return its pixels (H×W×3 uint8) for the loggers."""
    if hasattr(image, "savefig"):
        data = figure_png_bytes(image, dpi)
        pixels = to_rgb_array_from_png(data)
    else:
        pixels = to_rgb_array(image)
        buffer = io.BytesIO()  # grey stays grey in the file; loggers get RGB
        Image.fromarray(pixels if isinstance(image, (str, Path)) else np.asarray(image)).save(buffer, format="png")
        data = buffer.getvalue()
    write_file_atomically(Path(path), lambda stream: stream.write(data))
    return pixels


def image_loggers(loggers: list[Any]) -> list[Any]:
    """The loggers that show images: TensorBoard and W&B."""
    from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

    return [logger for logger in loggers if isinstance(logger, (TensorBoardLogger, WandbLogger))]


def log_image(trainer: Any, tag: str, image: ImageLike, step: int | None = None) -> None:
    """Log `image` to every logger of `trainer` that shows images, at `step` (default: the global step)."""
    log_image_to(trainer.loggers, tag, image, trainer.global_step if step is None else step)


def log_image_to(loggers: list[Any], tag: str, image: ImageLike, step: int) -> None:
    """Log `image` to each of `loggers` that shows images (TensorBoard, W&B), at `step`."""
    from lightning.pytorch.loggers import TensorBoardLogger

    loggers = image_loggers(loggers)
    if not loggers:
        return
    pixels = to_rgb_array(image)
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.experiment.add_image(tag, pixels, global_step=step, dataformats="HWC")
            logger.experiment.flush()
        else:
            logger.log_image(key=tag, images=[pixels], step=step)


def save_and_log_image(trainer: Any, tag: str, image: ImageLike, path: Path, step: int | None = None,
                       dpi: int = 100) -> None:
    """The PNG in the run dir and the same pixels in every logger: what callbacks call for each figure."""
    log_image(trainer, tag, save_png(image, path, dpi), step)
