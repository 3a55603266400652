"""FastJet clustering with substructure, batched over events through fastjet's awkward interface.

Jets are anti-kT with radius R (default 0.4), sorted by decreasing pT. Substructure per jet:
  ``mass`` (GeV); ``nConstituents``; ``girth`` = sum_i pT_i dR(i, jet) / pT_jet (the jet width);
  ``tau21`` = tau_2 / tau_1, N-subjettiness with exclusive-kT axes and beta = 1,
  tau_N = sum_i pT_i min_k dR(i, axis_k) / (sum_i pT_i R); tau21 = 0 for jets with < 2 constituents.
"""

from __future__ import annotations

import warnings

import awkward as ak
import fastjet
import numpy as np
import vector

vector.register_awkward()

JET_FIELDS = ("pt", "eta", "phi", "mass", "nConstituents", "girth", "tau21")


def _empty_jets(n_events: int) -> ak.Array:
    empty = {f: np.zeros(0, np.int32 if f == "nConstituents" else np.float32) for f in JET_FIELDS}
    return ak.unflatten(ak.zip(empty), np.zeros(n_events, np.int64))


def cluster_jets(particles: ak.Array, radius: float = 0.4, pt_min: float = 10.0) -> ak.Array:
    """Cluster ``particles`` (jagged records with ``px, py, pz, E`` in GeV) into jets.

    Returns a jagged array (event, jet) with the fields of :data:`JET_FIELDS`.
    """
    n_events = len(particles)
    if n_events == 0 or ak.sum(ak.num(particles)) == 0:
        return _empty_jets(n_events)
    p4 = ak.zip({k: ak.values_astype(particles[k], np.float64) for k in ("px", "py", "pz", "E")}, with_name="Momentum4D")
    cs = fastjet.ClusterSequence(p4, fastjet.JetDefinition(fastjet.antikt_algorithm, radius))
    jets = cs.inclusive_jets(min_pt=pt_min)
    consts = cs.constituents(min_pt=pt_min)
    order = ak.argsort(jets.pt, axis=1, ascending=False)
    jets, consts = jets[order], consts[order]

    pt_sum = ak.sum(consts.pt, axis=-1)
    dr = consts.deltaR(jets)
    girth = ak.sum(consts.pt * dr, axis=-1) / jets.pt
    tau1 = ak.sum(consts.pt * dr, axis=-1) / (pt_sum * radius)
    tau2 = _tau2(consts, radius, pt_sum)
    tau21 = ak.where(tau1 > 0, tau2 / ak.where(tau1 > 0, tau1, 1.0), 0.0)
    return ak.zip(
        {
            "pt": ak.values_astype(jets.pt, np.float32),
            "eta": ak.values_astype(jets.eta, np.float32),
            "phi": ak.values_astype(jets.phi, np.float32),
            "mass": ak.values_astype(np.maximum(jets.mass, 0.0), np.float32),
            "nConstituents": ak.values_astype(ak.num(consts, axis=-1), np.int32),
            "girth": ak.values_astype(girth, np.float32),
            "tau21": ak.values_astype(tau21, np.float32),
        }
    )


def _tau2(consts: ak.Array, radius: float, pt_sum: ak.Array) -> ak.Array:
    """tau_2 with two exclusive-kT axes; 0 for jets with fewer than three constituents."""
    counts = ak.num(consts, axis=1)
    flat = ak.flatten(consts, axis=1)  # (jet, constituent)
    tau2 = np.zeros(len(flat), dtype=np.float64)
    many = np.asarray(ak.num(flat, axis=1) >= 3)
    if many.any():
        sub = flat[many]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # fastjet warns about exclusive jets generically
            axes = fastjet.ClusterSequence(sub, fastjet.JetDefinition(fastjet.kt_algorithm, 1.0)).exclusive_jets(n_jets=2)
        d0 = sub.deltaR(axes[:, 0])
        d1 = sub.deltaR(axes[:, 1])
        tau2[many] = np.asarray(ak.sum(sub.pt * np.minimum(d0, d1), axis=-1))
    return ak.unflatten(tau2, counts) / (pt_sum * radius)
