"""The stage on synthetic prepared samples with a known density ratio: weights against the analytic ratio,
closure (chi2/ndf, a fresh classifier's AUC), the outputs, and bad input that leaves nothing behind.

Source and target at particle level: ``l1_pt = 40 + 10 N(mu, 1)`` GeV (mu = 0 and 0.3), ``l1_eta`` the
same in both, one optional jet present with probability 0.6 and 0.7 (``j1_pt`` the same shape, NaN
when absent, ``n_jets`` 0 or 1), and a tenth of the rows failing the level. So
``w = N(u; 0.3, 1) / N(u; 0, 1) * (0.7 / 0.6 if jet else 0.3 / 0.4)`` with ``u = (l1_pt - 40) / 10``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy.stats import norm

from lhcchain.config import refine_pairs, reweight_inputs, reweight_settings
from lhcchain.errors import InputError
from lhcchain.reweight.run import evaluate, output_paths, refine, train

from .conftest import FAST

FEATURES = ["l1_pt", "l1_eta", "j1_pt", "n_jets"]
N = {"train": 3000, "val": 1000, "test": 1000}


def write_sample(folder: Path, mu: float, p_jet: float, seed: int) -> list[Path]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    paths = []
    for i, (split, n) in enumerate(N.items()):
        jet = rng.uniform(size=n) < p_jet
        cols = {"file_index": np.zeros(n, np.int16), "entry": np.arange(n) + 10_000 * i, "run": np.ones(n, np.int64),
                "event": np.arange(n) + 10_000 * i, "weight": np.ones(n),
                "particle_l1_pt": (40 + 10 * rng.normal(mu, 1, n)).astype(np.float32),
                "particle_l1_eta": rng.normal(0, 1.2, n).astype(np.float32),
                "particle_j1_pt": np.where(jet, 20 + rng.exponential(20, n), np.nan).astype(np.float32),
                "particle_n_jets": jet.astype(np.int16), "particle_pass": rng.uniform(size=n) > 0.1}
        paths.append(folder / f"{split}.parquet")
        pq.write_table(pa.table(cols), paths[-1])
    return paths


def settings(**over) -> dict:
    return {"source": "src", "target": "tgt", "level": "particle", "features": FEATURES, "clip": 3.0,
            "classifier": {**FAST, "folds": 3}, "closure": {"bins": 20}, **over}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    base = tmp_path_factory.mktemp("reweight")
    src, tgt = write_sample(base / "src", 0.0, 0.6, 1), write_sample(base / "tgt", 0.3, 0.7, 2)
    outs = output_paths(base / "out")
    summary = train("src_to_tgt", src, tgt, outs, settings(n_jets=[0, 1]), device="cpu", seed=3)
    metrics = evaluate("src_to_tgt", src, tgt, outs["weights"], outs["summary"], outs["model"], outs, settings(n_jets=[0, 1]),
                       device="cpu", seed=4)
    return {"base": base, "src": src, "tgt": tgt, "outs": outs, "summary": summary, "metrics": metrics}


def test_outputs_are_keyed_like_the_input_rows(run):
    assert all(Path(p).stat().st_size > 0 for p in run["outs"].values())
    assert not list((run["base"] / "out").glob(".staging-*"))
    w = pq.read_table(run["outs"]["weights"]).to_pandas()
    rows = pa.concat_tables([pq.read_table(p) for p in run["src"]]).to_pandas()
    passing = rows[rows["particle_pass"]]
    assert len(w) == len(passing) and w["entry"].tolist() == passing["entry"].tolist()
    assert set(w["split"]) == {"train", "val", "test"} and {"w", "w_uncalibrated", "fold", "weight"} <= set(w.columns)


def test_weights_follow_the_analytic_ratio(run):
    w = pq.read_table(run["outs"]["weights"]).to_pandas()
    rows = pa.concat_tables([pq.read_table(p) for p in run["src"]]).to_pandas()
    rows = rows[rows["particle_pass"]]
    u = (rows["particle_l1_pt"].to_numpy() - 40) / 10
    jet = rows["particle_n_jets"].to_numpy() == 1
    exact = norm.pdf(u, 0.3) / norm.pdf(u) * np.where(jet, 0.7 / 0.6, 0.3 / 0.4)
    exact *= run["summary"]["normalisation_factor"]
    bulk = np.abs(u) < 1.5
    assert np.median(np.abs(np.log(w["w"].to_numpy()[bulk] / exact[bulk]))) < 0.15
    assert np.average(jet, weights=w["w"]) == pytest.approx(0.7, abs=0.02)  # the absent jet's indicator carries the presence ratio


def test_closure_metrics(run):
    m = run["metrics"]
    assert m["chi2_ndf"]["l1_pt"]["before"] > 3 and m["chi2_ndf"]["l1_pt"]["after"] < 2
    assert m["chi2_ndf"]["n_jets"]["before"] > 3 and m["chi2_ndf"]["n_jets"]["after"] < 2
    assert m["auc_before"] > 0.55
    assert abs(m["closure_auc"] - 0.5) < 3 * m["closure_auc_err"]
    for jets in m["closure_by_n_jets"].values():  # within each jet count only l1 p_T differs: Phi(0.3 / sqrt(2)) = 0.58 before
        assert jets["auc_before"] > 0.54 and abs(jets["closure_auc"] - 0.5) < 3 * jets["closure_auc_err"]
        # w within a jet count is N(u; 0.3, 1) / N(u; 0, 1) times a constant: ESS fraction 1 / E[w^2] = exp(-0.09) = 0.914
        assert jets["ess_fraction"] == pytest.approx(math.exp(-0.09), abs=0.05) and jets["ess"] < jets["n_source"]
    assert set(m["closure_by_n_jets"]) == {0, 1}
    s = m["weights"]
    assert s["normalisation"] == pytest.approx(1.0, abs=0.05) and 0 < s["ess"] < s["ess_unweighted"]
    assert s["n_beyond_clip"] == round(s["fraction_beyond_clip"] * s["n_events"])
    assert run["summary"]["train_events_per_s"] > 0 and run["summary"]["inference_events_per_s"] > 0


def test_bad_input_stops_with_a_clear_error_and_nothing_partial(run, tmp_path: Path):
    src, tgt = run["src"], run["tgt"]
    outs = output_paths(tmp_path / "out")
    # no feature overlap: features the target does not have
    with pytest.raises(InputError, match=r"features missing at level 'particle'.*lacks \['met_pt'\]"):
        train("p", src, tgt, outs, settings(features=["met_pt"]), device="cpu")
    # an empty sample: no event passes the level
    empty = tmp_path / "empty.parquet"
    t = pq.read_table(src[0])
    pq.write_table(t.set_column(t.schema.get_field_index("particle_pass"), "particle_pass", pa.array(np.zeros(t.num_rows, bool))), empty)
    with pytest.raises(InputError, match="no events pass level 'particle'.*empty sample"):
        train("p", [empty], tgt, outs, settings(), device="cpu")
    with pytest.raises(InputError, match=r"sample 'src': no events pass level 'particle' with \[5\] jets"):
        train("p", src, tgt, outs, settings(n_jets=[5]), device="cpu")
    # NaN in a non-optional column (a lepton) of a passing event
    bad = tmp_path / "nan.parquet"
    pt = t.column("particle_l1_pt").to_numpy().copy()
    first = int(np.flatnonzero(t.column("particle_pass").to_numpy())[0])
    pt[first] = np.nan
    pq.write_table(t.set_column(t.schema.get_field_index("particle_l1_pt"), "particle_l1_pt", pa.array(pt)), bad)
    with pytest.raises(InputError, match=rf"nan\.parquet: column particle_l1_pt is NaN in 1 passing events \(first: run 1, event {first}"):
        train("p", [bad], tgt, outs, settings(), device="cpu")
    # a NaN generator weight
    gw = t.column("weight").to_numpy().copy()
    gw[first] = np.nan
    pq.write_table(t.set_column(t.schema.get_field_index("weight"), "weight", pa.array(gw)), bad)
    with pytest.raises(InputError, match=rf"generator weight nan of run 1, event {first}"):
        train("p", [bad], tgt, outs, settings(), device="cpu")
    pq.write_table(t.set_column(t.schema.get_field_index("weight"), "weight", pa.array(-np.ones(t.num_rows))), bad)
    with pytest.raises(InputError, match=r"sample 'src': the generator weights .* sum to -\d+\.0 .*need > 0"):
        train("p", [bad], tgt, outs, settings(), device="cpu")
    # weights that do not belong to the source rows
    with pytest.raises(InputError, match="rows do not match the source sample"):
        evaluate("p", src[:1], tgt, run["outs"]["weights"], run["outs"]["summary"], run["outs"]["model"], outs, settings(), device="cpu")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_config_pairs_name_known_samples():
    cfg = {"samples": {"a": {}, "b": {}}, "datasets": {}, "reweight": {
        "splits": ["train", "val"], "clip": 10.0, "classifier": {"folds": 3}, "closure": {"bins": 30},
        "pairs": {"a_to_b": {"source": "a", "target": "b", "level": "particle", "features": ["l1_pt"]},
                  "a_to_x": {"source": "a", "target": "x", "level": "particle", "features": ["l1_pt"]}}}}
    s = reweight_settings(cfg, "a_to_b")
    assert s["classifier"] == {"folds": 3} and s["clip"] == 10.0 and s["source"] == "a"
    assert reweight_inputs(cfg, "a_to_b", "target") == ["results/data/b/train.parquet", "results/data/b/val.parquet"]
    with pytest.raises(InputError, match=r"reweight.pairs.a_to_x: target 'x' is neither a sample nor a dataset nor"):
        reweight_settings(cfg, "a_to_x")
    with pytest.raises(InputError, match="no reweight pair 'nope'"):
        reweight_inputs(cfg, "nope", "source")
    cfg["generate"] = {"models": {"cfm": {}}}
    cfg["reweight"]["pairs"]["gen"] = {"source": "generate:cfm", "target": "b", "splits": ["test"], "level": "parton", "features": ["l1_pt"]}
    assert reweight_inputs(cfg, "gen", "source") == ["results/generate/cfm/events.parquet"]
    assert reweight_inputs(cfg, "gen", "target") == ["results/data/b/test.parquet"]
    assert refine_pairs(cfg) == ["gen"]  # only a generator's events are refined
    cfg["reweight"]["pairs"]["gen"]["source"] = "generate:flow"
    with pytest.raises(InputError, match=r"source 'generate:flow' names no model under 'generate.models'"):
        reweight_inputs(cfg, "gen", "source")


def test_refined_events_carry_the_weights(run, tmp_path: Path):
    outs = {"events": tmp_path / "events.parquet"}
    n = refine("src_to_tgt", run["src"], run["outs"]["weights"], outs, settings(n_jets=[0, 1]))
    events, weights = pq.read_table(outs["events"]), pq.read_table(run["outs"]["weights"])
    assert n == events.num_rows == weights.num_rows
    assert events.column("particle_pass").to_numpy().all() and "particle_l1_eta" in events.column_names
    np.testing.assert_array_equal(events.column("event").to_numpy(), weights.column("event").to_numpy())
    np.testing.assert_allclose(events.column("refined_weight").to_numpy(), events.column("weight").to_numpy() * weights.column("w").to_numpy())
    with pytest.raises(InputError, match="rows do not match the events of"):
        refine("src_to_tgt", run["src"][:1], run["outs"]["weights"], {"events": tmp_path / "bad" / "events.parquet"}, settings(n_jets=[0, 1]))
    assert not (tmp_path / "bad").exists() or not any((tmp_path / "bad").iterdir())
