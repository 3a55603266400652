"""Stage simulate: jets and substructure, the fast detector against its configuration, and chunks."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pylhe
import pytest
import uproot
import vector
import yaml

from lhcchain.simulate.detector import reconstruct
from lhcchain.simulate.jets import cluster_jets
from lhcchain.simulate.run import chunk_config, simulate_chunk

from .conftest import ROOT

vector.register_awkward()
CONFIG = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
DETECTOR = CONFIG["simulate"]["detector"]


def particles(rows: list[list[tuple[float, float, float, float, int]]]) -> ak.Array:
    """Events of massless particles from (pt, eta, phi, E-ignored, pdgId) tuples."""
    out = []
    for ev in rows:
        recs = []
        for pt, eta, phi, _, pid in ev:
            v = vector.obj(pt=pt, eta=eta, phi=phi, mass=0.0)
            recs.append({"px": v.px, "py": v.py, "pz": v.pz, "E": v.E, "pdgId": pid, "charge": 0.0, "prompt": False})
        out.append(recs)
    return ak.Array(out)


def test_two_separated_jets_and_substructure() -> None:
    ev = particles([[(50, 0.0, 0.0, 0, 211), (30, 0.1, 0.05, 0, 211), (40, 1.5, 2.5, 0, 211), (1, -3, -2, 0, 211)]])
    jets = cluster_jets(ev, radius=0.4, pt_min=10.0)[0]
    assert len(jets) == 2
    assert jets.nConstituents.tolist() == [2, 1]
    lead = ak.zip({"px": ev.px[0, :2], "py": ev.py[0, :2], "pz": ev.pz[0, :2], "E": ev.E[0, :2]}, with_name="Momentum4D")
    total = lead[0] + lead[1]
    assert jets.pt[0] == pytest.approx(total.pt, rel=1e-5)
    assert jets.mass[0] == pytest.approx(total.mass, rel=1e-4)
    girth = ak.sum(lead.pt * lead.deltaR(total)) / total.pt
    assert jets.girth[0] == pytest.approx(girth, rel=1e-4)
    assert jets.tau21[0] == 0.0 and jets.tau21[1] == 0.0  # tau_2 vanishes for <= 2 constituents
    assert jets.girth[1] == pytest.approx(0.0, abs=1e-6)


def test_tau21_separates_two_prong_from_one_prong() -> None:
    rng = np.random.default_rng(3)
    two, one = [], []
    for _ in range(20):
        prong = [(40 + rng.normal(), 0.15 * s + rng.normal(0, 0.01), rng.normal(0, 0.01), 0, 211) for s in (-1, 1)]
        two.append(prong + [(2, rng.normal(0, 0.05), rng.normal(0, 0.05), 0, 211) for _ in range(4)])
        one.append([(70, 0.0, 0.0, 0, 211)] + [(2, rng.normal(0, 0.05), rng.normal(0, 0.05), 0, 211) for _ in range(4)])
    t2 = ak.to_numpy(ak.firsts(cluster_jets(particles(two)).tau21))
    t1 = ak.to_numpy(ak.firsts(cluster_jets(particles(one)).tau21))
    assert np.median(t2) < 0.3 < np.median(t1)


def test_muon_efficiency_direction_and_met() -> None:
    """Efficiency, direction and MET of single muons; the pT resolution against the card: test_detector_card.py."""
    rng = np.random.default_rng(11)
    n, pt, eta = 10000, 60.0, 1.0
    ev = particles([[(pt, eta, 0.3, 0, 13)] for _ in range(n)])
    reco = reconstruct(ev, DETECTOR, rng, 0.4, 10.0)
    n_reco = ak.num(reco["Muon"])
    eff = float(np.mean(n_reco))
    assert eff == pytest.approx(0.95, abs=4 * np.sqrt(0.95 * 0.05 / n))
    assert np.allclose(ak.to_numpy(ak.flatten(reco["Muon"].eta)), eta, atol=1e-5)
    # muons leave no tower: MET is minus the reconstructed muon, and zero when the muon is lost
    met, found = ak.to_numpy(reco["MET"].pt), ak.to_numpy(n_reco) == 1
    assert np.allclose(met[found], ak.to_numpy(ak.firsts(reco["Muon"].pt))[found], rtol=1e-5)
    assert np.all(met[~found] == 0.0)
    assert not ak.any(ak.num(reco["Jet"]) > 0)


def test_muons_outside_acceptance_are_lost() -> None:
    ev = particles([[(60.0, 2.6, 0.0, 0, 13), (5.0, 0.0, 0.0, 0, -13)]] * 200)
    reco = reconstruct(ev, DETECTOR, np.random.default_rng(1), 0.4, 10.0)
    assert ak.sum(ak.num(reco["Muon"])) == 0


def test_ecal_energy_is_unbiased() -> None:
    """A photon's tower energy is unbiased; its resolution against the card: test_detector_card.py."""
    rng = np.random.default_rng(5)
    n, energy_pt, eta = 5000, 40.0, 0.3
    ev = particles([[(energy_pt, eta, 1.0, 0, 22)] for _ in range(n)])
    jets = reconstruct(ev, DETECTOR, rng, 0.4, 5.0)["Jet"]
    e_true = energy_pt * np.cosh(eta)
    lead = ak.firsts(jets)
    e_reco = ak.to_numpy(lead.pt) * np.cosh(ak.to_numpy(lead.eta))
    # the tower sits at its cell centre; compare energies, not transverse momenta
    assert np.mean(e_reco) == pytest.approx(e_true, rel=0.01)


def test_electron_isolation() -> None:
    isolated = [(45.0, 0.5, 0.0, 0, 11)]
    busy = [(45.0, 0.5, 0.0, 0, 11), (9.0, 0.6, 0.1, 0, 211), (4.5, 0.45, -0.1, 0, 22)]
    reco = reconstruct(particles([isolated, busy]), DETECTOR, np.random.default_rng(2), 0.4, 10.0)
    el = reco["Electron"]
    assert ak.num(el).tolist() == [1, 1] or ak.sum(ak.num(el)) >= 1  # efficiency 0.95 per electron
    iso = {int(i): float(v) for i, v in enumerate(ak.to_list(ak.firsts(el.pfRelIso03_all))) if v is not None}
    if 0 in iso:
        assert iso[0] == 0.0
    if 1 in iso:
        reco_pt = float(ak.firsts(el.pt)[1])
        assert iso[1] == pytest.approx(13.5 / reco_pt, rel=1e-5)


@pytest.fixture(scope="module")
def chunk(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("sim")
    sample = {"process": "drell_yan_ll", "n_events": 120, "chunks": 2}
    jets = CONFIG["simulate"]["jets"]
    paths = {}
    for tag, chunk_i in (("a", 0), ("b", 0), ("c", 1)):
        paths[tag] = out / f"{tag}.root"
        simulate_chunk("nominal", sample, chunk_i, 99, DETECTOR, jets, paths[tag], out / f"{tag}.json", batch_size=40)
    return paths


def test_chunk_has_nanoaod_branches(chunk: dict) -> None:
    tree = uproot.open(chunk["a"])["Events"]
    assert tree.num_entries == 60
    keys = set(tree.keys())
    for b in ("nJet", "Jet_pt", "Jet_girth", "Jet_tau21", "Jet_nConstituents", "nGenJet", "GenJet_pt", "nMuon", "Muon_pfRelIso03_all",
              "nElectron", "Electron_charge", "MET_pt", "MET_phi", "GenMET_pt", "nGenDressedLepton", "GenDressedLepton_pdgId",
              "nLHEPart", "LHEPart_pdgId", "LHEPart_status", "genWeight", "run", "event"):
        assert b in keys, b
    a = tree.arrays(["LHEPart_pdgId", "LHEPart_status", "GenDressedLepton_pdgId", "event", "run"])
    out = a.LHEPart_pdgId[a.LHEPart_status == 1]
    assert ak.all(ak.num(out) == 2) and ak.all(out[:, 0] == -out[:, 1]) and ak.all(np.isin(abs(ak.flatten(out)), [11, 13]))
    assert ak.all(a.LHEPart_pdgId[a.LHEPart_status == 2] == 23)
    assert a.event.tolist() == list(range(60)) and set(a.run.tolist()) == {0}


def test_chunks_are_reproducible_and_independent(chunk: dict) -> None:
    read = lambda p: uproot.open(p)["Events"].arrays(["Jet_pt", "Muon_pt", "GenJet_pt"])  # noqa: E731
    a, b, c = read(chunk["a"]), read(chunk["b"]), read(chunk["c"])
    assert ak.all(a.Jet_pt == b.Jet_pt) and ak.all(a.Muon_pt == b.Muon_pt)
    assert not ak.all(ak.num(a.GenJet_pt) == ak.num(c.GenJet_pt)) or not ak.all(ak.flatten(a.GenJet_pt[:5]) == ak.flatten(c.GenJet_pt[:5]))
    assert chunk_config("nominal", {"process": "drell_yan_ll", "n_events": 120, "chunks": 2}, 0, 99).seed != \
        chunk_config("nominal", {"process": "drell_yan_ll", "n_events": 120, "chunks": 2}, 1, 99).seed


def test_lhe_chunk_showers_its_own_slice(tmp_path, data_dir) -> None:
    lhe = data_dir / "pylhe-testfile-powheg-box-v2-Zj.lhe"
    sample = {"process": "lhe", "lhe_file": str(lhe), "n_events": 100, "chunks": 4}
    simulate_chunk("powheg", sample, 2, 1, DETECTOR, CONFIG["simulate"]["jets"], tmp_path / "c2.root", tmp_path / "c2.json", batch_size=10)
    hard = uproot.open(tmp_path / "c2.root")["Events"].arrays(["LHEPart_pt", "LHEPart_pdgId", "LHEPart_status"])
    assert len(hard) == 25
    events = list(pylhe.LHEFile.fromfile(str(lhe)).events)[50:75]
    for got, ev in zip(hard[:5], events[:5]):
        lep = [p for p in ev.particles if p.status == 1 and abs(p.id) in (11, 13)]
        want = sorted(np.hypot(p.px, p.py) for p in lep)
        have = sorted(float(pt) for pt, pid, st in zip(got.LHEPart_pt, got.LHEPart_pdgId, got.LHEPart_status) if st == 1 and abs(pid) in (11, 13))
        assert have == pytest.approx(want, rel=1e-5)
    assert uproot.open(tmp_path / "c2.root")["Events"]["event"].array(library="np").tolist() == list(range(50, 75))


def test_lhe_event_numbers_survive_a_failed_event(tmp_path, data_dir, monkeypatch) -> None:
    """An LHE event on which Pythia fails is dropped, and ``event`` still gives each row's position in
    the file: the rows' hard leptons are those of the LHE events at those positions."""
    import lhcchain.simulate.pythia as pythia_module

    make = pythia_module._make_pythia

    class FailThird:  # Pythia that reads the third event of its slice and reports a failure
        def __init__(self, cfg):
            self._pythia, self._calls = make(cfg), 0

        def __getattr__(self, name):
            return getattr(self._pythia, name)

        def next(self) -> bool:
            self._calls += 1
            return self._pythia.next() and self._calls != 3

    monkeypatch.setattr(pythia_module, "_make_pythia", FailThird)
    lhe = data_dir / "pylhe-testfile-powheg-box-v2-Zj.lhe"
    sample = {"process": "lhe", "lhe_file": str(lhe), "n_events": 20, "chunks": 2}
    simulate_chunk("powheg", sample, 1, 1, DETECTOR, CONFIG["simulate"]["jets"], tmp_path / "c.root", tmp_path / "c.json", batch_size=4)
    tree = uproot.open(tmp_path / "c.root")["Events"].arrays(["event", "LHEPart_pt", "LHEPart_pdgId", "LHEPart_status"])
    assert tree.event.tolist() == [10, 11, *range(13, 20)]
    events = list(pylhe.LHEFile.fromfile(str(lhe)).events)
    for got in tree:
        lep = [p for p in events[got.event].particles if p.status == 1 and abs(p.id) in (11, 13)]
        have = sorted(float(pt) for pt, pid, st in zip(got.LHEPart_pt, got.LHEPart_pdgId, got.LHEPart_status) if st == 1 and abs(pid) in (11, 13))
        # 2 %: Pythia gives the massless LHE leptons their mass and reshuffles momenta in a few events
        assert have == pytest.approx(sorted(np.hypot(p.px, p.py) for p in lep), rel=0.02)
