"""Object and event selection with a cut-flow, and per-event features at one level.

Selection (all thresholds from the config's ``prepare.selection``; GeV):
  leptons: pT > ``lepton_pt_min``, |eta| < ``lepton_eta_max``, relative isolation < ``lepton_iso_max``
  (only where the input has isolation: leptons without it pass, and the cut-flow counts them per level
  for the metadata); the event needs >= ``n_leptons_min`` of them; with
  ``require_ossf`` the two leptons are the highest-pT opposite-sign same-flavour pair; m_ll in
  [``mll_min``, ``mll_max``] (either may be null).
  jets: pT > ``jet_pt_min``, |eta| < ``jet_eta_max``, dR(jet, selected leptons) > ``jet_lepton_dr_min``;
  the event needs ``n_jets_min`` <= n_jets (<= ``n_jets_max`` when set).
  photons: pT > ``photon_pt_min``, |eta| < ``photon_eta_max``, dR(photon, every lepton of the level,
  selected or not) > ``photon_lepton_dr_min`` (one ECAL deposit is often both an electron and a photon
  candidate); the event needs >= ``n_photons_min`` of them (a cut only when > 0). Photons do not clean
  jets: jets keep their photons, as before photons were read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import awkward as ak
import numpy as np
import vector

vector.register_awkward()

UNITS = {"pt": "GeV", "mass": "GeV", "eta": "", "phi": "rad", "pdgId": "", "nConstituents": "", "girth": "", "tau21": ""}


def _cut_names(sel: Mapping[str, Any]) -> list[str]:
    names = ["all", f">= {sel['n_leptons_min']} leptons"]
    if sel.get("require_ossf", False):
        names.append("OSSF pair")
    if sel.get("mll_min") is not None or sel.get("mll_max") is not None:
        names.append("m_ll window")
    names.append(f">= {sel['n_jets_min']} jets" + (f", <= {sel['n_jets_max']}" if sel.get("n_jets_max") is not None else ""))
    if sel["n_photons_min"] > 0:
        names.append(f">= {sel['n_photons_min']} photons")
    return names


class CutFlow:
    """Events and summed weights surviving each cut, per level, accumulated over batches."""

    def __init__(self, levels: list[str], sel: Mapping[str, Any]) -> None:
        self.cuts = _cut_names(sel)
        self.counts = {lv: np.zeros(len(self.cuts), dtype=np.int64) for lv in levels}
        self.weights = {lv: np.zeros(len(self.cuts), dtype=np.float64) for lv in levels}
        self.isolation = {lv: {"leptons": 0, "without_isolation": 0} for lv in levels}
        self.photons = {lv: {"photons": 0, "events_without_photon_collection": 0} for lv in levels}

    def add(self, level: str, masks: list[np.ndarray], weight: np.ndarray) -> None:
        for i, m in enumerate(masks):
            self.counts[level][i] += int(m.sum())
            self.weights[level][i] += float(weight[m].sum())

    def add_isolation(self, level: str, leptons: ak.Array) -> None:
        """Count the leptons read and those without isolation (NaN or no ``iso`` field), which no iso cut touches."""
        self.isolation[level]["leptons"] += int(ak.sum(ak.num(leptons)))
        none = ak.num(leptons) if "iso" not in leptons.fields else ak.sum(np.isnan(leptons.iso), axis=1)
        self.isolation[level]["without_isolation"] += int(ak.sum(none))

    def add_photons(self, level: str, photons: ak.Array | None, n: int) -> None:
        """Count the photons read (before selection), or ``n`` events whose input has no photon collection."""
        if photons is None:
            self.photons[level]["events_without_photon_collection"] += n
        else:
            self.photons[level]["photons"] += int(ak.sum(ak.num(photons)))

    def photon_report(self) -> dict[str, dict[str, int]]:
        """Per level: photons read, and events from inputs without photons (their ``n_photons`` is 0)."""
        return {lv: dict(c) for lv, c in self.photons.items()}

    def isolation_report(self) -> dict[str, dict[str, int]]:
        """Per level: leptons read, and how many of them had no isolation (``lepton_iso_max`` not applied)."""
        return {lv: dict(c) for lv, c in self.isolation.items()}

    def rows(self) -> list[dict[str, Any]]:
        return [
            {"level": lv, "cut": cut, "events": int(self.counts[lv][i]), "sum_weights": float(self.weights[lv][i]),
             "efficiency": float(self.counts[lv][i] / max(self.counts[lv][0], 1))}
            for lv in self.counts for i, cut in enumerate(self.cuts)
        ]

    def empty_report(self) -> str:
        """Per level, the cut after which no event was left (for the 'keeps no events' error)."""
        parts = []
        for lv, c in self.counts.items():
            zero = np.flatnonzero(c == 0)
            where = f"cut {self.cuts[zero[0]]!r} removed the last of {c[zero[0] - 1]} events" if zero.size and zero[0] > 0 else "no events read"
            parts.append(f"{lv}: {where}")
        return "; ".join(parts)


def _pad(x: ak.Array, n: int) -> np.ndarray:
    return ak.to_numpy(ak.fill_none(ak.pad_none(x, n, clip=True), np.nan), allow_missing=False).astype(np.float32)


def select_level(objs: Mapping[str, ak.Array | None], sel: Mapping[str, Any], max_jets: int, prefix: str,
                 max_photons: int = 0) -> tuple[list[np.ndarray], dict[str, np.ndarray]]:
    """Cut masks (cumulative, in cut-flow order) and feature columns ``{prefix}_*`` for one level, with
    ``max_jets`` jet and ``max_photons`` photon slots (NaN-padded)."""
    lep, jets, met = objs["leptons"], objs["jets"], objs.get("met")
    photons = _photons(objs.get("photons"), objs["leptons"], sel)
    n = len(lep)
    iso_ok = ak.fill_none(~(lep.iso >= sel["lepton_iso_max"]), True) if "iso" in lep.fields else True
    lep = lep[(lep.pt > sel["lepton_pt_min"]) & (abs(lep.eta) < sel["lepton_eta_max"]) & iso_ok]
    masks = [np.ones(n, bool)]
    has_leptons = ak.to_numpy(ak.num(lep) >= sel["n_leptons_min"])
    masks.append(masks[-1] & has_leptons)

    pairs = ak.combinations(lep, 2, fields=["a", "b"])
    if sel.get("require_ossf", False):
        pairs = pairs[(pairs.a.pdgId == -pairs.b.pdgId)]
    pair = ak.firsts(pairs)
    has_pair = ak.to_numpy(~ak.is_none(pair))
    if sel.get("require_ossf", False):
        masks.append(masks[-1] & has_pair)
    ll = pair.a + pair.b
    mll = ak.to_numpy(ak.fill_none(ll.mass, np.nan)).astype(np.float64)
    if sel.get("mll_min") is not None or sel.get("mll_max") is not None:
        lo = sel.get("mll_min") if sel.get("mll_min") is not None else -np.inf
        hi = sel.get("mll_max") if sel.get("mll_max") is not None else np.inf
        masks.append(masks[-1] & (mll >= lo) & (mll <= hi))

    jets = jets[(jets.pt > sel["jet_pt_min"]) & (abs(jets.eta) < sel["jet_eta_max"])]
    chosen = ak.concatenate([ak.singletons(pair.a), ak.singletons(pair.b)], axis=1) if sel["n_leptons_min"] >= 2 else lep
    near = ak.cartesian({"j": jets, "l": chosen}, nested=True)
    isolated = ak.fill_none(ak.all(near.j.deltaR(near.l) > sel["jet_lepton_dr_min"], axis=2), True)
    jets = jets[isolated]
    nj = ak.to_numpy(ak.num(jets))
    ok_j = nj >= sel["n_jets_min"]
    if sel.get("n_jets_max") is not None:
        ok_j &= nj <= sel["n_jets_max"]
    masks.append(masks[-1] & ok_j)
    na = ak.to_numpy(ak.num(photons)) if photons is not None else np.zeros(n, np.int64)
    if sel["n_photons_min"] > 0:
        masks.append(masks[-1] & (na >= sel["n_photons_min"]))

    f: dict[str, np.ndarray] = {
        f"{prefix}_n_leptons": ak.to_numpy(ak.num(lep)).astype(np.int16),
        f"{prefix}_n_jets": nj.astype(np.int16),
    }
    for tag, obj in (("l1", pair.a), ("l2", pair.b)):
        for k in ("pt", "eta", "phi"):
            f[f"{prefix}_{tag}_{k}"] = ak.to_numpy(ak.fill_none(getattr(obj, k), np.nan)).astype(np.float32)
        f[f"{prefix}_{tag}_pdgId"] = ak.to_numpy(ak.fill_none(obj.pdgId, 0)).astype(np.int32)
    for k, v in (("mll", ll.mass), ("ptll", ll.pt), ("yll", ll.rapidity), ("phill", ll.phi)):
        f[f"{prefix}_{k}"] = ak.to_numpy(ak.fill_none(v, np.nan)).astype(np.float32)
    extras = [k for k in ("nConstituents", "girth", "tau21") if k in jets.fields]
    for k in ("pt", "eta", "phi", "mass", *extras):
        cols = _pad(jets[k], max_jets)
        for i in range(max_jets):
            f[f"{prefix}_j{i + 1}_{k}"] = cols[:, i]
    f[f"{prefix}_ht"] = ak.to_numpy(ak.sum(jets.pt, axis=1)).astype(np.float32)
    j2 = ak.pad_none(jets, 2)
    dijet = j2[:, 0] + j2[:, 1]
    f[f"{prefix}_mjj"] = ak.to_numpy(ak.fill_none(dijet.mass, np.nan)).astype(np.float32)
    f[f"{prefix}_drjj"] = ak.to_numpy(ak.fill_none(j2[:, 0].deltaR(j2[:, 1]), np.nan)).astype(np.float32)
    if met is not None:
        f[f"{prefix}_met_pt"] = ak.to_numpy(ak.fill_none(met.pt, np.nan)).astype(np.float32)
        f[f"{prefix}_met_phi"] = ak.to_numpy(ak.fill_none(met.phi, np.nan)).astype(np.float32)
    f[f"{prefix}_pass"] = masks[-1]
    f[f"{prefix}_n_photons"] = na.astype(np.int16)  # photon columns after the earlier ones, whose order is unchanged
    for k in ("pt", "eta", "phi"):
        cols = _pad(photons[k], max_photons) if photons is not None else np.full((n, max_photons), np.nan, np.float32)
        for i in range(max_photons):
            f[f"{prefix}_a{i + 1}_{k}"] = cols[:, i]
    return masks, f


def _photons(photons: ak.Array | None, leptons: ak.Array, sel: Mapping[str, Any]) -> ak.Array | None:
    """Photons in the pT and |eta| acceptance and outside ``photon_lepton_dr_min`` of every lepton (None: no collection)."""
    if photons is None:
        return None
    photons = photons[(photons.pt > sel["photon_pt_min"]) & (abs(photons.eta) < sel["photon_eta_max"])]
    near = ak.cartesian({"a": photons, "l": leptons}, nested=True)
    return photons[ak.all(near.a.deltaR(near.l) > sel["photon_lepton_dr_min"], axis=2)]


def feature_unit(name: str) -> str:
    """Unit of a feature column from its name (GeV, rad or dimensionless '')."""
    last = name.rsplit("_", 1)[-1]
    if last in ("mll", "ptll", "ht", "mjj") or name.endswith(("_met_pt",)):
        return "GeV"
    if last in ("phill",) or name.endswith("_met_phi"):
        return "rad"
    return UNITS.get(last, "")
