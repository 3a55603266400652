"""Score data at detector level (the joint-score trick of SALLY, arXiv:1805.00020) and the constants of
the parton-level formulas refitted on detector-level observables.

The ``madnis`` stage's unweighted WBF events (``events.parquet`` and the same events, in the same
order, in ``events.lhe.gz``) are showered by Pythia and passed through the fast detector by
``simulate`` (a sample with ``process: lhe``), then ``prepare``d. For LHE input ``simulate``'s
``event`` is the event's position in the LHE file, so each prepared row links back to its parton-level
event and its exact ``A, B, C``: the regression target stays the parton-level score ``t = B/A``
(its conditional mean given the detector-level observables is the detector-level score), and every
row is still reweighted exactly to any ``f`` by ``(A + f B + f^2 C) / A``.

The Higgs decays to muons in the default sample: the fast detector has no photon reconstruction,
so H -> gamma gamma photons would be clustered into jets, while muons leave no tower energy and are
excluded from the GenJets (as prompt leptons). The Higgs at detector level is the selected muon pair.

Observables at level ``L`` (``reco`` or ``particle``) from the prepared columns, named as at parton
level (:mod:`.data`): ``x1, x2 = L_j{1,2}_pt / m_H``; ``delta_phi`` = phi(forward jet) - phi(backward
jet), forward = larger eta; ``delta_eta``, ``eta1``, ``eta2``; ``m_jj = L_mjj``; ``pt_h, y_h`` of
the lepton pair (``L_ptll``, ``L_yll``). The parton-level observables of the same events sit beside
them as ``parton_{name}``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import sympy

from ..errors import InputError
from ..generate.data import wrap_phi
from ..io import read_parquet_columns
from .data import OBSERVABLES
from .regression import parse_formula, refit


def level_observables(table: Mapping[str, np.ndarray], level: str, m_h: float) -> dict[str, np.ndarray]:
    """The observables of the module doc at ``level`` from prepared columns (NaN where a jet is missing)."""
    col = lambda k: np.asarray(table[f"{level}_{k}"], dtype=np.float64)  # noqa: E731
    eta1, eta2, phi1, phi2 = col("j1_eta"), col("j2_eta"), col("j1_phi"), col("j2_phi")
    forward_first = eta1 > eta2
    return {
        "x1": col("j1_pt") / m_h,
        "x2": col("j2_pt") / m_h,
        "delta_phi": np.where(forward_first, wrap_phi(phi1 - phi2), wrap_phi(phi2 - phi1)),
        "delta_eta": np.abs(eta1 - eta2),
        "eta1": eta1,
        "eta2": eta2,
        "m_jj": col("mjj"),
        "pt_h": col("ptll"),
        "y_h": col("yll"),
    }


def read_prepared(paths: Sequence[str | os.PathLike[str]], level: str) -> dict[str, np.ndarray]:
    """Rows of prepared parquet files (all splits) that pass ``level``'s selection."""
    needed = ["event", f"{level}_pass"] + [f"{level}_{k}" for k in
                                          ("j1_pt", "j2_pt", "j1_eta", "j2_eta", "j1_phi", "j2_phi", "mjj", "ptll", "yll")]
    table = pa.concat_tables([read_parquet_columns(path, needed, f"expected a sample prepared at level {level!r}")
                              for path in paths])
    cols = {c: table.column(c).to_numpy(zero_copy_only=False) for c in needed}
    keep = cols[f"{level}_pass"].astype(bool)
    return {k: v[keep] for k, v in cols.items()}


def detector_score_data(parton: Mapping[str, np.ndarray], prepared: Mapping[str, np.ndarray], level: str,
                        m_h: float, n_lhe: int) -> dict[str, np.ndarray]:
    """Score data of the prepared rows: ``A, B, C, t`` and ``parton_{obs}`` of the parton-level event
    each row's ``event`` points at (row of ``parton``, the score data of the LHE file's events), the
    observables at ``level`` and ``event``. Raises :class:`InputError` for an event number outside
    the LHE file, a repeated one, or a row without two jets."""
    event = np.asarray(prepared["event"], dtype=np.int64)
    if len(event) == 0:
        raise InputError(f"symbolic: no prepared event passes the {level} selection")
    if event.min() < 0 or event.max() >= n_lhe:
        raise InputError(f"symbolic: prepared event number {int(event.max())} outside the LHE file's {n_lhe} events; "
                         "the sample must shower the madnis stage's events.lhe.gz")
    if len(np.unique(event)) != len(event):
        raise InputError("symbolic: an LHE event appears twice among the prepared rows")
    obs = level_observables(prepared, level, m_h)
    bad = ~np.isfinite(np.column_stack([obs[k] for k in OBSERVABLES])).all(1)
    if bad.any():
        raise InputError(f"symbolic: {int(bad.sum())} prepared rows at level {level!r} lack two jets or the lepton pair "
                         "(selection n_jets_min: 2, n_leptons_min: 2)")
    out = {k: np.asarray(parton[k])[event] for k in ("A", "B", "C", "t")}
    out |= {f"parton_{k}": np.asarray(parton[k])[event] for k in OBSERVABLES}
    return out | obs | {"event": event}


def refit_constants(parametric: str, parameters: Mapping[str, Mapping[str, float]], names: Sequence[str],
                    x_parton: np.ndarray, x_level: np.ndarray, t: np.ndarray, bootstrap: int, seed: int) -> dict[str, Any]:
    """Least-squares refits of a formula's constants on the same events with their parton-level
    (``x_parton``) and detector-level (``x_level``) observables (columns ``names``), started from the
    parton-level front's values. Per parameter: each fit's value, its error and the standard deviation
    over ``bootstrap`` refits on resampled events, and the shift (level - parton) with its bootstrap
    standard deviation (the same resampled events for both, so their correlation is kept); the MSEs (TeV^4)."""
    params = sorted(parameters, key=lambda p: int(p[1:]))
    expr = parse_formula(parametric, [*names, *params])
    symbols = [sympy.Symbol(p, real=True) for p in params]
    p0 = [parameters[p]["value"] for p in params]
    fits = {k: refit(expr, symbols, p0, names, x, t) for k, x in (("parton", x_parton), ("level", x_level))}
    rng = np.random.default_rng(seed)
    draws: dict[str, list[list[float]]] = {"parton": [], "level": []}
    for _ in range(bootstrap):
        pick = rng.integers(0, len(t), len(t))
        for k, x in (("parton", x_parton), ("level", x_level)):
            draws[k].append(refit(expr, symbols, fits[k]["values"], names, x[pick], t[pick])["values"])
    std = {k: np.std(np.asarray(v), axis=0, ddof=1) if bootstrap > 1 else np.full(len(params), np.nan) for k, v in draws.items()}
    shift_std = (np.std(np.asarray(draws["level"]) - np.asarray(draws["parton"]), axis=0, ddof=1) if bootstrap > 1
                 else np.full(len(params), np.nan))
    out: dict[str, Any] = {"parameters": {}, "mse": {k: fits[k]["mse"] for k in fits}}
    for i, p in enumerate(params):
        out["parameters"][p] = {k: {"value": fits[k]["values"][i], "error": fits[k]["errors"][i],
                                    "bootstrap_std": float(std[k][i])} for k in fits}
        out["parameters"][p]["shift"] = {"value": fits["level"]["values"][i] - fits["parton"]["values"][i],
                                         "bootstrap_std": float(shift_std[i])}
    return out
