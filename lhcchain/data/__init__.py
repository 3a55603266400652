"""Data files shipped inside the package; each folder's README.md names their source and licence.

* ``calochallenge/binning_dataset_{1_photons,1_pions,2,3}.xml``: the CaloChallenge 2022 voxel binnings.
* ``calochallenge/published_results.csv``: published CaloChallenge figures per submission (AUCs,
  FPD/KPD, time per shower in ms, separation powers).
"""

from __future__ import annotations

from pathlib import Path

from ..config import DATA, package_data_files
from ..errors import InputError


def package_file(relative: str) -> Path:
    """Path of a shipped data file, ``relative`` to ``lhcchain/data`` (e.g. ``calochallenge/binning_dataset_2.xml``)."""
    path = DATA / relative
    if not path.is_file():
        available = [str(p.relative_to(DATA)) for p in package_data_files()]
        raise InputError(f"no package data file {relative!r} in lhcchain/data; available: {', '.join(available)}")
    return path
