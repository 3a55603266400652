"""Train -> sample -> evaluate on the prepared synthetic dataset: outputs, the enforced selection, the schema,
Bayesian bands, resume, determinism and bad input (the classifier's own tests: tests/reweight)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
import uproot

import lhcchain.generate.train as train_module
from lhcchain.errors import InputError
from lhcchain.generate.data import dataset_info, load_events
from lhcchain.generate.evaluate import evaluate
from lhcchain.generate.evaluate import output_paths as evaluation_paths
from lhcchain.generate.sample import output_paths, sample
from lhcchain.generate.train import load_model, train

MULT = [1, 2, 3]
TINY = {"hidden": 32, "layers": 2, "heads": 2, "transforms": 2, "bins": 6, "components": 4, "batch_size": 256, "lr": 3e-3,
        "patience": 100, "max_minutes": 1.0}
SAMPLING = {"factor": 2.0, "steps": 4, "solver": "midpoint", "bayes_samples": 3}
EVALUATION = {"bins": 10, "min_count": 20, "log_likelihood_events": 100,
              "classifier": {"hidden": 16, "layers": 2, "epochs": 4, "folds": 2, "patience": 2}}


def run_train(prepared: Path, checkpoint: Path, settings: dict, **kwargs) -> dict:
    info = dataset_info(prepared / "metadata.json")
    return train(prepared / "train.parquet", prepared / "val.parquet", checkpoint, settings, level="particle", multiplicities=MULT,
                 selection=info["selection"], max_jets=info["max_jets"], device="cpu", threads=1, seed=1, **kwargs)


@pytest.fixture(scope="module")
def bayes_run(prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A Bayesian CFM trained for a few epochs, sampled (3 weight draws) and evaluated."""
    out = tmp_path_factory.mktemp("bayes_cfm")
    summary = run_train(prepared, out / "model.pt", {**TINY, "family": "cfm", "bayesian": True, "epochs": 8})
    smp = sample(out / "model.pt", output_paths(out), SAMPLING, device="cpu", threads=1, seed=2)
    outs = evaluation_paths(out, MULT)
    (out / "sim.json").write_text(json.dumps({"events_per_s_per_core": 30.0}))
    metrics = evaluate(out / "events.parquet", prepared / "test.parquet", out / "model.pt", out / "sample.json", outs, EVALUATION,
                       sim_metrics=out / "sim.json", device="cpu", threads=1, seed=3)
    return {"dir": out, "train": summary, "sample": smp, "metrics": metrics, "outputs": outs}


def test_training_writes_a_complete_checkpoint(bayes_run):
    ckpt = torch.load(bayes_run["dir"] / "model.pt", weights_only=False)
    assert ckpt["multiplicities"] == MULT and ckpt["level"] == "particle" and ckpt["settings"]["bayesian"]
    assert sum(ckpt["fractions"].values()) == pytest.approx(1.0)
    assert set(ckpt["flavours"][1]) <= {-13, -11, 11, 13} and ckpt["selection"]["jet_pt_min"] == 20.0
    assert bayes_run["train"]["epochs_run"] == 8 and bayes_run["train"]["n_train"][3] > 50
    assert not (bayes_run["dir"] / "model.pt.last").exists()
    history = np.array(ckpt["history"])
    assert history[-1, 2] < history[0, 2]  # validation loss went down


def test_sampled_events_follow_the_selection_and_the_counts(bayes_run):
    t = pq.read_table(bayes_run["dir"] / "events.parquet")
    c = {k: t.column(k).to_numpy(zero_copy_only=False) for k in t.column_names}
    n_train = sum(torch.load(bayes_run["dir"] / "model.pt", weights_only=False)["n_train"].values())
    assert abs(len(c["entry"]) - 2 * n_train) <= len(MULT)
    assert np.isin(c["particle_n_jets"], MULT).all() and c["particle_pass"].all()
    assert sorted(np.unique(c["generator_member"]).tolist()) == [0, 1, 2]
    assert np.bincount(c["generator_member"]).min() >= len(c["entry"]) // 3 - len(MULT)
    # Delta R between every pair of jets, and between jets and leptons, recomputed from the written columns
    def dr(a: str, b: str) -> np.ndarray:
        dphi = (c[f"particle_{a}_phi"] - c[f"particle_{b}_phi"] + np.pi) % (2 * np.pi) - np.pi
        return np.hypot(c[f"particle_{a}_eta"] - c[f"particle_{b}_eta"], dphi)

    for a, b in (("j1", "j2"), ("j1", "j3"), ("j2", "j3"), ("j1", "l1"), ("j1", "l2"), ("j2", "l1"), ("j3", "l2")):
        d = dr(a, b)
        assert np.all(d[np.isfinite(d)] > 0.4), (a, b)
    assert np.all(np.abs(c["particle_l1_eta"]) < 2.4) and np.nanmax(np.abs(c["particle_j1_eta"])) < 4.7
    assert np.all((c["particle_mll"] >= 60) & (c["particle_mll"] <= 120))
    assert np.all(c["particle_l1_pt"] >= c["particle_l2_pt"]) and np.all(c["particle_l2_pt"] > 20)
    two = c["particle_n_jets"] >= 2
    assert np.all(c["particle_j1_pt"][two] >= c["particle_j2_pt"][two]) and np.all(c["particle_j2_pt"][two] > 20)
    assert np.all(c["particle_l1_pdgId"] == -c["particle_l2_pdgId"])
    assert bayes_run["sample"]["events_per_s"] > 0


def test_generated_files_read_like_prepared_ones(bayes_run, prepared: Path):
    gen = load_events(bayes_run["dir"] / "events.parquet", "particle", MULT, 3)  # the reader of prepare's output
    assert len(gen) == pq.read_metadata(bayes_run["dir"] / "events.parquet").num_rows
    schema, reference = pq.read_schema(bayes_run["dir"] / "events.parquet"), pq.read_schema(prepared / "train.parquet")
    shared = [n for n in schema.names if n in reference.names]
    assert len(shared) == len(schema.names) - 1  # all but generator_member
    for name in shared:
        assert schema.field(name).type == reference.field(name).type, name
    table = pq.read_table(bayes_run["dir"] / "events.parquet")
    tree = uproot.open(bayes_run["dir"] / "events.root")["Events"]
    assert sorted(tree.keys()) == sorted(schema.names)
    for name in ("particle_mll", "particle_j2_pt", "particle_n_jets", "particle_pass", "generator_member"):
        np.testing.assert_array_equal(tree[name].array(library="np"), table.column(name).to_numpy(zero_copy_only=False))


def test_evaluation_outputs_and_bayesian_bands(bayes_run):
    m, outs = bayes_run["metrics"], bayes_run["outputs"]
    for key, path in outs.items():
        assert path.is_file() and path.stat().st_size > 0, key
        if key != "metrics":
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", key
    assert json.loads(outs["metrics"].read_text())["worst_auc"] == pytest.approx(m["worst_auc"])
    for mult in MULT:
        entry = m["multiplicities"][mult]
        assert 0.0 <= entry["classifier_auc"] <= 1.0 and entry["classifier_auc_err"] > 0
        obs = entry["observables"]
        assert set(obs) >= {"l1_pt", "l2_eta", f"j{mult}_mass", "mll"} and ("drjj" in obs) == (mult >= 2)
        spreads = [o["median_bayes_rel_spread"] for o in obs.values() if o["median_bayes_rel_spread"] is not None]
        assert spreads and min(spreads) > 0  # every checked bin of every histogram has a Bayesian band
        assert np.isfinite(entry["log_likelihood"])
        floor = entry["max_abs_dev_perfect_generator"]
        assert 0 < floor["median"] <= floor["68%"]
    assert "mean_shift_gev" in m["z_peak"] and m["z_peak"]["truth"]["mean"] == pytest.approx(91.2, abs=0.5)
    assert m["speed"]["speedup_over_simulate_per_core"] == pytest.approx(m["speed"]["generation_events_per_s_per_thread"] / 30.0)


def test_statistical_floor_of_the_largest_ratio_deviation():
    """One bin of 100 truth events against a far larger generated sample: |ratio - 1| ~ |100 / t - 1| with
    t ~ Poisson(100), median 0.065 (computed here by enumeration); more bins raise the floor."""
    from scipy import stats

    from lhcchain.generate.evaluate import perfect_generator_max_dev

    rng = np.random.default_rng(5)
    t = np.arange(40, 200)
    dev = np.abs(100.0 / t - 1)
    order = np.argsort(dev)
    cdf = np.cumsum(stats.poisson(100).pmf(t)[order])
    expected = dev[order][np.searchsorted(cdf, 0.5)]
    one = perfect_generator_max_dev(np.array([100.0]), 10**8, np.array([True]), rng, toys=20_000)
    assert np.median(one) == pytest.approx(expected, abs=0.004)
    many = perfect_generator_max_dev(np.full(20, 100.0), 10**8, np.ones(20, bool), rng, toys=2000)
    assert np.median(many) > 2 * np.median(one)
    assert not perfect_generator_max_dev(np.full(3, 100.0), 1000, np.zeros(3, bool), rng).any()


@pytest.mark.parametrize("family", ["cfm", "flow", "transformer"])
def test_each_family_trains_and_samples_from_settings(prepared: Path, tmp_path: Path, family: str):
    summary = run_train(prepared, tmp_path / "model.pt", {**TINY, "family": family, "conditional": family != "flow", "epochs": 2})
    assert summary["family"] == family and summary["epochs_run"] == 2
    smp = sample(tmp_path / "model.pt", output_paths(tmp_path), {**SAMPLING, "n_events": 300}, device="cpu", threads=1, seed=4)
    assert smp["n_events"] == 300 and smp["members"] == 1
    gen = load_events(tmp_path / "events.parquet", "particle", MULT, 3)
    assert sorted(set(gen.n_jets.tolist())) == MULT


def test_sampling_is_deterministic_in_its_seed(bayes_run, tmp_path: Path):
    ckpt = bayes_run["dir"] / "model.pt"
    cols = []
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        sample(ckpt, output_paths(tmp_path / name), {**SAMPLING, "n_events": 200}, device="cpu", threads=1, seed=seed)
        cols.append(pq.read_table(tmp_path / name / "events.parquet").column("particle_j1_pt").to_numpy())
    np.testing.assert_array_equal(cols[0], cols[1])
    assert not np.array_equal(cols[0], cols[2])


def test_training_resumes_after_an_interruption(prepared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    ckpt, settings = tmp_path / "model.pt", {**TINY, "family": "cfm", "epochs": 4}
    real, calls = train_module.validation_loss, {"n": 0}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(train_module, "validation_loss", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_train(prepared, ckpt, settings, save_every=0.0)
    assert (tmp_path / "model.pt.last").exists() and not ckpt.exists()
    monkeypatch.setattr(train_module, "validation_loss", real)
    summary = run_train(prepared, ckpt, settings, save_every=0.0)
    assert summary["resumed"] and summary["epochs_run"] == 4
    assert len(torch.load(ckpt, weights_only=False)["history"]) == 4
    assert not (tmp_path / "model.pt.last").exists()
    other = run_train(prepared, ckpt, {**settings, "hidden": 16})  # no stale .last: a fresh start
    assert not other["resumed"]


def test_bad_inputs_name_the_file(bayes_run, prepared: Path, tmp_path: Path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match=r"junk\.pt"):
        load_model(junk, torch.device("cpu"))
    torch.save({"format": "something-else"}, tmp_path / "other.pt")
    with pytest.raises(InputError, match="format"):
        sample(tmp_path / "other.pt", output_paths(tmp_path / "o"), SAMPLING, device="cpu")
    t = pq.read_table(bayes_run["dir"] / "events.parquet").drop(["particle_l2_phi"])
    pq.write_table(t, tmp_path / "events.parquet")
    outs = evaluation_paths(tmp_path / "eval", MULT)
    with pytest.raises(InputError, match=r"events\.parquet.*particle_l2_phi"):
        evaluate(tmp_path / "events.parquet", prepared / "test.parquet", bayes_run["dir"] / "model.pt", bayes_run["dir"] / "sample.json",
                 outs, EVALUATION, device="cpu")
    assert not (tmp_path / "eval").exists() or not any((tmp_path / "eval").iterdir())
    with pytest.raises(InputError, match="unknown"):
        sample(bayes_run["dir"] / "model.pt", output_paths(tmp_path / "s"), {"stepz": 3}, device="cpu")
    t = pq.read_table(prepared / "train.parquet")
    weights = t.column("weight").to_numpy().copy()
    selected = t.column("particle_pass").to_numpy() & np.isin(t.column("particle_n_jets").to_numpy(), MULT)
    weights[np.flatnonzero(selected)[0]] = -1.0
    pq.write_table(t.set_column(t.schema.get_field_index("weight"), "weight", pa.array(weights)), tmp_path / "negative.parquet")
    info = dataset_info(prepared / "metadata.json")
    with pytest.raises(InputError, match=r"negative\.parquet: 1 events have weight <= 0"):
        train(tmp_path / "negative.parquet", prepared / "val.parquet", tmp_path / "m.pt", TINY, selection=info["selection"],
              device="cpu")
