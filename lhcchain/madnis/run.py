"""Stage entry points: :func:`integrate` (MadNIS against VEGAS and flat) and :func:`unweight` (events,
with surrogate-accelerated unweighting when an amplitude surrogate exists).

Evaluation settings: ``n_calls`` weighted points per method, drawn in batches of ``batch_size``;
``epsilon`` the cross-section fraction the truncated ``w_max`` may cut (:mod:`.weights`).
Event settings: ``n_events`` unweighted events, ``calibration_calls`` points to fix ``w_max`` (and
``u_max`` with a surrogate), ``batch_size``, ``epsilon``, ``max_calls`` a cap on the calls spent.
Wall times are in seconds; cross-sections in pb.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from typing import Any

import hist
import numpy as np
import torch
from scipy import stats

from .. import plotting
from ..config import resolve_settings
from ..device import select_device
from ..errors import InputError
from ..io import staged_outputs, write_json
from ..physics.kinematics import pair_mass, pseudorapidity, transverse_momentum
from ..physics.process import Process
from ..physics.processes import build_process
from .events import draw_subprocesses, event_momenta, events_table, write_lhe, write_parquet
from .integrator import (DEFAULTS, CheckedIntegrand, draw, flat_sampler, load_integrator, save_integrator, train_madnis,
                         train_vegas)
from .reference import pythia_cross_section
from .surrogate import stage_two_ratio, surrogate_matrix_element
from .weights import REPLICAS, Overweights, accept, stratified_estimate, summarize, truncated_maximum

log = logging.getLogger("lhcchain.madnis")

METHODS = ("madnis", "vegas", "flat")


def _pull(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    return (a["cross_section_pb"] - b["cross_section_pb"]) / math.hypot(a["error_pb"], b["error_pb"])


def integrate(spec: Mapping[str, Any], settings: Mapping[str, Any], evaluation: Mapping[str, Any],
              reference: Mapping[str, Any], outputs: Mapping[str, str], device: str = "auto",
              threads: int | None = None, seed: int = 0) -> dict[str, Any]:
    """Train MadNIS on the process ``spec``, compare it with VEGAS and flat sampling at equal calls.

    ``outputs``: ``checkpoint``, ``metrics`` (JSON), ``weights`` and ``channels`` (PNG).
    """
    settings = resolve_settings(settings, DEFAULTS, "madnis.training")
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
        r.update(summarize(s.weights.cpu().numpy(), s.channels.cpu().numpy(), eps).as_dict())
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
    m, v = results["madnis"], results["vegas"]
    metrics: dict[str, Any] = {
        "process": spec["process"],
        "methods": results,
        "ratios": {
            "unweighting_efficiency_madnis_over_vegas": m["unweighting_efficiency"] / v["unweighting_efficiency"],
            "rel_stddev_madnis_over_vegas": m["rel_stddev"] / v["rel_stddev"],
            "unweighting_efficiency_madnis_over_flat": m["unweighting_efficiency"] / results["flat"]["unweighting_efficiency"],
            "rel_stddev_madnis_over_flat": m["rel_stddev"] / results["flat"]["rel_stddev"],
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
        _plot_weights(samples, out[2], process.name)
        _plot_channels(metrics["channels"], out[3], process.name)
    return metrics


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


def _plot_weights(samples: Mapping[str, Any], path, name: str) -> None:
    """Weight distributions ``w / <w>`` of the three methods (non-zero weights, log-log axes)."""
    import matplotlib.pyplot as plt
    import mplhep

    axis = hist.axis.Regular(80, 1e-4, 1e2, transform=hist.axis.transform.log)
    fig, ax = plt.subplots(figsize=(8, 6))
    for method, s in samples.items():
        w = s.weights.cpu().numpy()
        h = hist.Hist(axis)
        h.fill(w[w > 0] / w.mean())
        mplhep.histplot(h, ax=ax, label=method, density=True, histtype="step", yerr=True)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"$w / \langle w \rangle$")
    plotting.save(fig, ax, path, "normalised", name)


def _plot_channels(table: Mapping[str, Mapping[str, float]], path, name: str) -> None:
    labels = list(table)
    series = {key: [table[c][key] for c in labels] for key in ("prior_alpha", "learned_alpha", "call_fraction")}
    plotting.bars(labels, series, path, "mean channel weight / call fraction", title=name)


# ------------------------------------------------------------------ unweighted events


PROGRESS_EVERY = 30.0
"""Seconds between progress lines of the unweighting loops."""


def _unweight_loop(integrator, n_events: int, batch: int, max_calls: int, w_max: float,
                   rng: np.random.Generator, name: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Draw batches and keep accepted points until ``n_events``: the points, and the calls, accepted
    events and seconds with the overweights of all drawn weights (fraction of the non-zero weights
    above ``w_max``, and the fraction of their sum that lies above it)."""
    kept: dict[str, list[torch.Tensor]] = {"x": [], "channels": []}
    calls, have, start, last = 0, 0, time.perf_counter(), time.perf_counter()
    tally = Overweights()
    while have < n_events and calls < max_calls:
        s = draw(integrator, batch, batch)
        calls += batch
        w = s.weights.cpu().numpy()
        tally.add(w, w_max)
        ok = torch.from_numpy(accept(w, w_max, rng))
        kept["x"].append(s.x[ok.to(s.x.device)])
        kept["channels"].append(s.channels[ok.to(s.x.device)])
        have += int(ok.sum())
        if time.perf_counter() - last > PROGRESS_EVERY:
            last = time.perf_counter()
            log.info("madnis: unweighting %s: %d of %d events from %d calls, %.0f s", name, have, n_events, calls,
                     last - start)
    out = {k: torch.cat(v)[:n_events] for k, v in kept.items()}
    seconds = time.perf_counter() - start
    return out, {"calls": calls, "accepted": have, "time_s": seconds, "efficiency": have / calls,
                 "time_per_event_s": seconds / max(have, 1), "overweight_fraction": tally.overweight_fraction,
                 "truncated_fraction": tally.truncated_fraction}


def _surrogate_loop(integrator, exact: CheckedIntegrand, n_events: int, batch: int, max_calls: int,
                    w_s_max: float, u_max: float, rng: np.random.Generator) -> tuple[dict[str, Any], int, int, float]:
    """Two-stage unweighting (:mod:`.surrogate`) with the surrogate integrand installed in
    ``integrator``: ``(points with u, calls, exact calls, seconds)``."""
    kept: dict[str, list] = {"x": [], "channels": [], "u": []}
    calls, exact_calls, have, start = 0, 0, 0, time.perf_counter()
    stage1_sum, last = 0.0, start
    while have < n_events and calls < max_calls:
        s = draw(integrator, batch, batch)
        calls += batch
        ws = s.weights.cpu().numpy()
        ok1 = torch.from_numpy(accept(ws, w_s_max, rng)).to(s.x.device)
        x, ch = s.x[ok1], s.channels[ok1]
        f_sur = s.func_vals[ok1]
        f_exact, _ = exact(x, ch)
        exact_calls += x.shape[0]
        u = stage_two_ratio(f_exact.to(f_sur.dtype) / f_sur, s.weights[ok1], w_s_max).cpu().numpy()
        stage1_sum += u.sum()
        ok2 = torch.from_numpy(accept(u, u_max, rng)).to(x.device)
        kept["x"].append(x[ok2])
        kept["channels"].append(ch[ok2])
        kept["u"].append(u)
        have += int(ok2.sum())
        if time.perf_counter() - last > PROGRESS_EVERY:
            last = time.perf_counter()
            log.info("madnis: surrogate unweighting: %d of %d events from %d calls, %.0f s", have, n_events, calls,
                     last - start)
    out = {"x": torch.cat(kept["x"])[:n_events], "channels": torch.cat(kept["channels"])[:n_events],
           "u": np.concatenate(kept["u"]), "sigma": stage1_sum * w_s_max / calls, "accepted": have}
    return out, calls, exact_calls, time.perf_counter() - start


def _observables(process: Process, lab: torch.Tensor) -> dict[str, np.ndarray]:
    """Per event: p_T and eta of the p_T-ordered outgoing legs and the mass of the two leading (GeV)."""
    out = lab[:, 2:].to(torch.float64)
    order = transverse_momentum(out).argsort(-1, descending=True)
    out = torch.gather(out, 1, order[..., None].expand_as(out))
    obs = {}
    for i in range(out.shape[1]):
        obs[f"p_T,{i + 1} [GeV]"] = transverse_momentum(out[:, i]).cpu().numpy()
        obs[f"eta_{i + 1}"] = pseudorapidity(out[:, i]).cpu().numpy()
    obs["m_12 [GeV]"] = pair_mass(out[:, 0], out[:, 1]).cpu().numpy()
    return obs


def compare_samples(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray], bins: int = 20) -> dict[str, dict[str, float]]:
    """Per observable, chi^2 / ndf and p-value of two unweighted samples' histograms (quantile bins of
    the union, shapes compared: ``sum (a/Na - b/Nb)^2 / (a/Na^2 + b/Nb^2)`` over filled bins)."""
    result = {}
    for key in a:
        edges = np.unique(np.quantile(np.concatenate([a[key], b[key]]), np.linspace(0, 1, bins + 1)))
        ha, _ = np.histogram(a[key], edges)
        hb, _ = np.histogram(b[key], edges)
        na, nb = ha.sum(), hb.sum()
        filled = (ha + hb) > 0
        chi2 = float((((ha / na - hb / nb) ** 2) / (ha / na**2 + hb / nb**2))[filled].sum())
        ndf = int(filled.sum()) - 1
        result[key] = {"chi2": chi2, "ndf": ndf, "p_value": float(stats.chi2.sf(chi2, ndf))}
    return result


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
    n_events, batch = int(settings["n_events"]), int(settings["batch_size"])
    eps, max_calls = float(settings["epsilon"]), int(settings["max_calls"])

    calib = draw(integrator, int(settings["calibration_calls"]), batch)
    w_max = truncated_maximum(calib.weights.cpu().numpy(), eps)
    points, exact_run = _unweight_loop(integrator, n_events, batch, max_calls, w_max, rng, process.name)
    calls, accepted, seconds = exact_run["calls"], exact_run["accepted"], exact_run["time_s"]
    n_got = points["x"].shape[0]
    if n_got < n_events:
        raise InputError(f"process {process.name!r}: only {n_got} of {n_events} events after {calls} calls "
                         f"(madnis.events.max_calls); raise max_calls or lower n_events")
    summary = summarize(calib.weights.cpu().numpy(), calib.channels.cpu().numpy(), eps)
    metrics: dict[str, Any] = {
        "process": payload["process"]["process"],
        "n_events": n_events,
        "cross_section_pb": summary.cross_section_pb,
        "error_pb": summary.error_pb,
        "w_max_pb": w_max,
        "exact": exact_run,
    }
    kin = event_momenta(process, points["x"], points["channels"])
    subs = draw_subprocesses(process, kin, rng)
    log.info("madnis: %d unweighted events from %d calls (efficiency %.4g) in %.1f s", accepted, calls,
             accepted / calls, seconds)
    observables = {"exact": _observables(process, kin["lab"])}

    if surrogate:
        model = load_surrogate(surrogate, process.device)
        fast = CheckedIntegrand(process, surrogate_matrix_element(process, model))
        integrator.integrand = fast.integrand()
        calib_s = draw(integrator, int(settings["calibration_calls"]), batch)
        ws = calib_s.weights.cpu().numpy()
        w_s_max = truncated_maximum(ws, eps)
        f_exact, _ = exact(calib_s.x, calib_s.channels)
        ratio = (f_exact.to(calib_s.func_vals.dtype) / calib_s.func_vals).nan_to_num(0.0)
        u_calib = stage_two_ratio(ratio, calib_s.weights, w_s_max).cpu().numpy()
        survivors = u_calib[accept(ws, w_s_max, rng)]
        u_max = truncated_maximum(survivors, eps)
        fast_points, s_calls, s_exact, s_seconds = _surrogate_loop(integrator, exact, n_events, batch, max_calls,
                                                                   w_s_max, u_max, rng)
        if fast_points["x"].shape[0] < n_events:
            raise InputError(f"process {process.name!r}: surrogate unweighting gave only {fast_points['x'].shape[0]} of "
                             f"{n_events} events in {s_calls} calls (madnis.events.max_calls)")
        u = fast_points["u"]
        fast_kin = event_momenta(process, fast_points["x"], fast_points["channels"])
        observables["surrogate"] = _observables(process, fast_kin["lab"])
        per_event_exact, per_event_fast = seconds / accepted, s_seconds / fast_points["accepted"]
        stage1, stage2 = Overweights(), Overweights()
        stage1.add(ws, w_s_max)
        stage2.add(u, u_max)
        metrics["surrogate"] = {
            "checkpoint": surrogate,
            "calls": s_calls, "exact_calls": s_exact, "accepted": fast_points["accepted"], "time_s": s_seconds,
            "time_per_event_s": per_event_fast, "stage1_efficiency": s_exact / s_calls,
            "stage2_efficiency": fast_points["accepted"] / max(s_exact, 1),
            "w_s_max_pb": w_s_max, "u_max": u_max,
            "stage1_overweight_fraction": stage1.overweight_fraction, "stage1_truncated_fraction": stage1.truncated_fraction,
            "stage2_overweight_fraction": stage2.overweight_fraction, "stage2_truncated_fraction": stage2.truncated_fraction,
            "cross_section_pb": float(fast_points["sigma"]),
            "speedup": per_event_exact / per_event_fast,
            "agreement": compare_samples(observables["exact"], observables["surrogate"]),
        }
        log.info("madnis: surrogate unweighting %.3g s/event vs exact %.3g s/event: speedup %.2f", per_event_fast,
                 per_event_exact, metrics["surrogate"]["speedup"])
    with staged_outputs(outputs["lhe"], outputs["parquet"], outputs["metrics"], outputs["distributions"]) as out:
        write_lhe(out[0], process, kin, subs, summary.cross_section_pb, summary.error_pb, rng)
        table = events_table(process, kin, subs, points["channels"].cpu().numpy(), summary.cross_section_pb / n_events)
        write_parquet(out[1], table, {"process": payload["process"]["process"], "cross_section_pb": summary.cross_section_pb,
                                      "cross_section_error_pb": summary.error_pb})
        write_json(out[2], metrics)
        _plot_distributions(observables, out[3], process.name)
    return metrics


def _plot_distributions(observables: Mapping[str, Mapping[str, np.ndarray]], path, name: str) -> None:
    groups = {}
    for key in observables["exact"]:
        lo, hi = np.quantile(observables["exact"][key], [0.001, 0.999])
        axis = hist.axis.Regular(30, lo, hi if hi > lo else lo + 1)
        groups[key] = {}
        for label, obs in observables.items():
            h = hist.Hist(axis)
            h.fill(obs[key])
            groups[key][f"{label} |M|^2" if label != "exact" else "exact |M|^2"] = h
    plotting.panels(groups, path, title=f"{name}: unweighted events")
