"""Closure of a reweighting: feature histograms of source, reweighted source and target, chi2/ndf before and after.

Per feature: bins over the 0.5-99.5 % range of both samples' finite values (``bins`` regular bins; unit
bins for integer features with at most ``bins`` distinct values); values outside go to the first or
last bin, absent values (NaN) to none. Histograms hold sums of event weights and of their squares:
target ``g_t``, source ``g_s``, reweighted source ``g_s * w``. Source and reweighted source are scaled to
the target's total weight over *all* events (so a changed fraction of events with an object shows).
``chi2 = sum_i (h_i - t_i)^2 / (var h_i + var t_i)`` over the bins with entries, ``ndf`` = those bins
minus one (the normalisation). The reweighted variance counts ``sum (g w)^2`` only: neither the
classifier's own uncertainty nor the correlation of weights fitted on the same events.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .. import plotting
from ..stats import chi2_ndf, weighted_histogram

plt = plotting.plt


def edges_for(values: Sequence[np.ndarray], bins: int) -> np.ndarray:
    """Bin edges of one feature over all ``values`` (module doc)."""
    finite = np.concatenate([v[np.isfinite(v)] for v in values])
    if finite.size == 0:
        return np.array([-0.5, 0.5])
    uniq = np.unique(finite)
    if np.all(uniq == np.round(uniq)) and uniq.size <= bins:
        return np.arange(uniq[0] - 0.5, uniq[-1] + 1.0)
    lo, hi = np.quantile(finite, [0.005, 0.995])
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, bins + 1)


def compare(name: str, source: np.ndarray, target: np.ndarray, g_source: np.ndarray, g_target: np.ndarray, w: np.ndarray,
            bins: int) -> dict[str, Any]:
    """Histograms and chi2/ndf before and after reweighting of one feature (module doc)."""
    edges = edges_for([source, target], bins)
    t, vt = weighted_histogram(target, g_target, edges)
    out: dict[str, Any] = {"name": name, "edges": edges, "target": t, "target_var": vt}
    for key, weights in (("source", g_source), ("reweighted", g_source * w)):
        scale = g_target.sum() / weights.sum()
        h, vh = weighted_histogram(source, weights, edges)
        chi2, ndf = chi2_ndf(h * scale, vh * scale**2, t, vt)
        out.update({key: h * scale, f"{key}_var": vh * scale**2, f"{key}_chi2": chi2, f"{key}_ndf": ndf})
    return out


def figure(panels: Sequence[Mapping[str, Any]], labels: Mapping[str, str], path: str | os.PathLike[str], title: str) -> None:
    """Grid of per-feature panels: histograms on top, ratios to the target with statistical bands below."""
    with plt.rc_context({"xtick.minor.visible": False, "ytick.minor.visible": False}):
        fig, axes = plotting.ratio_grid(len(panels), 4, (5, 5.5))
        for i, ((top, bottom), c) in enumerate(zip(axes, panels)):
            e, t = c["edges"], c["target"]
            top.stairs(t, e, color="black", label="target")
            top.stairs(c["source"], e, color="grey", ls="--", label="source")
            top.stairs(c["reweighted"], e, color="tab:blue", label="reweighted")
            band = np.sqrt(c["reweighted_var"])
            top.stairs(c["reweighted"] + band, e, baseline=c["reweighted"] - band, fill=True, color="tab:blue", alpha=0.3)
            top.set_ylabel("weighted events", fontsize=11)
            top.tick_params(labelbottom=False, labelsize=9)
            top.set_title(f"$\\chi^2$/ndf {c['source_chi2'] / c['source_ndf']:.2f} $\\to$ {c['reweighted_chi2'] / c['reweighted_ndf']:.2f}",
                          fontsize=11)
            with np.errstate(divide="ignore", invalid="ignore"):
                rt = np.nan_to_num(np.sqrt(c["target_var"]) / t, nan=0.0, posinf=0.0)
                rs = np.nan_to_num(c["source"] / t, nan=1.0, posinf=1.0)
                rr = np.nan_to_num(c["reweighted"] / t, nan=1.0, posinf=1.0)
                er = np.nan_to_num(band / t, nan=0.0, posinf=0.0)
            bottom.stairs(1 + rt, e, baseline=1 - rt, fill=True, color="grey", alpha=0.4, label="target stat.")
            bottom.stairs(rs, e, color="grey", ls="--")
            bottom.stairs(rr + er, e, baseline=rr - er, fill=True, color="tab:blue", alpha=0.4, label="reweighted stat.")
            bottom.stairs(rr, e, color="tab:blue")
            bottom.axhline(1.0, color="black", lw=0.8)
            bottom.set_ylim(0.75, 1.25)
            bottom.set_xlabel(labels.get(c["name"], c["name"]), fontsize=11)
            bottom.set_ylabel("/ target", fontsize=10)
            bottom.tick_params(labelsize=9)
            if i == 0:
                top.legend(fontsize=9)
                bottom.legend(fontsize=7, ncol=2, loc="upper left")
        height = fig.get_figheight()
        fig.subplots_adjust(top=1 - 0.9 / height)
        fig.suptitle(title, fontsize=16, y=1 - 0.25 / height)
        fig.savefig(path, dpi=70)
        plt.close(fig)
