"""The parametrised classifier and the DCTR fit on known toys, the stage's outputs, and the config checks.

Toy: x = (u, v) with u ~ N(theta, 1) and v ~ N(0, 1); reference theta_0 = 0, scan theta_i = -0.6, -0.3, 0.3,
0.6; pseudo-data at theta = 0.2. The Fisher information of theta is 1 per data event, and the normalisation on
n_r reference events adds about 1/n_r to the variance (each network normalises on the 6000 held-out events and the
2000 training reference events of its own fold), so the fitted value's statistical error is about
sqrt(1/n_d + 1/6000) = 0.026 or a little less, independently of the classifier.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lhcchain.config import tune_inputs, tune_settings
from lhcchain.errors import InputError
from lhcchain.reweight.tune import log_likelihood, output_paths, parametrised_fit, tune, vertex

from .conftest import FAST

SCAN = (-0.6, -0.3, 0.3, 0.6)
TRUE = 0.2
N_SCAN, N_REF, N_NORM, N_DATA = 3000, 6000, 6000, 2000
SETTINGS = {"classifier": {**FAST, "epochs": 100, "patience": 10, "folds": 3}, "grid": {"min": -0.6, "max": 0.6, "points": 49},
            "window": 0.15, "bootstrap": 100}


def draw(rng: np.random.Generator, theta: float, n: int) -> np.ndarray:
    return np.column_stack([rng.normal(theta, 1, n), rng.normal(0, 1, n)])


@pytest.fixture(scope="module")
def toy():
    rng = np.random.default_rng(11)
    scan = [(draw(rng, t, N_SCAN), np.ones(N_SCAN), t) for t in SCAN]
    ref, norm, data = draw(rng, 0, N_REF), draw(rng, 0, N_NORM), draw(rng, TRUE, N_DATA)
    return parametrised_fit((ref, np.ones(N_REF)), (norm, np.ones(N_NORM)), scan, (data, np.ones(N_DATA)), SETTINGS, seed=5)


def test_gaussian_mean_is_fitted_with_the_expected_error(toy):
    _, r, rates = toy
    expected = math.sqrt(1 / N_DATA + 1 / N_NORM)
    assert not r.at_boundary
    assert abs(r.value - TRUE) < 3 * r.err, (r.value, r.err)
    assert 0.7 * expected < r.err_bootstrap < 1.5 * expected, (r.err_bootstrap, expected)
    assert 0.7 * expected < r.err_curvature < 1.5 * expected, (r.err_curvature, expected)
    assert r.err >= r.err_bootstrap and len(r.member_values) == 3
    assert rates["train_events_per_s"] > 0 and rates["inference_events_per_s"] > 0


def test_learnt_ratio_follows_the_parameter(toy):
    """At the scan values the parametrised ln w matches the exact theta u - theta^2 / 2 in the bulk."""
    fit, _, _ = toy
    u = np.linspace(-1.5, 1.5, 31)
    x = np.column_stack([u, np.zeros_like(u)])
    for t in (-0.3, 0.3):
        logw = fit.predict_logit(np.column_stack([x, np.full(len(u), t)]), calibrated=False)
        assert np.median(np.abs(logw - (t * u - t * t / 2))) < 0.1, t


def test_vertex_and_curvature_of_a_parabola():
    grid = np.linspace(0.0, 1.0, 41)
    curve = -0.5 * (grid - 0.37) ** 2 / 0.05**2 + 3.0
    value, err, edge = vertex(grid, curve, 0.1)
    assert value == pytest.approx(0.37, abs=1e-9) and err == pytest.approx(0.05, rel=1e-6) and not edge
    _, _, edge = vertex(grid, -((grid - 1.3) ** 2), 0.1)  # maximum beyond the grid
    assert edge


def test_normalisation_term_removes_a_constant_offset():
    rng = np.random.default_rng(0)
    logw_d, logw_n = rng.normal(size=(5, 40)), rng.normal(size=(5, 60))
    g_d, g_n = rng.uniform(0.5, 1.5, 40), rng.uniform(0.5, 1.5, 60)
    assert log_likelihood(logw_d + 2.5, g_d, logw_n + 2.5, g_n) == pytest.approx(log_likelihood(logw_d, g_d, logw_n, g_n))
    boot = np.stack([g_d, g_d])
    assert log_likelihood(logw_d, boot, logw_n, np.stack([g_n, g_n]))[1] == pytest.approx(log_likelihood(logw_d, g_d, logw_n, g_n))


def write(folder: Path, theta: float, n: int, seed: int) -> list[Path]:
    """One prepared-like parquet split (level particle, features l1_pt and j1_pt with NaN for absent jets)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    jet = rng.uniform(size=n) < 0.5
    cols = {"file_index": np.zeros(n, np.int16), "entry": np.arange(n), "run": np.ones(n, np.int64), "event": np.arange(n),
            "weight": np.ones(n), "particle_pass": np.ones(n, bool), "particle_n_jets": jet.astype(np.int16),
            "particle_l1_pt": 40 + 10 * rng.normal(theta, 1, n), "particle_j1_pt": np.where(jet, 30 + 5 * rng.normal(size=n), np.nan)}
    pq.write_table(pa.table(cols), folder / "train.parquet")
    return [folder / "train.parquet"]


def test_stage_writes_the_fit(tmp_path: Path):
    scan = {f"s{i}": write(tmp_path / f"s{i}", t, 1500, i) for i, t in enumerate(SCAN)}
    s = {"parameter": "mu", "reference": "ref", "reference_value": 0.0, "scan": dict(zip(scan, SCAN)), "data": "pseudo", "truth": TRUE,
         "level": "particle", "features": ["l1_pt", "j1_pt", "n_jets"], **SETTINGS,
         "classifier": {**FAST, "epochs": 20, "folds": 2}, "bootstrap": 20}
    outs = output_paths(tmp_path / "out")
    m = tune(write(tmp_path / "ref", 0, 3000, 10), write(tmp_path / "norm", 0, 3000, 11), scan, write(tmp_path / "pseudo", TRUE, 2000, 12),
             outs, s, device="cpu", seed=1)
    assert json.loads(outs["metrics"].read_text())["fitted_value"] == m["fitted_value"]
    assert m["pull"] == pytest.approx((m["fitted_value"] - TRUE) / m["fitted_value_err"])
    assert m["n_data"] == 2000 and m["n_scan"] == {k: 1500 for k in scan} and len(m["log_likelihood"]) == 49
    assert outs["fit_plot"].stat().st_size > 0 and outs["model"].stat().st_size > 0
    with pytest.raises(InputError, match=r"features missing at level 'particle'.*lacks \['j2_pt'\]"):
        tune(write(tmp_path / "r2", 0, 100, 1), write(tmp_path / "n2", 0, 100, 2), scan, write(tmp_path / "d2", 0, 100, 3),
             output_paths(tmp_path / "out2"), {**s, "features": ["l1_pt", "j2_pt"]}, device="cpu")
    assert not (tmp_path / "out2").exists() or not any((tmp_path / "out2").iterdir())


def config() -> dict:
    return {"samples": {"nom": {"settings": []}, "a": {"settings": ["TimeShower:alphaSvalue = 0.120"]},
                        "b": {"settings": ["TimeShower:alphaSvalue=0.13"]}, "pd": {}},
            "datasets": {}, "reweight": {"splits": ["train", "test"], "classifier": {"folds": 5, "hidden": 8}, "pairs": {},
                                         "tune": {"parameter": "TimeShower:alphaSvalue", "reference": "nom", "normalisation_split": "test",
                                                  "scan": {"a": 0.12, "b": 0.13}, "data": "pd", "classifier": {"folds": 2}}}}


def test_config_tune_inputs_and_checks():
    cfg = config()
    s = tune_settings(cfg)
    assert s["classifier"] == {"folds": 2, "hidden": 8} and s["splits"] == ["train", "test"]
    assert tune_inputs(cfg, "reference") == ["results/data/nom/train.parquet"]
    assert tune_inputs(cfg, "normalisation") == ["results/data/nom/test.parquet"]
    assert tune_inputs(cfg, "scan") == [f"results/data/{n}/{sp}.parquet" for n in "ab" for sp in ("train", "test")]
    assert tune_inputs(cfg, "data") == ["results/data/pd/train.parquet", "results/data/pd/test.parquet"]
    cfg["reweight"]["tune"]["scan"]["b"] = 0.14
    with pytest.raises(InputError, match=r"reweight.tune.scan.b = 0.14, but samples.b.settings set TimeShower:alphaSvalue to 0.13"):
        tune_settings(cfg)
    cfg = config()
    cfg["reweight"]["tune"]["data"] = "nope"
    with pytest.raises(InputError, match=r"reweight.tune.data: 'nope' is neither a sample nor a dataset"):
        tune_settings(cfg)
    cfg = config()
    cfg["reweight"]["pairs"]["tune"] = {}
    with pytest.raises(InputError, match="the name 'tune' is the tune fit's folder"):
        tune_settings(cfg)
    cfg = config()
    cfg["reweight"]["splits"] = ["test"]
    with pytest.raises(InputError, match="no reference events are left to train on"):
        tune_settings(cfg)
