"""Figures of the symbolic stage (PNG, the style of :mod:`lhcchain.plotting`)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..plotting import plt, save

LABELS = {"x1": r"$x_1 = p_{T,1}/m_H$", "x2": r"$x_2 = p_{T,2}/m_H$", "delta_phi": r"$\Delta\phi_{jj}$",
          "delta_eta": r"$\Delta\eta_{jj}$", "eta1": r"$\eta_1$", "eta2": r"$\eta_2$", "m_jj": r"$m_{jj}$ [GeV]",
          "pt_h": r"$p_{T,H}$ [GeV]", "y_h": r"$y_H$"}
SCORE = r"score $t$ [TeV$^2$]"


def score_vs_observables(data: Mapping[str, np.ndarray], names: Sequence[str], path: str | os.PathLike[str]) -> None:
    """The score against each observable: 2D histogram (log colour) with the mean score per bin."""
    t = data["t"]
    lo, hi = np.quantile(t, [0.005, 0.995])
    cols = 3
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 5 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        o = data[name]
        xlo, xhi = np.quantile(o, [0.005, 0.995])
        ax.hist2d(o, t, bins=[40, 40], range=[[xlo, xhi], [lo, hi]], cmap="viridis", norm="log")
        edges = np.linspace(xlo, xhi, 21)
        idx = np.digitize(o, edges) - 1
        ok = (idx >= 0) & (idx < 20)
        mean = np.bincount(idx[ok], weights=t[ok], minlength=20) / np.maximum(np.bincount(idx[ok], minlength=20), 1)
        ax.plot(0.5 * (edges[1:] + edges[:-1]), mean, "o-", color="red", ms=4, label="mean")
        ax.set_xlabel(LABELS.get(name, name))
        ax.set_ylabel(SCORE, fontsize=16)
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=12)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def pareto_front(front: Sequence[Mapping[str, Any]], path: str | os.PathLike[str]) -> None:
    """Normalised MSE against complexity of the front (refitted constants)."""
    fig, ax = plt.subplots(figsize=(9, 6))
    c = [e["complexity"] for e in front]
    m = [e["mse_over_var"] for e in front]
    ax.step(c, m, where="post", color="grey")
    ax.plot(c, m, "o", color="C0", label="Pareto front (refitted)")
    ax.set_yscale("log")
    ax.set_xlabel("complexity")
    save(fig, ax, path, "MSE / Var(t)")


def residuals(t: np.ndarray, prediction: np.ndarray, delta_phi: np.ndarray, formula: str, path: str | os.PathLike[str]) -> None:
    """Residuals ``t - formula``: their distribution, and against delta_phi."""
    res = t - prediction
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(14, 6))
    lim = np.quantile(np.abs(res), 0.995) or 1.0
    a1.hist(res, bins=60, range=(-lim, lim), histtype="step", color="C0")
    a1.set_xlabel(r"$t - t_{\mathrm{formula}}$ [TeV$^2$]")
    a1.set_ylabel("events")
    a1.set_yscale("log")
    a2.hist2d(delta_phi, res, bins=[40, 40], range=[[-np.pi, np.pi], [-lim, lim]], cmap="viridis", norm="log")
    a2.set_xlabel(LABELS["delta_phi"])
    a2.set_ylabel(r"$t - t_{\mathrm{formula}}$ [TeV$^2$]")
    fig.suptitle(formula[:90], fontsize=12)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def likelihood_curves(curves: Mapping[str, Callable[[float], float]], width: float, path: str | os.PathLike[str],
                      title: str = "") -> None:
    """Expected ``-2 Delta ln L`` against ``f`` per observable, with the 68 % and 95 % CL lines."""
    f = np.linspace(-2.5 * width, 2.5 * width, 201)
    fig, ax = plt.subplots(figsize=(10, 7))
    for i, (label, q) in enumerate(curves.items()):
        ax.plot(f, [q(v) for v in f], label=label, lw=2 if i < 2 else 1.2, ls="-" if i < 8 else "--")
    for level in (1.0, 3.84):
        ax.axhline(level, color="grey", lw=0.8, ls=":")
    ax.set_ylim(0, 8)
    ax.set_xlabel(r"$f_{W\tilde W}/\Lambda^2$ [TeV$^{-2}$]")
    ax.legend(fontsize=10, ncol=2)
    save(fig, ax, path, r"expected $-2\,\Delta\ln L$", title)
