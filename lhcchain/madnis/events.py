"""Unweighted events from a trained integrator, written as LHE (pylhe) and parquet.

Each accepted point is mapped back to its momenta through its channel's phase-space mapping; its
subprocess (flavours) is drawn with probability ``S_k L_k |M_k|^2`` among the process's
subprocesses, and its colour flow by :mod:`lhcchain.physics.colour`.

LHE: hadronic processes have proton beams (2212) at ``sqrt_s / 2``; the partonic ``g g -> n g``
processes have gluon beams at ``sqrt(s_hat) / 2`` (readable, but Pythia cannot shower gluon beams).
``IDWTUP = 3`` (unit weights), every event weight ``sigma / N`` in pb; ``SCALUP`` is the
factorisation scale (hadronic) or the smallest final-state p_T (partonic), GeV.

Parquet: one row per event, ``pid_i, px_i, py_i, pz_i, e_i`` (GeV) for legs ``i = 0 .. n-1`` (two
incoming first), ``x1, x2`` (NaN if partonic), ``channel`` and ``weight`` (pb, ``sigma / N``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pylhe
import torch

from ..physics.colour import colour_tags
from ..physics.kinematics import minkowski_square, transverse_momentum
from ..physics.process import Process

PROTON = 2212


def event_momenta(process: Process, x: torch.Tensor, channels: torch.Tensor, *,
                  weight: bool = False) -> dict[str, torch.Tensor]:
    """Lab-frame momenta (batch, legs, 4), partonic momenta and ``x1``, ``x2`` (NaN if partonic) of
    points ``x`` drawn in ``channels`` (both from a MadNIS sample), on the process's device; with
    ``weight``, also the channel's phase-space weight ``"weight"`` (batch,)."""
    n = x.shape[0]
    legs = 2 + process.n_out
    lab = torch.zeros(n, legs, 4, dtype=process.dtype, device=process.device)
    partonic = torch.zeros_like(lab)
    x1 = torch.full((n,), float("nan"), dtype=process.dtype, device=process.device)
    x2 = x1.clone()
    ps_weight = torch.zeros(n, dtype=process.dtype, device=process.device) if weight else None
    for c in range(process.n_channels):
        index = (channels == c).nonzero().squeeze(-1).to(process.device)
        if index.numel():
            point = process.map_point(x[index.to(x.device)], c)
            lab[index], partonic[index] = point.momenta, point.partonic
            if point.x1 is not None:
                x1[index], x2[index] = point.x1, point.x2
            if ps_weight is not None:
                ps_weight[index] = point.weight
    kin = {"lab": lab, "partonic": partonic, "x1": x1, "x2": x2}
    if ps_weight is not None:
        kin["weight"] = ps_weight
    return kin


def draw_subprocesses(process: Process, kin: Mapping[str, torch.Tensor], rng: np.random.Generator) -> np.ndarray:
    """Index of the subprocess of each event, drawn with probability ``S_k L_k |M_k|^2``."""
    if len(process.subprocesses) == 1:
        return np.zeros(kin["lab"].shape[0], dtype=np.int64)
    p = kin["partonic"]
    hadronic = process.hadronic
    lum = process.parton_luminosities(p, kin["x1"] if hadronic else None, kin["x2"] if hadronic else None)
    share = (process.subprocess_matrix_elements(p) * lum * process.symmetry_factors).clamp(min=0).cpu().numpy()
    share = share / share.sum(1, keepdims=True)
    return (rng.random(len(share))[:, None] > np.cumsum(share, 1)).sum(1).clip(max=share.shape[1] - 1)


def _scale(process: Process, kin: Mapping[str, torch.Tensor]) -> np.ndarray:
    if process.hadronic:
        return process.factorisation_scales2(kin["lab"])[:, 0].sqrt().cpu().numpy()
    return transverse_momentum(kin["lab"][:, 2:]).min(-1).values.cpu().numpy()


def events_table(process: Process, kin: Mapping[str, torch.Tensor], subprocesses: np.ndarray,
                 channels: np.ndarray, weight: float) -> pa.Table:
    """The parquet table of the events (module doc)."""
    lab = kin["lab"].cpu().numpy()
    columns: dict[str, np.ndarray] = {}
    ids = np.array([(*process.subprocesses[k].initial, *process.subprocesses[k].final) for k in subprocesses],
                   dtype=np.int64).reshape(len(subprocesses), -1)
    for leg in range(lab.shape[1]):
        columns[f"pid_{leg}"] = ids[:, leg]
        for j, comp in enumerate(("e", "px", "py", "pz")):
            columns[f"{comp}_{leg}"] = lab[:, leg, j]
    columns["x1"] = kin["x1"].cpu().numpy()
    columns["x2"] = kin["x2"].cpu().numpy()
    columns["channel"] = np.asarray(channels, dtype=np.int64)
    columns["weight"] = np.full(len(subprocesses), weight)
    return pa.table(columns)


def write_parquet(path: str | os.PathLike[str], table: pa.Table, metadata: Mapping[str, str]) -> None:
    """Write ``table`` with string ``metadata`` in the schema."""
    pq.write_table(table.replace_schema_metadata({k: str(v) for k, v in metadata.items()}), path)


def write_lhe(path: str | os.PathLike[str], process: Process, kin: Mapping[str, torch.Tensor],
              subprocesses: np.ndarray, sigma: float, error: float, rng: np.random.Generator) -> None:
    """Write the events as an LHE file (gzip if ``path`` ends in ``.gz``; module doc)."""
    lab = kin["lab"].to(torch.float64)
    n = lab.shape[0]
    flavours = [(*process.subprocesses[k].initial, *process.subprocesses[k].final) for k in subprocesses]
    colours = colour_tags(process, flavours, lab, rng)
    masses = minkowski_square(lab).clamp(min=0).sqrt().cpu().numpy()
    scales = _scale(process, kin)
    p = lab.cpu().numpy()
    weight = sigma / max(n, 1)
    beam = PROTON if process.hadronic else 21
    init = pylhe.LHEInit(
        initInfo=pylhe.LHEInitInfo(beamA=beam, beamB=beam, energyA=process.sqrt_s / 2, energyB=process.sqrt_s / 2,
                                   PDFgroupA=0, PDFgroupB=0, PDFsetA=0, PDFsetB=0, weightingStrategy=3,
                                   numProcesses=1),
        procInfo=[pylhe.LHEProcInfo(xSection=sigma, error=error, unitWeight=weight, procId=1)],
        generators=[],
    )

    def events():
        for i in range(n):
            particles = [
                pylhe.LHEParticle(id=int(flavours[i][leg]), status=-1 if leg < 2 else 1,
                                  mother1=0 if leg < 2 else 1, mother2=0 if leg < 2 else 2,
                                  color1=int(colours[i, leg, 0]), color2=int(colours[i, leg, 1]),
                                  px=float(p[i, leg, 1]), py=float(p[i, leg, 2]), pz=float(p[i, leg, 3]),
                                  e=float(p[i, leg, 0]), m=float(masses[i, leg]), lifetime=0.0, spin=9.0)
                for leg in range(p.shape[1])
            ]
            info = pylhe.LHEEventInfo(nparticles=len(particles), pid=1, weight=weight, scale=float(scales[i]),
                                      aqed=-1.0, aqcd=-1.0)
            yield pylhe.LHEEvent(eventinfo=info, particles=particles)

    pylhe.LHEFile(init=init, events=events()).tofile(str(path))
