"""BigEarthNet label nomenclatures: the 43 CORINE level-3 names of v1 and the 19 classes used for training.

BigEarthNet v1 patches carry the 43 CORINE Land Cover level-3 names they overlap. The 19-class
nomenclature (Sumbul et al., "BigEarthNet-MM", IEEE GRSM 2021; the ``label_indices.json`` shipped with
the BigEarthNet-19 models and used by the SAR-W-MixMAE loader) merges some of them and drops seven that
cannot be recognised from a 1.2 km patch (roads, ports, airports, mines, dumps, construction sites, green
urban areas, sport facilities, bare rock, burnt areas, intertidal flats). BigEarthNet v2 (reBEN) stores
the 19-class names directly. Class index = position in :data:`BEN19_CLASSES`, the order of both sources.
"""

from collections.abc import Iterable

import numpy as np

BEN19_CLASSES: tuple[str, ...] = (
    "Urban fabric",
    "Industrial or commercial units",
    "Arable land",
    "Permanent crops",
    "Pastures",
    "Complex cultivation patterns",
    "Land principally occupied by agriculture, with significant areas of natural vegetation",
    "Agro-forestry areas",
    "Broad-leaved forest",
    "Coniferous forest",
    "Mixed forest",
    "Natural grassland and sparsely vegetated areas",
    "Moors, heathland and sclerophyllous vegetation",
    "Transitional woodland, shrub",
    "Beaches, dunes, sands",
    "Inland wetlands",
    "Coastal wetlands",
    "Inland waters",
    "Marine waters",
)

# The 43 level-3 names in BigEarthNet v1 order, each with its 19-class name (None: dropped).
CLC43_TO_BEN19: dict[str, str | None] = {
    "Continuous urban fabric": "Urban fabric",
    "Discontinuous urban fabric": "Urban fabric",
    "Industrial or commercial units": "Industrial or commercial units",
    "Road and rail networks and associated land": None,
    "Port areas": None,
    "Airports": None,
    "Mineral extraction sites": None,
    "Dump sites": None,
    "Construction sites": None,
    "Green urban areas": None,
    "Sport and leisure facilities": None,
    "Non-irrigated arable land": "Arable land",
    "Permanently irrigated land": "Arable land",
    "Rice fields": "Arable land",
    "Vineyards": "Permanent crops",
    "Fruit trees and berry plantations": "Permanent crops",
    "Olive groves": "Permanent crops",
    "Pastures": "Pastures",
    "Annual crops associated with permanent crops": "Permanent crops",
    "Complex cultivation patterns": "Complex cultivation patterns",
    "Land principally occupied by agriculture, with significant areas of natural vegetation": (
        "Land principally occupied by agriculture, with significant areas of natural vegetation"
    ),
    "Agro-forestry areas": "Agro-forestry areas",
    "Broad-leaved forest": "Broad-leaved forest",
    "Coniferous forest": "Coniferous forest",
    "Mixed forest": "Mixed forest",
    "Natural grassland": "Natural grassland and sparsely vegetated areas",
    "Moors and heathland": "Moors, heathland and sclerophyllous vegetation",
    "Sclerophyllous vegetation": "Moors, heathland and sclerophyllous vegetation",
    "Transitional woodland/shrub": "Transitional woodland, shrub",
    "Beaches, dunes, sands": "Beaches, dunes, sands",
    "Bare rock": None,
    "Sparsely vegetated areas": "Natural grassland and sparsely vegetated areas",
    "Burnt areas": None,
    "Inland marshes": "Inland wetlands",
    "Peatbogs": "Inland wetlands",
    "Salt marshes": "Coastal wetlands",
    "Salines": "Coastal wetlands",
    "Intertidal flats": None,
    "Water courses": "Inland waters",
    "Water bodies": "Inland waters",
    "Coastal lagoons": "Marine waters",
    "Estuaries": "Marine waters",
    "Sea and ocean": "Marine waters",
}

CLC43_CLASSES: tuple[str, ...] = tuple(CLC43_TO_BEN19)
_BEN19_INDEX = {name: index for index, name in enumerate(BEN19_CLASSES)}


class UnknownLabelError(ValueError):
    """A label name that is in neither nomenclature (the caller names the file it came from)."""


def ben19_multi_hot(names: Iterable[str]) -> np.ndarray:
    """float32 (19,) multi-hot vector of 19-class names (BigEarthNet v2 ``labels``)."""
    target = np.zeros(len(BEN19_CLASSES), dtype=np.float32)
    for name in names:
        if name not in _BEN19_INDEX:
            raise UnknownLabelError(f"unknown BigEarthNet-19 label {name!r}")
        target[_BEN19_INDEX[name]] = 1.0
    return target


def clc43_to_ben19_multi_hot(names: Iterable[str]) -> np.ndarray:
    """float32 (19,) multi-hot vector of 43-class CORINE names (BigEarthNet v1 ``labels``); dropped classes vanish."""
    target = np.zeros(len(BEN19_CLASSES), dtype=np.float32)
    for name in names:
        if name not in CLC43_TO_BEN19:
            raise UnknownLabelError(f"unknown BigEarthNet-43 (CORINE level-3) label {name!r}")
        merged = CLC43_TO_BEN19[name]
        if merged is not None:
            target[_BEN19_INDEX[merged]] = 1.0
    return target
