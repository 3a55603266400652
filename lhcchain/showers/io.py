"""CaloChallenge HDF5 shower files: ``incident_energies`` (N, 1) and ``showers`` (N, n_voxels), in MeV; and
:func:`in_chunks`, showers made chunk by chunk of incident energies.

This is the layout of the published datasets 1-3 and of every challenge submission, so the official
evaluation reads our files and we read theirs. Writing goes through a staging file
(:func:`lhcchain.io.staged_outputs`): a failure leaves nothing partial.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from ..errors import InputError
from ..io import Progress, staged_outputs
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


def _open(path: Path) -> h5py.File:
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise InputError(f"{path}: not a readable HDF5 file ({exc})") from exc


def _checked_energies(path: Path, dataset: h5py.Dataset, n: int | None = None) -> np.ndarray:
    """The first ``n`` (default: all) incident energies in MeV of ``dataset``, flat; InputError unless there
    is at least one and all are finite and > 0."""
    energy = np.asarray(dataset[:n], dtype=np.float64).reshape(-1)
    if len(energy) == 0:
        raise InputError(f"{path}: holds no showers")
    if not np.all(np.isfinite(energy)) or np.any(energy <= 0):
        raise InputError(f"{path}: 'incident_energies' must be finite and > 0 MeV; found {int(np.sum(~(energy > 0)))} bad value(s)")
    return energy


def read_showers(path: str | os.PathLike[str], geometry: Geometry, max_showers: int | None = None) -> Showers:
    """Read a CaloChallenge file, checking its keys, shapes, voxel count against ``geometry`` and signs."""
    path = Path(path)
    with _open(path) as f:
        missing = [k for k in KEYS if k not in f]
        if missing:
            raise InputError(f"{path}: missing dataset(s) {missing}; a CaloChallenge file holds {list(KEYS)}")
        e_ds, s_ds = f["incident_energies"], f["showers"]
        if s_ds.ndim != 2 or s_ds.shape[1] != geometry.n_voxels:
            raise InputError(f"{path}: 'showers' has shape {s_ds.shape}; binning {geometry.name!r} expects (N, {geometry.n_voxels})")
        if e_ds.shape not in {(s_ds.shape[0], 1), (s_ds.shape[0],)}:
            raise InputError(f"{path}: 'incident_energies' has shape {e_ds.shape}; expected ({s_ds.shape[0]}, 1) like 'showers'")
        n = s_ds.shape[0] if max_showers is None else min(int(max_showers), s_ds.shape[0])
        energy = _checked_energies(path, e_ds, n)
        voxels = np.asarray(s_ds[:n], dtype=np.float32)
    bad = ~np.isfinite(voxels) | (voxels < 0)
    if bad.any():
        raise InputError(f"{path}: 'showers' has {int(bad.sum())} negative or non-finite voxel energies (first in shower "
                         f"{int(np.argmax(bad.any(1)))}); voxel energies must be >= 0 MeV")
    return Showers(energy, voxels, str(path))


def read_incident_energies(path: str | os.PathLike[str]) -> np.ndarray:
    """The incident energies (N,) in MeV of a CaloChallenge file, read without its showers, checked as by
    :func:`read_showers`."""
    path = Path(path)
    with _open(path) as f:
        if "incident_energies" not in f:
            raise InputError(f"{path}: missing dataset(s) ['incident_energies']; a CaloChallenge file holds {list(KEYS)}")
        e_ds = f["incident_energies"]
        if e_ds.ndim not in (1, 2) or e_ds.shape[1:] not in {(), (1,)}:
            raise InputError(f"{path}: 'incident_energies' has shape {e_ds.shape}; expected (N, 1)")
        return _checked_energies(path, e_ds)


def in_chunks(make: Callable[[np.ndarray], np.ndarray], energy: np.ndarray, size: int, progress: Progress | None = None) -> np.ndarray:
    """``make(energies)`` (showers, or per-shower values) for consecutive chunks of ``size`` incident energies,
    concatenated: memory bounded by the chunk; ``progress`` counts the showers."""
    parts = []
    for lo in range(0, len(energy), int(size)):
        parts.append(make(energy[lo:lo + int(size)]))
        if progress is not None:
            progress.update(len(parts[-1]))
    return np.concatenate(parts)


def write_showers(path: str | os.PathLike[str], showers: Showers) -> None:
    """Write ``showers`` in the CaloChallenge layout (float32, gzip), staged."""
    with staged_outputs(path) as (tmp,):
        with h5py.File(tmp, "w") as f:
            f.create_dataset("incident_energies", data=np.asarray(showers.energy, dtype=np.float32).reshape(-1, 1), compression="gzip")
            f.create_dataset("showers", data=np.asarray(showers.voxels, dtype=np.float32), compression="gzip")
