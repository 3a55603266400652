"""Score data at parton level: exact ``A, B, C``, the score ``t = B/A`` and observables per event.

Events are unweighted WBF Higgs events ``p p -> j j H`` (the ``madnis`` stage's ``events.parquet``,
or a sample drawn here from the physics core by :func:`generate_events`). For each event the physics
core gives the PDF-weighted ``|M|^2(f) = A + f B + f^2 C`` summed over the subprocesses
(:meth:`~lhcchain.physics.processes.WBFHiggs.coefficients`; ``f = f_WWt / Lambda^2`` in TeV^-2), so
that ``t = B / A`` (TeV^2) is the score ``d log p(x|f) / d f`` at ``f = 0`` of the jet and Higgs
momenta with the flavours summed over (the cross-section term vanishes: ``B`` integrates to zero over
parity-even cuts), and ``w(f) = (A + f B + f^2 C) / A`` reweights an event exactly to any ``f``.

Observables (GeV, radians; jets ordered by p_T, ``j1`` the leading one):

=============  =========================================================================
``x1, x2``     ``p_T,j1 / m_H``, ``p_T,j2 / m_H``
``delta_phi``  ``phi(forward jet) - phi(backward jet)`` in [-pi, pi), forward = larger rapidity
``delta_eta``  ``|eta_j1 - eta_j2|``
``eta1, eta2`` pseudorapidities of the leading and subleading jet
``m_jj``       dijet mass (GeV)
``pt_h, y_h``  Higgs transverse momentum (GeV) and rapidity
=============  =========================================================================

The sign of ``B`` follows :mod:`lhcchain.physics.wbf` (``eps_{0123} = +1``): the score is
anticorrelated with ``p_T,1 p_T,2 sin(delta_phi)``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from ..errors import InputError
from ..io import Progress
from ..madnis.events import write_parquet
from ..madnis.weights import accept, truncated_maximum
from ..physics.kinematics import azimuth, delta_phi, pair_mass, pseudorapidity, rapidity, transverse_momentum
from ..physics.process import Process

log = logging.getLogger("lhcchain")

#: The four observables of the seed paper, in the order the regression sees them.
CORE = ("x1", "x2", "delta_phi", "delta_eta")
#: Every observable :func:`observables` computes (CORE first).
OBSERVABLES = CORE + ("eta1", "eta2", "m_jj", "pt_h", "y_h")
#: PDG id of the Higgs boson, the last leg of a WBF event.
HIGGS = 25


def check_cp_odd(process: Process) -> None:
    """Raise :class:`InputError` unless ``process`` has a CP-odd coupling (``f_wwt``: ``wbf_higgs``)."""
    if not hasattr(process, "f_wwt") or process.n_out != 3:
        raise InputError(f"symbolic: process {process.name!r} has no CP-odd term; the stage needs wbf_higgs "
                         "(|M|^2 = A + f B + f^2 C with the CP-odd O_WWt)")
    if process.f_wwt != 0.0:
        raise InputError(f"symbolic: process {process.name!r} has f_wwt = {process.f_wwt}; the score is taken at "
                         "the SM, so the events must be SM events (options.f_wwt: 0)")


def observables(momenta: torch.Tensor, m_h: float) -> dict[str, np.ndarray]:
    """The observables of the module doc from lab-frame momenta ``(n, 5, 4)`` ``[q1, q2, j, j, H]``."""
    jets = momenta[:, 2:4]
    pt = transverse_momentum(jets)
    lead = (pt[:, 0] >= pt[:, 1]).unsqueeze(-1)
    j1 = torch.where(lead, jets[:, 0], jets[:, 1])
    j2 = torch.where(lead, jets[:, 1], jets[:, 0])
    y1, y2 = rapidity(j1), rapidity(j2)
    phi1, phi2 = azimuth(j1), azimuth(j2)
    eta1, eta2 = pseudorapidity(j1), pseudorapidity(j2)
    higgs = momenta[:, 4]
    out = {
        "x1": transverse_momentum(j1) / m_h,
        "x2": transverse_momentum(j2) / m_h,
        "delta_phi": torch.where(y1 > y2, delta_phi(phi1, phi2), delta_phi(phi2, phi1)),
        "delta_eta": (eta1 - eta2).abs(),
        "eta1": eta1,
        "eta2": eta2,
        "m_jj": pair_mass(j1, j2),
        "pt_h": transverse_momentum(higgs),
        "y_h": rapidity(higgs),
    }
    return {k: v.detach().cpu().numpy().astype(np.float64) for k, v in out.items()}


def read_events(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Momenta ``(n, 5, 4)`` (GeV), ``x1, x2`` and the cross-section (pb, sum of ``weight``) of a
    ``madnis`` events parquet (columns in :mod:`lhcchain.madnis.events`)."""
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise InputError(f"{path}: cannot read the events parquet ({exc})") from None
    needed = [f"{c}_{leg}" for leg in range(5) for c in ("pid", "e", "px", "py", "pz")] + ["x1", "x2", "weight"]
    missing = [c for c in needed if c not in table.column_names]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}; expected the madnis events of a "
                         "2 -> 3 WBF process (pid_i, e_i, px_i, py_i, pz_i for legs 0-4, x1, x2, weight)")
    if table.num_rows == 0:
        raise InputError(f"{path}: no events")
    cols = {c: table.column(c).to_numpy() for c in needed}
    if not (cols["pid_4"] == HIGGS).all():
        raise InputError(f"{path}: leg 4 must be the Higgs boson (pid 25) in every event")
    momenta = np.stack([np.stack([cols[f"{c}_{leg}"] for c in ("e", "px", "py", "pz")], -1) for leg in range(5)], 1)
    if not np.isfinite(momenta).all():
        raise InputError(f"{path}: non-finite momenta")
    return {"momenta": torch.from_numpy(momenta.astype(np.float64)), "x1": torch.from_numpy(cols["x1"].astype(np.float64)),
            "x2": torch.from_numpy(cols["x2"].astype(np.float64)), "cross_section_pb": float(cols["weight"].sum())}


def generate_events(process: Process, n_events: int, seed: int, batch_size: int = 20000,
                    epsilon: float = 1.0e-3, max_calls: int = 50_000_000) -> dict[str, Any]:
    """``n_events`` unweighted events from flat multi-channel sampling of the physics core.

    Each batch spreads ``batch_size`` uniform points evenly over the channels, with weight
    ``n_channels alpha_c f_c`` (pb); hit-or-miss against the truncated maximum of the first batch
    (``epsilon``: the overweights' share of the cross-section, as in ``madnis``). Returns the
    momenta, ``x1, x2`` and the cross-section (pb, mean weight of every call).
    """
    rng = np.random.default_rng(seed)
    per_channel = max(1, batch_size // process.n_channels)
    kept: list[torch.Tensor] = []
    x1s: list[torch.Tensor] = []
    x2s: list[torch.Tensor] = []
    total, calls, n_kept, w_max = 0.0, 0, 0, None
    progress = Progress("symbolic: physics-core events", n_events)
    while n_kept < n_events:
        if calls >= max_calls:
            raise InputError(f"symbolic: {calls} calls gave only {n_kept} of {n_events} events; raise max_calls")
        weights, moms, fx1, fx2 = [], [], [], []
        for c in range(process.n_channels):
            gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
            r = torch.rand(per_channel, process.n_random, generator=gen, dtype=torch.float64)
            w, _ = process.integrand(r, c)
            point = process.map_point(r, c)
            alpha = process.channel_weights(point.momenta)[:, c]
            weights.append((process.n_channels * alpha * w).nan_to_num(0.0))
            moms.append(point.momenta)
            fx1.append(point.x1)
            fx2.append(point.x2)
        w = torch.cat(weights).cpu().numpy()
        total += float(w.sum())
        calls += len(w)
        if w_max is None:
            w_max = truncated_maximum(w, epsilon)
        ok = torch.from_numpy(accept(w, w_max, rng)).to(process.device)
        kept.append(torch.cat(moms)[ok])
        x1s.append(torch.cat(fx1)[ok])
        x2s.append(torch.cat(fx2)[ok])
        n_kept += int(ok.sum())
        progress.update(int(ok.sum()))
    progress.done()
    return {"momenta": torch.cat(kept)[:n_events], "x1": torch.cat(x1s)[:n_events], "x2": torch.cat(x2s)[:n_events],
            "cross_section_pb": total / calls}


def score_data(process: Process, events: Mapping[str, Any], batch_size: int = 20000) -> dict[str, np.ndarray]:
    """Per event ``A, B, C`` (PDF-weighted, GeV^-2 times TeV^2k), ``t = B/A`` (TeV^2) and the
    observables of the module doc. Raises :class:`InputError` for a process without a CP-odd
    term or non-finite scores (naming the first bad event)."""
    check_cp_odd(process)
    momenta = events["momenta"].to(dtype=process.dtype, device=process.device)
    x1 = events["x1"].to(dtype=process.dtype, device=process.device)
    x2 = events["x2"].to(dtype=process.dtype, device=process.device)
    abc = []
    for start in range(0, len(momenta), batch_size):
        sl = slice(start, start + batch_size)
        with torch.no_grad():
            abc.append(process.coefficients(momenta[sl], x1[sl], x2[sl]).cpu())
    coeff = torch.cat(abc).numpy().astype(np.float64)
    a, b, c = coeff[:, 0], coeff[:, 1], coeff[:, 2]
    t = b / a
    bad = ~(np.isfinite(t) & (a > 0))
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(f"symbolic: non-finite score or A <= 0 in {int(bad.sum())} event(s), first event {i} "
                         f"(A = {a[i]}, B = {b[i]}); expected events inside the process's cuts")
    if not np.any(b != 0):
        raise InputError(f"symbolic: process {process.name!r} gives B = 0 for every event: no CP-odd term")
    return {"A": a, "B": b, "C": c, "t": t, **observables(momenta, process.ew.mh)}


def write_score_data(path: str | os.PathLike[str], data: Mapping[str, np.ndarray], metadata: Mapping[str, Any]) -> None:
    """Write the score data as parquet, ``metadata`` (e.g. the cross-section) in the schema."""
    write_parquet(path, pa.table({k: np.asarray(v) for k, v in data.items()}), metadata)


def read_score_data(path: str | os.PathLike[str]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The columns and schema metadata of a score-data parquet written by :func:`write_score_data`."""
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise InputError(f"{path}: cannot read the score data ({exc})") from None
    missing = [c for c in ("A", "B", "C", "t", *CORE) if c not in table.column_names]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)} of the score data")
    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    return {c: table.column(c).to_numpy() for c in table.column_names}, meta

