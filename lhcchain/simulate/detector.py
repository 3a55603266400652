"""A parametrised fast detector in the style of Delphes.

Every number comes from the ``detector`` section of the config; the defaults there follow the
public Delphes 3 CMS card (``cards/delphes_card_CMS.tcl``) and say so next to each value.

Model, per event:
  * Calorimeter: a uniform eta-phi grid of towers (``eta_cell`` x 2 pi / ``n_phi``, |eta| < ``eta_max``).
    Electrons and photons deposit in the ECAL, other visible particles except muons in the HCAL.
    Each tower's ECAL and HCAL energies are smeared with sigma/E = f(eta) sqrt(C^2 + S^2/E + N^2/E^2)
    (constant C, stochastic S in sqrt(GeV), noise N in GeV, and the optional shape
    f = a + b (|eta| - eta0)^2 from ``eta_shape: [a, b, eta0]``, per |eta| region) using a log-normal
    distribution of that mean and width (as Delphes does), then zeroed below the ECAL/HCAL thresholds.
    A tower is massless and points at its cell centre.
  * Muons: tracking efficiency per |eta| region above ``pt_min``; pT smeared with the
    relative resolution sqrt(c^2 + (slope pT)^2); direction unchanged. Muons leave no tower energy.
  * Electrons: reconstruction efficiency per |eta| region above ``pt_min``; energy smeared with the
    ECAL resolution; direction unchanged (their energy also sits in the ECAL towers, as in Delphes).
  * Isolation ``pfRelIso03_all``: scalar pT sum of visible final-state particles with pT > ``pt_min``
    within dR < ``cone`` of the lepton, excluding the lepton itself, divided by the lepton's reco pT
    (tracks and neutral particle-flow candidates are taken at their true momenta).
  * Jets: anti-kT of the towers (same radius and pT threshold as the GenJets).
  * MET: minus the transverse sum of all towers and reconstructed muons.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import awkward as ak
import numpy as np

from .jets import cluster_jets
from .objects import invisible, kinematics, p4, transverse_sum

Regions = Sequence[Mapping[str, float]]


def region_index(regions: Regions, abs_eta: np.ndarray) -> np.ndarray:
    """Index of the first region with ``abs_eta <= eta_max``; ``len(regions)`` beyond every region."""
    index = np.full(np.shape(abs_eta), len(regions))
    for i in reversed(range(len(regions))):  # earlier regions overwrite later ones: the first match wins
        index[abs_eta <= regions[i]["eta_max"]] = i
    return index


def region_values(regions: Regions, abs_eta: np.ndarray, key: str) -> np.ndarray:
    """Value of ``key`` from the first region with ``abs_eta <= eta_max``; 0 beyond the last region."""
    values = np.array([reg.get(key, 0.0) for reg in regions] + [0.0], dtype=np.float64)
    return values[region_index(regions, abs_eta)]


def calo_resolution(regions: Regions, energy: np.ndarray, abs_eta: np.ndarray) -> np.ndarray:
    """Absolute energy resolution sigma_E in GeV: f(eta) E sqrt(C^2 + S^2/E + N^2/E^2), with
    f = a + b (|eta| - eta0)^2 where the region has ``eta_shape: [a, b, eta0]`` (else 1); 0 outside acceptance."""
    # one row per region (constant, stochastic, noise, a, b, eta0), plus the outside-acceptance row
    table = np.array([(reg.get("constant", 0.0), reg.get("stochastic", 0.0), reg.get("noise", 0.0),
                       *reg.get("eta_shape", (1.0, 0.0, 0.0))) for reg in regions]
                     + [(0.0, 0.0, 0.0, 1.0, 0.0, 0.0)], dtype=np.float64)
    c, s, n, a, b, eta0 = table[region_index(regions, abs_eta)].T
    shape = a + b * (abs_eta - eta0) ** 2
    e = np.maximum(energy, 1e-9)
    return shape * np.sqrt((c * e) ** 2 + s**2 * e + n**2)


def muon_pt_resolution(cfg: Mapping[str, Any], pt: np.ndarray, abs_eta: np.ndarray) -> np.ndarray:
    """Relative muon pT resolution sigma(pT)/pT = sqrt(c^2 + (slope pT)^2)."""
    res = cfg["muons"]["resolution"]
    c, slope = region_values(res, abs_eta, "constant"), region_values(res, abs_eta, "slope")
    return np.sqrt(c**2 + (slope * pt) ** 2)


def _lognormal(rng: np.random.Generator, mean: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Log-normal draws with the given mean and standard deviation (mean > 0)."""
    mean = np.maximum(mean, 1e-12)
    var = np.log1p((sigma / mean) ** 2)
    return rng.lognormal(np.log(mean) - 0.5 * var, np.sqrt(var))


def _efficiency_mask(rng: np.random.Generator, regions: Regions, pt: np.ndarray, abs_eta: np.ndarray, pt_min: float) -> np.ndarray:
    eff = region_values(regions, abs_eta, "value") * (pt > pt_min)
    return rng.random(pt.shape) < eff


def _towers(particles: ak.Array, cfg: Mapping[str, Any], rng: np.random.Generator) -> ak.Array:
    """Smeared calorimeter towers as massless Momentum4D (event, tower)."""
    calo = cfg["calorimeter"]
    eta_max, d_eta, n_phi = calo["eta_max"], calo["eta_cell"], calo["n_phi"]
    n_eta = int(np.ceil(2 * eta_max / d_eta))
    d_phi = 2 * np.pi / n_phi
    apid = abs(particles.pdgId)
    deposit = ~invisible(particles) & (apid != 13)
    v = p4(particles[deposit])
    counts = np.asarray(ak.num(v))
    event = np.repeat(np.arange(len(counts)), counts)
    eta, phi, energy = (np.asarray(ak.flatten(getattr(v, k))) for k in ("eta", "phi", "E"))
    pid = np.asarray(ak.flatten(apid[deposit]))
    inside = np.abs(eta) < eta_max
    event, eta, phi, energy, pid = event[inside], eta[inside], phi[inside], energy[inside], pid[inside]
    ieta = np.clip(((eta + eta_max) / d_eta).astype(np.int64), 0, n_eta - 1)
    iphi = np.clip(((phi + np.pi) / d_phi).astype(np.int64), 0, n_phi - 1)
    key = (event * n_eta + ieta) * n_phi + iphi
    cells, inverse = np.unique(key, return_inverse=True)
    em = (pid == 11) | (pid == 22)
    e_ecal = np.bincount(inverse, weights=np.where(em, energy, 0.0), minlength=len(cells))
    e_hcal = np.bincount(inverse, weights=np.where(em, 0.0, energy), minlength=len(cells))
    c_eta = -eta_max + ((cells // n_phi) % n_eta + 0.5) * d_eta
    c_phi = -np.pi + (cells % n_phi + 0.5) * d_phi
    abs_eta = np.abs(c_eta)
    for e, regions, thr in ((e_ecal, calo["ecal"], calo["ecal_threshold"]), (e_hcal, calo["hcal"], calo["hcal_threshold"])):
        hit = e > 0
        e[hit] = _lognormal(rng, e[hit], calo_resolution(regions, e[hit], abs_eta[hit]))
        e[e < thr] = 0.0
    e_tot = e_ecal + e_hcal
    keep = e_tot > 0
    t_event = cells[keep] // (n_eta * n_phi)
    pt = e_tot[keep] / np.cosh(c_eta[keep])
    towers = ak.zip(
        {"px": pt * np.cos(c_phi[keep]), "py": pt * np.sin(c_phi[keep]), "pz": pt * np.sinh(c_eta[keep]), "E": e_tot[keep]},
        with_name="Momentum4D",
    )
    return ak.unflatten(towers, np.bincount(t_event, minlength=len(counts)))


def _isolation(lep_vec: ak.Array, lep_index: ak.Array, particles: ak.Array, reco_pt: ak.Array, cone: float, pt_min: float) -> ak.Array:
    vis = ~invisible(particles)
    cand = ak.zip({"v": p4(particles), "i": ak.local_index(particles.px), "ok": vis}, depth_limit=2)
    pairs = ak.cartesian({"l": ak.zip({"v": lep_vec, "i": lep_index}, depth_limit=2), "c": cand}, nested=True)
    near = (pairs.l.v.deltaR(pairs.c.v) < cone) & (pairs.c.i != pairs.l.i) & pairs.c.ok & (pairs.c.v.pt > pt_min)
    return ak.values_astype(ak.sum(ak.where(near, pairs.c.v.pt, 0.0), axis=2) / reco_pt, np.float32)


def _reco_leptons(particles: ak.Array, keep: np.ndarray, pt_scale: np.ndarray, cfg: Mapping[str, Any]) -> ak.Array:
    """Reco lepton records from the (flattened) ``keep`` mask and pT scale factors, sorted by pT."""
    counts = ak.num(particles.px)
    keep_j = ak.unflatten(keep, counts)
    vec = p4(particles)[keep_j]
    idx = ak.local_index(particles.px)[keep_j]
    pt = ak.unflatten(np.asarray(ak.flatten(vec.pt)) * pt_scale[keep], ak.num(vec))
    reco = ak.zip({"pt": pt, "eta": vec.eta, "phi": vec.phi, "mass": vec.mass}, with_name="Momentum4D")
    pdg = particles.pdgId[keep_j]
    iso = cfg["isolation"]
    out = kinematics(
        reco,
        charge=ak.values_astype(-np.sign(pdg), np.int32),
        pdgId=pdg,
        pfRelIso03_all=_isolation(vec, idx, particles, pt, iso["cone"], iso["pt_min"]),
    )
    return out[ak.argsort(out.pt, axis=1, ascending=False)]


def reconstruct(particles: ak.Array, cfg: Mapping[str, Any], rng: np.random.Generator, jet_radius: float, jet_pt_min: float) -> dict[str, ak.Array]:
    """Reco-level Muon, Electron, Jet and MET collections from final-state ``particles``."""
    flat = {k: np.asarray(ak.flatten(particles[k])) for k in ("px", "py", "pz", "E", "pdgId")}
    pt = np.hypot(flat["px"], flat["py"])
    abs_eta = np.abs(np.arcsinh(flat["pz"] / np.maximum(pt, 1e-12)))
    apid = np.abs(flat["pdgId"])

    mu_cfg, el_cfg = cfg["muons"], cfg["electrons"]
    is_mu = (apid == 13) & _efficiency_mask(rng, mu_cfg["efficiency"], pt, abs_eta, mu_cfg["pt_min"])
    mu_scale = np.maximum(1.0 + rng.standard_normal(pt.shape) * muon_pt_resolution(cfg, pt, abs_eta), 1e-3)
    is_el = (apid == 11) & _efficiency_mask(rng, el_cfg["efficiency"], pt, abs_eta, el_cfg["pt_min"])
    ecal = cfg["calorimeter"]["ecal"]
    el_scale = _lognormal(rng, flat["E"], calo_resolution(ecal, flat["E"], abs_eta)) / np.maximum(flat["E"], 1e-12)

    muons = _reco_leptons(particles, is_mu, mu_scale, cfg)
    electrons = _reco_leptons(particles, is_el, el_scale, cfg)
    towers = _towers(particles, cfg, rng)
    mu_vec = ak.zip({"pt": muons.pt, "eta": muons.eta, "phi": muons.phi, "mass": muons.mass}, with_name="Momentum4D")
    met_input = ak.concatenate([ak.zip({"px": towers.px, "py": towers.py}), ak.zip({"px": mu_vec.px, "py": mu_vec.py})], axis=1)
    return {
        "Muon": muons,
        "Electron": electrons,
        "Jet": cluster_jets(towers, jet_radius, jet_pt_min),
        "MET": transverse_sum(met_input, sign=-1.0),
    }
