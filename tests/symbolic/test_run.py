"""The stage's entry points on a small physics-core sample: outputs, and bad input leaving nothing behind."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lhcchain.errors import InputError
from lhcchain.symbolic.data import write_score_data
from lhcchain.symbolic.run import evaluate, make_score_data, regress

from ..conftest import torch_threads

SEARCH = {"engine": "pyoperon", "variables": ["x1", "x2", "delta_phi", "delta_eta"], "operators": ["add", "sub", "mul", "sin"],
          "max_length": 12, "population_size": 100, "generations": 10, "max_evaluations": 5000, "optimizer_iterations": 3,
          "max_events": 1000, "max_minutes": None}
EVALUATION = {"luminosity_fb": 139.0, "branching_ratio": 2.27e-3, "bins": 10, "chosen_complexity_max": 16,
              "sally": {"observables": ["x1", "x2", "delta_phi", "delta_eta", "m_jj"], "hidden": 16, "layers": 2, "epochs": 3,
                        "batch_size": 128, "lr": 2e-3, "lr_min_factor": 0.1, "warmup": 0.0, "patience": 5, "max_minutes": 1.0}}


FIGURES = ("figure", "residuals", "likelihood")


def outputs(folder, *names):
    """Output paths ``name.png`` for figures, ``name.out`` otherwise."""
    return {n: str(folder / f"{n}.{'png' if n in FIGURES else 'out'}") for n in names}


def test_pipeline(wbf_events, tmp_path):
    events, data = wbf_events
    split = np.zeros(len(data["t"]), dtype=np.int64)
    split[1::2] = 1
    write_score_data(tmp_path / "data.parquet", {**data, "split": split}, {"cross_section_pb": events["cross_section_pb"],
                                                                           "process": "wbf_higgs"})
    front_out = outputs(tmp_path, "json", "markdown", "figure")
    regress(str(tmp_path / "data.parquet"), SEARCH, front_out, seed=1)
    front = json.loads(open(front_out["json"]).read())
    assert front["front"] and front["n_refit_events"] == 1000 and front["n_search_events"] == 1000
    assert "| complexity | free parameters |" in open(front_out["markdown"]).read()
    out = outputs(tmp_path, "metrics", "residuals", "likelihood", "sally")
    with torch_threads(1):
        evaluate(str(tmp_path / "data.parquet"), front_out["json"], EVALUATION, out, seed=1)
    metrics = json.loads(open(out["metrics"]).read())
    obs = metrics["observables"]
    assert metrics["expected_events"] == pytest.approx(events["cross_section_pb"] * 2.27e-3 * 139e3)
    assert obs["score (exact)"]["width95_ratio_to_score"] == 1.0
    # The exact unbinned likelihood beats every histogram, and the CP-even p_T,1 p_T,2 carries no first-order
    # information (its histogram's; corr(t, O)^2 of a heavy-tailed O is dominated by a few events at this size).
    width = {k: np.diff(v["cl95"])[0] for k, v in obs.items()}
    assert width["exact likelihood (unbinned)"] <= min(width.values())
    assert abs(obs["pt1_pt2 (CP-even)"]["information_histogram"]) < 0.02
    assert obs["pt1_pt2_sin_delta_phi"]["information_linear"] > 0.8


def test_bad_input_leaves_nothing(wbf_events, tmp_path):
    events, data = wbf_events
    spec = {"process": "drell_yan", "options": {}}
    with pytest.raises(InputError, match="no CP-odd term"):
        make_score_data(spec, {"n_events": 10, "test_fraction": 0.5}, None, outputs(tmp_path, "data", "summary", "figure"))
    write_score_data(tmp_path / "data.parquet", {**data, "split": np.zeros(len(data["t"]), dtype=np.int64)},
                     {"cross_section_pb": 1.0})
    with pytest.raises(InputError, match="unknown operator"):
        regress(str(tmp_path / "data.parquet"), {**SEARCH, "operators": ["add", "gamma"]}, outputs(tmp_path, "json", "markdown", "figure"))
    with pytest.raises(InputError, match="no observable"):
        regress(str(tmp_path / "data.parquet"), {**SEARCH, "variables": ["x1", "mass"]}, outputs(tmp_path, "json", "markdown", "figure"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.parquet"]
