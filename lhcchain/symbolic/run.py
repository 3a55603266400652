"""Entry points of the symbolic stage: score data, symbolic regression, optimality evaluation.

``results/symbolic/{process}/``:

* ``score_data.parquet`` (per event ``A, B, C, t``, the observables, ``split`` 0 = train, 1 = test;
  the cross-section in pb in the schema metadata), ``score_data.json``, ``score_vs_observables.png``;
* ``pareto_front.json`` and ``pareto_front.md`` (regression on the training events, refit on all of
  them), ``pareto_front.png``;
* ``metrics.json`` (information captured and expected intervals on the test events for every front
  formula and the reference observables), ``residuals.png``, ``likelihood.png``, ``sally.pt``.

The ``chosen`` formula is the front member of complexity at most ``chosen_complexity_max`` that
captures the most histogram information on the test events.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import sympy
import torch

from ..errors import InputError
from ..io import staged_outputs, write_json
from ..physics.processes import build_process
from . import figures
from .data import OBSERVABLES, generate_events, read_events, read_score_data, score_data, write_score_data
from .detector import detector_score_data, read_prepared, refit_constants
from .information import binned_q, evaluate_observable, expected_events, intervals, train_sally, unbinned_q
from .regression import markdown_table, symbolic_regression

log = logging.getLogger("lhcchain")

#: Reference observables of the comparison (name -> function of the score data).
REFERENCES = {
    "delta_phi": lambda d: d["delta_phi"],
    "sin_delta_phi": lambda d: np.sin(d["delta_phi"]),
    "pt1_pt2_sin_delta_phi": lambda d: d["x1"] * d["x2"] * np.sin(d["delta_phi"]),
    "pt1_pt2 (CP-even)": lambda d: d["x1"] * d["x2"],
}


def make_score_data(spec: Mapping[str, Any], settings: Mapping[str, Any], events: str | None,
                    outputs: Mapping[str, str], device: str = "cpu", threads: int = 1, seed: int = 0) -> None:
    """Score data of the process ``spec`` from ``events`` (a madnis parquet) or, if None, from
    ``settings['n_events']`` physics-core events; train/test split by ``settings['test_fraction']``."""
    process = build_process(spec, device, threads)
    if events is None:
        ev = generate_events(process, int(settings["n_events"]), seed)
        source = "physics core"
    else:
        ev = read_events(events)
        source = str(events)
    data = score_data(process, ev)
    n = len(data["t"])
    split = data["split"] = _split(n, float(settings["test_fraction"]), seed)
    t = data["t"]
    cp_odd = data["x1"] * data["x2"] * np.sin(data["delta_phi"])
    summary = {
        "source": source, "n_events": n, "n_train": int((split == 0).sum()), "n_test": int((split == 1).sum()),
        "cross_section_pb": ev["cross_section_pb"], "score_mean_tev2": float(t.mean()),
        "score_mean_error_tev2": float(t.std() / np.sqrt(n)), "score_std_tev2": float(t.std()),
        "corr_score_pt1_pt2_sin_delta_phi": float(np.corrcoef(t, cp_odd)[0, 1]),
    }
    log.info("symbolic: %d events, sigma %.4g pb, <t> = %.3g +- %.3g TeV^2, std(t) = %.3g TeV^2, corr(t, x1 x2 sin dphi) = %.3f",
             n, summary["cross_section_pb"], summary["score_mean_tev2"], summary["score_mean_error_tev2"],
             summary["score_std_tev2"], summary["corr_score_pt1_pt2_sin_delta_phi"])
    _write_score_outputs(data, {"cross_section_pb": ev["cross_section_pb"], "process": process.name, "source": source},
                         summary, outputs)


def _write_score_outputs(data: Mapping[str, np.ndarray], meta: Mapping[str, Any], summary: Mapping[str, Any],
                         outputs: Mapping[str, str]) -> None:
    """The outputs of both score-data steps, moved into place together: ``data`` (the score data, ``meta`` in its
    schema metadata), ``summary`` (JSON) and ``figure`` (the score against the observables)."""
    with staged_outputs(outputs["data"], outputs["summary"], outputs["figure"]) as (p_data, p_summary, p_fig):
        write_score_data(p_data, data, meta)
        write_json(p_summary, summary)
        figures.score_vs_observables(data, list(OBSERVABLES), p_fig)


def _split(n: int, test_fraction: float, seed: int) -> np.ndarray:
    """0 (train) or 1 (test) per event, ``test_fraction`` of them test, drawn with ``seed``."""
    split = np.zeros(n, dtype=np.int64)
    split[np.random.default_rng(seed).permutation(n)[: int(round(test_fraction * n))]] = 1
    return split


def make_detector_score_data(spec: Mapping[str, Any], settings: Mapping[str, Any], events: str, prepared: list[str],
                             outputs: Mapping[str, str], device: str = "cpu", threads: int = 1, seed: int = 0) -> None:
    """Score data at ``settings['level']`` (:mod:`.detector`): the madnis ``events`` parquet (the LHE
    file's events, in order) joined with the ``prepared`` rows of their showered events. The
    cross-section in the metadata is the madnis one times the selection efficiency among the
    ``settings['n_simulated']`` first events of the file (pb)."""
    process = build_process(spec, device, threads)
    level = str(settings["level"])
    ev = read_events(events)
    parton = score_data(process, ev)
    n_lhe = len(parton["t"])
    data = detector_score_data(parton, read_prepared(prepared, level), level, process.ew.mh, n_lhe)
    n, n_sim = len(data["t"]), min(int(settings["n_simulated"]), n_lhe)
    data["split"] = _split(n, float(settings["test_fraction"]), seed)
    sigma = ev["cross_section_pb"] * n / n_sim
    t = data["t"]
    summary = {
        "source": str(events), "level": level, "n_lhe_events": n_lhe, "n_simulated": n_sim, "n_events": n,
        "efficiency": n / n_sim, "n_train": int((data["split"] == 0).sum()), "n_test": int((data["split"] == 1).sum()),
        "cross_section_pb": sigma, "score_std_tev2": float(t.std()),
        "corr_score_pt1_pt2_sin_delta_phi": float(np.corrcoef(t, data["x1"] * data["x2"] * np.sin(data["delta_phi"]))[0, 1]),
        "corr_score_pt1_pt2_sin_delta_phi_parton": float(np.corrcoef(
            t, data["parton_x1"] * data["parton_x2"] * np.sin(data["parton_delta_phi"]))[0, 1]),
    }
    log.info("symbolic: %d of %d simulated events pass the %s selection (sigma x eff = %.4g pb); corr(t, x1 x2 sin dphi) "
             "= %.3f (%s), %.3f (parton)", n, n_sim, level, sigma, summary["corr_score_pt1_pt2_sin_delta_phi"], level,
             summary["corr_score_pt1_pt2_sin_delta_phi_parton"])
    _write_score_outputs(data, {"cross_section_pb": sigma, "process": process.name, "source": str(events), "level": level},
                         summary, outputs)


def compare_constants(parton_front: str, score_path: str, settings: Mapping[str, Any], outputs: Mapping[str, str],
                      seed: int = 0) -> None:
    """Constants of every parton-level front formula up to ``chosen_complexity_max``, refitted on the
    detector-level training events with their parton-level observables and with their detector-level
    ones (errors: the fit's and the spread of ``bootstrap`` refits); JSON and a Markdown table."""
    with open(parton_front) as f:
        front = json.load(f)
    data, meta = read_score_data(score_path)
    train = _rows(data, 0)
    names = front["variables"]
    t = train["t"]
    x_parton = _matrix({n: train[f"parton_{n}"] for n in names if f"parton_{n}" in train}, names, score_path)
    x_level = _matrix(train, names, score_path)
    level = meta.get("level", "reco")
    rows = []
    for e in front["front"]:
        if e["complexity"] > int(settings["chosen_complexity_max"]) or not e["parameters"]:
            continue
        fit = refit_constants(e["parametric"], e["parameters"], names, x_parton, x_level, t, int(settings["bootstrap"]), seed)
        rows.append({"complexity": e["complexity"], "parametric": e["parametric"], "parton_front": e["parameters"],
                     "parameters": fit["parameters"], "mse_tev4": fit["mse"],
                     "mse_over_var": {k: v / float(np.var(t)) for k, v in fit["mse"].items()}})
    doc = {"process": meta.get("process"), "level": level, "n_events": int(len(t)), "bootstrap": int(settings["bootstrap"]),
           "formulas": rows}
    lines = [f"Constants of the parton-level front formulas refitted on the {len(t)} {level}-level training events, "
             f"with their parton-level observables and with their {level}-level ones: value ± fit error "
             f"(bootstrap std over {settings['bootstrap']} refits); the shift {level} - parton in units of its bootstrap std.\n",
             f"| complexity | formula | parameter | parton | {level} | shift / std |", "| --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        for p, v in row["parameters"].items():
            a, b = v["parton"], v["level"]
            lines.append(f"| {row['complexity']} | `{row['parametric']}` | {p} | {a['value']:.4g} ± {a['error']:.2g} "
                         f"({a['bootstrap_std']:.2g}) | {b['value']:.4g} ± {b['error']:.2g} ({b['bootstrap_std']:.2g}) | "
                         f"{v['shift']['value'] / v['shift']['bootstrap_std']:.1f} |")
    with staged_outputs(outputs["json"], outputs["markdown"]) as (p_json, p_md):
        write_json(p_json, doc)
        with open(p_md, "w") as f:
            f.write("\n".join(lines) + "\n")


def _rows(data: Mapping[str, np.ndarray], part: int) -> dict[str, np.ndarray]:
    keep = data["split"] == part
    if not keep.any():
        raise InputError(f"symbolic: no {'train' if part == 0 else 'test'} events; check symbolic.test_fraction")
    return {k: v[keep] for k, v in data.items()}


def _matrix(data: Mapping[str, np.ndarray], names: list[str], path: str) -> np.ndarray:
    missing = [n for n in names if n not in data]
    if missing:
        raise InputError(f"{path}: no observable(s) {', '.join(missing)}; available: {', '.join(OBSERVABLES)}")
    return np.column_stack([data[n] for n in names]).astype(np.float64)


def regress(score_path: str, settings: Mapping[str, Any], outputs: Mapping[str, str], seed: int = 0) -> None:
    """Symbolic regression of ``t`` on ``settings['variables']`` of the training events (at most
    ``max_events`` of them in the search), refit on all training events; writes the front."""
    data, meta = read_score_data(score_path)
    train = _rows(data, 0)
    names = list(settings["variables"])
    x, y = _matrix(train, names, score_path), train["t"]
    n_search = min(len(y), int(settings["max_events"]))
    pick = np.random.default_rng(seed).permutation(len(y))[:n_search]
    result = symbolic_regression(x[pick], y[pick], names, settings, seed, x_full=x, y_full=y)
    if not result["front"]:
        raise InputError(f"symbolic: the regression on {score_path} found no formula that depends on the observables")
    log.info("symbolic: search %.1f s, front of %d formulas:\n%s", result["search_s"], len(result["front"]),
             markdown_table(result["front"]))
    doc = {"process": meta.get("process"), "variables": names, "settings": dict(settings), "seed": seed,
           "score_variance_tev4": result["variance"], "regression_wall_time_s": result["search_s"],
           "refit_wall_time_s": result["total_s"] - result["search_s"], "n_search_events": result["n_search_events"],
           "n_refit_events": result["n_refit_events"], "front": result["front"]}
    header = (f"Pareto front of the score t (TeV^2) of {meta.get('process')}: {result['n_search_events']} events in the "
              f"search, constants refitted on {result['n_refit_events']}; Var(t) = {result['variance']:.4g} TeV^4.\n\n")
    with staged_outputs(outputs["json"], outputs["markdown"], outputs["figure"]) as (p_json, p_md, p_fig):
        write_json(p_json, doc)
        with open(p_md, "w") as f:
            f.write(header + markdown_table(result["front"]))
        figures.pareto_front(result["front"], p_fig)


def formula_function(formula: str, names: list[str]):
    """A numpy function of the columns ``names`` evaluating ``formula`` (a sympy string)."""
    symbols = {n: sympy.Symbol(n, real=True) for n in names}
    expr = sympy.sympify(formula, locals=symbols)
    func = sympy.lambdify([list(symbols.values())], expr, "numpy")
    return lambda x: np.broadcast_to(np.asarray(func(x.T), dtype=np.float64), (x.shape[0],))


def evaluate(score_path: str, front_path: str, settings: Mapping[str, Any], outputs: Mapping[str, str],
             threads: int = 1, seed: int = 0) -> None:
    """Information captured and expected limits on the test events for every front formula, the
    reference observables, the exact score and a SALLY network; figures and ``metrics.json``."""
    torch.set_num_threads(threads)
    data, meta = read_score_data(score_path)
    with open(front_path) as f:
        front_doc = json.load(f)
    names = front_doc["variables"]
    train, test = _rows(data, 0), _rows(data, 1)
    t, r = test["t"], test["C"] / test["A"]
    expected = expected_events(float(meta["cross_section_pb"]), float(settings["luminosity_fb"]), float(settings["branching_ratio"]))
    bins = int(settings["bins"])
    x_test = _matrix(test, names, score_path)

    observables: dict[str, np.ndarray] = {"score (exact)": t}
    formula_keys, formula_values = [], []
    for e in front_doc["front"]:
        key = f"formula {e['complexity']}"
        observables[key] = formula_function(e["formula"], names)(x_test)
        formula_keys.append(key)
        formula_values.append(observables[key])
    for name, fn in REFERENCES.items():
        observables[name] = fn(test)
    sally_names = list(settings["sally"]["observables"])
    start = time.perf_counter()
    x_sally = _matrix(train, sally_names, score_path)
    n_val = max(1, int(0.2 * len(x_sally)))
    predict = train_sally(x_sally[n_val:], train["t"][n_val:], x_sally[:n_val], train["t"][:n_val], settings["sally"],
                          outputs["sally"], seed)
    sally_s = time.perf_counter() - start
    observables["SALLY"] = predict(_matrix(test, sally_names, score_path))

    table = {name: evaluate_observable(o, t, r, expected, bins) for name, o in observables.items()}
    width = 1.0 / np.sqrt(expected * np.var(t))
    table["exact likelihood (unbinned)"] = {"information_linear": None, "information_calibrated": None, "information_histogram": 1.0,
                                            **intervals(unbinned_q(t, r, expected), width)}
    ref95 = np.diff(table["score (exact)"]["cl95"])[0]
    for row in table.values():
        row["width95_ratio_to_score"] = float(np.diff(row["cl95"])[0] / ref95)

    limit = int(settings["chosen_complexity_max"])
    candidates = [i for i, e in enumerate(front_doc["front"]) if e["complexity"] <= limit]
    if not candidates:
        raise InputError(f"{front_path}: no formula of complexity <= {limit} (symbolic.chosen_complexity_max)")
    chosen = max(candidates, key=lambda i: table[formula_keys[i]]["information_histogram"])
    entry = front_doc["front"][chosen]
    row = table[formula_keys[chosen]]
    metrics = {
        "process": meta.get("process"), "n_test_events": int(len(t)), "expected_events": expected,
        "luminosity_fb": float(settings["luminosity_fb"]), "branching_ratio": float(settings["branching_ratio"]), "bins": bins,
        "chosen": {"complexity": entry["complexity"], "formula": entry["formula"], "latex": entry["latex"],
                   "parameters": entry["parameters"], "information_histogram": row["information_histogram"],
                   "information_linear": row["information_linear"], "information_calibrated": row["information_calibrated"],
                   "width95_ratio_to_score": row["width95_ratio_to_score"]},
        "sally_wall_time_s": sally_s,
        "observables": table,
    }
    log.info("symbolic: chosen %s: information %.4f (histogram), %.4f (linear), %.4f (calibrated); 95%% CL width / "
             "score's = %.4f", entry["formula"], row["information_histogram"], row["information_linear"],
             row["information_calibrated"], row["width95_ratio_to_score"])
    for name, v in table.items():
        log.info("symbolic: %-30s I_hist %s  I_lin %s  95%% CL [%.4f, %.4f] TeV^-2", name,
                 f"{v['information_histogram']:.4f}", "-" if v["information_linear"] is None else f"{v['information_linear']:.4f}",
                 *v["cl95"])
    curves = {"exact likelihood (unbinned)": unbinned_q(t, r, expected)}
    curves |= {name: binned_q(o, t, r, expected, bins) for name, o in observables.items()
               if name in ("score (exact)", formula_keys[chosen], "SALLY", *REFERENCES)}
    pred = formula_values[chosen]  # the chosen formula on x_test, evaluated above
    with staged_outputs(outputs["metrics"], outputs["residuals"], outputs["likelihood"]) as (p_m, p_r, p_l):
        write_json(p_m, metrics)
        figures.residuals(t, pred, test["delta_phi"], entry["formula"], p_r)
        figures.likelihood_curves(curves, float(width), p_l, f"{expected:.0f} SM events")
