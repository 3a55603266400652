"""Stage ``showers``: calorimeter showers in the CaloChallenge format.

* :mod:`.geometry`: voxel binnings from the challenge's XML files;
* :mod:`.io`: CaloChallenge HDF5 files;
* :mod:`.reference`: GFLASH-style parametrised electromagnetic showers (the reference simulation);
* :mod:`.surrogate`: the CaloDREAM-style shower surrogate (energy and shower networks);
* :mod:`.evaluate`: the challenge's high-level features, separation powers, FPD/KPD, classifier tests, timing.

Rule helpers (no Snakemake import): :func:`data_files` and :func:`reference_settings`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import InputError

SPLITS = ("train", "test")


def data_files(config: Mapping[str, Any]) -> dict[str, str]:
    """The training and held-out CaloChallenge files: ``showers.data.files`` ([train, test]) when given,
    else the reference simulation's ``results/showers/reference/{train,test}.h5``."""
    files = list(config["showers"]["data"]["files"])
    if not files:
        return {split: f"results/showers/reference/{split}.h5" for split in SPLITS}
    if len(files) != 2:
        raise InputError(f"config: showers.data.files must list [train, test] CaloChallenge files, got {files}")
    return dict(zip(SPLITS, files))


def reference_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The reference simulation's settings: ``showers.reference`` with the stage's read-out ``threshold_mev``
    (one threshold for the reference, the surrogate and the evaluation)."""
    showers = config["showers"]
    return {**showers["reference"], "threshold_mev": showers["threshold_mev"]}
