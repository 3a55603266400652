"""Evaluation of a trained surrogate on its test set: accuracy, pulls, speed; metrics.json + figures.

* Accuracy: ``Delta = (A_NN - A_true) / A_true`` with ``A_NN`` the surrogate's value; median and 99th
  percentile of ``|Delta|``, mean and standard deviation of ``Delta``; figure ``accuracy``: histogram of
  ``Delta`` (symmetric-log axis range from the 99.9% quantile) and the median/68%/95% bands of ``|Delta|``
  in bins of ``ln A_true``.
* Pulls in log-amplitude space: ``t = (ln A_NN - ln A_true) / sigma`` for ``sigma_syst``,
  ``sigma_stat`` (Bayesian/ensemble only) and ``sigma_tot``; mean and standard deviation (a calibrated
  uncertainty gives a unit Gaussian: mean 0, std 1), with the surrogate's validation-set calibration
  ``sigma_scale`` applied (reported; pulls without it are the reported ones times it); figure
  ``pulls`` overlays them with ``N(0, 1)``.
* Speed: surrogate evaluations/s (``Surrogate.__call__`` on ``n_timing`` test momenta: features +
  network) and, when ``process`` is given, the exact amplitude on the same points in the same run;
  ``speedup = surrogate / exact``. Best of ``repeats`` timings each.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

import hist
import numpy as np
import torch

from ..device import select_device
from ..errors import InputError
from ..io import staged_outputs, write_json
from .data import read_dataset
from .features import exact_amplitude
from .surrogate import load_surrogate

log = logging.getLogger("lhcchain.amplitudes")


def _timed(fn, device: torch.device, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best


def throughput(surrogate, momenta: torch.Tensor, process=None, repeats: int = 3) -> dict:
    """Evaluations per second of ``surrogate`` and (if ``process``) of the exact amplitude on ``momenta``."""
    dev = surrogate.device
    p_sur = momenta.to(dev)
    surrogate(p_sur[:64])  # warm-up
    t_sur = _timed(lambda: surrogate(p_sur), dev, repeats)
    out = {"n_timing": int(momenta.shape[0]), "surrogate_evals_per_s": momenta.shape[0] / t_sur,
           "surrogate_device": str(dev)}
    if process is not None:
        p_ex = momenta.to(device=process.device, dtype=process.dtype)
        kind = surrogate.amplitude_kind if surrogate.amplitude_kind in ("bare", "weighted") else None
        exact_amplitude(process, p_ex[:64], kind)
        t_ex = _timed(lambda: exact_amplitude(process, p_ex, kind), process.device, repeats)
        out.update({"exact_evals_per_s": momenta.shape[0] / t_ex, "exact_device": str(process.device),
                    "speedup": t_ex / t_sur})
    return out


def _accuracy_figure(delta: np.ndarray, log_true: np.ndarray, path, title: str) -> None:
    import matplotlib.pyplot as plt

    from ..plotting import save

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(15, 6))
    lim = max(float(np.quantile(np.abs(delta), 0.999)), 1e-12)
    h = hist.Hist(hist.axis.Regular(80, -lim, lim, name="delta"))
    h.fill(np.clip(delta, -lim, lim))
    import mplhep

    mplhep.histplot(h, ax=ax1, histtype="step", label=f"median $|\\Delta|$ = {np.median(np.abs(delta)):.2e}")
    ax1.set_xlabel(r"$\Delta = (A_{NN} - A_{true}) / A_{true}$")
    ax1.set_ylabel("points")
    ax1.set_yscale("log")
    ax1.legend(fontsize=14)
    edges = np.quantile(log_true, np.linspace(0, 1, 16))
    centres, bands = [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = np.abs(delta[(log_true >= lo) & (log_true <= hi)])
        if sel.size:
            centres.append(0.5 * (lo + hi))
            bands.append(np.quantile(sel, [0.5, 0.68, 0.95]))
    bands = np.array(bands)
    for k, label in enumerate(("median", "68%", "95%")):
        ax2.plot(centres, bands[:, k], marker="o", label=f"$|\\Delta|$ {label}")
    ax2.set_yscale("log")
    ax2.set_xlabel(r"$\ln A_{true}$")
    save(fig, ax2, path, r"$|\Delta|$", title)


def _pulls_figure(pulls: Mapping[str, np.ndarray], path, title: str) -> None:
    import matplotlib.pyplot as plt
    import mplhep

    from ..plotting import save

    fig, ax = plt.subplots(figsize=(8, 6))
    for name, t in pulls.items():
        h = hist.Hist(hist.axis.Regular(60, -6, 6, name="pull"))
        h.fill(np.clip(t, -6, 6))
        mplhep.histplot(h, ax=ax, density=True, histtype="step",
                        label=f"{name}: mean {np.mean(t):.2f}, std {np.std(t):.2f}")
    x = np.linspace(-6, 6, 300)
    ax.plot(x, np.exp(-0.5 * x**2) / np.sqrt(2 * np.pi), "k--", label="N(0, 1)")
    ax.set_xlabel(r"$(\ln A_{NN} - \ln A_{true}) / \sigma$")
    ax.set_yscale("log")
    ax.set_ylim(1e-4, 1.0)
    save(fig, ax, path, "normalised", title)


def evaluate(dataset, checkpoint, outputs: Mapping[str, object], *, process=None, device: str = "auto", threads: int = 1,
             n_timing: int = 10_000, repeats: int = 3) -> dict:
    """Metrics and figures of the surrogate ``checkpoint`` on the test part of ``dataset`` (module doc).

    ``outputs``: paths for ``metrics`` (JSON), ``accuracy`` and ``pulls`` (PNG), written atomically.
    """
    missing = {"metrics", "accuracy", "pulls"} - set(outputs)
    if missing:
        raise InputError(f"evaluate_amplitude: outputs lack {sorted(missing)}")
    dev = select_device(device, threads)
    surrogate = load_surrogate(checkpoint, dev)
    data = read_dataset(dataset, parts=[2])
    if len(data["amplitudes"]) == 0:
        log.warning("amplitude dataset %s has no test points; evaluating on all points", dataset)
        data = read_dataset(dataset)
    if data["momenta"].shape[1] != surrogate.n_legs:
        raise InputError(f"{dataset} has {data['momenta'].shape[1]} legs but the surrogate {checkpoint} expects {surrogate.n_legs}")
    mom = torch.from_numpy(data["momenta"])
    a_true = data["amplitudes"]
    log_nn, syst, stat = (t.cpu().numpy() for t in surrogate.predict_log(mom))
    log_true = np.log(a_true)
    dlog = log_nn - log_true
    delta = np.expm1(dlog)
    tot = np.sqrt(syst**2 + stat**2)
    pulls = {"syst": dlog / syst, "tot": dlog / tot}
    if surrogate.settings["uncertainty"] != "heteroscedastic":
        pulls["stat"] = dlog / np.maximum(stat, 1e-300)
    metrics: dict = {
        "process": surrogate.process,
        "n_test": int(len(a_true)),
        "network": surrogate.settings["network"],
        "uncertainty": surrogate.settings["uncertainty"],
        "features": surrogate.settings["features"],
        "median_abs_delta": float(np.median(np.abs(delta))),
        "p99_abs_delta": float(np.quantile(np.abs(delta), 0.99)),
        "mean_delta": float(np.mean(delta)),
        "std_delta": float(np.std(delta)),
        "pull_space": "log amplitude",
        "sigma_scale": surrogate.sigma_scale,
        "median_sigma_syst_rel": float(np.median(syst)),
        "median_sigma_stat_rel": float(np.median(stat)),
        "median_sigma_tot_rel": float(np.median(tot)),
    }
    for name in ("syst", "stat", "tot"):
        t = pulls.get(name)
        metrics[f"pull_{name}_mean"] = float(np.mean(t)) if t is not None else None
        metrics[f"pull_{name}_std"] = float(np.std(t)) if t is not None else None
    timing_p = mom[: int(n_timing)]
    metrics.update(throughput(surrogate, timing_p, process, repeats))
    if process is None:
        metrics.update({"exact_evals_per_s": None, "speedup": None})
    title = f"{surrogate.process} ({surrogate.settings['network']}, {surrogate.settings['uncertainty']})"
    with staged_outputs(outputs["metrics"], outputs["accuracy"], outputs["pulls"]) as (m_tmp, a_tmp, p_tmp):
        write_json(m_tmp, metrics)
        _accuracy_figure(delta, log_true, a_tmp, title)
        _pulls_figure(pulls, p_tmp, title)
    log.info("evaluate_amplitude %s: median |Delta| %.2e, p99 %.2e, pull std (tot) %.2f, speedup %s", surrogate.process,
             metrics["median_abs_delta"], metrics["p99_abs_delta"], metrics["pull_tot_std"], metrics.get("speedup"))
    return metrics
