"""The fast detector's resolutions against the Delphes CMS card, whose formulas are written out here
(``cards/delphes_card_CMS.tcl``: MuonMomentumSmearing, ECal and HCal ResolutionFormula), not taken
from :mod:`lhcchain.simulate.detector`.

Single particles of known p_T and eta go through :func:`lhcchain.simulate.detector.reconstruct` with
the default config; the spread of the reconstructed value is compared with the card's sigma within
4 standard errors of a standard deviation, 4 / sqrt(2 n).
"""

from __future__ import annotations

import math

import awkward as ak
import numpy as np
import pytest

from lhcchain.simulate.detector import reconstruct

from .test_simulate import DETECTOR, particles

N = 6000
TOLERANCE = 4 / math.sqrt(2 * N)  # relative, on a standard deviation


def card_muon_pt(pt: float, eta: float) -> float:
    """Delphes CMS MuonMomentumSmearing: sigma(p_T) / p_T."""
    a = abs(eta)
    c, s = (0.01, 1.0e-4) if a <= 0.5 else (0.015, 1.5e-4) if a <= 1.5 else (0.025, 3.5e-4)
    return math.sqrt(c**2 + (pt * s) ** 2)


def card_ecal(energy: float, eta: float) -> float:
    """Delphes CMS ECal ResolutionFormula: sigma(E) in GeV, with its eta shape in the barrel and endcaps."""
    a = abs(eta)
    core = math.sqrt(energy**2 * 0.008**2 + energy * 0.11**2 + 0.40**2)
    if a <= 1.5:
        return (1 + 0.64 * eta**2) * core
    if a <= 2.5:
        return (2.16 + 5.6 * (a - 2) ** 2) * core
    return math.sqrt(energy**2 * 0.107**2 + energy * 2.08**2)


def card_hcal(energy: float, eta: float) -> float:
    """Delphes CMS HCal ResolutionFormula: sigma(E) in GeV."""
    c, s = (0.050, 1.50) if abs(eta) <= 3.0 else (0.130, 2.70)
    return math.sqrt(energy**2 * c**2 + energy * s**2)


def tower_energies(pdg: int, pt: float, eta: float, seed: int) -> np.ndarray:
    """Energy of the one reconstructed jet (one tower) of N single particles at the centre of a cell."""
    ev = particles([[(pt, eta, 0.5 * 2 * np.pi / 72, 0, pdg)] for _ in range(N)])
    jets = reconstruct(ev, DETECTOR, np.random.default_rng(seed), 0.4, 0.5)["Jet"]
    assert ak.all(ak.num(jets) <= 1)
    lead = ak.firsts(jets)
    return ak.to_numpy(lead.pt) * np.cosh(ak.to_numpy(lead.eta))


def cell_centre(eta: float) -> float:
    """The centre of the calorimeter cell holding ``eta`` (cells of eta_cell from -eta_max)."""
    calo = DETECTOR["calorimeter"]
    return -calo["eta_max"] + (math.floor((eta + calo["eta_max"]) / calo["eta_cell"]) + 0.5) * calo["eta_cell"]


@pytest.mark.parametrize("pt, eta", [(30.0, 0.2), (60.0, 1.0), (200.0, 2.0), (1000.0, 0.3)])
def test_muon_pt_resolution_is_the_cards(pt, eta):
    ev = particles([[(pt, eta, 0.3, 0, 13)] for _ in range(N)])
    reco = reconstruct(ev, DETECTOR, np.random.default_rng(int(pt)), 0.4, 10.0)
    rel = ak.to_numpy(ak.flatten(reco["Muon"].pt)) / pt - 1
    assert np.mean(rel) == pytest.approx(0.0, abs=4 * card_muon_pt(pt, eta) / math.sqrt(rel.size))
    assert np.std(rel) == pytest.approx(card_muon_pt(pt, eta), rel=TOLERANCE)


@pytest.mark.parametrize("pdg, energy, eta", [(130, 50.0, 0.3), (2112, 300.0, 2.0), (130, 200.0, 3.5)])
def test_hcal_resolution_is_the_cards(pdg, energy, eta):
    eta = cell_centre(eta)
    e = tower_energies(pdg, energy / math.cosh(eta), eta, seed=pdg)
    assert np.mean(e) == pytest.approx(energy, abs=4 * card_hcal(energy, eta) / math.sqrt(N))
    assert np.std(e) == pytest.approx(card_hcal(energy, eta), rel=TOLERANCE)


@pytest.mark.parametrize("energy, eta", [(50.0, 0.0), (100.0, 3.5)])
def test_ecal_resolution_is_the_cards(energy, eta):
    """Photons where the card's eta shape is 1 (eta = 0) or absent (|eta| > 2.5)."""
    eta = cell_centre(eta)
    e = tower_energies(22, energy / math.cosh(eta), eta, seed=7)
    assert np.std(e) == pytest.approx(card_ecal(energy, eta), rel=TOLERANCE)


@pytest.mark.parametrize("energy, eta", [(50.0, 1.0), (50.0, 2.0)])
def test_ecal_resolution_eta_shape_is_the_cards(energy, eta):
    eta = cell_centre(eta)
    e = tower_energies(22, energy / math.cosh(eta), eta, seed=8)
    assert np.std(e) == pytest.approx(card_ecal(energy, eta), rel=TOLERANCE)
