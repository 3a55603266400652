"""The ``prepare`` stage on real event files (CMS NanoAOD, MadGraph and POWHEG LHE) and a Delphes-layout file.

Expected values are computed independently of lhcchain (uproot/numpy, pylhe + vector, explicit
four-vector sums), so the tests fail when the readers, the selection or the bookkeeping go wrong.
"""

from __future__ import annotations

import csv
import itertools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import uproot
import vector
import yaml

from lhcchain.prepare.readers import detect_format, iterate_events
import lhcchain.prepare.run as run_module
from lhcchain.prepare.run import OUTPUTS, SPLITS, output_paths, prepare, split_of

ROOT = Path(__file__).resolve().parents[1]
CMS = "nanoAOD_2015_CMS_Open_Data_ttbar.root"
MADGRAPH = "pylhe-testfile-madgraph-2.2.1-Z-mlm.lhe.gz"
POWHEG = "pylhe-testfile-powheg-box-v2-Zj.lhe"
LOOSE = {"n_leptons_min": 1, "require_ossf": False, "mll_min": None, "mll_max": None, "n_jets_min": 1}
BASE_COLUMNS = ("file_index", "entry", "run", "event", "weight")
MUON_MASS, ELECTRON_MASS = 0.1056584, 0.000511


def prepare_cfg(selection: Mapping[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    """The config's ``prepare`` section with ``overrides`` and ``selection`` keys laid over it."""
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["prepare"]
    cfg.update(overrides)
    cfg["selection"].update(selection or {})
    return cfg


def read_all(outs: Mapping[str, Path]) -> dict[str, np.ndarray]:
    """All splits' rows as numpy columns, sorted by (file_index, entry)."""
    t = pa.concat_tables([pq.read_table(outs[s]) for s in SPLITS])
    cols = {c: t.column(c).to_numpy() for c in t.column_names}
    order = np.lexsort((cols["entry"], cols["file_index"]))
    return {c: v[order] for c, v in cols.items()}


def skip_figures(hists, levels, cutflow, tmp, sample) -> None:
    """Stand-in for the stage's figures where a test does not look at them (they cost seconds each)."""
    for key in ("mll_plot", "jets_plot", "cutflow_plot"):
        Path(tmp[key]).write_bytes(b"")


@pytest.fixture
def no_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run_module, "_figures", skip_figures)


def split_entries(outs: Mapping[str, Path]) -> dict[str, list[int]]:
    return {s: sorted(pq.read_table(outs[s], columns=["entry"]).column("entry").to_pylist()) for s in SPLITS}


def mass(*p4s: tuple[float, float, float, float]) -> float:
    """Invariant mass of a sum of (pt, eta, phi, m) four-vectors, by explicit components."""
    e = px = py = pz = 0.0
    for pt, eta, phi, m in p4s:
        x, y, z = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
        px, py, pz, e = px + x, py + y, pz + z, e + np.sqrt(x * x + y * y + z * z + m * m)
    return float(np.sqrt(e * e - px * px - py * py - pz * pz))


def delta_r(eta1: float, phi1: float, eta2: float, phi2: float) -> float:
    dphi = (phi1 - phi2 + np.pi) % (2 * np.pi) - np.pi
    return float(np.hypot(eta1 - eta2, dphi))


# --------------------------------------------------------------------------- CMS NanoAOD


@pytest.fixture(scope="module")
def cms_run(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Path], dict[str, Any], dict[str, Any]]:
    outdir = tmp_path_factory.mktemp("cms") / "out"
    outs = output_paths(outdir)
    cfg = prepare_cfg(LOOSE, levels=["parton", "particle", "reco"], step_size=70)  # 70, 70, 60 events
    metrics = prepare("cms_ttbar", [data_dir / CMS], outs, cfg, seed=11)
    return outs, metrics, cfg


def read_cutflow(path: Path) -> dict[str, list[dict[str, str]]]:
    by_level: dict[str, list[dict[str, str]]] = {}
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            by_level.setdefault(row["level"], []).append(row)
    return by_level


def test_cms_outputs_exist(cms_run):
    outs, metrics, _ = cms_run
    assert set(outs) == set(OUTPUTS)
    for key, path in outs.items():
        assert path.is_file() and path.stat().st_size > 0, key
    for key in ("mll_plot", "jets_plot", "cutflow_plot"):
        assert outs[key].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", key
    outdir = outs["train"].parent
    assert not [p.name for p in outdir.iterdir() if p.name.startswith(".staging-")]
    assert json.loads(outs["metrics"].read_text()) == json.loads(json.dumps(metrics))


def test_cms_counts_and_cutflow(cms_run, data_dir):
    outs, metrics, _ = cms_run
    meta = json.loads(outs["metadata"].read_text())
    counts = meta["counts"]
    rows = {s: pq.read_metadata(outs[s]).num_rows for s in SPLITS}
    assert counts["read"] == 200 == metrics["n_read"]
    assert sum(rows.values()) == counts["kept"] == metrics["n_kept"] > 0
    assert rows == {s: counts[s] for s in SPLITS}

    weights = uproot.open(data_dir / CMS)["Events"]["genWeight"].array(library="np").astype(np.float64)
    cutflow = read_cutflow(outs["cutflow"])
    assert list(cutflow) == ["parton", "particle", "reco"]
    for level, level_rows in cutflow.items():
        events = [int(r["events"]) for r in level_rows]
        assert events[0] == 200, level
        assert level_rows[0]["cut"] == "all"
        assert all(b <= a for a, b in itertools.pairwise(events)), (level, events)
        assert float(level_rows[0]["sum_weights"]) == pytest.approx(weights.sum(), rel=1e-6)
        assert metrics["selection_efficiency"][level] == pytest.approx(events[-1] / 200)


def test_cms_feature_units(cms_run):
    outs, _, _ = cms_run
    meta = json.loads(outs["metadata"].read_text())
    features = meta["features"]
    columns = pq.read_schema(outs["train"]).names
    assert set(columns) == set(features)
    assert set(BASE_COLUMNS) <= set(columns)
    expected = {"GeV": ["reco_j1_pt", "reco_l1_pt", "reco_mll", "reco_ptll", "reco_ht", "reco_mjj", "reco_met_pt",
                        "particle_j3_mass", "parton_l2_pt"],
                "rad": ["reco_l1_phi", "reco_j2_phi", "reco_phill", "reco_met_phi", "particle_met_phi"],
                "": ["reco_l1_eta", "reco_n_jets", "reco_n_leptons", "reco_l1_pdgId", "reco_yll", "reco_drjj", "reco_pass"]}
    for unit, names in expected.items():
        for name in names:
            assert features[name] == unit, name
    assert meta["levels"] == ["parton", "particle", "reco"]
    assert meta["sources"][0]["format"] == "nanoaod"


def test_cms_pass_flags_match_cutflow(cms_run):
    outs, _, _ = cms_run
    cols = read_all(outs)
    cutflow = read_cutflow(outs["cutflow"])
    keep = np.zeros(len(cols["entry"]), bool)
    for level, level_rows in cutflow.items():
        passed = cols[f"{level}_pass"]
        keep |= passed
        assert int(passed.sum()) == int(level_rows[-1]["events"]), level
        assert cols["weight"][passed].sum() == pytest.approx(float(level_rows[-1]["sum_weights"]), rel=1e-6)
        assert np.all(cols[f"{level}_n_jets"][passed] >= LOOSE["n_jets_min"])
        assert np.all(cols[f"{level}_n_leptons"][passed] >= LOOSE["n_leptons_min"])
    assert keep.all(), "a row passes no level"
    assert len(np.unique(cols["entry"])) == len(cols["entry"])


def test_cms_reco_jets_match_independent_read(cms_run, data_dir):
    """Selected, lepton-cleaned reco jets recomputed event by event from the raw NanoAOD branches."""
    outs, _, cfg = cms_run
    sel = cfg["selection"]
    branches = ["event", "Jet_pt", "Jet_eta", "Jet_phi"] + [f"{c}_{f}" for c in ("Muon", "Electron")
                                                            for f in ("pt", "eta", "phi", "pfRelIso03_all")]
    raw = uproot.open(data_dir / CMS)["Events"].arrays(branches, library="ak")
    expected_pass, expected_j1, expected_nj = [], [], []
    for ev in raw.to_list():
        leptons = [(pt, eta, phi) for c in ("Muon", "Electron")
                   for pt, eta, phi, iso in zip(ev[f"{c}_pt"], ev[f"{c}_eta"], ev[f"{c}_phi"], ev[f"{c}_pfRelIso03_all"])
                   if pt > sel["lepton_pt_min"] and abs(eta) < sel["lepton_eta_max"] and iso < sel["lepton_iso_max"]]
        jets = sorted((pt for pt, eta, phi in zip(ev["Jet_pt"], ev["Jet_eta"], ev["Jet_phi"])
                       if pt > sel["jet_pt_min"] and abs(eta) < sel["jet_eta_max"]
                       and all(delta_r(eta, phi, le, lp) > sel["jet_lepton_dr_min"] for _, le, lp in leptons)), reverse=True)
        expected_pass.append(len(leptons) >= sel["n_leptons_min"] and len(jets) >= sel["n_jets_min"])
        expected_j1.append(jets[0] if jets else np.nan)
        expected_nj.append(len(jets))
    expected_pass = np.array(expected_pass)
    assert expected_pass.sum() >= 5, "the loose selection should keep several CMS events"

    cols = read_all(outs)
    entry = cols["entry"]
    assert np.array_equal(entry[cols["reco_pass"]], np.flatnonzero(expected_pass))
    np.testing.assert_allclose(cols["reco_j1_pt"], np.array(expected_j1)[entry], rtol=1e-6, equal_nan=True)
    np.testing.assert_array_equal(cols["reco_n_jets"], np.array(expected_nj)[entry])
    np.testing.assert_array_equal(cols["event"], ak.to_numpy(raw["event"])[entry])
    assert np.all(np.isfinite(cols["reco_j1_pt"][cols["reco_pass"]]))


def test_cms_photons_match_independent_read(data_dir, tmp_path, no_figures):
    """Every event kept (no lepton or jet requirement): photons in acceptance, away from every lepton, in pT
    order, from the raw ``Photon_*`` (reco) and ``GenIsolatedPhoton_*`` (particle) branches."""
    sel = {"n_leptons_min": 0, "require_ossf": False, "mll_min": None, "mll_max": None, "n_jets_min": 0, "photon_pt_min": 10.0}
    cfg = prepare_cfg(sel, levels=["particle", "reco"], max_photons=2)
    outs = output_paths(tmp_path / "out")
    prepare("cms_ttbar", [data_dir / CMS], outs, cfg, seed=2)
    cols = read_all(outs)
    assert cols["entry"].tolist() == list(range(200))
    sel = cfg["selection"]
    sources = {"reco": ("Photon", ("Muon", "Electron")), "particle": ("GenIsolatedPhoton", ("GenDressedLepton",))}
    for level, (photon, leptons) in sources.items():
        raw = uproot.open(data_dir / CMS)["Events"].arrays(filter_name=[f"{c}_{f}" for c in (photon, *leptons)
                                                                          for f in ("pt", "eta", "phi")]).to_list()
        expected, near_lepton = [], 0
        for ev in raw:
            seen = [(pt, eta, phi) for pt, eta, phi in zip(ev[f"{photon}_pt"], ev[f"{photon}_eta"], ev[f"{photon}_phi"])
                    if pt > sel["photon_pt_min"] and abs(eta) < sel["photon_eta_max"]]
            lep = [(eta, phi) for c in leptons for eta, phi in zip(ev[f"{c}_eta"], ev[f"{c}_phi"])]
            kept = [p for p in seen if all(delta_r(p[1], p[2], *le) > sel["photon_lepton_dr_min"] for le in lep)]
            near_lepton += len(seen) - len(kept)
            expected.append(sorted(kept, reverse=True))
        assert cols[f"{level}_n_photons"].tolist() == [len(e) for e in expected], level
        for slot in (0, 1):
            for k, name in enumerate(("pt", "eta", "phi")):
                want = [e[slot][k] if len(e) > slot else np.nan for e in expected]
                np.testing.assert_allclose(cols[f"{level}_a{slot + 1}_{name}"], want, rtol=1e-6, equal_nan=True, err_msg=level)
        print(f"CMS {level}: {sum(map(len, expected))} photons kept, {near_lepton} removed within dR 0.4 of a lepton")
        if level == "reco":  # most reco photons in this ttbar file are electrons seen twice
            assert near_lepton > sum(map(len, expected)) > 3
    meta = json.loads(outs["metadata"].read_text())
    assert meta["photons"] == {"particle": {"photons": 2, "events_without_photon_collection": 0},
                               "reco": {"photons": 79, "events_without_photon_collection": 0}}
    assert meta["features"]["reco_a2_pt"] == "GeV" and meta["features"]["particle_a1_phi"] == "rad"
    assert meta["max_photons"] == 2


def test_iterate_events_streams_in_steps(data_dir):
    batches = list(iterate_events(data_dir / CMS, ["reco"], step_size=100))
    assert [len(b) for b in batches] == [100, 100]
    assert np.array_equal(np.concatenate([b.entry for b in batches]), np.arange(200))
    assert all(len(b.levels["reco"]["jets"]) == 100 for b in batches)


def test_split_independent_of_step_size_and_seed_dependent(data_dir, tmp_path, no_figures):
    runs = {}
    for name, step, seed in (("small", 37, 5), ("large", 1000, 5), ("other_seed", 1000, 6)):
        outs = output_paths(tmp_path / name)
        prepare("powheg_zj", [data_dir / POWHEG], outs, prepare_cfg(levels=["parton"], step_size=step), seed=seed)
        runs[name] = outs
    small, large = split_entries(runs["small"]), split_entries(runs["large"])
    assert small == large
    assert sum(map(len, small.values())) >= 50
    for s in SPLITS:  # whole rows identical, not only the entry numbers
        a, b = pq.read_table(runs["small"][s]), pq.read_table(runs["large"][s])
        assert a.schema == b.schema
        for c in a.column_names:
            np.testing.assert_array_equal(a.column(c).to_numpy(), b.column(c).to_numpy(), err_msg=f"{s} {c}")
    # the split is the documented hash of (seed, file, entry)
    entries = np.array(sorted(itertools.chain(*small.values())))
    idx = split_of(5, 0, entries, [0.6, 0.2, 0.2])
    assert {s: entries[idx == i].tolist() for i, s in enumerate(SPLITS)} == small
    other = split_entries(runs["other_seed"])
    assert sorted(itertools.chain(*other.values())) == entries.tolist()  # same events kept...
    assert other != small  # ...but split differently


# --------------------------------------------------------------------------- LHE


def lhe_expected(path: Path, sel: Mapping[str, Any], n: int | None = None) -> list[dict[str, Any]]:
    """Per event (pylhe + vector): weight, two-lepton m_ll and whether it passes the Z selection."""
    import pylhe

    out = []
    for ev in itertools.islice(pylhe.LHEFile.fromfile(str(path)).events, n):
        leptons = [vector.obj(px=p.px, py=p.py, pz=p.pz, E=p.e) for p in ev.particles
                   if p.status == 1 and abs(int(p.id)) in (11, 13)]
        ids = [int(p.id) for p in ev.particles if p.status == 1 and abs(int(p.id)) in (11, 13)]
        mll = (leptons[0] + leptons[1]).mass if len(leptons) == 2 else np.nan
        good = [lep for lep in leptons if lep.pt > sel["lepton_pt_min"] and abs(lep.eta) < sel["lepton_eta_max"]]
        passes = (len(good) == len(leptons) == 2 and ids[0] == -ids[1]
                  and sel["mll_min"] <= mll <= sel["mll_max"])
        out.append({"weight": ev.eventinfo.weight, "mll": mll, "pass": passes})
    return out


@pytest.fixture(scope="module")
def madgraph_run(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Path], dict[str, Any], dict[str, Any]]:
    outs = output_paths(tmp_path_factory.mktemp("madgraph"))
    cfg = prepare_cfg(levels=["parton"], step_size=2500)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(run_module, "_figures", skip_figures)
        metrics = prepare("madgraph_z", [data_dir / MADGRAPH], outs, cfg, seed=20261123)
    return outs, metrics, cfg


def test_madgraph_mll_matches_pylhe_vector(madgraph_run, data_dir):
    outs, _, cfg = madgraph_run
    n = 400
    expected = lhe_expected(data_dir / MADGRAPH, cfg["selection"], n)
    cols = read_all(outs)
    first = cols["entry"] < n
    entry = cols["entry"][first]
    assert entry.tolist() == [i for i, e in enumerate(expected) if e["pass"]]
    assert len(entry) > 100
    np.testing.assert_allclose(cols["parton_mll"][first], [expected[i]["mll"] for i in entry], rtol=2e-5)
    np.testing.assert_allclose(cols["weight"][first], [expected[i]["weight"] for i in entry], rtol=1e-12)
    assert cols["parton_pass"].all()
    assert np.all(np.abs(np.abs(cols["parton_l1_pdgId"]) - 12) == 1)
    assert np.array_equal(cols["parton_l1_pdgId"], -cols["parton_l2_pdgId"])


def test_madgraph_peak_fit(madgraph_run):
    outs, metrics, _ = madgraph_run
    peak = metrics["mll_peak"]["parton"]
    print(f"MadGraph parton-level m_ll peak: {peak['mean']:.3f} +- {peak['mean_err']:.3f} GeV")
    assert abs(peak["mean"] - 91.19) < 1.0
    assert peak["mean_err"] < 0.2
    assert json.loads(outs["metrics"].read_text())["mll_peak"]["parton"]["mean"] == pytest.approx(peak["mean"])


def test_madgraph_split_fractions(madgraph_run):
    outs, metrics, _ = madgraph_run
    meta = json.loads(outs["metadata"].read_text())
    assert meta["counts"]["read"] == 10000
    kept = meta["counts"]["kept"]
    assert kept > 3000
    for s, frac in zip(SPLITS, (0.6, 0.2, 0.2)):
        assert meta["counts"][s] / kept == pytest.approx(frac, abs=0.03), s  # ~4 binomial sigma
    # splits of all 10k entries, for this seed and another one
    entries = np.arange(10000)
    a, b = split_of(20261123, 0, entries, [0.6, 0.2, 0.2]), split_of(20261124, 0, entries, [0.6, 0.2, 0.2])
    assert np.bincount(a, minlength=3) / 1e4 == pytest.approx([0.6, 0.2, 0.2], abs=0.02)
    assert 0.5 < np.mean(a != b) < 0.62  # independent splits differ for 1 - (0.36 + 0.04 + 0.04) = 56%
    written = split_entries(outs)
    for i, s in enumerate(SPLITS):  # the 2500-event steps did not change any event's split
        assert set(written[s]) <= set(np.flatnonzero(a == i).tolist()), s


def test_powheg(data_dir, tmp_path, no_figures):
    outs = output_paths(tmp_path / "out")
    cfg = prepare_cfg(levels=["parton"], step_size=30)
    metrics = prepare("powheg_zj", [data_dir / POWHEG], outs, cfg, seed=3)
    expected = lhe_expected(data_dir / POWHEG, cfg["selection"])
    assert len(expected) == 100 == metrics["n_read"]
    cols = read_all(outs)
    passing = [i for i, e in enumerate(expected) if e["pass"]]
    assert cols["entry"].tolist() == passing
    np.testing.assert_allclose(cols["parton_mll"], [expected[i]["mll"] for i in passing], rtol=2e-5)
    np.testing.assert_allclose(cols["weight"], [expected[i]["weight"] for i in passing], rtol=1e-12)
    assert np.nanmax(cols["parton_j1_pt"]) > 20  # Z+jet: the outgoing parton is a parton-level jet
    last = read_cutflow(outs["cutflow"])["parton"][-1]
    assert int(last["events"]) == len(passing)
    assert float(last["sum_weights"]) == pytest.approx(sum(expected[i]["weight"] for i in passing))
    assert all(p.is_file() for p in outs.values())


# --------------------------------------------------------------------------- Delphes layout

# Per event: reco muons/electrons (pt, eta, phi, charge), reco jets (pt, eta, phi, mass), MET, reco
# photons (pt, eta, phi); the generator record holds the leptons twice (status 23 = hard process,
# status 1 = final state, at slightly different pT) plus a gluon (status 23) and a pion (status 1)
# that must be ignored, and a hard-process photon in event 1.
DELPHES_EVENTS = [
    {"mu": [(45.0, 0.5, 0.1, 1), (40.0, -0.3, 3.1, -1)], "el": [],   # Z -> mu mu, m ~ 91.5
     "jets": [(70.0, 0.55, 0.15, 8.0), (50.0, 1.5, -1.5, 5.0)], "met": 12.0,  # first jet overlaps a muon
     "photons": [(35.0, 0.52, 0.12), (28.0, -1.0, 1.0)]},  # the first overlaps a muon
    {"mu": [], "el": [(50.0, -0.6, 2.0, -1), (35.0, 0.6, -1.0, 1)],  # Z -> e e, m ~ 99
     "jets": [(30.0, 2.0, 0.5, 4.0)], "met": 7.0, "photons": [(50.0, 1.0, -2.0)]},
    {"mu": [(45.0, 0.5, 0.1, 1), (40.0, -0.3, 3.1, 1)], "el": [],    # same sign: fails OSSF
     "jets": [], "met": 3.0},
    {"mu": [(30.0, 0.2, 0.0, -1), (25.0, 0.4, 1.0, 1)], "el": [],    # m ~ 27: fails the window
     "jets": [], "met": 5.0},
    {"mu": [(60.0, 0.0, 0.0, 1), (44.0, 1.0, -2.0, 1), (30.0, 0.5, 2.8, -1)], "el": [],  # OSSF pair is (0, 2)
     "jets": [(25.0, -3.0, 1.0, 3.0)], "met": 20.0},
]
GEN_SCALE = {"parton": 1.02, "particle": 0.99}


def delphes_expected(level: str) -> list[tuple[bool, float, list[float]]]:
    """(passes, m_ll, cleaned jet pTs) per event for the default Z selection, by hand."""
    out = []
    scale = GEN_SCALE.get(level, 1.0)
    for ev in DELPHES_EVENTS:
        leptons = [(pt * scale, eta, phi, q, 13, MUON_MASS) for pt, eta, phi, q in ev["mu"]]
        leptons += [(pt * scale, eta, phi, q, 11, ELECTRON_MASS) for pt, eta, phi, q in ev["el"]]
        leptons.sort(key=lambda x: -x[0])
        pair = next(((a, b) for a, b in itertools.combinations(leptons, 2) if a[4] == b[4] and a[3] == -b[3]), None)
        mll = mass(*[(p[0], p[1], p[2], p[5]) for p in pair]) if pair else np.nan
        passes = pair is not None and 60 <= mll <= 120
        jets = [pt for pt, eta, phi, _ in ev["jets"]
                if all(delta_r(eta, phi, le, lp) > 0.4 for _, le, lp, *_ in (pair or []))]
        out.append((passes, mll, sorted(jets, reverse=True)))
    return out


def write_delphes(path: Path) -> None:
    reco: dict[str, list] = {k: [] for k in ("Muon", "Electron", "Jet", "Photon", "MissingET", "GenJet", "GenMissingET", "Particle", "Event")}
    for i, ev in enumerate(DELPHES_EVENTS):
        for name, objs in (("Muon", ev["mu"]), ("Electron", ev["el"])):
            reco[name].append([{"PT": pt, "Eta": eta, "Phi": phi, "Charge": q} for pt, eta, phi, q in objs])
        reco["Jet"].append([{"PT": pt, "Eta": eta, "Phi": phi, "Mass": m} for pt, eta, phi, m in ev["jets"]])
        reco["Photon"].append([{"PT": pt, "Eta": eta, "Phi": phi} for pt, eta, phi in ev.get("photons", [])])
        reco["GenJet"].append([{"PT": pt * 1.05, "Eta": eta, "Phi": phi, "Mass": m} for pt, eta, phi, m in ev["jets"]])
        reco["MissingET"].append([{"MET": ev["met"], "Phi": 0.3}])
        reco["GenMissingET"].append([{"MET": ev["met"] / 2, "Phi": 0.2}])
        reco["Event"].append([{"Number": 1000 + i, "Weight": 1.0 + i}])
        parts = []
        for status in (23, 1):
            scale = GEN_SCALE["parton" if status == 23 else "particle"]
            for (objs, pdg, m) in ((ev["mu"], 13, MUON_MASS), (ev["el"], 11, ELECTRON_MASS)):
                parts += [{"PID": -pdg * q, "Status": status, "PT": pt * scale, "Eta": eta, "Phi": phi, "Mass": m}
                          for pt, eta, phi, q in objs]
        parts.append({"PID": 21, "Status": 23, "PT": 33.0, "Eta": -2.5, "Phi": 2.0, "Mass": 0.0})
        parts.append({"PID": 211, "Status": 1, "PT": 80.0, "Eta": 0.0, "Phi": 0.0, "Mass": 0.1396})
        if i == 1:
            parts.append({"PID": 22, "Status": 23, "PT": 40.0, "Eta": 0.3, "Phi": -0.5, "Mass": 0.0})
        reco["Particle"].append(parts)
    data = {k: ak.Array(v) for k, v in reco.items()}
    data["Muon"] = ak.zip({f: ak.values_astype(data["Muon"][f], np.int32 if f == "Charge" else np.float32)
                           for f in ("PT", "Eta", "Phi", "Charge")})
    data["Electron"] = ak.zip({f: ak.values_astype(data["Electron"][f], np.int32 if f == "Charge" else np.float32)
                               for f in ("PT", "Eta", "Phi", "Charge")})
    data["Photon"] = ak.zip({f: ak.values_astype(data["Photon"][f], np.float32) for f in ("PT", "Eta", "Phi")})
    data["Particle"] = ak.zip({f: ak.values_astype(data["Particle"][f], np.int32 if f in ("PID", "Status") else np.float32)
                               for f in ("PID", "Status", "PT", "Eta", "Phi", "Mass")})
    with uproot.recreate(path) as f:
        f.mktree("Delphes", {k: v.type.content for k, v in data.items()},
                 counter_name=lambda c: f"{c}_size", field_name=lambda o, i: f"{o}.{i}")
        f["Delphes"].extend(data)


def test_delphes_layout(tmp_path, no_figures):
    path = tmp_path / "delphes_like.root"
    write_delphes(path)
    keys = set(uproot.open(path)["Delphes"].keys())
    assert {"Muon_size", "Muon.PT", "Particle.PID", "MissingET.MET", "GenJet.Mass"} <= keys
    assert detect_format(path) == "delphes"

    levels = ["parton", "particle", "reco"]
    outs = output_paths(tmp_path / "out")
    prepare("delphes_z", [path], outs, prepare_cfg(levels=levels, step_size=3), seed=1)  # 2 steps
    cols = read_all(outs)
    meta = json.loads(outs["metadata"].read_text())
    assert meta["sources"][0]["format"] == "delphes"
    assert cols["entry"].tolist() == [0, 1, 4]
    assert cols["event"].tolist() == [1000, 1001, 1004]
    assert cols["weight"].tolist() == [1.0, 2.0, 5.0]
    for level in levels:
        exp = delphes_expected(level)
        assert [e[0] for e in exp] == [True, True, False, False, True]
        rows = cols["entry"]
        assert cols[f"{level}_pass"].all(), level
        np.testing.assert_allclose(cols[f"{level}_mll"], [exp[i][1] for i in rows], rtol=1e-5, err_msg=level)
    # reco: flavour and charge -> pdgId (mu- is +13), lepton-cleaned jets, MET
    assert cols["reco_l1_pdgId"].tolist() == [-13, 11, -13]
    assert cols["reco_l2_pdgId"].tolist() == [13, -11, 13]
    np.testing.assert_allclose(cols["reco_l2_pt"], [40.0, 35.0, 30.0])
    exp = delphes_expected("reco")
    assert cols["reco_n_jets"].tolist() == [len(exp[i][2]) for i in (0, 1, 4)] == [1, 1, 1]
    np.testing.assert_allclose(cols["reco_j1_pt"], [50.0, 30.0, 25.0])
    np.testing.assert_allclose(cols["reco_met_pt"], [12.0, 7.0, 20.0])
    np.testing.assert_allclose(cols["particle_met_pt"], [6.0, 3.5, 10.0])
    # particle jets come from GenJet (5% harder), parton jets from the status-23 gluon
    np.testing.assert_allclose(cols["particle_j1_pt"], [52.5, 31.5, 26.25], rtol=1e-6)
    np.testing.assert_allclose(cols["parton_j1_pt"], [33.0] * 3)
    cutflow = read_cutflow(outs["cutflow"])
    assert [int(r["events"]) for r in cutflow["reco"]] == [5, 5, 4, 3, 3]
    # photons: reco from Photon (lepton overlap removed), parton from the status-23 photon, none at particle level
    assert cols["reco_n_photons"].tolist() == [1, 1, 0]
    np.testing.assert_allclose(cols["reco_a1_pt"], [28.0, 50.0, np.nan], equal_nan=True)
    np.testing.assert_allclose(cols["parton_a1_eta"], [np.nan, 0.3, np.nan], rtol=1e-6, equal_nan=True)
    assert cols["particle_n_photons"].tolist() == [0, 0, 0]
    assert meta["photons"] == {"parton": {"photons": 1, "events_without_photon_collection": 0},
                               "particle": {"photons": 0, "events_without_photon_collection": 5},
                               "reco": {"photons": 3, "events_without_photon_collection": 0}}
