"""``prepare`` on flat ntuples read through a branch map (``format: flat``, lhcchain.prepare.flat).

The numbered layout on a real file: the CMS dimuon ntuple ``uproot-Zmumu.root`` (branches ``E1, px1,
py1, pz1, Q1``, the same for muon 2, and the pair mass ``M``), read through the map that
config/test.yaml gives CI. The jagged layout on an ATLAS-Open-Data-like tree written here with uproot.
Expectations come from the files' own branches and explicit numpy four-vector sums.
"""

from __future__ import annotations

import copy
import csv
import json
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import uproot
import yaml
from snakemake.utils import update_config

from lhcchain.config import prepare_settings
from lhcchain.errors import InputError
from lhcchain.prepare.run import SPLITS, output_paths, prepare

from .test_bad_input import existing_outputs, fails_cleanly
from .test_prepare import no_figures  # noqa: F401 - fixture

ROOT = Path(__file__).resolve().parents[1]
ZMUMU = "uproot-Zmumu.root"
OPEN = {"lepton_pt_min": 0.0, "lepton_eta_max": 100.0, "require_ossf": False, "mll_min": None, "mll_max": None}


def ci_config() -> dict[str, Any]:
    """config/config.yaml with config/test.yaml laid over it, as ``snakemake --configfile config/test.yaml`` reads it."""
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    update_config(cfg, yaml.safe_load((ROOT / "config" / "test.yaml").read_text()))
    return cfg


def zmumu_settings(**selection: Any) -> dict[str, Any]:
    """``prepare`` settings of the CI dataset ``cms_zmumu`` (its branch map), with selection overrides."""
    cfg = prepare_settings(ci_config(), "cms_zmumu")
    cfg["selection"].update(selection)
    return cfg


def read_all(outs: dict[str, Path]) -> dict[str, np.ndarray]:
    t = pa.concat_tables([pq.read_table(outs[s]) for s in SPLITS])
    cols = {c: t.column(c).to_numpy() for c in t.column_names}
    order = np.argsort(cols["entry"])
    return {c: v[order] for c, v in cols.items()}


def cutflow_events(path: Path, level: str) -> list[int]:
    with open(path, newline="") as fh:
        return [int(r["events"]) for r in csv.DictReader(fh) if r["level"] == level]


@pytest.fixture(scope="module")
def zmumu(data_dir: Path) -> dict[str, np.ndarray]:
    return uproot.open(data_dir / ZMUMU)["events"].arrays(library="np")


# --------------------------------------------------------------------------- numbered layout: CMS Z -> mu mu


def test_zmumu_mll_equals_file_mass(data_dir, zmumu, tmp_path, no_figures):  # noqa: F811
    """Every event, with the selection opened up: m_mumu equals the file's M (from E, px, py, pz) to 1e-4."""
    outs = output_paths(tmp_path / "out")
    metrics = prepare("cms_zmumu", [data_dir / ZMUMU], outs, zmumu_settings(**OPEN), seed=3)
    cols = read_all(outs)
    assert metrics["n_read"] == metrics["n_kept"] == 2304
    assert cols["entry"].tolist() == list(range(2304))
    np.testing.assert_allclose(cols["reco_mll"], zmumu["M"], rtol=1e-4)
    # charges -> pdgId (a mu- is +13), in pT order; run and event numbers from the map
    pt1, pt2 = np.hypot(zmumu["px1"], zmumu["py1"]), np.hypot(zmumu["px2"], zmumu["py2"])
    lead_q = np.where(pt1 >= pt2, zmumu["Q1"], zmumu["Q2"])
    assert (cols["reco_l1_pdgId"] == -13 * lead_q).all()
    np.testing.assert_allclose(cols["reco_l1_pt"], np.maximum(pt1, pt2), rtol=1e-6)
    assert (cols["run"] == zmumu["Run"]).all() and (cols["event"] == zmumu["Event"]).all()
    meta = json.loads(outs["metadata"].read_text())
    assert meta["sources"][0]["format"] == "flat" and meta["tree"] == "events"
    assert meta["lepton_isolation"] == {"reco": {"leptons": 4608, "without_isolation": 4608}}


def test_zmumu_default_selection_cutflow(data_dir, zmumu, tmp_path, no_figures):  # noqa: F811
    """The CI dataset's own settings: the default selection's cut-flow, counted independently. The
    muons have no isolation, so lepton_iso_max must not drop them."""
    cfg = zmumu_settings()
    sel = cfg["selection"]
    outs = output_paths(tmp_path / "out")
    prepare("cms_zmumu", [data_dir / ZMUMU], outs, cfg, seed=3)

    ok = np.ones(2304, bool)
    for i in ("1", "2"):
        pt = np.hypot(zmumu[f"px{i}"], zmumu[f"py{i}"])
        ok &= (pt > sel["lepton_pt_min"]) & (np.abs(np.arcsinh(zmumu[f"pz{i}"] / pt)) < sel["lepton_eta_max"])
    opposite = ok & (zmumu["Q1"] * zmumu["Q2"] < 0)
    window = opposite & (zmumu["M"] >= sel["mll_min"]) & (zmumu["M"] <= sel["mll_max"])
    expected = [2304, int(ok.sum()), int(opposite.sum()), int(window.sum()), int(window.sum())]
    assert cutflow_events(outs["cutflow"], "reco") == expected
    assert expected[3] > 1000  # the Z peak: most events survive without any isolation cut
    cols = read_all(outs)
    assert cols["entry"].tolist() == np.flatnonzero(window).tolist()


# --------------------------------------------------------------------------- jagged layout: ATLAS-Open-Data-like tree

MEV = 1000.0
# per event: reco leptons (pt GeV, eta, phi, charge, |pdgId|, relative isolation)
LEPTONS = [
    [(45.0, 0.3, 0.1, -1, 13, 0.05), (40.0, -0.5, 2.9, 1, 13, 0.02)],
    [(50.0, 1.0, -1.0, -1, 11, 0.01), (30.0, 0.2, 2.0, 1, 11, 0.30)],      # e+ not isolated: one lepton left
    [(60.0, 0.1, 0.5, 1, 13, 0.0), (35.0, -1.2, -2.5, -1, 11, 0.0)],       # opposite sign, different flavour
    [(38.0, 0.7, 1.5, 1, 11, 0.1), (36.0, -0.4, -1.6, -1, 11, 0.1), (25.0, 1.1, 0.0, -1, 13, 0.0)],
    [],
    [(30.0, -0.2, -0.8, -1, 13, 0.04), (28.0, 0.9, 2.4, 1, 13, 0.04)],
]
JETS = [[(80.0, -2.5, 1.0, 10.0, 12)], [], [(55.0, -2.0, -1.0, 8.0, 9), (25.0, 3.0, 0.5, 4.0, 5)], [], [(40.0, -3.0, 2.0, 6.0, 7)], []]
TRUTH_JETS = [[(75.0, -2.5, 1.0, 9.0)], [], [], [(50.0, -2.0, -1.0, 7.0), (22.0, 3.0, 0.5, 3.0)], [], [(30.0, 2.2, 0.5, 5.0)]]
STALE_JET = (99.0, -3.5, 0.0, 1.0)
WEIGHTS, SCALE_FACTORS = [1.0, 0.5, 2.0, 1.5, 1.0, 0.8], [0.9, 1.0, 1.1, 0.95, 1.0, 1.2]
MET = [(15.0, 0.2), (5.0, -1.0), (30.0, 2.0), (8.0, 1.0), (0.0, 0.0), (12.0, -2.0)]


def energy(pt: float, eta: float, m: float) -> float:
    return float(np.sqrt((pt * np.cosh(eta)) ** 2 + m * m))


def pair_mass(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """m of two (pt, eta, phi, E) four-vectors by explicit components."""
    px = a[0] * np.cos(a[2]) + b[0] * np.cos(b[2])
    py = a[0] * np.sin(a[2]) + b[0] * np.sin(b[2])
    pz = a[0] * np.sinh(a[1]) + b[0] * np.sinh(b[1])
    e = a[3] + b[3]
    return float(np.sqrt(e * e - px * px - py * py - pz * pz))


def write_open_data_like(path: Path) -> None:
    """Reco leptons and jets as variable-length branches in MeV with counts (``lep_n``, ``jet_n``),
    ATLAS style: unsigned ``lep_type``, ``lep_charge``, relative isolation ``lep_iso``. Truth leptons
    as jagged branches without count; truth jets as two numbered slots with a count, whose empty slots
    hold a jet that would pass the selection (as stale values in some ntuples): only the count drops it."""
    def lep(k: int) -> list[list[float]]:
        return [[x[k] for x in ev] for ev in LEPTONS]

    masses = {13: 0.1056584, 11: 0.000511}
    lep_e = [[energy(pt, eta, masses[t]) * MEV for pt, eta, _, _, t, _ in ev] for ev in LEPTONS]
    f64 = lambda rows: ak.values_astype(ak.Array(rows), np.float64)  # noqa: E731
    data = {
        "lep": ak.zip({"pt": f64(lep(0)) * MEV, "eta": f64(lep(1)), "phi": f64(lep(2)), "E": f64(lep_e),
                       "charge": ak.values_astype(ak.Array(lep(3)), np.int32), "type": ak.values_astype(ak.Array(lep(4)), np.uint32),
                       "iso": f64(lep(5))}),
        "jet": ak.zip({"pt": f64([[j[0] * MEV for j in ev] for ev in JETS]), "eta": f64([[j[1] for j in ev] for ev in JETS]),
                       "phi": f64([[j[2] for j in ev] for ev in JETS]),
                       "E": f64([[energy(j[0], j[1], j[3]) * MEV for j in ev] for ev in JETS]),
                       "nconst": ak.values_astype(ak.Array([[j[4] for j in ev] for ev in JETS]), np.int32)}),
        "truthlep": ak.zip({"pt": f64(lep(0)) * MEV, "eta": f64(lep(1)), "phi": f64(lep(2)),
                            "m": f64([[masses[x[4]] * MEV for x in ev] for ev in LEPTONS]),
                            "pdgId": ak.values_astype(ak.Array([[-x[3] * x[4] for x in ev] for ev in LEPTONS]), np.int32)}),
        "tjet_n": np.array([len(ev) for ev in TRUTH_JETS], np.int32),
        "met_et": np.array([m[0] * MEV for m in MET]), "met_phi": np.array([m[1] for m in MET]),
        "mcWeight": np.array(WEIGHTS), "scaleFactor": np.array(SCALE_FACTORS),
    }
    for slot in (1, 2):
        for k, name in enumerate(("pt", "eta", "phi", "m")):
            data[f"tjet{slot}_{name}"] = np.array([(ev[slot - 1] if len(ev) >= slot else STALE_JET)[k] * (MEV if name in ("pt", "m") else 1)
                                                   for ev in TRUTH_JETS])
    with uproot.recreate(path) as f:
        f.mktree("mini", {k: v.type.content if isinstance(v, ak.Array) else v.dtype for k, v in data.items()},
                 counter_name=lambda c: f"{c}_n", field_name=lambda o, i: f"{o}_{i}")
        f["mini"].extend(data)


BRANCHES = {
    "unit": "MeV",
    "weight": ["mcWeight", "scaleFactor"],
    "reco": {
        "leptons": {"pt": "lep_pt", "eta": "lep_eta", "phi": "lep_phi", "E": "lep_E", "charge": "lep_charge",
                    "pdgId": "lep_type", "iso": "lep_iso", "count": "lep_n"},
        "jets": {"pt": "jet_pt", "eta": "jet_eta", "phi": "jet_phi", "E": "jet_E", "nConstituents": "jet_nconst", "count": "jet_n"},
        "met": {"pt": "met_et", "phi": "met_phi"},
    },
    "particle": {
        "leptons": {"pt": "truthlep_pt", "eta": "truthlep_eta", "phi": "truthlep_phi", "mass": "truthlep_m", "pdgId": "truthlep_pdgId"},
        "jets": {c: [f"tjet1_{b}", f"tjet2_{b}"] for c, b in (("pt", "pt"), ("eta", "eta"), ("phi", "phi"), ("mass", "m"))} | {"count": "tjet_n"},
    },
}


def flat_cfg(branches: dict[str, Any] | None = None, levels: tuple[str, ...] = ("particle", "reco"), **selection: Any) -> dict[str, Any]:
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["prepare"]
    cfg.update(levels=list(levels), step_size=4, format="flat", tree="mini", branches=copy.deepcopy(branches or BRANCHES))
    cfg["selection"].update({"mll_min": None, "mll_max": None, **selection})
    return cfg


@pytest.fixture
def open_data_like(tmp_path: Path) -> Path:
    path = tmp_path / "mini.root"
    write_open_data_like(path)
    return path


def test_jagged_ntuple(open_data_like, tmp_path, no_figures):  # noqa: F811
    keys = set(uproot.open(open_data_like)["mini"].keys())
    assert {"lep_n", "lep_pt", "lep_type", "jet_n", "truthlep_pt", "tjet1_pt", "tjet_n", "met_et"} <= keys
    outs = output_paths(tmp_path / "out")
    prepare("mini", [open_data_like], outs, flat_cfg(), seed=1)  # two steps of 4 events
    cols = read_all(outs)
    # reco: event 1 loses its non-isolated e+, event 2 has no same-flavour pair, event 4 no leptons
    assert cutflow_events(outs["cutflow"], "reco") == [6, 4, 3, 3]
    assert cols["reco_pass"].tolist() == [e in (0, 3, 5) for e in cols["entry"]]
    reco = {e: i for i, e in enumerate(cols["entry"]) if cols["reco_pass"][i]}
    lep_e = {13: 0.1056584, 11: 0.000511}
    for e, (a, b) in {0: (0, 1), 3: (0, 1), 5: (0, 1)}.items():
        la, lb = LEPTONS[e][a], LEPTONS[e][b]
        expect = pair_mass((*la[:3], energy(la[0], la[1], lep_e[la[4]])), (*lb[:3], energy(lb[0], lb[1], lep_e[lb[4]])))
        assert cols["reco_mll"][reco[e]] == pytest.approx(expect, rel=1e-5), e
        assert (cols["reco_l1_pdgId"][reco[e]], cols["reco_l2_pdgId"][reco[e]]) == (-la[3] * la[4], -lb[3] * lb[4])
    # MeV -> GeV, weights multiplied, MET and jets (with substructure) from their branches
    row0 = reco[0]
    assert cols["weight"][row0] == pytest.approx(WEIGHTS[0] * SCALE_FACTORS[0])
    assert cols["reco_met_pt"][row0] == pytest.approx(15.0) and cols["reco_j1_pt"][row0] == pytest.approx(80.0)
    assert cols["reco_j1_mass"][row0] == pytest.approx(10.0, rel=1e-4) and cols["reco_j1_nConstituents"][row0] == 12
    # particle: no isolation, so event 1 keeps both electrons; jets are the first tjet_n numbered slots
    assert cutflow_events(outs["cutflow"], "particle") == [6, 5, 4, 4]
    allrows = dict(zip(cols["entry"], range(len(cols["entry"]))))
    assert [cols["particle_n_jets"][allrows[e]] for e in (0, 1, 3, 5)] == [1, 0, 2, 1]
    assert cols["particle_j2_pt"][allrows[3]] == pytest.approx(22.0) and cols["particle_j1_mass"][allrows[5]] == pytest.approx(5.0)
    assert not np.isin(cols["particle_j1_pt"], STALE_JET[0]).any()
    meta = json.loads(outs["metadata"].read_text())
    assert meta["lepton_isolation"]["reco"] == {"leptons": 11, "without_isolation": 0}
    assert meta["lepton_isolation"]["particle"] == {"leptons": 11, "without_isolation": 11}


# --------------------------------------------------------------------------- photons (jagged, GeV, massless)

MUONS = [(45.0, 0.3, 0.1, -1), (40.0, -0.5, 2.9, 1)]  # the same opposite-sign pair in every event
# per event: photons (pt GeV, eta, phi)
PHOTONS = [
    [(30.0, 0.2, 1.0), (25.0, 0.31, 0.12)],  # the second lies within dR 0.4 of the leading muon
    [],
    [(15.0, 0.0, 0.0), (50.0, 2.7, 1.0)],    # below 20 GeV; outside |eta| < 2.5
    [(22.0, -1.0, 2.0), (60.0, 0.5, -2.0)],  # both kept, stored in pT order
]
PHOTON_BRANCHES = {"reco": {
    "muons": {"pt": "mu_pt", "eta": "mu_eta", "phi": "mu_phi", "charge": "mu_charge"},
    "photons": {"pt": "photon_pt", "eta": "photon_eta", "phi": "photon_phi", "count": "photon_n"},
}}


@pytest.fixture
def with_photons(tmp_path: Path) -> Path:
    """A tree with jagged muon and photon branches (photons with a count branch ``photon_n``), written by uproot."""
    path = tmp_path / "photons.root"
    data = {
        "mu": ak.zip({k: ak.Array([[m[i] for m in MUONS]] * len(PHOTONS)) for i, k in enumerate(("pt", "eta", "phi", "charge"))}),
        "photon": ak.zip({k: ak.values_astype(ak.Array([[g[i] for g in ev] for ev in PHOTONS]), np.float32)
                          for i, k in enumerate(("pt", "eta", "phi"))}),
    }
    with uproot.recreate(path) as f:
        f.mktree("mini", {k: v.type.content for k, v in data.items()}, counter_name=lambda c: f"{c}_n", field_name=lambda o, i: f"{o}_{i}")
        f["mini"].extend(data)
    return path


def test_jagged_photons(with_photons, tmp_path, no_figures):  # noqa: F811
    assert {"photon_n", "photon_pt", "mu_pt"} <= set(uproot.open(with_photons)["mini"].keys())
    cfg = flat_cfg(PHOTON_BRANCHES, ("reco",))
    cfg["max_photons"] = 2
    outs = output_paths(tmp_path / "out")
    prepare("photons", [with_photons], outs, cfg, seed=1)
    cols = read_all(outs)
    assert cols["entry"].tolist() == [0, 1, 2, 3] and cols["reco_pass"].all()  # photons veto nothing by default
    assert cols["reco_n_photons"].tolist() == [1, 0, 0, 2]
    np.testing.assert_allclose(cols["reco_a1_pt"], [30.0, np.nan, np.nan, 60.0], equal_nan=True)
    np.testing.assert_allclose(cols["reco_a2_pt"], [np.nan, np.nan, np.nan, 22.0], equal_nan=True)
    np.testing.assert_allclose(cols["reco_a1_eta"], [0.2, np.nan, np.nan, 0.5], rtol=1e-6, equal_nan=True)
    np.testing.assert_allclose(cols["reco_a2_phi"], [np.nan, np.nan, np.nan, 2.0], rtol=1e-6, equal_nan=True)
    assert cutflow_events(outs["cutflow"], "reco") == [4, 4, 4, 4]
    assert json.loads(outs["metadata"].read_text())["photons"] == {"reco": {"photons": 6, "events_without_photon_collection": 0}}

    cfg["selection"]["n_photons_min"] = 1  # now a cut, the last of the cut-flow
    prepare("photons", [with_photons], outs, cfg, seed=1)
    cols = read_all(outs)
    assert cols["entry"].tolist() == [0, 3]
    assert cutflow_events(outs["cutflow"], "reco") == [4, 4, 4, 4, 2]


def test_level_without_photon_map(open_data_like, tmp_path, no_figures):  # noqa: F811
    """No photons in the map: n_photons 0 and NaN slots, and the metadata says the input had no photons."""
    outs = output_paths(tmp_path / "out")
    prepare("mini", [open_data_like], outs, flat_cfg(), seed=1)
    cols = read_all(outs)
    assert (cols["reco_n_photons"] == 0).all() and np.isnan(cols["particle_a1_pt"]).all()
    assert json.loads(outs["metadata"].read_text())["photons"]["reco"] == {"photons": 0, "events_without_photon_collection": 6}


def test_bad_photon_map(with_photons, tmp_path):
    branches = copy.deepcopy(PHOTON_BRANCHES)
    branches["reco"]["photons"]["pt"] = "photon_ptt"
    outdir = tmp_path / "out"
    existing_outputs(outdir)
    fails_cleanly(outdir, "photons", [with_photons], flat_cfg(branches, ("reco",)), "'photon_ptt'", "branches.reco.photons.pt",
                  "'photon_pt'")
    branches = copy.deepcopy(PHOTON_BRANCHES)
    branches["reco"]["photons"]["pdgId"] = "photon_n"
    fails_cleanly(outdir, "photons", [with_photons], flat_cfg(branches, ("reco",)), "branches.reco.photons", "['pdgId']")


# --------------------------------------------------------------------------- errors


def test_branch_missing_names_close_matches(data_dir, tmp_path):
    cfg = zmumu_settings()
    cfg["branches"]["reco"]["muons"]["px"] = ["px_1", "px2"]
    outdir = tmp_path / "out"
    existing_outputs(outdir)
    fails_cleanly(outdir, "cms_zmumu", [data_dir / ZMUMU], cfg, "'px_1'", "branches.reco.muons.px", "'px1'", "'events'",
                  "lacks 1 branch", ZMUMU)


@pytest.mark.parametrize(("case", "named"), [
    ("jets_without_mass", ["reco.jets", "define no four-vector", "(mass) or (E)"]),
    ("pt_and_px", ["reco.leptons", "azimuthal"]),
    ("muons_without_charge", ["reco.muons", "charge or pdgId"]),
    ("unmapped_level", ["['parton']", "particle"]),
    ("mixed_layouts", ["reco.jets", "numbered"]),
])
def test_bad_map(open_data_like, tmp_path, case, named):
    branches = copy.deepcopy(BRANCHES)
    reco = branches["reco"]
    levels: tuple[str, ...] = ("particle", "reco")
    if case == "jets_without_mass":
        del reco["jets"]["E"]
    elif case == "pt_and_px":
        reco["leptons"]["px"] = "lep_pt"
    elif case == "muons_without_charge":
        reco["muons"] = {"pt": "lep_pt", "eta": "lep_eta", "phi": "lep_phi"}
    elif case == "unmapped_level":
        levels = ("parton", "particle", "reco")
    else:
        reco["jets"]["pt"] = ["jet_pt"]
    outdir = tmp_path / "out"
    existing_outputs(outdir)
    fails_cleanly(outdir, "mini", [open_data_like], flat_cfg(branches, levels), "'mini'", *named)


def test_count_disagrees_with_jagged_lengths(open_data_like, tmp_path):
    branches = copy.deepcopy(BRANCHES)
    branches["reco"]["leptons"]["count"] = "jet_n"
    outdir = tmp_path / "out"
    existing_outputs(outdir)
    fails_cleanly(outdir, "mini", [open_data_like], flat_cfg(branches), "'jet_n'", "reco.leptons", str(open_data_like))


def test_scalar_branch_in_jagged_layout(data_dir, tmp_path):
    cfg = zmumu_settings()
    cfg["branches"]["reco"]["muons"] = {"pt": "pt1", "eta": "eta1", "phi": "phi1", "charge": "Q1"}
    outdir = tmp_path / "out"
    existing_outputs(outdir)
    fails_cleanly(outdir, "cms_zmumu", [data_dir / ZMUMU], cfg, "'pt1'", "one value per event", "[pt1, ...]")


def test_auto_format_points_to_flat(data_dir, tmp_path):
    cfg = zmumu_settings()
    for key in ("format", "tree", "branches"):
        del cfg[key]
    with pytest.raises(InputError, match="format: flat"):
        prepare("cms_zmumu", [data_dir / ZMUMU], output_paths(tmp_path / "out"), cfg, seed=1)
