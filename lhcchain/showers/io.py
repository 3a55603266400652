"""CaloChallenge HDF5 shower files: ``incident_energies`` (N, 1) and ``showers`` (N, n_voxels), in MeV.

This is the layout of the published datasets 1-3 and of every challenge submission, so the official
evaluation reads our files and we read theirs. Writing goes through a staging file
(:func:`lhcchain.io.staged_outputs`): a failure leaves nothing partial.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from ..errors import InputError
from ..io import staged_outputs
from .geometry import Geometry

KEYS = ("incident_energies", "showers")


@dataclass
class Showers:
    """Incident energies (N,) and voxel energies (N, n_voxels), both in MeV, with their source."""

    energy: np.ndarray
    voxels: np.ndarray
    source: str = ""

    def __len__(self) -> int:
        return len(self.energy)


def read_showers(path: str | os.PathLike[str], geometry: Geometry, max_showers: int | None = None) -> Showers:
    """Read a CaloChallenge file, checking its keys, shapes, voxel count against ``geometry`` and signs."""
    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except (OSError, FileNotFoundError) as exc:
        raise InputError(f"{path}: not a readable HDF5 file ({exc})") from exc
    with f:
        missing = [k for k in KEYS if k not in f]
        if missing:
            raise InputError(f"{path}: missing dataset(s) {missing}; a CaloChallenge file holds {list(KEYS)}")
        e_ds, s_ds = f["incident_energies"], f["showers"]
        if s_ds.ndim != 2 or s_ds.shape[1] != geometry.n_voxels:
            raise InputError(f"{path}: 'showers' has shape {s_ds.shape}; binning {geometry.name!r} expects (N, {geometry.n_voxels})")
        if e_ds.shape not in {(s_ds.shape[0], 1), (s_ds.shape[0],)}:
            raise InputError(f"{path}: 'incident_energies' has shape {e_ds.shape}; expected ({s_ds.shape[0]}, 1) like 'showers'")
        n = s_ds.shape[0] if max_showers is None else min(int(max_showers), s_ds.shape[0])
        energy = np.asarray(e_ds[:n], dtype=np.float64).reshape(-1)
        voxels = np.asarray(s_ds[:n], dtype=np.float32)
    if n == 0:
        raise InputError(f"{path}: holds no showers")
    if not np.all(np.isfinite(energy)) or np.any(energy <= 0):
        raise InputError(f"{path}: 'incident_energies' must be finite and > 0 MeV; found {int(np.sum(~(energy > 0)))} bad value(s)")
    bad = ~np.isfinite(voxels) | (voxels < 0)
    if bad.any():
        raise InputError(f"{path}: 'showers' has {int(bad.sum())} negative or non-finite voxel energies (first in shower "
                         f"{int(np.argmax(bad.any(1)))}); voxel energies must be >= 0 MeV")
    return Showers(energy, voxels, str(path))


def incident_energy_range(path: str | os.PathLike[str]) -> tuple[float, float]:
    """Smallest and largest incident energy (MeV) of a CaloChallenge file, read without its showers."""
    try:
        with h5py.File(Path(path), "r") as f:
            if "incident_energies" not in f:
                raise InputError(f"{path}: missing dataset 'incident_energies' of a CaloChallenge file")
            energy = np.asarray(f["incident_energies"][:], dtype=np.float64).reshape(-1)
    except OSError as exc:
        raise InputError(f"{path}: not a readable HDF5 file ({exc})") from exc
    if len(energy) == 0 or not np.all(np.isfinite(energy) & (energy > 0)):
        raise InputError(f"{path}: 'incident_energies' must be non-empty, finite and > 0 MeV")
    return float(energy.min()), float(energy.max())


def write_showers(path: str | os.PathLike[str], showers: Showers) -> None:
    """Write ``showers`` in the CaloChallenge layout (float32, gzip), staged."""
    with staged_outputs(path) as (tmp,):
        with h5py.File(tmp, "w") as f:
            f.create_dataset("incident_energies", data=np.asarray(showers.energy, dtype=np.float32).reshape(-1, 1), compression="gzip")
            f.create_dataset("showers", data=np.asarray(showers.voxels, dtype=np.float32), compression="gzip")
