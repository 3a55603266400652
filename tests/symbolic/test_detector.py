"""Detector level: WBF events written as the madnis stage writes them, showered by Pythia (H -> mu mu)
through the fast detector, prepared, and joined back to their parton-level A, B, C; the refit of a
formula's constants on detector-level observables; bad inputs."""

from __future__ import annotations

import copy
import json

import numpy as np
import pyarrow.parquet as pq
import pylhe
import pytest
import torch
import yaml

from lhcchain.config import prepare_settings
from lhcchain.errors import InputError
from lhcchain.madnis.events import draw_subprocesses, events_table, write_lhe, write_parquet
from lhcchain.prepare.run import prepare
from lhcchain.simulate.run import simulate_chunk
from lhcchain.symbolic.detector import detector_score_data, refit_constants
from lhcchain.symbolic.run import compare_constants, make_detector_score_data

from ..conftest import ROOT

N_EVENTS = 60
CONFIG = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
SPEC = CONFIG["processes"]["wbf_higgs"]


def _partonic(lab: torch.Tensor, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
    """``lab`` momenta boosted along z to the partonic centre-of-mass frame."""
    y = (0.5 * torch.log(x1 / x2))[:, None]
    e, pz = lab[..., 0], lab[..., 3]
    out = lab.clone()
    out[..., 0], out[..., 3] = e * torch.cosh(y) - pz * torch.sinh(y), pz * torch.cosh(y) - e * torch.sinh(y)
    return out


@pytest.fixture(scope="module")
def chain(wbf, wbf_events, tmp_path_factory):
    """The first N_EVENTS events as madnis's events.lhe.gz and events.parquet, one simulated chunk with
    the default wbf_higgs sample's settings, and its prepared splits."""
    d = tmp_path_factory.mktemp("detector")
    events, _ = wbf_events
    lab, x1, x2 = events["momenta"][:N_EVENTS], events["x1"][:N_EVENTS], events["x2"][:N_EVENTS]
    kin = {"lab": lab, "partonic": _partonic(lab, x1, x2), "x1": x1, "x2": x2}
    rng = np.random.default_rng(4)
    subs = draw_subprocesses(wbf, kin, rng)
    write_lhe(d / "events.lhe.gz", wbf, kin, subs, 2.8, 0.01, rng)
    write_parquet(d / "events.parquet", events_table(wbf, kin, subs, np.zeros(N_EVENTS, np.int64), 2.8 / N_EVENTS),
                  {"cross_section_pb": 2.8})
    sample = {**CONFIG["samples"]["wbf_higgs"], "lhe_file": str(d / "events.lhe.gz"), "n_events": N_EVENTS, "chunks": 1}
    simulate_chunk("wbf_higgs", sample, 0, 1, CONFIG["simulate"]["detector"], CONFIG["simulate"]["jets"],
                   d / "chunk0.root", d / "chunk0.json", batch_size=25)
    config = copy.deepcopy(CONFIG)
    config["samples"]["wbf_higgs"] = sample
    outs = {k: str(d / f"prep.{k}") for k in ("train", "val", "test", "metadata", "cutflow", "metrics", "mll_plot",
                                                "jets_plot", "cutflow_plot")}
    outs |= {k: str(d / f"{k}.parquet") for k in ("train", "val", "test")} | {"mll_plot": str(d / "mll.png"),
             "jets_plot": str(d / "jets.png"), "cutflow_plot": str(d / "cutflow.png"), "metadata": str(d / "meta.json"),
             "metrics": str(d / "prep_metrics.json"), "cutflow": str(d / "cutflow.csv")}
    prepare("wbf_higgs", [str(d / "chunk0.root")], outs, prepare_settings(config, "wbf_higgs"), 1)
    return {"dir": d, "prepared": [outs[k] for k in ("train", "val", "test")], "lab": lab.numpy(), "subs": subs}


def test_wbf_lhe_showers_and_rows_link_back(chain):
    """Every event of the WBF LHE file showers (colour flow and proton beams accepted by Pythia), the
    Higgs decays to two muons, and each prepared row's ``event`` names the LHE event whose hard
    record it carries."""
    import uproot

    tree = uproot.open(chain["dir"] / "chunk0.root")["Events"].arrays(
        ["event", "LHEPart_pt", "LHEPart_pdgId", "LHEPart_status", "nMuon"])
    assert tree.event.tolist() == list(range(N_EVENTS))
    lhe = list(pylhe.LHEFile.fromfile(str(chain["dir"] / "events.lhe.gz")).events)
    for row in tree:
        ids = np.asarray(row.LHEPart_pdgId)
        assert (ids[np.asarray(row.LHEPart_status) == 1] == 13).sum() == 1  # H -> mu+ mu-
        higgs = [p for p in lhe[row.event].particles if p.id == 25][0]
        assert float(row.LHEPart_pt[ids == 25][0]) == pytest.approx(np.hypot(higgs.px, higgs.py), rel=1e-4)
    assert np.mean(np.asarray(tree.nMuon) >= 2) > 0.5
    prepared = pq.read_table(chain["prepared"][0]).to_pydict()
    assert set(prepared["event"]) <= set(range(N_EVENTS))


def test_detector_score_data(chain, tmp_path):
    """The joined rows carry the parton-level A, B, C, t of their event (checked against a direct
    evaluation), detector-level observables close to the parton-level ones, and the efficiency."""
    out = {"data": tmp_path / "d.parquet", "summary": tmp_path / "d.json", "figure": tmp_path / "d.png"}
    make_detector_score_data(SPEC, {"level": "reco", "n_simulated": N_EVENTS, "test_fraction": 0.5},
                             str(chain["dir"] / "events.parquet"), chain["prepared"], out)
    data = pq.read_table(out["data"]).to_pydict()
    summary = json.loads(out["summary"].read_text())
    n = len(data["t"])
    assert 0 < n == summary["n_events"] <= N_EVENTS and summary["efficiency"] == pytest.approx(n / N_EVENTS)
    assert summary["cross_section_pb"] == pytest.approx(2.8 * n / N_EVENTS)
    from lhcchain.physics import get_process
    from lhcchain.symbolic.data import read_events, score_data

    parton = score_data(get_process("wbf_higgs"), read_events(chain["dir"] / "events.parquet"))
    np.testing.assert_allclose(data["A"], parton["A"][data["event"]], rtol=1e-12)
    np.testing.assert_allclose(data["parton_x1"], parton["x1"][data["event"]], rtol=1e-12)
    # the leading reco jet is the leading quark in most events: p_T within 30 % in the bulk
    assert np.median(np.abs(np.asarray(data["x1"]) / np.asarray(data["parton_x1"]) - 1)) < 0.3


def test_join_errors():
    parton = {k: np.arange(5.0) + 1 for k in ("A", "B", "C", "t", "x1", "x2", "delta_phi", "delta_eta", "eta1", "eta2",
                                                "m_jj", "pt_h", "y_h")}
    cols = ("j1_pt", "j2_pt", "j1_eta", "j2_eta", "j1_phi", "j2_phi", "mjj", "ptll", "yll")
    rows = {"event": np.array([4, 0])} | {f"reco_{c}": np.array([50.0, 60.0]) for c in cols}
    rows["reco_j1_eta"] = np.array([1.0, -2.0])
    out = detector_score_data(parton, rows, "reco", 125.0, 5)
    assert out["A"].tolist() == [5.0, 1.0] and out["parton_x1"].tolist() == [5.0, 1.0]
    assert out["x1"].tolist() == [0.4, 0.48] and out["delta_eta"].tolist() == [49.0, 62.0]
    with pytest.raises(InputError, match="outside the LHE file"):
        detector_score_data(parton, rows | {"event": np.array([5, 0])}, "reco", 125.0, 5)
    with pytest.raises(InputError, match="appears twice"):
        detector_score_data(parton, rows | {"event": np.array([1, 1])}, "reco", 125.0, 5)
    with pytest.raises(InputError, match="lack two jets"):
        detector_score_data(parton, rows | {"reco_j2_pt": np.array([np.nan, 1.0])}, "reco", 125.0, 5)


def test_refit_constants_follow_a_known_smearing():
    """t = a x1 x2 sin(delta_phi) exactly at parton level; if the detector measures x1 as 0.8 x1, the
    refitted a moves to a / 0.8, and the bootstrap spread of the shift is small; the same observables
    give no shift at all."""
    rng = np.random.default_rng(2)
    n, a = 3000, -1.2
    x = np.column_stack([rng.exponential(0.5, n), rng.exponential(0.3, n), rng.uniform(-np.pi, np.pi, n)])
    t = a * x[:, 0] * x[:, 1] * np.sin(x[:, 2]) + rng.normal(0, 0.01, n)
    names = ["x1", "x2", "delta_phi"]
    params = {"c0": {"value": -1.0, "error": 0.0}}
    smeared = x * [0.8, 1.0, 1.0]
    fit = refit_constants("c0*x1*x2*sin(delta_phi)", params, names, x, smeared, t, bootstrap=10, seed=1)
    c0 = fit["parameters"]["c0"]
    assert c0["parton"]["value"] == pytest.approx(a, abs=3 * c0["parton"]["error"])
    assert c0["level"]["value"] == pytest.approx(a / 0.8, rel=1e-3)
    assert c0["shift"]["value"] == pytest.approx(a / 0.8 - a, rel=1e-2) and 0 < c0["shift"]["bootstrap_std"] < 0.01
    same = refit_constants("c0*x1*x2*sin(delta_phi)", params, names, x, x, t, bootstrap=3, seed=1)["parameters"]["c0"]
    assert same["shift"]["value"] == 0.0 and same["shift"]["bootstrap_std"] == 0.0


def test_compare_constants_writes_tables(chain, tmp_path):
    """compare_constants refits the parton front's formulas up to the complexity limit on the joined
    events and writes both tables."""
    data = {"data": tmp_path / "d.parquet", "summary": tmp_path / "d.json", "figure": tmp_path / "d.png"}
    make_detector_score_data(SPEC, {"level": "reco", "n_simulated": N_EVENTS, "test_fraction": 0.3},
                             str(chain["dir"] / "events.parquet"), chain["prepared"], data)
    front = {"variables": ["x1", "x2", "delta_phi", "delta_eta"], "front": [
        {"complexity": 10, "parametric": "c0*x1*x2*sin(c1*delta_phi)", "parameters": {"c0": {"value": -1.0}, "c1": {"value": 1.0}}},
        {"complexity": 30, "parametric": "c0*x1", "parameters": {"c0": {"value": 1.0}}}]}
    (tmp_path / "front.json").write_text(json.dumps(front))
    out = {"json": tmp_path / "c.json", "markdown": tmp_path / "c.md"}
    compare_constants(str(tmp_path / "front.json"), str(data["data"]), {"chosen_complexity_max": 16, "bootstrap": 3}, out)
    doc = json.loads(out["json"].read_text())
    assert [r["complexity"] for r in doc["formulas"]] == [10] and doc["level"] == "reco"
    assert set(doc["formulas"][0]["parameters"]) == {"c0", "c1"}
    assert out["markdown"].read_text().count("| 10 |") == 2
