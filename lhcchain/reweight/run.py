"""The ``reweight`` stage for one pair (source -> target) of prepared samples: ``train`` and ``evaluate``.

Inputs are ``prepare``'s parquet splits (``splits``, default all three: cross-fitting gives every
event an out-of-fold weight, so no split needs to be held out). Rows passing ``{level}_pass`` are the
events (optionally only those with ``n_jets`` jets, e.g. a generator's multiplicities); features are
``{level}_{feature}`` columns. A source or target may be a generator's ``events.parquet``, which has
``prepare``'s columns. Features of jets (``j<k>_*``) and of jet pairs
(``mjj``, ``drjj``) are optional: NaN there means the object is absent, and the classifier gets an
indicator column (:class:`.classifier.Standardiser`); NaN in any other feature stops the run. Events
are keyed by ``split, file_index, entry, run, event``, as the input rows.

``train`` cross-fits the classifier (:mod:`.classifier`), writes ``weights.parquet`` (the keys,
generator ``weight``, ``w``, ``w_uncalibrated`` and ``fold`` of every source event), ``model.pt``
(the k networks, standardisation, calibration, pair metadata), ``train.json`` (fold training,
calibration report, the classifier's own out-of-fold AUC, weight summary (:mod:`.weights`), training and
inference rates) and ``calibration.png`` (reliability curves and the weight distribution).
``evaluate`` writes ``metrics.json`` (weight summary, chi2/ndf per feature before and after
(:mod:`.closure`), the closure AUC and, for a pair with ``n_jets``, the AUC before and after and the
effective sample size per jet count) and ``closure.png``. ``refine``, for a pair whose source is a
generator's events, writes them with their weights (``events.parquet``).

Closure AUC. A fresh :func:`.classifier.two_sample_auc` of the reweighted source against the target,
run separately within each of the k weight folds and averaged (error: the folds' errors combined,
``sqrt(sum err_f^2) / k``). Within fold f the source weights come from the network that saw neither
fold f's source nor its target events. A test over all events at once would leak: a source event's
weight has learnt the target events of the other folds, so the reweighted source copies their
fluctuations, and a cross-fitted test classifier can then score held-out target events as source-like
(AUC below 0.5: 0.489 +- 0.006 on the synthetic bench pair of docs/reweight.md, 0.504 +- 0.007 fold-wise).
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from .. import plotting
from ..device import select_device
from ..errors import InputError
from ..generate.evaluate import read_json
from ..io import derive_seed, read_parquet_columns, require_outputs, staged_outputs, write_json
from ..prepare.selection import feature_unit
from . import closure
from .classifier import cross_fit, density_ratio, fold_auc, resolve_classifier, train_events_per_s, two_sample_auc
from .weights import check_finite, effective_sample_size, summarise

log = logging.getLogger("lhcchain.reweight")

KEYS = ("split", "file_index", "entry", "run", "event")
OPTIONAL = re.compile(r"^(j\d+_.+|mjj|drjj)$")
TRAIN_OUTPUTS = ("model", "weights", "summary", "calibration_plot")
EVALUATE_OUTPUTS = ("metrics", "closure_plot")
REFINE_OUTPUTS = ("events",)
MIN_FOLD_EVENTS = 20  # per class and weight fold, for an AUC per jet count
plt = plotting.plt


@dataclass
class Sample:
    """Events of one prepared sample at one level: features (n, F), generator weights and row keys."""

    name: str
    x: np.ndarray
    weight: np.ndarray
    keys: dict[str, np.ndarray]
    n_jets: np.ndarray

    def __len__(self) -> int:
        return len(self.weight)


def check_features(pair: str, features: Sequence[str], level: str, schemas: Mapping[str, Sequence[str]]) -> None:
    """InputError when a feature column ``{level}_{feature}`` is missing from any file (``schemas``: file -> column names)."""
    if not features:
        raise InputError(f"reweight pair {pair!r}: no features configured")
    missing = {f: [c for c in features if f"{level}_{c}" not in names] for f, names in schemas.items()}
    missing = {f: m for f, m in missing.items() if m}
    if missing:
        common = [c for c in features if all(f"{level}_{c}" in names for names in schemas.values())]
        detail = "; ".join(f"{f} lacks {m}" for f, m in missing.items())
        raise InputError(f"reweight pair {pair!r}: features missing at level {level!r}: {detail}; "
                         f"features every file has: {common or 'none (no overlap)'}")


def check_inputs(label: str, paths: Sequence[str | os.PathLike[str]], level: str, features: Sequence[str]) -> None:
    """Read the schema of every file in ``paths`` (InputError if unreadable) and :func:`check_features` them."""
    schemas: dict[str, Sequence[str]] = {}
    for p in paths:
        try:
            schemas[str(p)] = pq.read_schema(p).names
        except (OSError, pa.ArrowInvalid) as exc:
            raise InputError(f"{p}: not a readable parquet file: {exc}") from exc
    check_features(label, features, level, schemas)


def _passing(table: pa.Table, level: str, n_jets: Sequence[int] | None) -> np.ndarray:
    """Mask of the rows of ``table`` passing ``level`` (and with ``n_jets`` jets, if given)."""
    ok = table.column(f"{level}_pass").to_numpy(zero_copy_only=False).astype(bool)
    if n_jets is not None:
        ok &= np.isin(table.column(f"{level}_n_jets").to_numpy(zero_copy_only=False), list(n_jets))
    return ok


def _read_weights(path: str | os.PathLike[str], keys: Mapping[str, np.ndarray], what: str, unit: str = "rows") -> pa.Table:
    """The weights table at ``path``; InputError if unreadable or if its ``keys`` columns do not equal ``keys``
    (``what``: the events they should match, ``unit``: what the message calls its rows)."""
    try:
        wt = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise InputError(f"{path}: not a readable parquet file: {exc}") from exc
    n = len(next(iter(keys.values())))
    if wt.num_rows != n or any(not np.array_equal(wt.column(k).to_numpy(zero_copy_only=False), v) for k, v in keys.items()):
        raise InputError(f"{path}: rows do not match {what} ({wt.num_rows} {unit}, {n} events); rerun the train step")
    return wt


def load_sample(name: str, paths: Sequence[str | os.PathLike[str]], level: str, features: Sequence[str],
                n_jets: Sequence[int] | None = None) -> Sample:
    """The events of sample ``name`` passing ``level`` (and with ``n_jets`` jets, if given) in ``paths`` (module doc)."""
    xs, ws, jets, keys = [], [], [], {k: [] for k in KEYS}
    cols = ["file_index", "entry", "run", "event", "weight", f"{level}_pass", f"{level}_n_jets", *(f"{level}_{f}" for f in features)]
    cols = list(dict.fromkeys(cols))
    for path in paths:
        t = read_parquet_columns(path, cols, f"sample {name!r}: a prepared sample with level {level!r}")
        ok = _passing(t, level, n_jets)
        x = np.column_stack([t.column(f"{level}_{f}").to_numpy(zero_copy_only=False).astype(np.float64)[ok] for f in features]) \
            if ok.any() else np.zeros((0, len(features)))
        row = {k: t.column(k).to_numpy(zero_copy_only=False)[ok] for k in KEYS[1:]}
        for j, f in enumerate(features):
            bad = np.flatnonzero(np.isnan(x[:, j]))
            if bad.size and not OPTIONAL.match(f):
                i = int(bad[0])
                raise InputError(f"{path}: column {level}_{f} is NaN in {bad.size} passing events (first: run {row['run'][i]}, "
                                 f"event {row['event'][i]}, entry {row['entry'][i]}); only jet features may be absent")
        w = t.column("weight").to_numpy(zero_copy_only=False).astype(np.float64)[ok]
        if not np.isfinite(w).all():
            i = int(np.flatnonzero(~np.isfinite(w))[0])
            raise InputError(f"{path}: generator weight {w[i]} of run {row['run'][i]}, event {row['event'][i]}")
        xs.append(x)
        ws.append(w)
        jets.append(t.column(f"{level}_n_jets").to_numpy(zero_copy_only=False)[ok])
        keys["split"].append(np.full(int(ok.sum()), Path(path).stem))
        for k in KEYS[1:]:
            keys[k].append(row[k])
    sample = Sample(name, np.concatenate(xs), np.concatenate(ws), {k: np.concatenate(v) for k, v in keys.items()}, np.concatenate(jets))
    if len(sample) == 0:
        raise InputError(f"sample {name!r}: no events pass level {level!r}{f' with {list(n_jets)} jets' if n_jets is not None else ''} "
                         f"in {[str(p) for p in paths]} (empty sample)")
    if not sample.weight.sum() > 0:
        raise InputError(f"sample {name!r}: the generator weights of the events passing level {level!r} sum to {sample.weight.sum()} "
                         f"in {[str(p) for p in paths]} (need > 0)")
    return sample


def load_pair(pair: str, source: Sequence[str | os.PathLike[str]], target: Sequence[str | os.PathLike[str]],
              s: Mapping[str, Any]) -> tuple[Sample, Sample]:
    """Source and target samples of ``pair`` with the checks of the module doc."""
    level, features = s["level"], list(s["features"])
    check_inputs(pair, [*source, *target], level, features)
    n_jets = s.get("n_jets")
    return load_sample(s["source"], source, level, features, n_jets), load_sample(s["target"], target, level, features, n_jets)


def train(pair: str, source: Sequence[str | os.PathLike[str]], target: Sequence[str | os.PathLike[str]],
          outputs: Mapping[str, str | os.PathLike[str]], settings: Mapping[str, Any], *, device: str = "auto", threads: int = 1,
          seed: int = 0) -> dict[str, Any]:
    """Cross-fit the classifier of ``pair`` and write :data:`TRAIN_OUTPUTS` (module doc); returns the summary.

    ``settings``: ``source``, ``target`` (sample names), ``level``, ``features``, ``clip`` and ``classifier``.
    """
    require_outputs(outputs, TRAIN_OUTPUTS, "reweight train")
    s = dict(settings)
    clf = resolve_classifier(s["classifier"], f"reweight.pairs.{pair}.classifier")
    dev = select_device(device, threads)
    src, tgt = load_pair(pair, source, target, s)
    log.info("reweight %s: %d source (%s) and %d target (%s) events, %d features at level %s", pair, len(src), src.name, len(tgt),
             tgt.name, src.x.shape[1], s["level"])
    fit = cross_fit(tgt.x, src.x, tgt.weight, src.weight, settings=clf, seed=seed, device=dev, names=list(s["features"]), label=pair)
    norm = tgt.weight.sum() / src.weight.sum()
    n_t = len(tgt)
    w = density_ratio(fit.logit[n_t:]) * norm
    check_finite(w, pair, src.keys)
    y = np.r_[np.ones(n_t), np.zeros(len(src))]
    auc, boots = fold_auc(fit, y, np.r_[tgt.weight, src.weight], int(clf["bootstrap"]), np.random.default_rng(seed))
    t0 = time.perf_counter()
    fit.predict_logit(src.x)
    infer = time.perf_counter() - t0
    weights = summarise(w, src.weight, tgt.weight, float(s["clip"]), src.keys)
    summary: dict[str, Any] = {
        "pair": pair, "source": src.name, "target": tgt.name, "level": s["level"], "features": list(s["features"]),
        "n_source": len(src), "n_target": n_t, "normalisation_factor": norm,
        "classifier": fit.report,
        "auc_before": {"auc": auc, "auc_err_bootstrap": float(np.std(boots, ddof=1)) if len(boots) > 1 else None,
                       "note": "the weight classifier's own out-of-fold AUC, one fold assignment"},
        "weights": weights,
        "train_events_per_s": train_events_per_s(fit.report, len(y), clf),
        "inference_events_per_s": len(src) / max(infer, 1e-9),
        "device": str(dev), "threads": threads,
    }
    log.info("reweight %s: calibration %s, AUC before %.4f, ESS %.0f of %.0f, %d weights above clip %g, normalisation %.4f",
             pair, fit.report["calibration"]["applied"], auc, weights["ess"], weights["ess_unweighted"], weights["n_beyond_clip"],
             weights["clip"], weights["normalisation"])
    table = pa.table({**src.keys, "weight": src.weight, "w": w, "w_uncalibrated": density_ratio(fit.logit_raw[n_t:]) * norm,
                      "fold": fit.fold[n_t:]})
    with staged_outputs(*(outputs[k] for k in TRAIN_OUTPUTS)) as staged:
        tmp = dict(zip(TRAIN_OUTPUTS, staged))
        torch.save({**fit.state(), "pair": pair, "source": src.name, "target": tgt.name, "level": s["level"],
                    "features": list(s["features"]), "normalisation_factor": norm, "target_fold": fit.fold[:n_t]}, tmp["model"])
        pq.write_table(table.replace_schema_metadata({"lhcchain": f"reweight pair={pair}; w = D/(1-D) * sum(g_target)/sum(g_source)"}),
                       tmp["weights"], compression="zstd")
        write_json(tmp["summary"], summary)
        _calibration_figure(fit.report["calibration"], w, tmp["calibration_plot"], f"{pair}: {src.name} $\\to$ {tgt.name}")
    return summary


def _calibration_figure(report: Mapping[str, Any], w: np.ndarray, path: Path, title: str) -> None:
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(14, 6))
    for key, lab, color in (("reliability_raw", "raw", "grey"), ("reliability_calibrated", f"calibrated ({report['applied']})", "tab:blue")):
        r = report[key]
        ax.errorbar(r["mean_d"], r["target_fraction"], yerr=r["error"], fmt="o", color=color, label=lab)
    lo, hi = ax.get_xlim()
    ax.plot([lo, hi], [lo, hi], color="black", lw=0.8)
    ax.set_xlabel("mean D (out of fold)")
    ax.set_ylabel("weighted target fraction")
    ax.legend(fontsize=12)
    bx.hist(np.log10(np.clip(w, 1e-3, 1e3)), bins=80, histtype="step", color="tab:blue")
    bx.set_yscale("log")
    bx.set_xlabel(r"$\log_{10} w$")
    bx.set_ylabel("source events")
    fig.suptitle(title, fontsize=16)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def evaluate(pair: str, source: Sequence[str | os.PathLike[str]], target: Sequence[str | os.PathLike[str]],
             weights: str | os.PathLike[str], train_summary: str | os.PathLike[str], model: str | os.PathLike[str],
             outputs: Mapping[str, str | os.PathLike[str]],
             settings: Mapping[str, Any], *, device: str = "auto", threads: int = 1, seed: int = 0) -> dict[str, Any]:
    """Closure of ``pair``'s weights (module doc): writes :data:`EVALUATE_OUTPUTS`; returns the metrics.

    ``settings`` as for :func:`train`, plus ``closure: {bins}``; ``train_summary`` and ``model``: :func:`train`'s
    ``train.json`` and ``model.pt`` (for the target events' folds).
    """
    require_outputs(outputs, EVALUATE_OUTPUTS, "reweight evaluate")
    s = dict(settings)
    clf = resolve_classifier(s["classifier"], f"reweight.pairs.{pair}.classifier")
    dev = select_device(device, threads)
    trained = read_json(train_summary)
    src, tgt = load_pair(pair, source, target, s)
    wt = _read_weights(weights, {k: src.keys[k] for k in KEYS}, f"the source sample {src.name!r}")
    w = wt.column("w").to_numpy().astype(np.float64)
    src_fold = wt.column("fold").to_numpy()
    try:
        tgt_fold = np.asarray(torch.load(model, map_location="cpu", weights_only=False)["target_fold"])
    except Exception as exc:
        raise InputError(f"{model}: not a reweight checkpoint with the target events' folds: {exc}") from exc
    if len(tgt_fold) != len(tgt):
        raise InputError(f"{model}: {len(tgt_fold)} target folds for {len(tgt)} target events of {tgt.name!r}; rerun the train step")
    check_finite(w, pair, src.keys)
    features = list(s["features"])
    panels = [closure.compare(f, src.x[:, j], tgt.x[:, j], src.weight, tgt.weight, w, int(s["closure"]["bins"]))
              for j, f in enumerate(features)]
    chi2 = {p["name"]: {"before": p["source_chi2"] / p["source_ndf"], "after": p["reweighted_chi2"] / p["reweighted_ndf"],
                        "ndf": p["reweighted_ndf"]} for p in panels}
    t0 = time.perf_counter()
    everything = (np.ones(len(tgt), bool), np.ones(len(src), bool))
    test = fold_wise_auc(tgt, src, src.weight * w, tgt_fold, src_fold, everything, clf, derive_seed(seed, "closure"), dev, f"{pair} closure", features)
    by_jets: dict[int, Any] = {}
    for m in s.get("n_jets") or []:  # per jet count: the generator's multiplicities, before and after
        sel = (tgt.n_jets == m, src.n_jets == m)
        small = min(min(np.sum(sel[0] & (tgt_fold == f)), np.sum(sel[1] & (src_fold == f))) for f in np.unique(src_fold))
        if small < MIN_FOLD_EVENTS:
            log.warning("reweight %s: %d jets: %d events in the smallest fold and class, no AUC (needs %d)", pair, m, small, MIN_FOLD_EVENTS)
            by_jets[m] = None
            continue
        before = fold_wise_auc(tgt, src, src.weight, tgt_fold, src_fold, sel, clf, derive_seed(seed, "before", m), dev, f"{pair} {m} jets before",
                               features)
        after = fold_wise_auc(tgt, src, src.weight * w, tgt_fold, src_fold, sel, clf, derive_seed(seed, "after", m), dev, f"{pair} {m} jets after",
                              features)
        ess = effective_sample_size(src.weight[sel[1]] * w[sel[1]])
        by_jets[m] = {"n_target": int(sel[0].sum()), "n_source": int(sel[1].sum()), "auc_before": before["auc"],
                      "auc_before_err": before["auc_err"], "closure_auc": after["auc"], "closure_auc_err": after["auc_err"],
                      "ess": ess, "ess_fraction": ess / effective_sample_size(src.weight[sel[1]])}
        log.info("reweight %s: %d jets: AUC %.4f +- %.4f before, %.4f +- %.4f after", pair, m, before["auc"], before["auc_err"],
                 after["auc"], after["auc_err"])
    metrics: dict[str, Any] = {
        "pair": pair, "source": src.name, "target": tgt.name, "level": s["level"], "n_source": len(src), "n_target": len(tgt),
        "calibration": trained["classifier"]["calibration"]["applied"],
        "auc_before": trained["auc_before"]["auc"],
        "closure_auc": test["auc"], "closure_auc_err": test["auc_err"], "closure_auc_err_bootstrap": test["auc_err_bootstrap"],
        "closure_auc_err_repeats": test["auc_err_repeats"], "closure_auc_folds": test["auc_groups"],
        "closure_by_n_jets": by_jets,
        "closure_seconds": time.perf_counter() - t0,
        "chi2_ndf": chi2,
        "max_chi2_ndf_before": max(c["before"] for c in chi2.values()), "max_chi2_ndf_after": max(c["after"] for c in chi2.values()),
        "weights": summarise(w, src.weight, tgt.weight, float(s["clip"]), src.keys),
        "train_events_per_s": trained["train_events_per_s"], "inference_events_per_s": trained["inference_events_per_s"],
    }
    log.info("reweight %s: closure AUC %.4f +- %.4f (before %.4f); max chi2/ndf %.2f -> %.2f", pair, test["auc"], test["auc_err"],
             metrics["auc_before"], metrics["max_chi2_ndf_before"], metrics["max_chi2_ndf_after"])
    units = {f: feature_unit(f"{s['level']}_{f}") for f in features}
    labels = {f: f"{f} [{u}]" if u else f for f, u in units.items()}
    with staged_outputs(*(outputs[k] for k in EVALUATE_OUTPUTS)) as staged:
        tmp = dict(zip(EVALUATE_OUTPUTS, staged))
        write_json(tmp["metrics"], metrics)
        closure.figure(panels, labels, tmp["closure_plot"],
                       f"{pair}: {src.name} $\\to$ {tgt.name} ({s['level']} level), closure AUC {test['auc']:.3f} $\\pm$ {test['auc_err']:.3f}")
    return metrics


def fold_wise_auc(tgt: Sample, src: Sample, w_src: np.ndarray, tgt_fold: np.ndarray, src_fold: np.ndarray,
                  select: tuple[np.ndarray, np.ndarray], clf: Mapping[str, Any], seed: int, device: torch.device, label: str,
                  names: Sequence[str]) -> dict[str, Any]:
    """Two-sample AUC of target against source (event weights ``w_src``) within each weight fold, averaged
    (module doc); ``select``: event masks of target and source; ``names``: the feature names."""
    groups = []
    for f in np.unique(src_fold):
        t, u = select[0] & (tgt_fold == f), select[1] & (src_fold == f)
        groups.append(two_sample_auc(tgt.x[t], src.x[u], tgt.weight[t], w_src[u], settings=clf, seed=derive_seed(seed, f), device=device,
                                     names=names, label=f"{label} {f}"))
    k = len(groups)
    return {"auc": float(np.mean([g["auc"] for g in groups])),
            **{key: math.sqrt(sum(g[key] ** 2 for g in groups)) / k for key in ("auc_err", "auc_err_bootstrap", "auc_err_repeats")},
            "auc_groups": [g["auc"] for g in groups]}


def refine(pair: str, source: Sequence[str | os.PathLike[str]], weights: str | os.PathLike[str],
           outputs: Mapping[str, str | os.PathLike[str]], settings: Mapping[str, Any]) -> int:
    """Refined events of a pair whose source is a generator's: the source rows the pair uses (passing ``level``,
    with ``n_jets`` jets), every column kept, plus the classifier weight ``w`` and ``refined_weight = weight * w``
    (moving the generated events onto the target); writes :data:`REFINE_OUTPUTS`, returns the event count."""
    require_outputs(outputs, REFINE_OUTPUTS, "reweight refine")
    level, n_jets = settings["level"], settings.get("n_jets")
    parts = []
    for path in source:
        try:
            t = pq.read_table(path)
        except (OSError, pa.ArrowInvalid) as exc:
            raise InputError(f"{path}: not a readable parquet file: {exc}") from exc
        for col in (f"{level}_pass", f"{level}_n_jets"):
            if col not in t.column_names:
                raise InputError(f"{path}: no column {col!r}")
        parts.append(t.filter(pa.array(_passing(t, level, n_jets))))
    events = pa.concat_tables(parts)
    wt = _read_weights(weights, {k: events.column(k).to_numpy(zero_copy_only=False) for k in KEYS[1:]},
                       f"the events of {[str(p) for p in source]}", "weights")
    w = wt.column("w").to_numpy().astype(np.float64)
    check_finite(w, pair, {k: wt.column(k).to_numpy(zero_copy_only=False) for k in KEYS})
    g = events.column("weight").to_numpy(zero_copy_only=False).astype(np.float64)
    events = events.append_column("w", pa.array(w)).append_column("refined_weight", pa.array(g * w))
    with staged_outputs(outputs["events"]) as (tmp,):
        pq.write_table(events.replace_schema_metadata({"lhcchain": f"reweight pair={pair}: refined_weight = weight * w"}), tmp,
                       compression="zstd")
    log.info("reweight %s: %d refined events written", pair, events.num_rows)
    return events.num_rows


def output_paths(outdir: str | os.PathLike[str]) -> dict[str, Path]:
    """The stage's outputs for one pair in ``outdir`` (as the Snakemake rules declare them)."""
    d = Path(outdir)
    return {"model": d / "model.pt", "weights": d / "weights.parquet", "summary": d / "train.json",
            "calibration_plot": d / "calibration.png", "metrics": d / "metrics.json", "closure_plot": d / "closure.png"}
