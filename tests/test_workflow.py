"""The Snakemake workflow: lint, cluster-profile dry runs, and an end-to-end run of config/test.yaml.

The end-to-end run happens in a scratch project (symlinks to this checkout's workflow files and its
tests/data) so that it never touches the checkout's own results/.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from .conftest import ROOT

LINKED = ("workflow", "rules", "scripts", "config", "envs")
Z_MASS = 91.1876


def snakemake(args: list[str], cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    """Run snakemake in ``cwd`` and return the finished process (stdout and stderr merged)."""
    return subprocess.run(["snakemake", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})


def scheduled(out: str) -> dict[str, int]:
    """Rule -> job count from a dry run's 'Job stats' table."""
    table = out.split("Job stats:")[1].split("total")[0] if "Job stats:" in out else ""
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", table, re.M)}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Scratch project: <tmp>/work with the workflow and tests/data linked in."""
    work = tmp_path_factory.mktemp("project") / "work"
    (work / "tests").mkdir(parents=True)
    (work / "tests" / "data").symlink_to(ROOT / "tests" / "data")
    for name in LINKED:
        (work / name).symlink_to(ROOT / name)
    return work


def test_lint_is_clean() -> None:
    res = snakemake(["--lint"], ROOT)
    assert res.returncode == 0, res.stderr
    assert "Congratulations, your workflow is in a good condition" in res.stdout + res.stderr


@pytest.mark.parametrize("profile", ["slurm", "htcondor"])
def test_cluster_profile_dry_run(project: Path, profile: str) -> None:
    res = snakemake(["-n", "--profile", f"workflow/profiles/{profile}", "--configfile", "config/test.yaml"], project)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    jobs = scheduled(res.stdout + res.stderr)
    assert jobs["simulate"] == 13 and jobs["prepare"] == 15 and jobs["simulate_summary"] == 11  # 5 of each: reweight's alphaS scan
    assert jobs["amplitude_data"] == jobs["train_amplitude"] == jobs["evaluate_amplitude"] == 1
    assert jobs["train_generator"] == jobs["sample_generator"] == jobs["evaluate_generator"] == 1
    assert jobs["madnis_integrate"] == jobs["madnis_unweight"] == 4
    assert jobs["symbolic_data"] == jobs["symbolic_detector_data"] == jobs["symbolic_constants"] == 1
    assert jobs["symbolic_regression"] == jobs["symbolic_evaluate"] == 2  # parton and detector level
    assert jobs["reweight_train"] == jobs["reweight_evaluate"] == 2 and jobs["reweight_tune"] == jobs["reweight_refine"] == 1
    assert jobs["unfold_ibu"] == jobs["unfold_omnifold"] == jobs["unfold_cinn"] == jobs["unfold_icinn"] == jobs["unfold_evaluate"] == 1
    assert jobs["shower_reference"] == jobs["train_showers"] == 2 and jobs["sample_showers"] == jobs["evaluate_showers"] == jobs["showers_fastsim"] == 1


def external_amplitudes(project: Path) -> Path:
    """An extra config with amplitudes 'computed elsewhere': exact gg -> gg |M|^2 at sqrt(s) = 500 GeV, as .npz."""
    import numpy as np
    import torch

    from lhcchain.physics.gluons import gluon_matrix_element

    torch.manual_seed(1)
    theta = torch.rand(400, dtype=torch.float64) * 2.6 + 0.25
    phi = torch.rand(400, dtype=torch.float64) * 2 * torch.pi
    e = 250.0
    k = torch.stack([torch.sin(theta) * torch.cos(phi), torch.sin(theta) * torch.sin(phi), torch.cos(theta)], -1) * e
    zero = torch.zeros(400, dtype=torch.float64)
    p = torch.stack([torch.stack([zero + e, zero, zero, zero + e], -1), torch.stack([zero + e, zero, zero, zero - e], -1),
                     torch.cat([(zero + e)[:, None], k], -1), torch.cat([(zero + e)[:, None], -k], -1)], 1)
    np.savez(project / "gg_2g_external.npz", momenta=p.numpy(), amplitudes=gluon_matrix_element(p, 0.118).numpy())
    extra = project / "external.yaml"
    extra.write_text(yaml.safe_dump({"amplitudes": {"external": {"gg_2g_ext": {"file": "gg_2g_external.npz", "identical": [2, 3]}}}}))
    return extra


@pytest.fixture(scope="module")
def e2e(project: Path) -> Path:
    """Run config/test.yaml (plus one external amplitude file) end to end once; returns the project folder."""
    extra = external_amplitudes(project)
    res = snakemake(["--cores", "2", "--configfile", "config/test.yaml", str(extra)], project, timeout=1500)
    (project / "e2e.log").write_text(res.stdout + res.stderr)
    assert res.returncode == 0, res.stdout[-5000:] + res.stderr[-5000:]
    return project


def test_end_to_end_outputs(e2e: Path) -> None:
    cfg = yaml.safe_load((ROOT / "config" / "test.yaml").read_text())
    for sample, s in cfg["samples"].items():
        for i in range(s["chunks"]):
            assert (e2e / f"results/sim/{sample}/chunk{i}.root").stat().st_size > 0
        sim = json.loads((e2e / f"results/sim/{sample}/metrics.json").read_text())
        assert sim["n_events"] == s["n_events"]
        for fig in ("muon_response", "jet_substructure", "met"):
            assert (e2e / f"results/sim/{sample}/{fig}.png").stat().st_size > 0
    for name in [*cfg["samples"], *cfg["datasets"]]:
        d = e2e / f"results/data/{name}"
        meta = json.loads((d / "metadata.json").read_text())
        rows = sum(len(pd.read_parquet(d / f"{s}.parquet")) for s in ("train", "val", "test"))
        assert rows == meta["counts"]["kept"] > 0
        assert not list(d.glob(".staging-*"))
    for name in ("gg_3g", "gg_2g_ext"):
        amp = json.loads((e2e / f"results/amplitudes/{name}/metrics.json").read_text())
        assert amp["median_abs_delta"] > 0 and (e2e / f"results/amplitudes/{name}/pulls.png").stat().st_size > 0
    gen = json.loads((e2e / "results/generate/cfm/metrics.json").read_text())
    assert set(gen["multiplicities"]) == {"1", "2"}
    assert 0.0 <= gen["multiplicities"]["1"]["classifier_auc"] <= 1.0  # 2 jets: too few test events for a classifier
    generated = pd.read_parquet(e2e / "results/generate/cfm/events.parquet")
    assert len(generated) > 0 and {"parton_mll", "parton_j1_pt", "parton_n_jets"} <= set(generated.columns)
    default = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    for name in default["madnis"]["processes"]:
        d = e2e / f"results/madnis/{name}"
        methods = json.loads((d / "metrics.json").read_text())["methods"]
        assert abs(methods["madnis"]["n_calls"] - methods["vegas"]["n_calls"]) < 10  # equal up to the channel count
        assert all(m["cross_section_pb"] > 0 and m["error_pb"] > 0 for m in methods.values())
        events = json.loads((d / "unweight.json").read_text())
        assert len(pd.read_parquet(d / "events.parquet")) == events["n_events"] == cfg["madnis"]["events"]["n_events"]
        assert (d / "weights.png").stat().st_size > 0 and (d / "events.lhe.gz").stat().st_size > 0
    unfold = json.loads((e2e / "results/unfold/metrics.json").read_text())
    assert set(unfold["methods"]) == {"ibu", "omnifold", "cinn", "icinn"} and (e2e / "results/unfold/observables.png").stat().st_size > 0
    tune = json.loads((e2e / "results/reweight/tune/metrics.json").read_text())
    assert tune["n_data"] > 0 and len(tune["n_scan"]) == 5 and len(tune["log_likelihood"]) == cfg["reweight"]["tune"]["grid"]["points"]
    assert (e2e / "results/reweight/tune/fit.png").stat().st_size > 0
    refined = pd.read_parquet(e2e / "results/reweight/cfm_to_truth/events.parquet")
    assert len(refined) == len(pd.read_parquet(e2e / "results/reweight/cfm_to_truth/weights.parquet")) > 0 and "refined_weight" in refined
    surrogate = json.loads((e2e / "results/madnis/gg_3g/unweight.json").read_text())["surrogate"]
    assert surrogate["speedup"] > 0 and set(surrogate["agreement"]) >= {"m_12 [GeV]"}
    symbolic = json.loads((e2e / "results/symbolic/wbf_higgs/metrics.json").read_text())
    assert symbolic["n_test_events"] == 100 and symbolic["observables"]["score (exact)"]["information_linear"] == pytest.approx(1.0)
    front = json.loads((e2e / "results/symbolic/wbf_higgs/pareto_front.json").read_text())["front"]
    assert front and all(e["formula"] and e["latex"] for e in front)
    reco = json.loads((e2e / "results/symbolic/wbf_higgs/reco/score_data.json").read_text())
    assert reco["n_simulated"] == 200 and 0 < reco["n_events"] < 200  # madnis's 200 events showered, H -> mu mu selected
    reco_metrics = json.loads((e2e / "results/symbolic/wbf_higgs/reco/metrics.json").read_text())
    assert reco_metrics["n_test_events"] == reco["n_test"] and reco_metrics["branching_ratio"] == yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["symbolic"]["detector"]["branching_ratio"]
    assert (e2e / "results/symbolic/wbf_higgs/reco/constants.md").stat().st_size > 0
    # The nominal sample's particle-level Z peak, from tiny statistics: a loose sanity bound here;
    # the 1 GeV statement is checked on the default config (see README).
    peak = json.loads((e2e / "results/data/nominal/metrics.json").read_text())["mll_peak"]["particle"]
    assert abs(peak["mean"] - Z_MASS) < 3 * peak["mean_err"] + 1.0
    showers = json.loads((e2e / "results/showers/metrics.json").read_text())
    assert showers["n_reference"] == showers["n_generated"] == cfg["showers"]["reference"]["n_test"]
    assert set(showers["classifier"]) == {"cls_low", "cls_low_normed", "cls_high"}
    assert all(0.0 <= c["auc"] <= 1.0 for c in showers["classifier"].values())
    assert set(showers["time_per_shower_ms"]) == {"batch1", "batch10"} and showers["speedup_vs_geant4"] > 0
    for fig in ("energy", "shape", "sparsity", "published"):
        assert (e2e / f"results/showers/{fig}.png").stat().st_size > 0
    fastsim = json.loads((e2e / "results/showers/fastsim/metrics.json").read_text())
    assert fastsim["n_electrons"] == 2 * fastsim["n_events"] > 0 and set(fastsim["mee_peak"]) == {"particle", "reference", "surrogate"}
    assert fastsim["extrapolated"] == (fastsim["n_electrons_outside_training"] > 0)
    for fig in ("mee", "response"):
        assert (e2e / f"results/showers/fastsim/{fig}.png").stat().st_size > 0


def test_every_rule_stays_under_4_gb(e2e: Path) -> None:
    tables = list((e2e / "benchmarks").rglob("*.tsv"))
    # every job but `all` writes one benchmark file (the run's own job count, from its log)
    done = re.findall(r"(\d+) of (\d+) steps \(100%\) done", (e2e / "e2e.log").read_text())
    assert done and len(tables) == int(done[-1][1]) - 1
    for t in tables:
        row = next(csv.DictReader(t.open(), delimiter="\t"))
        assert float(row["max_rss"]) < 4000, (t, row["max_rss"])


def test_logs_show_progress(e2e: Path) -> None:
    log = (e2e / "logs/simulate/nominal/chunk0.log").read_text()
    assert re.search(r"\d+/\d+ events, [\d.]+ events/s", log)
    assert "prepare nominal" in (e2e / "logs/prepare/nominal.log").read_text()


def _with_change(project: Path, change: dict) -> Path:
    cfg = yaml.safe_load((ROOT / "config" / "test.yaml").read_text())
    for dotted, value in change.items():
        node = cfg
        *keys, last = dotted.split(".")
        for k in keys:
            node = node.setdefault(k, {})
        node[last] = value
    path = project / "changed.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))  # same key order: only the change differs
    return path


def test_prepare_setting_reruns_only_prepare(e2e: Path) -> None:
    changed = _with_change(e2e, {"prepare.selection": {"lepton_pt_min": 25.0}})
    res = snakemake(["-n", "--configfile", str(changed)], e2e)
    assert res.returncode == 0, res.stderr[-3000:]
    jobs = scheduled(res.stdout + res.stderr)
    assert jobs.get("prepare") == 15  # 11 samples and 4 datasets
    assert "simulate" not in jobs and "simulate_summary" not in jobs


def test_detector_setting_reruns_simulate_and_dependents(e2e: Path) -> None:
    changed = _with_change(e2e, {"simulate.detector.isolation": {"cone": 0.4, "pt_min": 0.5}})
    jobs = scheduled(snakemake(["-n", "--configfile", str(changed)], e2e).stdout)
    assert jobs.get("simulate") == 13 and jobs.get("simulate_summary") == 11
    assert jobs.get("prepare") == 11  # the simulated samples, not the external datasets


def test_unchanged_config_schedules_nothing(e2e: Path) -> None:
    res = snakemake(["-n", "--configfile", "config/test.yaml", "external.yaml"], e2e)
    assert "Nothing to be done" in res.stdout + res.stderr
