"""Per-sample summary of ``simulate``: speed, cross-section, and checks of the fast detector.

The detector check compares, for reco muons matched to generator muons (dR < 0.05), the measured
core width of pT_reco/pT_gen - 1 with the resolution configured in ``detector.muons.resolution``,
per |eta| region. Generator muons are dressed (photons within dR < 0.1), so the measured width
includes a small FSR contribution; the robust core width is insensitive to the radiative tail.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import awkward as ak
import hist
import numpy as np
import uproot
import vector

from .. import plotting
from ..errors import InputError
from ..io import staged_outputs, write_json
from ..stats import core_width
from .detector import muon_pt_resolution

vector.register_awkward()

SUBSTRUCTURE_PT_MIN = 30.0  # GeV; jets in the substructure figure, also dR > 0.4 from dressed leptons
_JET_FIELDS = ("pt", "eta", "phi", "girth", "tau21", "nConstituents")
_BRANCHES = ["Muon_pt", "Muon_eta", "Muon_phi", "GenDressedLepton_pt", "GenDressedLepton_eta", "GenDressedLepton_phi",
             "GenDressedLepton_pdgId", "GenMET_pt", "MET_pt"] + [f"{c}_{f}" for c in ("GenJet", "Jet") for f in _JET_FIELDS]
_SUBSTRUCTURE = {"girth": hist.axis.Regular(40, 0, 0.4), "tau21": hist.axis.Regular(40, 0, 1), "nConstituents": hist.axis.Regular(60, -0.5, 59.5)}


def _vec(a: ak.Array, prefix: str) -> ak.Array:
    return ak.zip({k: a[f"{prefix}_{k}"] for k in ("pt", "eta", "phi")} | {"mass": ak.zeros_like(a[f"{prefix}_pt"])}, with_name="Momentum4D")


def summarize(sample: str, chunk_stats: Sequence[str | os.PathLike[str]], roots: Sequence[str | os.PathLike[str]],
              detector: Mapping[str, Any], outputs: Mapping[str, str | os.PathLike[str]], step_size: int = 20_000) -> dict[str, Any]:
    """Write ``outputs['metrics']`` and the figures ``muon_response``, ``jet_substructure``, ``met``."""
    stats = [json.loads(Path(p).read_text()) for p in chunk_stats]
    regions = detector["muons"]["resolution"]
    edges = [0.0] + [r["eta_max"] for r in regions]
    resp = [hist.Hist(hist.axis.Regular(400, -0.2, 0.2)) for _ in regions]
    expected_sq = np.zeros(len(regions))
    n_matched = np.zeros(len(regions))
    w = hist.storage.Weight()
    sub = {obs: {lv: hist.Hist(ax, storage=w) for lv in ("GenJet", "Jet")} for obs, ax in _SUBSTRUCTURE.items()}
    met = {k: hist.Hist(hist.axis.Regular(50, 0, 100), storage=w) for k in ("GenMET", "MET")}
    for path in roots:
        try:
            tree = uproot.open(path)["Events"]
        except Exception as exc:
            raise InputError(f"file {path}: cannot read tree 'Events': {exc}") from exc
        for a in tree.iterate(_BRANCHES, step_size=step_size):
            gen = _vec(a, "GenDressedLepton")[abs(a.GenDressedLepton_pdgId) == 13]
            pairs = ak.cartesian({"r": _vec(a, "Muon"), "g": gen}, nested=True)
            dr = pairs.r.deltaR(pairs.g)
            best = ak.argmin(dr, axis=2, keepdims=True)
            matched = ak.flatten(pairs[best], axis=2)
            ok = ak.flatten(dr[best], axis=2) < 0.05
            g, r = matched.g[ok], matched.r[ok]
            gpt, geta = ak.to_numpy(ak.flatten(g.pt)), np.abs(ak.to_numpy(ak.flatten(g.eta)))
            rel = ak.to_numpy(ak.flatten(r.pt)) / gpt - 1.0
            for i in range(len(regions)):
                sel = (geta >= edges[i]) & (geta < edges[i + 1])
                resp[i].fill(rel[sel])
                expected_sq[i] += float(np.sum(muon_pt_resolution(detector, gpt[sel], geta[sel]) ** 2))
                n_matched[i] += int(sel.sum())
            leptons = _vec(a, "GenDressedLepton")
            for lv in ("GenJet", "Jet"):
                jets = ak.zip({f: a[f"{lv}_{f}"] for f in _JET_FIELDS}, with_name="Momentum3D")
                near = ak.cartesian({"j": jets, "l": leptons}, nested=True)
                clean = ak.all(near.j.deltaR(near.l) > 0.4, axis=2) & (jets.pt > SUBSTRUCTURE_PT_MIN)
                for obs in _SUBSTRUCTURE:
                    sub[obs][lv].fill(ak.to_numpy(ak.flatten(jets[clean][obs])))
            for k in met:
                met[k].fill(ak.to_numpy(a[f"{k}_pt"]))

    n_events = sum(s["n_events"] for s in stats)
    wall = sum(s["wall_s"] for s in stats)
    muon = []
    for i, reg in enumerate(regions):
        measured = core_width(resp[i].values(), resp[i].axes[0].edges) if n_matched[i] > 0 else float("nan")
        expected = float(np.sqrt(expected_sq[i] / n_matched[i])) if n_matched[i] > 0 else float("nan")
        muon.append({"abs_eta": [edges[i], edges[i + 1]], "matched": int(n_matched[i]), "measured_core_width": measured,
                     "configured_rms": expected, "ratio": measured / expected if n_matched[i] else float("nan")})
    metrics = {
        "sample": sample,
        "n_events": n_events,
        "chunks": len(stats),
        "events_per_s_per_core": n_events / wall if wall > 0 else 0.0,
        "cross_section_pb": float(np.mean([s["cross_section_pb"] for s in stats])),
        "muon_pt_resolution": muon,
    }
    names = ("metrics", "muon_response", "jet_substructure", "met")
    with staged_outputs(*(outputs[k] for k in names)) as staged:
        tmp = dict(zip(names, staged))
        write_json(tmp["metrics"], metrics)
        plotting.overlay({f"{edges[i]:.1f} < |eta| < {edges[i + 1]:.1f}": resp[i] for i in range(len(regions))}, tmp["muon_response"],
                         r"$p_T^{reco}/p_T^{gen} - 1$ (muons)", title=sample)
        plotting.panels({r"girth": sub["girth"], r"$\tau_{21}$": sub["tau21"], "constituents": sub["nConstituents"]},
                        tmp["jet_substructure"], title=f"{sample}: jets with $p_T$ > {SUBSTRUCTURE_PT_MIN:.0f} GeV, lepton-cleaned")
        plotting.overlay(met, tmp["met"], r"$p_T^{miss}$ [GeV]", title=sample, logy=True)
    return metrics
