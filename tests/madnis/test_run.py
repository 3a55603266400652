"""Stage entry points (:mod:`lhcchain.madnis.run`): ``integrate`` (MadNIS against VEGAS and flat, with
the Pythia reference) and ``unweight`` (exact and surrogate-accelerated), and the Pythia
cross-section (:mod:`lhcchain.madnis.reference`)."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pyarrow.parquet as pq
import pylhe
import pytest
import torch

from lhcchain.config import madnis_events
from lhcchain.errors import InputError
from lhcchain.madnis import run
from lhcchain.madnis.integrator import draw, load_integrator
from lhcchain.madnis.reference import pythia_cross_section

from .conftest import msq

# the madnis block of config/test.yaml, with fewer steps and calls
TRAINING = {"flow": {"layers": 2, "units": 16, "bins": 8}, "vegas": {"iterations": 2, "samples_per_channel": 300},
            "steps": 10, "batch_size": 256, "minimum_buffer_size": 256, "max_minutes": 1.0}
EVALUATION = {"n_calls": 4000, "batch_size": 2000, "epsilon": 1e-3, "replicas": 2}
REFERENCE = {"n_events": 300}
EVENTS = {"n_events": 400, "calibration_calls": 3000, "batch_size": 1000, "epsilon": 1e-3, "max_calls": 200_000}
METHODS = {"madnis", "vegas", "flat"}
M_Z = 91.1876
PNG = b"\x89PNG"


def _unweight_outputs(folder) -> dict[str, object]:
    return {"lhe": folder / "events.lhe", "parquet": folder / "events.parquet", "metrics": folder / "unweight.json",
            "distributions": folder / "distributions.png"}


def _integrate_outputs(folder) -> dict[str, object]:
    return {"checkpoint": folder / "integrator.pt", "metrics": folder / "metrics.json",
            "weights": folder / "weights.png", "channels": folder / "channels.png"}


@pytest.fixture(scope="module")
def integrated(dy_spec, tmp_path_factory):
    outputs = _integrate_outputs(tmp_path_factory.mktemp("madnis_integrate"))
    metrics = run.integrate(dy_spec, TRAINING, EVALUATION, REFERENCE, outputs, device="cpu", threads=1, seed=3)
    return metrics, outputs


@pytest.fixture(scope="module")
def unweighted(integrated, tmp_path_factory):
    folder = tmp_path_factory.mktemp("madnis_unweight")
    outputs = _unweight_outputs(folder)
    metrics = run.unweight(str(integrated[1]["checkpoint"]), EVENTS, outputs, device="cpu", threads=1, seed=4)
    return metrics, outputs


# ----------------------------------------------------------------------------- integrate


def test_integrate_metrics(integrated, dy_spec):
    metrics, outputs = integrated
    on_disk = json.loads(outputs["metrics"].read_text())
    assert on_disk["methods"].keys() == METHODS and on_disk["process"] == dy_spec["process"]
    assert on_disk["methods"]["madnis"]["cross_section_pb"] == pytest.approx(metrics["methods"]["madnis"]["cross_section_pb"])
    m = on_disk["methods"]
    n_channels = len(on_disk["channels"])
    for method, r in m.items():
        # flat sampling evaluates the calls the others spend on training too
        assert r["eval_calls"] == (m["madnis"]["n_calls"] if method == "flat" else EVALUATION["n_calls"])
        assert r["n_calls"] == r["train_calls"] + r["eval_calls"]
        assert r["cross_section_pb"] > 0 and 0 < r["error_pb"] < 0.1 * r["cross_section_pb"]
        assert r["rel_stddev"] == pytest.approx(r["error_pb"] * math.sqrt(r["eval_calls"]) / r["cross_section_pb"], rel=1e-9)
        assert 0 < r["unweighting_efficiency"] <= 1 and 0 < r["unweighting_efficiency_truncated"] <= 1
        assert r["truncated_fraction"] <= EVALUATION["epsilon"] * (1 + 1e-9)
    # MadNIS and VEGAS spend the same calls (VEGAS to within the channel count); flat trains nothing
    assert abs(m["madnis"]["n_calls"] - m["vegas"]["n_calls"]) < 2 * n_channels
    online = m["madnis"]["train_calls"] - TRAINING["vegas"]["iterations"] * TRAINING["vegas"]["samples_per_channel"] * n_channels
    assert online > 0 and online % TRAINING["batch_size"] == 0  # VEGAS pre-training + whole online batches
    assert m["flat"]["train_calls"] == 0 and m["madnis"]["train_steps"] == TRAINING["steps"]
    # the three estimates agree; the recorded pulls are (a - b) / hypot(err_a, err_b)
    for pair, pull in on_disk["pulls"].items():
        a, b = (m[k] for k in pair.split("_"))
        assert pull == pytest.approx((a["cross_section_pb"] - b["cross_section_pb"]) / math.hypot(a["error_pb"], b["error_pb"]))
        assert abs(pull) < 5
    assert m["madnis"]["rel_stddev"] < m["flat"]["rel_stddev"]
    assert on_disk["ratios"]["rel_stddev_madnis_over_flat"] == pytest.approx(m["madnis"]["rel_stddev"] / m["flat"]["rel_stddev"])
    # channel table: call fractions and mean channel weights sum to 1, per-channel cross-sections to sigma
    table = on_disk["channels"]
    assert list(table) == ["photon", "Z", "Zprime"]
    assert sum(c["call_fraction"] for c in table.values()) == pytest.approx(1.0)
    assert sum(c["prior_alpha"] for c in table.values()) == pytest.approx(1.0)
    assert sum(c["learned_alpha"] for c in table.values()) == pytest.approx(1.0)
    assert sum(c["cross_section_pb"] for c in table.values()) == pytest.approx(m["madnis"]["cross_section_pb"], rel=1e-9)
    assert max(table, key=lambda c: table[c]["cross_section_pb"]) == "Z"
    # Pythia's cross-section of the same process agrees
    py = on_disk["pythia"]
    assert py["cross_section_pb"] > 0 and py["error_pb"] > 0
    assert abs(py["madnis_over_pythia"] - 1) < 5 * py["ratio_error"]
    assert on_disk["settings"]["steps"] == TRAINING["steps"] and on_disk["settings"]["lr"] == 1e-3


def test_integrate_plots_and_checkpoint(integrated):
    metrics, outputs = integrated
    for key in ("weights", "channels"):
        data = outputs[key].read_bytes()
        assert data[:4] == PNG and len(data) > 5000
    integrator, function, payload = load_integrator(str(outputs["checkpoint"]), "cpu", 1)
    assert payload["settings"] == metrics["settings"] and "loss" not in payload["summary"]
    assert payload["summary"]["train_calls"] == metrics["methods"]["madnis"]["train_calls"]
    # the saved integrator reproduces the cross-section
    torch.manual_seed(0)
    w = draw(integrator, 4000, 2000).weights.numpy()
    m = metrics["methods"]["madnis"]
    assert abs(w.mean() - m["cross_section_pb"]) < 5 * math.hypot(w.std() / math.sqrt(w.size), m["error_pb"])


def test_same_seed_same_figures(integrated, dy_spec, tmp_path):
    """A second run with the same seed gives every figure again, to the last digit (wall times aside):
    the VEGAS and flat baselines, the bootstrap of w_max, and the spreads over replicas included."""
    again = run.integrate(dy_spec, TRAINING, EVALUATION, REFERENCE, _integrate_outputs(tmp_path), device="cpu", threads=1,
                          seed=3)
    first = integrated[0]
    for method in METHODS:
        figures = {k: v for k, v in first["methods"][method].items() if not k.endswith("time_s")}
        assert figures == {k: again["methods"][method][k] for k in figures}, method
        assert figures["unweighting_efficiency_spread"] > 0 and figures["rel_stddev_spread"] > 0
    assert again["ratios"] == first["ratios"] and again["pulls"] == first["pulls"] and again["pythia"] == first["pythia"]
    assert first["ratios"]["unweighting_efficiency_madnis_over_vegas_spread"] > 0


def test_integrate_equal_calls_for_all_methods(integrated):
    m = integrated[0]["methods"]
    n_channels = len(integrated[0]["channels"])
    calls = [m[k]["n_calls"] for k in ("madnis", "vegas", "flat")]
    assert max(calls) - min(calls) < 2 * n_channels


# ----------------------------------------------------------------------------- unweight


def test_unweight_outputs(unweighted, integrated):
    metrics, outputs = unweighted
    n = EVENTS["n_events"]
    on_disk = json.loads(outputs["metrics"].read_text())
    assert on_disk["n_events"] == n and "surrogate" not in on_disk
    exact = on_disk["exact"]
    assert exact["accepted"] >= n and exact["calls"] % EVENTS["batch_size"] == 0
    assert exact["efficiency"] == pytest.approx(exact["accepted"] / exact["calls"])
    assert 0 < exact["efficiency"] <= 1 and exact["time_per_event_s"] > 0
    # overweights of the production sample, against w_max fixed on the calibration sample: a few
    # per mille of the weights, carrying about epsilon of their sum (not exactly: another sample)
    assert 0 <= exact["overweight_fraction"] < 0.02
    assert 0 <= exact["truncated_fraction"] < 20 * EVENTS["epsilon"]
    m = integrated[0]["methods"]["madnis"]
    assert abs(on_disk["cross_section_pb"] - m["cross_section_pb"]) < 5 * math.hypot(on_disk["error_pb"], m["error_pb"])
    assert pylhe.LHEFile.count_events(str(outputs["lhe"])) == n
    table = pq.read_table(outputs["parquet"])
    assert table.num_rows == n
    meta = {k.decode(): v.decode() for k, v in table.schema.metadata.items()}
    assert meta["process"] == "drell_yan" and float(meta["cross_section_pb"]) == pytest.approx(on_disk["cross_section_pb"])
    assert np.allclose(table.column("weight").to_numpy(), on_disk["cross_section_pb"] / n)
    assert outputs["distributions"].read_bytes()[:4] == PNG


def test_unweighted_events_follow_the_cross_section(unweighted, dy_process):
    """The fraction of unweighted events in the Z window |m_ll - M_Z| < 10 GeV is the fraction of the
    cross-section there, from plain Monte Carlo of the process (no MadNIS)."""
    data = pq.read_table(unweighted[1]["parquet"]).to_pandas()
    p = np.stack([data[[f"e_{i}", f"px_{i}", f"py_{i}", f"pz_{i}"]].to_numpy() for i in (2, 3)], 1)
    m_ll = np.sqrt(msq(p[:, 0] + p[:, 1]))
    n, k = len(m_ll), int((np.abs(m_ll - M_Z) < 10).sum())

    def window(momenta):
        mass = torch.sqrt(((momenta[:, 2] + momenta[:, 3]) ** 2 * torch.tensor([1.0, -1, -1, -1])).sum(-1))
        return ((mass - M_Z).abs() < 10).to(momenta.dtype)

    total, total_err = dy_process.cross_section(30_000, seed=5)
    inside, inside_err = dy_process.cross_section(30_000, seed=5, weight_function=window)
    f = inside / total
    f_err = f * math.hypot(inside_err / inside, total_err / total)
    assert 0.3 < f < 0.99
    assert abs(k - n * f) < 5 * math.sqrt(n * f * (1 - f) + (n * f_err) ** 2)


def test_unweight_needs_enough_calls(integrated, tmp_path):
    settings = {**EVENTS, "n_events": 100_000, "calibration_calls": 1000, "max_calls": 1000}
    with pytest.raises(InputError, match="max_calls"):
        run.unweight(str(integrated[1]["checkpoint"]), settings, _unweight_outputs(tmp_path), device="cpu", threads=1)
    assert not (tmp_path / "events.lhe").exists()


def test_surrogate_unweighting(gg3g_checkpoint, gg3g_surrogate, tmp_path):
    settings = {"n_events": 50, "calibration_calls": 2000, "batch_size": 1000, "epsilon": 1e-3, "max_calls": 400_000}
    outputs = _unweight_outputs(tmp_path)
    metrics = run.unweight(str(gg3g_checkpoint), settings, outputs, surrogate=str(gg3g_surrogate), device="cpu",
                           threads=1, seed=6)
    on_disk = json.loads(outputs["metrics"].read_text())
    s, exact = on_disk["surrogate"], on_disk["exact"]
    assert s == json.loads(json.dumps(metrics["surrogate"]))
    assert s["accepted"] >= settings["n_events"] and 0 < s["exact_calls"] < s["calls"] <= settings["max_calls"]
    assert s["stage1_efficiency"] == pytest.approx(s["exact_calls"] / s["calls"])
    assert s["stage2_efficiency"] == pytest.approx(s["accepted"] / s["exact_calls"])
    assert s["w_s_max_pb"] > 0 and s["u_max"] > 0
    # stage 1 is tallied on the calibration sample that defines w_s_max: its overweights carry epsilon of the sum
    assert s["stage1_truncated_fraction"] == pytest.approx(settings["epsilon"], rel=1e-6)
    assert 0 < s["stage1_overweight_fraction"] < 0.01
    assert 0 <= s["stage2_overweight_fraction"] <= 1 and 0 <= s["stage2_truncated_fraction"] <= 1
    assert s["time_per_event_s"] == pytest.approx(s["time_s"] / s["accepted"])
    assert math.isfinite(s["speedup"]) and s["speedup"] > 0
    assert s["speedup"] == pytest.approx(exact["time_per_event_s"] / s["time_per_event_s"])
    # the two-stage estimate of the cross-section is unbiased: it agrees with the exact one within errors
    # (its building blocks against known weights: tests/madnis/test_surrogate_unbiased.py)
    assert abs(s["cross_section_pb"] - on_disk["cross_section_pb"]) < 4 * math.hypot(s["error_pb"], on_disk["error_pb"])
    # the surrogate-unweighted events follow the exact ones
    assert set(s["agreement"]) == {"p_T,1 [GeV]", "p_T,2 [GeV]", "p_T,3 [GeV]", "eta_1", "eta_2", "eta_3", "m_12 [GeV]"}
    assert all(0 <= v["p_value"] <= 1 for v in s["agreement"].values())
    assert min(v["p_value"] for v in s["agreement"].values()) > 1e-4
    assert pylhe.LHEFile.count_events(str(outputs["lhe"])) == settings["n_events"]
    assert pq.read_table(outputs["parquet"]).num_rows == settings["n_events"]


# ----------------------------------------------------------------------------- Pythia reference


def test_pythia_reference_rejects_bad_lines():
    with pytest.raises(InputError, match="Foo:bar = on"):
        pythia_cross_section(["Foo:bar = on"], 13000.0, None, 10, 1)


def test_pythia_reference_cross_section(dy_spec, dy_process):
    sigma, error = pythia_cross_section(dy_spec["pythia"], dy_process.sqrt_s, str(dy_process.pdf.path), 200, 2)
    assert sigma > 0 and 0 < error < 0.3 * sigma
    ours, ours_err = dy_process.cross_section(20_000, seed=6)
    assert abs(sigma - ours) < 5 * math.hypot(error, ours_err)


def test_pythia_reference_bad_pdf(dy_spec):
    spec = copy.deepcopy(dy_spec)
    with pytest.raises(InputError):
        pythia_cross_section(spec["pythia"], 13000.0, "/nonexistent/pdf.dat", 10, 1)


def test_surrogate_unweighting_with_float32_flows(gg3g_checkpoint, gg3g_surrogate, tmp_path):
    """``flow_float32``: the flows sample in float32 for both unweightings; the cross-sections agree
    with the float64 calibration within errors and the events with each other."""
    settings = {"n_events": 50, "calibration_calls": 2000, "batch_size": 1000, "epsilon": 1e-3, "max_calls": 400_000,
                "flow_float32": True}
    metrics = run.unweight(str(gg3g_checkpoint), settings, _unweight_outputs(tmp_path), surrogate=str(gg3g_surrogate),
                           device="cpu", threads=1, seed=6)
    s = metrics["surrogate"]
    assert s["accepted"] >= settings["n_events"] and math.isfinite(s["speedup"])
    assert abs(s["cross_section_pb"] - metrics["cross_section_pb"]) < 4 * math.hypot(s["error_pb"], metrics["error_pb"])
    assert min(v["p_value"] for v in s["agreement"].values()) > 1e-4


def test_madnis_events_resolves_flow_float32():
    events = {"n_events": 1, "flow_float32": ["gg_4g"]}
    assert madnis_events(events, "gg_4g")["flow_float32"] is True
    assert madnis_events(events, "drell_yan_zprime")["flow_float32"] is False
    assert madnis_events({"n_events": 1}, "gg_4g")["flow_float32"] is False
