"""Convert BigEarthNet-S1 v1.0 per-patch folders into the zarr store that ``data=benv1_zarr`` reads.

The SAR-W-MixMAE code reads BENv1 from one zarr store (``sentinel1/<patch>/{VH,VV}`` arrays, the labels
as group attributes) but does not publish how it was built; this writes that layout from the official
download, keeping every field of ``<patch>_labels_metadata.json`` as attributes:

    python -m sarexp.data.bigearthnet_zarr /data/BigEarthNet-S1-v1.0 /data/benv1/BigEarthNet-S1-v1.0.zarr
"""

import argparse
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import zarr

from sarexp.data.input_checks import check_finite
from sarexp.errors import DataError
from sarexp.io.raster import read_geotiff_band

POLARISATIONS = ("VH", "VV")


def convert_benv1_to_zarr(patches_dir: str | os.PathLike[str], store: str | os.PathLike[str]) -> int:
    """Write every patch folder of ``patches_dir`` into a new zarr ``store``; return the number of patches."""
    patches_dir, store = Path(patches_dir), Path(store)
    folders = sorted(path for path in patches_dir.iterdir() if path.is_dir()) if patches_dir.is_dir() else []
    if not folders:
        raise DataError(f"{patches_dir}: no patch folders; point at the BigEarthNet-S1-v1.0 directory")
    if store.exists():
        raise DataError(f"{store}: already exists; choose a new path for the zarr store")
    sentinel1 = zarr.open_group(store, mode="w").create_group("sentinel1")
    for folder in folders:
        name = folder.name
        metadata_path = folder / f"{name}_labels_metadata.json"
        try:
            metadata = json.loads(metadata_path.read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
            raise DataError(f"{metadata_path}: cannot read the labels JSON ({error})") from None
        group = sentinel1.create_group(name)
        for polarisation in POLARISATIONS:
            path = folder / f"{name}_{polarisation}.tif"
            band = check_finite(read_geotiff_band(path), path).astype(np.float32, copy=False)
            group.create_array(polarisation, data=np.ascontiguousarray(band))
        group.attrs.update(metadata)
    return len(folders)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("patches_dir", help="the BigEarthNet-S1-v1.0 directory of per-patch folders")
    parser.add_argument("store", help="the zarr store to create, e.g. <data.root>/BigEarthNet-S1-v1.0.zarr")
    args = parser.parse_args(argv)
    try:
        count = convert_benv1_to_zarr(args.patches_dir, args.store)
    except DataError as error:
        raise SystemExit(f"error: {error}") from None
    print(f"wrote {count} patches to {args.store}")


if __name__ == "__main__":
    main()
