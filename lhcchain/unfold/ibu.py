"""Binned iterative Bayesian unfolding (D'Agostini) per observable with ``pyunfold``: the classical baseline.

Per observable, with the same bins at both levels (quantiles of the simulation's particle level,
:func:`.data.bin_edges`):

* response ``R[i, j] = P(reco bin i, pass reco | particle bin j)`` from the simulation's pairs, each
  column normalised to all particle-level fiducial events of bin j, so that its sum is the efficiency
  ``eps_j`` (pyunfold's convention); efficiency losses are thereby unfolded back in;
* fakes: the data in reco bin i is scaled by ``1 - f_i``, the simulation's fraction of reco-level
  events of bin i that fail the particle level;
* prior: the simulation's particle level;
* iterations (the stated rule): pyunfold stops at the first iteration whose reduced chi2 between
  successive unfolded distributions (``ts='chi2'``) falls below ``ts_stopping``, or at ``max_iter``.

A particle-level bin of the simulation with no event passing reco (efficiency 0) cannot be unfolded:
InputError naming the observable and bin. Errors: pyunfold's propagated statistical (data) and
systematic (response) errors per bin.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
from pyunfold import iterative_unfold

from ..errors import InputError
from ..stats import bin_index, weighted_histogram
from .data import Events, UnfoldingInput, bin_edges, integer_columns

log = logging.getLogger("lhcchain.unfold")


def response(sim: Events, j: int, edges: np.ndarray) -> dict[str, np.ndarray]:
    """Response, efficiencies and fake fractions of observable ``j`` (module doc) with their errors."""
    n = len(edges) - 1
    pair = sim.pairs
    truth_all, truth_all_w2 = weighted_histogram(sim.particle[sim.pass_particle, j], sim.weight[sim.pass_particle], edges)
    bad = np.flatnonzero(~(truth_all > 0))
    if bad.size:
        raise InputError(f"unfold ibu: observable {sim.observables[j]!r}: particle-level bin(s) {bad.tolist()} of edges {edges.tolist()} "
                         f"hold no (or negative) simulated weight in sample {sim.name!r}; choose fewer bins")
    bi, bj = bin_index(sim.reco[pair, j], edges), bin_index(sim.particle[pair, j], edges)
    w = sim.weight[pair]
    h2 = np.zeros((n, n))
    h2w2 = np.zeros((n, n))
    np.add.at(h2, (bi, bj), w)
    np.add.at(h2w2, (bi, bj), w * w)
    resp = h2 / truth_all[None, :]
    eff = resp.sum(0)
    empty = np.flatnonzero(~(eff > 0))
    if empty.size:
        raise InputError(f"unfold ibu: observable {sim.observables[j]!r}: particle-level bin(s) {empty.tolist()} of edges {edges.tolist()} "
                         f"have no simulated event passing reco (efficiency 0) in sample {sim.name!r}; choose fewer bins")
    resp_err = np.sqrt(h2w2) / truth_all[None, :]
    eff_err = np.sqrt(np.clip(eff * (1 - eff), 0, None) * truth_all_w2) / truth_all
    reco_all, _ = weighted_histogram(sim.reco[sim.pass_reco, j], sim.weight[sim.pass_reco], edges)
    fakes, _ = weighted_histogram(sim.reco[sim.pass_reco & ~sim.pass_particle, j], sim.weight[sim.pass_reco & ~sim.pass_particle], edges)
    with np.errstate(invalid="ignore", divide="ignore"):
        fake = np.where(reco_all > 0, fakes / reco_all, 0.0)
    return {"response": resp, "response_err": resp_err, "efficiencies": eff, "efficiencies_err": np.maximum(eff_err, 1e-12),
            "fake_fraction": np.clip(fake, 0.0, 1.0), "prior": truth_all / truth_all.sum()}


def unfold_observable(reco: np.ndarray, weight: np.ndarray, sim: Events, j: int, edges: np.ndarray, ts_stopping: float,
                      max_iter: int) -> dict[str, Any]:
    """IBU of observable ``j`` of reco-level events ``reco`` (generator weights ``weight``); the unfolded
    counts are in units of the data's weight sum, corrected for fakes and efficiency."""
    r = response(sim, j, edges)
    counts, w2 = weighted_histogram(reco, weight, edges)
    keep = 1.0 - r["fake_fraction"]
    data, data_err = counts * keep, np.sqrt(w2) * keep
    data_err = np.where(data_err > 0, data_err, 1.0)  # pyunfold needs positive errors; an empty bin carries ~1 event
    out = iterative_unfold(data=data, data_err=data_err, response=r["response"], response_err=r["response_err"],
                           efficiencies=r["efficiencies"], efficiencies_err=r["efficiencies_err"], prior=r["prior"], ts="chi2",
                           ts_stopping=float(ts_stopping), max_iter=int(max_iter))
    return {"edges": edges.tolist(), "unfolded": np.asarray(out["unfolded"]).tolist(), "stat_err": np.asarray(out["stat_err"]).tolist(),
            "sys_err": np.asarray(out["sys_err"]).tolist(), "iterations": int(out["num_iterations"]),
            "ts_last": float(out["ts_iter"]), "efficiencies": r["efficiencies"].tolist(), "fake_fraction": r["fake_fraction"].tolist()}


def edges_for(sim: Events, n_bins: int) -> list[np.ndarray]:
    """Per observable, the bins of the module doc."""
    ints = integer_columns(sim.particle[sim.pass_particle])
    return [bin_edges(sim.particle[sim.pass_particle, j], n_bins, bool(ints[j])) for j in range(len(sim.observables))]


def run_ibu(inp: UnfoldingInput, settings: Mapping[str, Any]) -> dict[str, Any]:
    """IBU of every observable of the pseudo-data (``settings``: ``bins``, ``ts_stopping``, ``max_iter``)."""
    edges = edges_for(inp.sim, int(settings["bins"]))
    out = {}
    for j, name in enumerate(inp.sim.observables):
        out[name] = unfold_observable(inp.data_reco[:, j], inp.data_reco_weight, inp.sim, j, edges[j], settings["ts_stopping"],
                                      settings["max_iter"])
        log.info("unfold ibu %s: %d bins, %d iterations", name, len(edges[j]) - 1, out[name]["iterations"])
    return out
