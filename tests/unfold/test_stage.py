"""The stage's steps on prepared-like toy samples: every method, the evaluation, and nothing partial on bad input."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lhcchain.errors import InputError
from lhcchain.unfold import run

OBS = ["j1_pt", "j1_nConstituents"]
CLF = {"hidden": 16, "layers": 2, "epochs": 10, "batch_size": 256, "lr": 3e-3, "patience": 4, "folds": 2, "calibration": "none",
       "repeats": 1, "bootstrap": 20}
NET = {"hidden": 32, "layers": 2, "epochs": 15, "batch_size": 256, "lr": 3e-3, "patience": 5, "steps": 6}
COMMON = {"sim": "nominal", "data": "alt_tune", "observables": OBS, "heldout_split": "test", "bins": 8}
SETTINGS = {
    "ibu": {**COMMON, "ts_stopping": 0.01, "max_iter": 30},
    "omnifold": {**COMMON, "iterations": 2, "ensemble": 1, "closure": True, "classifier": CLF},
    "cinn": {**COMMON, "network": NET, "classifier": CLF, "draws": 3, "efficiency_min": 0.05, "calibration_draws": 20, "calibration_events": 300},
    "evaluate": {**COMMON, "bootstrap": 10, "classifier": CLF, "methods": ["ibu", "omnifold", "cinn", "icinn"]},
}
SETTINGS["icinn"] = {**SETTINGS["cinn"], "iterations": 1, "auc_sigmas": 2.0, "bootstrap_auc": 20}


def write_prepared(d, name, n, scale, seed):
    """train/val/test parquet and metadata.json of a prepared-like sample: a jet pT and a constituent count,
    smeared, with efficiency losses and fakes."""
    rng = np.random.default_rng(seed)
    (d / name).mkdir()
    for split, frac in (("train", 0.6), ("val", 0.2), ("test", 0.2)):
        m = int(n * frac)
        pt = 30 + rng.exponential(scale, m)
        nc = rng.poisson(5 + pt / 10).astype(float)
        cols = {"weight": np.ones(m), "particle_pass": rng.random(m) < 0.95, "reco_pass": rng.random(m) < 0.85,
                "particle_j1_pt": pt, "particle_j1_nConstituents": nc,
                "reco_j1_pt": pt * rng.normal(1, 0.1, m), "reco_j1_nConstituents": np.maximum(nc + rng.integers(-2, 3, m), 1.0)}
        pq.write_table(pa.table(cols), d / name / f"{split}.parquet")
    (d / name / "metadata.json").write_text(json.dumps({"levels": ["particle", "reco"], "selection": {"mll_min": 76.0}, "max_jets": 3}))
    return [d / name / f"{s}.parquet" for s in ("train", "val", "test")], d / name / "metadata.json"


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    d = tmp_path_factory.mktemp("unfold")
    return d, write_prepared(d, "nominal", 3000, 20.0, 1), write_prepared(d, "alt_tune", 1500, 25.0, 2)


def test_all_steps(samples):
    d, (sim, sm), (data, dm) = samples
    out = run.output_paths(d / "out")
    args = (sim, data, str(sm), str(dm))
    run.run_ibu_step(*args, out["ibu"], SETTINGS["ibu"])
    omni = run.run_omnifold_step(*args, out["omnifold"], SETTINGS["omnifold"], device="cpu", seed=1)
    assert set(omni["closure"]) == set(OBS)
    cinn = run.run_cinn_step(*args, out["cinn"], SETTINGS["cinn"], device="cpu", seed=2)
    assert set(cinn["calibration"]["coverage_68"]) == set(OBS) and set(cinn["closure"]) == set(OBS)
    run.run_icinn_step(*args, str(out["cinn"]["model"]), str(out["cinn"]["events"]), out["icinn"], SETTINGS["icinn"], device="cpu", seed=3)
    results = {m: {k: str(v) for k, v in out[m].items()} for m in ("ibu", "omnifold", "cinn", "icinn")}
    metrics = run.evaluate(*args, results, out["evaluate"], SETTINGS["evaluate"], device="cpu", seed=4)
    for m in ("ibu", "omnifold", "cinn", "icinn"):
        e = metrics["methods"][m]
        assert e["time_per_10k_events_s"] > 0 and set(e["per_observable"]) == set(OBS)
        assert all(np.isfinite(v["triangular_discriminator_x1e3"]) for v in e["per_observable"].values())
        assert m == "ibu" or 0.3 < e["joint_auc"] < 0.8
    assert out["evaluate"]["figure"].stat().st_size > 0 and out["cinn"]["calibration_plot"].exists()


def test_bad_input_leaves_nothing(samples, tmp_path):
    d, (sim, sm), (data, dm) = samples
    out = run.output_paths(tmp_path / "out")
    with pytest.raises(InputError, match="j1_girth"):
        run.run_ibu_step(sim, data, str(sm), str(dm), out["ibu"], {**SETTINGS["ibu"], "observables": [*OBS, "j1_girth"]})
    with pytest.raises(InputError, match="bin"):
        run.run_ibu_step(sim, data, str(sm), str(dm), out["ibu"], {**SETTINGS["ibu"], "bins": 2000})
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
