"""Particle-level (generator) objects, NanoAOD-style.

Conventions (as in Rivet analyses and CMS NanoAOD):
  * prompt leptons are final-state e/mu not from hadronisation or hadron decays;
  * dressed leptons add every prompt photon within dR < ``dress_radius`` (default 0.1);
  * GenJets cluster all visible final-state particles except prompt leptons and their dressing
    photons (neutrinos are invisible);
  * GenMET is the transverse vector sum of all neutrinos.
Momenta in GeV; ``phi`` in (-pi, pi].
"""

from __future__ import annotations

import awkward as ak
import numpy as np
import vector

from .jets import cluster_jets

vector.register_awkward()

NEUTRINOS = (12, 14, 16)


def p4(particles: ak.Array) -> ak.Array:
    """Momentum4D view of records with ``px, py, pz, E``."""
    return ak.zip({k: particles[k] for k in ("px", "py", "pz", "E")}, with_name="Momentum4D")


def invisible(particles: ak.Array) -> ak.Array:
    """Mask of neutrinos."""
    a = abs(particles.pdgId)
    return (a == 12) | (a == 14) | (a == 16)


def kinematics(vec: ak.Array, **extra: ak.Array) -> ak.Array:
    """``pt, eta, phi, mass`` records (float32) from a Momentum4D array, plus ``extra`` fields."""
    fields = {k: ak.values_astype(getattr(vec, k), np.float32) for k in ("pt", "eta", "phi", "mass")}
    return ak.zip({**fields, **extra})


def transverse_sum(vec: ak.Array, sign: float = 1.0) -> ak.Array:
    """``pt, phi`` of ``sign`` times the transverse vector sum of ``vec`` (event, object).

    ``sign = -1`` gives missing transverse momentum from visible objects.
    """
    sx = sign * ak.to_numpy(ak.sum(vec.px, axis=1))
    sy = sign * ak.to_numpy(ak.sum(vec.py, axis=1))
    return ak.zip({"pt": np.hypot(sx, sy).astype(np.float32), "phi": np.arctan2(sy, sx).astype(np.float32)})


def hard_process(hard: ak.Array) -> ak.Array:
    """LHEPart-style records of the hard process: incoming partons have pt = eta = phi = 0 and ``incomingpz``."""
    v = p4(hard)
    incoming = hard.status == -1
    zero = ak.zeros_like(hard.px, dtype=np.float32)
    return ak.zip(
        {
            "pt": ak.where(incoming, zero, ak.values_astype(v.pt, np.float32)),
            "eta": ak.where(incoming, zero, ak.values_astype(v.eta, np.float32)),
            "phi": ak.where(incoming, zero, ak.values_astype(v.phi, np.float32)),
            "mass": ak.values_astype(v.mass, np.float32),
            "pdgId": hard.pdgId,
            "status": hard.status,
            "incomingpz": ak.where(incoming, ak.values_astype(hard.pz, np.float32), zero),
        }
    )


def particle_level(particles: ak.Array, jet_radius: float, jet_pt_min: float, dress_radius: float = 0.1) -> dict[str, ak.Array]:
    """GenDressedLepton, GenJet and GenMET collections from final-state ``particles``."""
    vec = p4(particles)
    apid = abs(particles.pdgId)
    lep_mask = particles.prompt & ((apid == 11) | (apid == 13))
    pho_mask = particles.prompt & (apid == 22)
    leptons, photons = vec[lep_mask], vec[pho_mask]

    pairs = ak.cartesian({"l": leptons, "g": photons}, nested=True)  # (event, lepton, photon)
    near = pairs.l.deltaR(pairs.g) < dress_radius
    add = {k: ak.sum(ak.where(near, pairs.g[k], 0.0), axis=2) for k in ("px", "py", "pz", "E")}
    dressed = ak.zip({k: leptons[k] + add[k] for k in add}, with_name="Momentum4D")
    order = ak.argsort(dressed.pt, axis=1, ascending=False)
    dressed_lep = kinematics(dressed, pdgId=particles.pdgId[lep_mask])[order]

    to_lep = ak.cartesian({"p": vec, "l": leptons}, nested=True)  # (event, particle, lepton)
    is_dressing = pho_mask & ak.any(to_lep.p.deltaR(to_lep.l) < dress_radius, axis=2)
    jet_input = particles[~invisible(particles) & ~lep_mask & ~is_dressing]
    return {
        "GenDressedLepton": dressed_lep,
        "GenJet": cluster_jets(jet_input, jet_radius, jet_pt_min),
        "GenMET": transverse_sum(vec[invisible(particles)]),
    }
