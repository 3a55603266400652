"""Data files shipped inside the package; each folder's README.md names their source and licence.

* ``calochallenge/binning_dataset_{1_photons,1_pions,2,3}.xml``: the CaloChallenge 2022 voxel binnings.
* ``calochallenge/published_results.csv``: published CaloChallenge figures per submission (AUCs,
  FPD/KPD, time per shower in ms, separation powers).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from ..errors import InputError


def package_file(relative: str) -> Path:
    """Path of a shipped data file, ``relative`` to ``lhcchain/data`` (e.g. ``calochallenge/binning_dataset_2.xml``)."""
    root = Path(str(files(__name__)))
    path = root / relative
    if not path.is_file():
        available = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.suffix in {".xml", ".csv"})
        raise InputError(f"no package data file {relative!r} in lhcchain/data; available: {', '.join(available)}")
    return path
