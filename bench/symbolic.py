"""Benchmark of the symbolic stage: score data, symbolic regression and optimality of the chosen formula.

Runs the stage's three steps (:mod:`lhcchain.symbolic.run`) with the default config's
``processes.wbf_higgs`` and ``symbolic`` settings on a dedicated physics-core sample, in a
scratch folder: ``--events`` SM WBF events (half for the search and refit, half for the
evaluation), the pyoperon search and refit, then the Fisher information and expected limits.

Prints ONE JSON line: the chosen formula (most histogram information up to
``chosen_complexity_max``), the fraction of the exact score's Fisher information it captures
(linear, calibrated and histogram use), the ratio of its expected 95 % CL interval width on f to that of the
exact score's histogram, the same for SALLY and p_T,1 p_T,2 sin(delta_phi), and the wall times of
the event generation and of the regression (search alone, and with the refit) in s.

Usage: ``python bench/symbolic.py [--events N] [--evaluations N] [--engine E] [--threads T] [--seed S]``.
Default (100 000 events, the default search budget): about 15 minutes on one CPU core.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import yaml

# bench/ holds a madnis.py: drop this folder from the path so that ``import madnis`` (inside
# lhcchain.madnis, whose unweighting helpers the stage reuses) finds the library.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from lhcchain.config import process_spec  # noqa: E402
from lhcchain.symbolic.run import evaluate, make_score_data, regress  # noqa: E402

CONFIG = Path(__file__).resolve().parents[1] / "config" / "config.yaml"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=None, help="events of the sample (default: symbolic.n_events)")
    ap.add_argument("--evaluations", type=int, default=None, help="search budget (default: symbolic.regression.max_evaluations)")
    ap.add_argument("--engine", default=None, help="pyoperon | gplearn | pysr (default: symbolic.regression.engine)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    config = yaml.safe_load(CONFIG.read_text())
    sym = config["symbolic"]
    data_settings = {"n_events": args.events or sym["n_events"], "test_fraction": sym["test_fraction"]}
    regression = dict(sym["regression"], max_evaluations=args.evaluations or sym["regression"]["max_evaluations"],
                      engine=args.engine or sym["regression"]["engine"])
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        start = time.perf_counter()
        make_score_data(process_spec(config, "wbf_higgs"), data_settings, None,
                        {"data": d / "data.parquet", "summary": d / "data.json", "figure": d / "data.png"},
                        device="cpu", threads=args.threads, seed=args.seed)
        data_s = time.perf_counter() - start
        regress(str(d / "data.parquet"), regression, {"json": d / "front.json", "markdown": d / "front.md", "figure": d / "front.png"},
                seed=args.seed)
        evaluate(str(d / "data.parquet"), str(d / "front.json"), sym["evaluation"],
                 {"metrics": d / "metrics.json", "residuals": d / "res.png", "likelihood": d / "lik.png", "sally": str(d / "sally.pt")},
                 threads=args.threads, seed=args.seed)
        front = json.loads((d / "front.json").read_text())
        metrics = json.loads((d / "metrics.json").read_text())
    obs = metrics["observables"]
    chosen = metrics["chosen"]

    def ratio(name: str) -> float:
        return obs[name]["information_histogram"] / obs["score (exact)"]["information_histogram"]

    print(json.dumps({
        "events": data_settings["n_events"], "seed": args.seed, "engine": regression["engine"],
        "max_evaluations": regression["max_evaluations"],
        "chosen_formula": chosen["formula"], "chosen_complexity": chosen["complexity"],
        "fisher_information_captured_linear": chosen["information_linear"],
        "fisher_information_captured_calibrated": chosen["information_calibrated"],
        "fisher_information_captured_histogram": chosen["information_histogram"],
        "fisher_information_ratio_to_score_histogram": chosen["information_histogram"] / obs["score (exact)"]["information_histogram"],
        "limit95_width_ratio_to_score": chosen["width95_ratio_to_score"],
        "sally_information_linear": obs["SALLY"]["information_linear"], "sally_limit95_width_ratio_to_score": obs["SALLY"]["width95_ratio_to_score"],
        "pt1_pt2_sin_dphi_information_linear": obs["pt1_pt2_sin_delta_phi"]["information_linear"],
        "pt1_pt2_sin_dphi_information_ratio_to_score_histogram": ratio("pt1_pt2_sin_delta_phi"),
        "front_size": len(front["front"]), "data_wall_time_s": data_s,
        "regression_wall_time_s": front["regression_wall_time_s"],
        "regression_with_refit_wall_time_s": front["regression_wall_time_s"] + front["refit_wall_time_s"],
    }))


if __name__ == "__main__":
    main()
