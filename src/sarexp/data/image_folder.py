"""Image folders: one image per file, the class given by the sub-folder.

Layout::

    <root>/train/<class>/<any name>.<ext>     class-conditional data: the sorted sub-folder names of
    <root>/val/<class>/...                    the train split are the classes 0..K-1
    <root>/test/<class>/...                   optional; the val split is used when it is missing
    <root>/train/<any name>.<ext>             unlabelled data: images directly in the split folder

Any format PIL reads (PNG, JPEG, BMP, 8-bit or 16-bit grey or RGB); ``.tif``/``.tiff`` are decoded by GDAL
(:func:`sarexp.io.raster.read_tiff_bands`: any compression, float32, multi-band TIFF with bands first or
pixel-interleaved, any band count). Grey images give one
channel, RGB three (RGBA loses alpha); scaling to [−1, 1] follows ``data.scaling``
(:mod:`sarexp.data.scaling`).
"""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from sarexp.data.generative import ImageDataModule, make_item
from sarexp.data.scaling import ImageScaling
from sarexp.errors import DataError, first_line
from sarexp.io.raster import TIFF_SUFFIXES, read_tiff_bands

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".pgm", ".ppm", *TIFF_SUFFIXES)


def read_image(path: Path) -> np.ndarray:
    """The image at ``path`` as a (C, H, W) array of its stored dtype."""
    if path.suffix.lower() in TIFF_SUFFIXES:
        array = read_tiff_bands(path)  # bands first or pixel-interleaved, any band count
    else:
        try:
            with Image.open(path) as image:
                if image.mode in ("RGBA", "P", "CMYK", "YCbCr", "LA", "PA"):
                    image = image.convert("RGB" if image.mode != "LA" else "L")
                array = np.asarray(image)
        except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as error:
            raise DataError(f"{path}: cannot be read as an image (truncated or corrupt? {first_line(error)})") from None
        if array.ndim == 3:
            array = np.moveaxis(array, -1, 0)
    return array[None] if array.ndim == 2 else array


def _image_files(directory: Path) -> list[Path]:
    return sorted(path for path in directory.iterdir() if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES)


class ImageFolderDataset(Dataset):
    """Images of one split folder, labelled by class sub-folder (``class_names`` fixes the label order)."""

    def __init__(
        self,
        directory: Path,
        scaling: ImageScaling,
        image_size: int,
        *,
        class_names: Sequence[str] | None = None,
        low_res_size: int | None = None,
    ) -> None:
        self.directory = directory
        self.scaling = scaling
        self.image_size = image_size
        self.low_res_size = low_res_size
        folders = sorted(path.name for path in directory.iterdir() if path.is_dir())
        self.class_names = list(class_names) if class_names is not None else folders
        unknown = sorted(set(folders) - set(self.class_names))
        if unknown:
            raise DataError(
                f"{directory}: class folders {unknown} are not classes of the train split {self.class_names}"
            )
        self.files: list[tuple[Path, int | None]] = []
        if self.class_names:
            for label, name in enumerate(self.class_names):
                folder = directory / name
                self.files.extend((path, label) for path in (_image_files(folder) if folder.is_dir() else []))
        else:
            self.files = [(path, None) for path in _image_files(directory)]

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        path, label = self.files[index]
        image = self.scaling(read_image(path), str(path))
        return make_item(image, label, self.image_size, self.low_res_size)


class ImageFolderDataModule(ImageDataModule):
    """Image folders under ``root/{train,val,test}`` (see the module docstring)."""

    layout = "train/ and val/ folders (optionally test/) of images, one sub-folder per class"

    def split_exists(self, split: str) -> bool:
        return (self.root / split).is_dir()

    def build_dataset(self, split: str) -> ImageFolderDataset:
        classes = None
        if split != "train":
            classes = ImageFolderDataset(self.root / "train", self.scaling, self.image_size).class_names
        return ImageFolderDataset(
            self.root / split, self.scaling, self.image_size, class_names=classes, low_res_size=self.low_res_size
        )
