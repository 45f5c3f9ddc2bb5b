"""Reading the colorization seed's metadata: ``<root>/data_r_NNN.csv`` rows → checked pair records.

Each CSV row names a SAR (``s1_fileName``) and an optical (``s2_fileName``) PNG relative to the dataset
folder; Windows-written ``\\`` separators are accepted, as is a leading component equal to the dataset folder's
own name (``Dataset/r_000/...``). ``region`` and ``season`` are lower-cased and checked against the configured
vocabularies; ``fall`` is read as ``autumn``. Every problem is a one-line DataError naming file, row and value.
"""

import csv
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath

from sarexp.errors import DataError

REQUIRED_COLUMNS = ("s1_fileName", "s2_fileName", "region", "season")
SEASON_ALIASES = {"fall": "autumn"}


@dataclass(frozen=True)
class PairRecord:
    """One SAR / optical pair: absolute paths, the scene (``r_NNN``) it comes from, and its metadata row."""

    sar: Path
    optical: Path
    scene: str
    region: str
    season: str
    metadata: dict[str, str]


def normalise_season(value: str) -> str:
    """Lower-case, stripped, ``fall`` → ``autumn``."""
    season = value.strip().lower()
    return SEASON_ALIASES.get(season, season)


def dataset_path(root: Path, name: str) -> Path:
    """A CSV file name (``/`` or ``\\`` separated, relative to the dataset folder) as a path under ``root``."""
    parts = [part for part in PureWindowsPath(name.strip()).parts if part not in ("", ".")]
    if len(parts) > 1 and parts[0] == root.name and not (root / parts[0]).exists():
        parts = parts[1:]
    return root.joinpath(*parts)


def csv_files(root: Path) -> list[Path]:
    """The sorted ``data_r_*.csv`` files of ``root``; DataError when there are none."""
    files = sorted(root.glob("data_r_*.csv"))
    if not files:
        raise DataError(f"{root}: no data_r_NNN.csv metadata files; data.root must be the seed's Dataset folder "
                        f"(r_NNN/s1_NNN, r_NNN/s2_NNN, data_r_NNN.csv)")
    return files


def read_csv(path: Path, root: Path, regions: tuple[str, ...], seasons: tuple[str, ...]) -> list[PairRecord]:
    """The checked records of one metadata CSV (files must exist; region and season must be known)."""
    if not path.is_file():
        raise DataError(f"{path}: metadata CSV not found")
    scene = path.stem.removeprefix("data_")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = [column for column in REQUIRED_COLUMNS if column not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"{path}: missing column(s) {', '.join(missing)}; expected the seed's columns "
                            f"s1_fileName, s2_fileName, ..., region, season, ...")
        return [_record(path, number, row, root, scene, regions, seasons) for number, row in enumerate(reader, 2)]


def _record(path: Path, line: int, row: dict[str, str], root: Path, scene: str, regions: tuple[str, ...],
            seasons: tuple[str, ...]) -> PairRecord:
    where = f"{path}, line {line}"
    region = (row.get("region") or "").strip().lower()
    season = normalise_season(row.get("season") or "")
    if region not in regions:
        raise DataError(f"{where}: unknown region {row.get('region')!r}; known: {list(regions)} (data.regions)")
    if season not in seasons:
        raise DataError(f"{where}: unknown season {row.get('season')!r}; known: {list(seasons)} and 'fall' "
                        f"(data.seasons)")
    files = {}
    for column in ("s1_fileName", "s2_fileName"):
        file = dataset_path(root, row.get(column) or "")
        if not row.get(column) or not file.is_file():
            raise DataError(f"{where}: {column} {row.get(column)!r} → {file} does not exist")
        files[column] = file
    metadata = {key: (value or "").strip() for key, value in row.items() if key is not None}
    metadata.update(region=region, season=season)
    return PairRecord(files["s1_fileName"], files["s2_fileName"], scene, region, season, metadata)


def read_records(root: Path, regions: tuple[str, ...], seasons: tuple[str, ...]) -> list[PairRecord]:
    """All records of a dataset folder, CSV by CSV in sorted order."""
    return [record for file in csv_files(root) for record in read_csv(file, root, regions, seasons)]
