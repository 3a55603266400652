"""Parametrised reweighting in one simulation parameter and the DCTR fit of that parameter (arXiv 1907.08209).

Classifier. One cross-fitted classifier (:func:`.classifier.cross_fit`) on the features plus the
parameter theta as a last input column. Class 1: events simulated at the scan values theta_i, each
labelled with its theta_i. Class 0: events of the reference sample (theta_0), each labelled with a
theta_i drawn at random from the scan values. Generator weights are scaled so that every (class,
theta_i) group carries the same total weight, so ``w(x, theta) = D / (1 - D)`` estimates
``p(x | theta) / p(x | theta_0)`` for normalised densities, interpolated between the scan values. No
calibration map is applied: one map for all theta would bend the theta dependence, and the fit's
normalisation term (below) absorbs an overall offset.

Fit. With pseudo-data events x_d (generator weights g_d), the log-likelihood of fold network m up to a
constant is::

    L_m(theta) = sum_d g_d ln w_m(x_d, theta) - (sum_d g_d) ln( sum_r g_r w_m(x_r, theta) / sum_r g_r )

over the reference events r that network m never saw: the held-out reference split (``normalisation``)
and the reference's training events of fold m. The second term normalises ``w_m`` on the reference, so
a classifier whose ratio does not integrate to one does not pull the fit. The ensemble's L is the mean
of the k networks' L_m. L is evaluated on a regular grid of theta (``grid``); the fitted value is the
vertex of a parabola through the grid points within ``window`` of the largest L, and ``-2 a`` (a: its
quadratic coefficient) is the curvature, giving ``err_curvature = (-2 a)^(-1/2)``. The quoted error is
``sqrt(err_bootstrap^2 + spread^2 / k)``: ``err_bootstrap`` the spread of the fit over Poisson
bootstrap replicas of the data and reference events at a fixed classifier, ``spread`` that of the
k fold networks' own fits (the classifier's training noise; the ensemble averages it). A vertex
outside the grid or a curve with no maximum is flagged ``at_boundary``.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import plotting
from ..device import select_device
from ..errors import InputError
from ..io import derive_seed, require_outputs, staged_outputs, write_json
from .classifier import CrossFit, cross_fit, resolve_classifier, train_events_per_s
from .run import check_inputs, load_sample

log = logging.getLogger("lhcchain.reweight")

TUNE_OUTPUTS = ("model", "metrics", "fit_plot")
plt = plotting.plt


@dataclass
class ParameterFit:
    """The fitted parameter, its errors and the curves behind them (module doc)."""

    value: float
    err: float
    err_bootstrap: float
    err_curvature: float
    spread: float
    at_boundary: bool
    grid: np.ndarray
    log_likelihood: np.ndarray  # ensemble L(theta) (mean of the networks') - max, on grid
    member_log_likelihood: np.ndarray  # (k, grid) each fold network's L - its max
    member_values: np.ndarray
    bootstrap_values: np.ndarray


def training_set(reference: np.ndarray, g_reference: np.ndarray, scan: Sequence[tuple[np.ndarray, np.ndarray, float]],
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Inputs and weights of the parametrised classifier (module doc): ``(x1, x0, w1, w0)``, with theta the last column.

    ``scan``: per scan value, its events, generator weights and theta_i.
    """
    values = np.array([t for _, _, t in scan], dtype=np.float64)
    x1 = np.concatenate([np.column_stack([x, np.full(len(x), t)]) for x, _, t in scan])
    w1 = np.concatenate([g / _positive_sum(g, f"scan sample at {t}") for _, g, t in scan])
    label = rng.integers(len(values), size=len(reference))
    x0 = np.column_stack([reference, values[label]])
    w0 = np.asarray(g_reference, np.float64).copy()
    for i, t in enumerate(values):
        m = label == i
        w0[m] /= _positive_sum(w0[m], f"reference events labelled {t}")
    return x1, x0, w1, w0


def _positive_sum(g: np.ndarray, what: str) -> float:
    total = float(np.sum(g))
    if not total > 0:
        raise InputError(f"tune fit: the generator weights of the {what} sum to {total} (need > 0)")
    return total


def log_ratio_grid(fit: CrossFit, x: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """``ln w(x, theta)`` of each fold network for every grid value, shape (k, grid, n)."""
    out = np.empty((len(fit.models), len(grid), len(x)))
    for j, t in enumerate(grid):
        out[:, j] = fit.member_logits(np.column_stack([x, np.full(len(x), t)]))
    return out


def log_likelihood(logw_data: np.ndarray, g_data: np.ndarray, logw_norm: np.ndarray, g_norm: np.ndarray) -> np.ndarray:
    """L(theta) of the module doc for ``logw_*`` of shape (grid, n); ``g_*`` of shape (n,) or (B, n) give (grid,) or (B, grid)."""
    shift = logw_norm.max()
    norm = np.log(np.asarray(g_norm) @ np.exp(logw_norm - shift).T) + shift - np.log(np.sum(g_norm, -1, keepdims=np.ndim(g_norm) > 1))
    return np.asarray(g_data) @ logw_data.T - np.sum(g_data, -1, keepdims=np.ndim(g_data) > 1) * norm


def vertex(grid: np.ndarray, curve: np.ndarray, window: float) -> tuple[float, float, bool]:
    """Vertex, curvature error ``(-2 a)^(-1/2)`` and boundary flag of the parabola through the points of ``curve``
    within ``window`` of its largest value (module doc)."""
    i = int(np.argmax(curve))
    near = np.abs(grid - grid[i]) <= window + 1e-12
    if near.sum() < 3:
        near[max(0, i - 1):i + 2] = True
    a, b, _ = np.polyfit(grid[near], curve[near], 2)
    if not a < 0:
        return float(grid[i]), math.nan, True
    top = -b / (2 * a)
    inside = grid[0] <= top <= grid[-1]
    return float(np.clip(top, grid[0], grid[-1])), float(1 / math.sqrt(-2 * a)), not inside


def fit_parameter(logw_data: np.ndarray, g_data: np.ndarray, logw_norm: np.ndarray, g_norm: np.ndarray, unseen: np.ndarray,
                  grid: np.ndarray, window: float, bootstrap: int, rng: np.random.Generator) -> ParameterFit:
    """The DCTR fit of the module doc from per-network ``ln w`` on the grid: ``logw_*`` of shape (k, grid, n);
    ``unseen`` (k, n_norm): the reference events each network did not train on (its normalisation)."""
    k = len(logw_data)
    members = np.array([log_likelihood(logw_data[m], g_data, logw_norm[m], g_norm * unseen[m]) for m in range(k)])
    curve = members.mean(0)
    value, err_curv, edge = vertex(grid, curve, window)
    member_values = np.array([vertex(grid, c, window)[0] for c in members])
    boots = np.zeros(0)
    if bootstrap:
        pd, pn = rng.poisson(1.0, (bootstrap, len(g_data))), rng.poisson(1.0, (bootstrap, len(g_norm)))
        curves = sum(log_likelihood(logw_data[m], g_data * pd, logw_norm[m], g_norm * unseen[m] * pn) for m in range(k)) / k
        boots = np.array([vertex(grid, c, window)[0] for c in curves])
    err_boot = float(np.std(boots, ddof=1)) if len(boots) > 1 else math.nan
    spread = float(np.std(member_values, ddof=1)) if len(member_values) > 1 else 0.0
    err = math.hypot(err_boot if math.isfinite(err_boot) else err_curv, spread / math.sqrt(len(member_values)))
    return ParameterFit(value, err, err_boot, err_curv, spread, edge, grid, curve - curve.max(),
                        members - members.max(1, keepdims=True), member_values, boots)


def parametrised_fit(reference: tuple[np.ndarray, np.ndarray], normalisation: tuple[np.ndarray, np.ndarray],
                     scan: Sequence[tuple[np.ndarray, np.ndarray, float]], data: tuple[np.ndarray, np.ndarray],
                     settings: Mapping[str, Any], *, seed: int = 0, device: torch.device | None = None,
                     names: Sequence[str] | None = None, label: str = "tune") -> tuple[CrossFit, ParameterFit, dict[str, float]]:
    """Train the parametrised classifier and fit the parameter of ``data`` (module doc). Each argument is
    (events (n, F), generator weights (n,)); ``scan`` adds theta_i. ``settings``: ``classifier``, ``grid``
    (``min``, ``max``, ``points``), ``window``, ``bootstrap``. Returns the classifier, the fit and rates."""
    clf = resolve_classifier(settings["classifier"], "reweight.tune.classifier")
    rng = np.random.default_rng(seed)
    x1, x0, w1, w0 = training_set(*reference, scan, rng)
    fit = cross_fit(x1, x0, w1, w0, settings=clf, seed=derive_seed(seed, "train"), device=device, calibrate_=False,
                    names=[*(names or [f"x{j}" for j in range(x1.shape[1] - 1)]), "theta"], label=label)
    g = settings["grid"]
    grid = np.linspace(float(g["min"]), float(g["max"]), int(g["points"]))
    k = int(clf["folds"])
    norm_x = np.concatenate([reference[0], normalisation[0]])
    norm_g = np.concatenate([reference[1], normalisation[1]])
    ref_fold = fit.fold[len(x1):]
    unseen = np.array([np.r_[ref_fold == m, np.ones(len(normalisation[0]), bool)] for m in range(k)])
    t0 = time.perf_counter()
    logw_data = log_ratio_grid(fit, data[0], grid)
    logw_norm = log_ratio_grid(fit, norm_x, grid)
    infer = time.perf_counter() - t0
    result = fit_parameter(logw_data, data[1], logw_norm, norm_g, unseen, grid, float(settings["window"]),
                           int(settings["bootstrap"]), np.random.default_rng(derive_seed(seed, "bootstrap")))
    rates = {"train_time_s": fit.report["train_seconds"], "train_events_per_s": train_events_per_s(fit.report, len(x1) + len(x0), clf),
             "inference_events_per_s": k * len(grid) * (len(data[0]) + len(norm_x)) / max(infer, 1e-9)}
    return fit, result, rates


def tune(reference: Sequence[str | os.PathLike[str]], normalisation: Sequence[str | os.PathLike[str]],
         scan: Mapping[str, Sequence[str | os.PathLike[str]]], data: Sequence[str | os.PathLike[str]],
         outputs: Mapping[str, str | os.PathLike[str]], settings: Mapping[str, Any], *, device: str = "auto", threads: int = 1,
         seed: int = 0) -> dict[str, Any]:
    """The stage's tune fit on prepared samples: writes :data:`TUNE_OUTPUTS` (``model.pt``, ``metrics.json``,
    ``fit.png``); returns the metrics.

    ``reference``/``normalisation``: the reference sample's training and held-out files; ``scan``: scan
    sample -> files; ``data``: the pseudo-data's files. ``settings``: ``parameter``, ``reference``,
    ``reference_value``, ``scan`` (sample -> value), ``data``, ``truth`` (or None), ``level``, ``features``
    and the keys of :func:`parametrised_fit`.
    """
    require_outputs(outputs, TUNE_OUTPUTS, "reweight tune")
    s = dict(settings)
    level, features = s["level"], list(s["features"])
    dev = select_device(device, threads)
    check_inputs("tune", [*reference, *normalisation, *data, *(p for ps in scan.values() for p in ps)], level, features)
    ref = load_sample(s["reference"], reference, level, features)
    norm = load_sample(s["reference"], normalisation, level, features)
    dat = load_sample(s["data"], data, level, features)
    samples = {name: load_sample(name, paths, level, features) for name, paths in scan.items()}
    values = {name: float(s["scan"][name]) for name in scan}
    log.info("tune %s: %d reference (%s), %d normalisation, %d data (%s) events; scan %s", s["parameter"], len(ref), ref.name,
             len(norm), len(dat), dat.name, {n: (values[n], len(samples[n])) for n in samples})
    fit, result, rates = parametrised_fit((ref.x, ref.weight), (norm.x, norm.weight),
                                          [(samples[n].x, samples[n].weight, values[n]) for n in samples], (dat.x, dat.weight), s,
                                          seed=seed, device=dev, names=features, label=f"tune {s['parameter']}")
    truth = s.get("truth")
    metrics: dict[str, Any] = {
        "parameter": s["parameter"], "data": dat.name, "reference": ref.name, "reference_value": float(s["reference_value"]),
        "scan": values, "level": level, "features": features,
        "n_data": len(dat), "n_reference": len(ref), "n_normalisation": len(norm), "n_scan": {n: len(v) for n, v in samples.items()},
        "fitted_value": result.value, "fitted_value_err": result.err, "fitted_value_err_bootstrap": result.err_bootstrap,
        "fitted_value_err_curvature": result.err_curvature, "fitted_value_spread": result.spread,
        "fitted_value_networks": result.member_values.tolist(), "at_boundary": result.at_boundary,
        "truth": truth, "pull": (result.value - truth) / result.err if truth is not None else None,
        "grid": result.grid.tolist(), "log_likelihood": result.log_likelihood.tolist(),
        "classifier": {"folds": fit.report["folds"]}, **rates, "device": str(dev), "threads": threads,
    }
    log.info("tune %s of %s: %.5f +- %.5f (bootstrap %.5f, curvature %.5f, network spread %.5f)%s", s["parameter"], dat.name,
             result.value, result.err, result.err_bootstrap, result.err_curvature, result.spread,
             f"; truth {truth}, pull {metrics['pull']:.2f}" if truth is not None else "")
    if result.at_boundary:
        log.warning("tune %s: the fit reached the edge of the grid [%g, %g] or found no maximum", s["parameter"], result.grid[0], result.grid[-1])
    with staged_outputs(*(outputs[k] for k in TUNE_OUTPUTS)) as staged:
        tmp = dict(zip(TUNE_OUTPUTS, staged))
        torch.save({**fit.state(), "parameter": s["parameter"], "scan": values, "reference": ref.name, "level": level,
                    "features": features}, tmp["model"])
        write_json(tmp["metrics"], metrics)
        fit_figure(result, tmp["fit_plot"], s["parameter"], truth, sorted(values.values()), f"{dat.name} ({level} level)")
    return metrics


def fit_figure(r: ParameterFit, path: str | os.PathLike[str], parameter: str, truth: float | None, scan: Sequence[float],
               title: str) -> None:
    """-2 Delta L against the parameter (ensemble, fold networks, fit) and the bootstrap replicas' fitted values."""
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(14, 6))
    for m, c in enumerate(r.member_log_likelihood):
        ax.plot(r.grid, -2 * c, color="grey", lw=0.8, alpha=0.7, label="fold networks" if m == 0 else None)
    ax.plot(r.grid, -2 * r.log_likelihood, color="tab:blue", lw=2, label="ensemble")
    ax.axvspan(r.value - r.err, r.value + r.err, color="tab:blue", alpha=0.2, label=f"fit {r.value:.4f} $\\pm$ {r.err:.4f}")
    if truth is not None:
        ax.axvline(truth, color="black", ls="--", label=f"true {truth:g}")
    for t in scan:
        ax.axvline(t, color="tab:orange", lw=0.6, ls=":")
    ax.set_ylim(0, max(10.0, float(np.quantile(-2 * r.log_likelihood, 0.5))))
    ax.set_xlabel(parameter)
    ax.set_ylabel(r"$-2\,\Delta \ln L$")
    ax.legend(fontsize=11)
    if len(r.bootstrap_values):
        bx.hist(r.bootstrap_values, bins=30, histtype="step", color="tab:blue")
    if truth is not None:
        bx.axvline(truth, color="black", ls="--")
    bx.set_xlabel("fitted value")
    bx.set_ylabel("bootstrap replicas")
    fig.suptitle(f"DCTR fit of {parameter}: {title}", fontsize=15)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def output_paths(outdir: str | os.PathLike[str]) -> dict[str, Path]:
    """The tune fit's outputs in ``outdir`` (as the Snakemake rule declares them)."""
    d = Path(outdir)
    return {"model": d / "model.pt", "metrics": d / "metrics.json", "fit_plot": d / "fit.png"}
