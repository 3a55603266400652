"""The stage's driver: :func:`integrate` (MadNIS against VEGAS and flat) and :func:`unweight` (events,
with surrogate-accelerated unweighting when an amplitude surrogate exists, :mod:`.unweighting`);
figures in :mod:`.plots`.

Evaluation settings: ``n_calls`` weighted points per method, drawn in batches of ``batch_size``;
``epsilon`` the cross-section fraction the truncated ``w_max`` may cut (:mod:`.weights`);
``replicas`` further evaluations of ``n_calls`` points per method, each from its own seed, whose
spread (sample standard deviation with the first evaluation) is reported for the heavy-tailed
figures (``SPREAD``) and the MadNIS/VEGAS ratios as ``*_spread``.
Event settings: ``n_events`` unweighted events, ``calibration_calls`` points to fix ``w_max`` (and
``u_max`` with a surrogate), ``batch_size``, ``epsilon``, ``max_calls`` a cap on the calls spent,
``flow_float32`` (true: sample the trained flows and channel-weight network in float32, exact and
surrogate unweighting alike; the config lists the processes, :func:`lhcchain.config.madnis_events`): the flows' share of a call drops by about a third
(gg -> 4g), and ``w = f / q`` stays unbiased as ``q`` is the density of the float32 sampler itself
(not for narrow resonances: float32 splines give NaN points there, see :mod:`.integrator`).
Wall times are in seconds; cross-sections in pb.

Seeds: everything random derives from ``seed``: MadNIS's training and evaluation (torch, and VEGAS
pre-training's numpy generator) from ``seed``, the VEGAS baseline's numpy generator from ``seed + 1``,
flat sampling's from ``seed + 2``, each bootstrap of ``w_max`` and each replica from
``derive_seed(seed, method, ...)``, Pythia's reference from ``seed``; :func:`unweight` from its ``seed``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from ..config import resolve_settings
from ..device import select_device
from ..io import derive_seed, staged_outputs, write_json
from ..physics.process import Process
from ..physics.processes import build_process
from . import plots
from .events import draw_subprocesses, event_momenta, events_table, write_lhe, write_parquet
from .integrator import (CheckedIntegrand, draw, flat_sampler, load_integrator, save_integrator, train_madnis,
                         train_vegas)
from .reference import pythia_cross_section
from .surrogate import surrogate_matrix_element
from .unweighting import HitOrMiss, TwoStage, compare_samples, observables, unweight_events
from .weights import REPLICAS, stratified_estimate, summarize, truncated_maximum

log = logging.getLogger("lhcchain.madnis")

METHODS = ("madnis", "vegas", "flat")
SPREAD = ("unweighting_efficiency", "unweighting_efficiency_truncated", "rel_stddev")
"""Heavy-tailed figures (set by the largest weights) reported with their spread over replicas."""
RATIOS = ("unweighting_efficiency", "rel_stddev")
"""Figures whose MadNIS / VEGAS ratio is reported with its spread over replicas."""


def _pull(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    return (a["cross_section_pb"] - b["cross_section_pb"]) / math.hypot(a["error_pb"], b["error_pb"])


def integrate(spec: Mapping[str, Any], settings: Mapping[str, Any], evaluation: Mapping[str, Any],
              reference: Mapping[str, Any], outputs: Mapping[str, str], device: str = "auto",
              threads: int | None = None, seed: int = 0) -> dict[str, Any]:
    """Train MadNIS on the process ``spec``, compare it with VEGAS and flat sampling at equal calls.

    ``outputs``: ``checkpoint``, ``metrics`` (JSON), ``weights`` and ``channels`` (PNG).
    """
    settings = resolve_settings(settings, "madnis.training")
    dev = select_device(device, threads)
    process = build_process(spec, str(dev), threads)
    function = CheckedIntegrand(process)
    n, batch, eps = int(evaluation["n_calls"]), int(evaluation["batch_size"]), float(evaluation["epsilon"])
    results: dict[str, dict[str, Any]] = {}
    samples = {}

    integrator, summary = train_madnis(function, settings, dev, seed)
    start = time.perf_counter()
    samples["madnis"] = draw(integrator, n, batch)
    results["madnis"] = {"train_calls": summary["train_calls"], "train_time_s": summary["train_time_s"],
                         "eval_time_s": time.perf_counter() - start, "train_steps": summary["train_steps"],
                         "active_channels": summary["active_channels"]}

    vegas, vsummary = train_vegas(function, settings, summary["train_calls"], seed + 1)
    start = time.perf_counter()
    samples["vegas"] = draw(vegas, n, batch)
    results["vegas"] = {"train_calls": vsummary["train_calls"], "train_time_s": vsummary["train_time_s"],
                        "eval_time_s": time.perf_counter() - start, "iterations": vsummary["iterations"]}

    flat = flat_sampler(function, settings, seed + 2)
    start = time.perf_counter()
    samples["flat"] = draw(flat, n, batch, mode="uniform")
    # flat sampling spends the calls the others train with on more points (in the cross-section only)
    extra = draw(flat, summary["train_calls"], batch, mode="uniform") if summary["train_calls"] else None
    results["flat"] = {"train_calls": 0, "train_time_s": 0.0, "eval_time_s": time.perf_counter() - start}

    for method in METHODS:
        s = samples[method]
        r = results[method]
        r.update(summarize(s.weights.cpu().numpy(), s.channels.cpu().numpy(), eps,
                           derive_seed(seed, method, "bootstrap")).as_dict())
        r["n_calls"] = r["train_calls"] + r.pop("n_calls")
        r["eval_calls"] = n
        if method == "flat" and extra is not None:
            w_all = np.concatenate([s.weights.cpu().numpy(), extra.weights.cpu().numpy()])
            r["cross_section_pb"], r["error_pb"] = stratified_estimate(w_all, np.concatenate(
                [s.channels.cpu().numpy(), extra.channels.cpu().numpy()]))
            r["n_calls"] = r["eval_calls"] = w_all.size
            r["rel_stddev"] = r["error_pb"] * math.sqrt(w_all.size) / r["cross_section_pb"]
        r["wall_time_s"] = r["train_time_s"] + r["eval_time_s"]
        log.info("madnis: %-6s sigma = %.6g +- %.3g pb, rel. std %.4g, unweighting efficiency %.4g, %d calls, %.1f s",
                 method, r["cross_section_pb"], r["error_pb"], r["rel_stddev"], r["unweighting_efficiency"], r["n_calls"],
                 r["wall_time_s"])
    samplers = {"madnis": integrator, "vegas": vegas, "flat": flat}
    figures = _replicas(samplers, int(evaluation["replicas"]), n, batch, eps, seed)
    ratio_spread = {}
    for method, runs in figures.items():
        for key in SPREAD:
            values = [results[method][key], *(f[key] for f in runs)]
            results[method][f"{key}_spread"] = float(np.std(values, ddof=1)) if len(values) > 1 else None
    for key in RATIOS:
        values = [results["madnis"][key] / results["vegas"][key],
                  *(a[key] / b[key] for a, b in zip(figures["madnis"], figures["vegas"]))]
        ratio_spread[f"{key}_madnis_over_vegas_spread"] = float(np.std(values, ddof=1)) if len(values) > 1 else None
    m, v = results["madnis"], results["vegas"]
    metrics: dict[str, Any] = {
        "process": spec["process"],
        "methods": results,
        "ratios": {
            "unweighting_efficiency_madnis_over_vegas": m["unweighting_efficiency"] / v["unweighting_efficiency"],
            "rel_stddev_madnis_over_vegas": m["rel_stddev"] / v["rel_stddev"],
            "unweighting_efficiency_madnis_over_flat": m["unweighting_efficiency"] / results["flat"]["unweighting_efficiency"],
            "rel_stddev_madnis_over_flat": m["rel_stddev"] / results["flat"]["rel_stddev"],
            **ratio_spread,
        },
        "pulls": {"madnis_vegas": _pull(m, v), "madnis_flat": _pull(m, results["flat"]),
                  "vegas_flat": _pull(v, results["flat"])},
        "channels": _channel_table(process, samples["madnis"]),
        "settings": settings,
        "calls": f"equal integrand calls: MadNIS and VEGAS train, then evaluate {n} points; flat sampling evaluates "
                 f"all its calls (cross_section_pb, error_pb, rel_stddev) and its unweighting figures come from the first {n}",
        "w_max": f"unweighting_efficiency: <w>/w_max with w_max the median over {REPLICAS} bootstrap replicas of the "
                 f"maximum of {n} weights (madnis.integrator.unweighting_metrics, arXiv:2001.10028); "
                 f"*_truncated: w_max such that overweights carry at most epsilon = {eps} of the cross-section",
        "spread": f"*_spread: sample standard deviation over {len(figures['madnis']) + 1} evaluations of {n} points "
                  f"with different seeds, of the same trained integrators",
    }
    if spec.get("pythia"):
        pdf = None if process.pdf is None else str(process.pdf.path)
        ref = pythia_cross_section(spec["pythia"], process.sqrt_s, pdf, int(reference["n_events"]), seed)
        ratio = m["cross_section_pb"] / ref[0]
        metrics["pythia"] = {"cross_section_pb": ref[0], "error_pb": ref[1], "madnis_over_pythia": ratio,
                             "ratio_error": ratio * math.hypot(m["error_pb"] / m["cross_section_pb"], ref[1] / ref[0])}
        log.info("madnis: Pythia 8 sigma = %.6g +- %.3g pb, MadNIS / Pythia = %.4f", ref[0], ref[1], ratio)
    with staged_outputs(outputs["checkpoint"], outputs["metrics"], outputs["weights"], outputs["channels"]) as out:
        save_integrator(str(out[0]), integrator, spec, settings, {k: v for k, v in summary.items() if k != "loss"})
        write_json(out[1], metrics)
        plots.weights(samples, out[2], process.name)
        plots.channels(metrics["channels"], out[3], process.name)
    return metrics


def _replicas(samplers: Mapping[str, Any], k: int, n: int, batch: int, eps: float,
              seed: int) -> dict[str, list[dict[str, Any]]]:
    """Per method, the figures of ``k`` further evaluations of ``n`` points, each from its own seed."""
    out: dict[str, list[dict[str, Any]]] = {method: [] for method in samplers}
    for r in range(k):
        for method, sampler in samplers.items():
            rseed = derive_seed(seed, method, "replica", r)
            if method == "madnis":
                torch.manual_seed(rseed)
            else:
                sampler.rng = np.random.default_rng(rseed)
            s = draw(sampler, n, batch, mode="uniform" if method == "flat" else "variance")
            out[method].append(summarize(s.weights.cpu().numpy(), s.channels.cpu().numpy(), eps, rseed).as_dict())
        log.info("madnis: replica %d/%d: unweighting efficiency %s", r + 1, k,
                 ", ".join(f"{method} {runs[-1]['unweighting_efficiency']:.4g}" for method, runs in out.items()))
    return out


def _channel_table(process: Process, sample) -> dict[str, dict[str, float]]:
    """Per channel: share of the calls, mean prior and learned channel weight over MadNIS's points."""
    ch = sample.channels.cpu().numpy()
    prior = sample.alphas_prior.cpu().numpy()
    learned = sample.alphas.cpu().numpy()
    w = sample.weights.cpu().numpy()
    return {
        name: {"call_fraction": float((ch == c).mean()), "prior_alpha": float(prior[:, c].mean()),
               "learned_alpha": float(learned[:, c].mean()), "cross_section_pb": float(w[ch == c].sum() / len(w))}
        for c, name in enumerate(process.channel_names)
    }


# ------------------------------------------------------------------ unweighted events


def unweight(checkpoint: str, settings: Mapping[str, Any], outputs: Mapping[str, str], surrogate: str | None = None,
             device: str = "auto", threads: int | None = None, seed: int = 0) -> dict[str, Any]:
    """Unweighted events from a saved integrator; with ``surrogate`` (an amplitude-surrogate
    checkpoint) also surrogate-accelerated unweighting, timed against exact-only unweighting.

    ``outputs``: ``lhe``, ``parquet``, ``metrics`` (JSON), ``distributions`` (PNG).
    """
    from ..amplitudes.surrogate import load_surrogate

    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    integrator, exact, payload = load_integrator(checkpoint, device, threads)
    process = exact.process
    if settings.get("flow_float32", False):
        integrator.to(torch.float32)
    n_events, batch = int(settings["n_events"]), int(settings["batch_size"])
    eps, max_calls, n_calib = float(settings["epsilon"]), int(settings["max_calls"]), int(settings["calibration_calls"])

    calib = draw(integrator, n_calib, batch)
    w_max = truncated_maximum(calib.weights.cpu().numpy(), eps)
    points, exact_run = unweight_events(integrator, HitOrMiss(w_max), n_events, batch, max_calls, rng,
                                        f"process {process.name!r}: unweighting")
    sigma, error = stratified_estimate(calib.weights.cpu().numpy(), calib.channels.cpu().numpy())
    metrics: dict[str, Any] = {
        "process": payload["process"]["process"],
        "n_events": n_events,
        "cross_section_pb": sigma,
        "error_pb": error,
        "w_max_pb": w_max,
        "exact": exact_run,
    }
    kin = event_momenta(process, points["x"], points["channels"])
    subs = draw_subprocesses(process, kin, rng)
    log.info("madnis: %d unweighted events from %d calls (efficiency %.4g) in %.1f s", exact_run["accepted"],
             exact_run["calls"], exact_run["efficiency"], exact_run["time_s"])
    observed = {"exact": observables(process, kin["lab"])}

    if surrogate:
        model = load_surrogate(surrogate, process.device)
        integrator.integrand = CheckedIntegrand(process, surrogate_matrix_element(process, model)).integrand()
        fast_seed = derive_seed(seed, "surrogate")  # the exact events do not depend on whether a surrogate exists
        fast_rng = np.random.default_rng(fast_seed)
        torch.manual_seed(fast_seed)
        two_stage = TwoStage.calibrate(integrator, exact, n_calib, batch, eps, fast_rng)
        fast_points, fast = unweight_events(integrator, two_stage, n_events, batch, max_calls, fast_rng,
                                            f"process {process.name!r}: surrogate unweighting")
        fast_kin = event_momenta(process, fast_points["x"], fast_points["channels"])
        observed["surrogate"] = observables(process, fast_kin["lab"])
        metrics["surrogate"] = {
            "checkpoint": surrogate, **fast,
            "stage2_efficiency": fast["accepted"] / max(fast["exact_calls"], 1),
            "speedup": exact_run["time_per_event_s"] / fast["time_per_event_s"],
            "agreement": compare_samples(observed["exact"], observed["surrogate"]),
        }
        log.info("madnis: surrogate unweighting %.3g s/event vs exact %.3g s/event: speedup %.2f",
                 fast["time_per_event_s"], exact_run["time_per_event_s"], metrics["surrogate"]["speedup"])
    with staged_outputs(outputs["lhe"], outputs["parquet"], outputs["metrics"], outputs["distributions"]) as out:
        write_lhe(out[0], process, kin, subs, sigma, error, rng)
        table = events_table(process, kin, subs, points["channels"].cpu().numpy(), sigma / n_events)
        write_parquet(out[1], table, {"process": payload["process"]["process"], "cross_section_pb": sigma,
                                      "cross_section_error_pb": error})
        write_json(out[2], metrics)
        plots.distributions(observed, out[3], process.name)
    return metrics
