"""Comparison of unfolded distributions with the pseudo-data truth: histograms, chi2/ndf, triangular discriminator.

Every distribution is a histogram normalised to unit sum in the IBU bins of each observable
(:func:`.ibu.edges_for`; outer bins take the under- and overflow), so the comparison is of shapes.

* Errors: truth and prior from their sums of squared weights; IBU from pyunfold's statistical and
  response errors; unbinned methods from ``bootstrap`` Poisson replicas of the unfolded events at fixed
  networks (cINN draws of one pseudo-data event share their replica weight, so the replicas are those
  of the pseudo-data; OmniFold's are of the weighted simulation). Retraining per replica is not done.
* ``chi2_ndf = sum_i (u_i - t_i)^2 / (var u_i + var t_i) / (bins - 1)`` (one bin lost to the normalisation).
* Triangular discriminator ``Delta = 1/2 sum_i (u_i - t_i)^2 / (u_i + t_i)``, quoted x 10^3 (as in arXiv 2404.18807).
* ``bins_within_target``: the fraction of bins holding more than 2 % of the truth in which
  ``|u / t - 1| <= max(5 %, 2 sigma)``, sigma the combined error of the ratio.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .. import plotting
from ..stats import chi2_ndf, weighted_histogram

plt = plotting.plt
COLORS = {"ibu": "tab:green", "omnifold": "tab:orange", "cinn": "tab:blue", "icinn": "tab:red"}
TARGET_BIN_SHARE = 0.02


def normalised(x: np.ndarray, w: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit-sum histogram and its statistical error (from the squared weights)."""
    h, w2 = weighted_histogram(x, w, edges)
    total = h.sum()
    return h / total, np.sqrt(w2) / abs(total)


def bootstrap_hist(x: np.ndarray, w: np.ndarray, edges: np.ndarray, group: np.ndarray, replicas: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Unit-sum histogram and its spread over ``replicas`` Poisson replicas, one replica weight per ``group``."""
    h, err = normalised(x, w, edges)
    if replicas < 2:
        return h, err
    _, inverse = np.unique(group, return_inverse=True)
    hs = []
    for _ in range(int(replicas)):
        r = rng.poisson(1.0, inverse.max() + 1)[inverse]
        hb, _ = weighted_histogram(x, w * r, edges)
        hs.append(hb / hb.sum())
    return h, np.std(hs, axis=0, ddof=1)


def compare(u: np.ndarray, du: np.ndarray, t: np.ndarray, dt: np.ndarray) -> dict[str, float]:
    """chi2/ndf, triangular discriminator (x 10^3) and the target-bin check of unit-sum histograms (module doc)."""
    chi2, ndf = chi2_ndf(u, du**2, t, dt**2)
    var = du**2 + dt**2
    with np.errstate(invalid="ignore", divide="ignore"):
        tri = 0.5 * np.nansum(np.where(u + t > 0, (u - t) ** 2 / (u + t), 0.0))
        big = t > TARGET_BIN_SHARE
        ratio_err = np.sqrt(var) / t
        ok = np.abs(u / t - 1) <= np.maximum(0.05, 2 * ratio_err)
    return {"chi2_ndf": chi2 / ndf, "triangular_discriminator_x1e3": 1e3 * float(tri),
            "bins_within_target": float(ok[big].mean()) if big.any() else float("nan"), "bins_checked": int(big.sum())}


def figure(observables: Sequence[str], labels: Mapping[str, str], edges: Sequence[np.ndarray], truth: Sequence[tuple[np.ndarray, np.ndarray]],
           prior: Sequence[tuple[np.ndarray, np.ndarray]], methods: Mapping[str, Sequence[tuple[np.ndarray, np.ndarray]]],
           metrics: Mapping[str, Mapping[str, Mapping[str, float]]], path: str | os.PathLike[str], title: str) -> None:
    """One panel per observable: unit-sum histograms of truth (points), prior (dashed) and every method
    (line with error band); below, the ratios to the truth with the truth's statistical band."""
    with plt.rc_context({"xtick.minor.visible": False, "ytick.minor.visible": False}):
        fig, axes = plotting.ratio_grid(len(observables), 3, (6, 6), ratio_height=1.3, hspace=0.3, wspace=0.3)
        for j, ((top, bottom), name) in enumerate(zip(axes, observables)):
            e = edges[j]
            t, dt = truth[j]
            centres = 0.5 * (e[1:] + e[:-1])
            top.errorbar(centres, t, yerr=dt, fmt="o", ms=3, color="black", label="truth (pseudo-data)")
            top.stairs(prior[j][0], e, color="grey", ls="--", label="prior (simulation)")
            with np.errstate(invalid="ignore", divide="ignore"):
                rt = np.nan_to_num(dt / t)
                bottom.stairs(1 + rt, e, baseline=1 - rt, fill=True, color="grey", alpha=0.35)
                bottom.stairs(np.nan_to_num(prior[j][0] / t, nan=1.0, posinf=1.0), e, color="grey", ls="--")
                for m, hists in methods.items():
                    u, du = hists[j]
                    c = COLORS.get(m, None)
                    lab = f"{m} ($\\Delta$ {metrics[m][name]['triangular_discriminator_x1e3']:.2f}e-3)"
                    top.stairs(u, e, color=c, label=lab)
                    top.stairs(u + du, e, baseline=u - du, fill=True, color=c, alpha=0.25)
                    r, dr = np.nan_to_num(u / t, nan=1.0, posinf=1.0), np.nan_to_num(du / t)
                    bottom.stairs(r + dr, e, baseline=r - dr, fill=True, color=c, alpha=0.25)
                    bottom.stairs(r, e, color=c)
            bottom.axhline(1.0, color="black", lw=0.8)
            bottom.set_ylim(0.8, 1.2)
            top.set_ylabel("fraction of events", fontsize=11)
            top.tick_params(labelbottom=False, labelsize=9)
            top.legend(fontsize=8)
            bottom.set_xlabel(labels.get(name, name), fontsize=11)
            bottom.set_ylabel("/ truth", fontsize=10)
            bottom.tick_params(labelsize=9)
        fig.suptitle(title, fontsize=15)
        fig.savefig(path, dpi=70, bbox_inches="tight")
        plt.close(fig)


def calibration_figure(cal: Mapping[str, Any], path: str | os.PathLike[str], title: str) -> None:
    """Rank histograms of the truth among the cINN's draws per observable (flat when calibrated), coverage in the legend."""
    names = list(cal["rank_histogram"])
    fig, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 4.5), squeeze=False)
    for ax, name in zip(axes[0], names):
        h = np.asarray(cal["rank_histogram"][name], float)
        ax.stairs(h / h.sum() * len(h), np.linspace(0, 1, len(h) + 1), color="tab:blue",
                  label=f"68 %: {cal['coverage_68'][name]:.3f}\n95 %: {cal['coverage_95'][name]:.3f}")
        ax.axhline(1.0, color="black", lw=0.8)
        ax.set_ylim(0, 2)
        ax.set_xlabel(f"rank of truth ({name})", fontsize=11)
        ax.legend(fontsize=10)
        ax.tick_params(labelsize=9)
    axes[0][0].set_ylabel("density", fontsize=11)
    fig.suptitle(title, fontsize=14)
    fig.tight_layout()
    fig.savefig(path, dpi=70)
    plt.close(fig)
