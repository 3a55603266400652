"""Figures of the madnis stage: weight distributions, channel weights, unweighted distributions."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import hist
import numpy as np
from madnis.integrator import SampleBatch

from .. import plotting


def weights(samples: Mapping[str, SampleBatch], path: Path, name: str) -> None:
    """Weight distributions ``w / <w>`` of the methods (non-zero weights, log-log axes)."""
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


def channels(table: Mapping[str, Mapping[str, float]], path: Path, name: str) -> None:
    """Per channel: mean prior and learned channel weight and the share of the calls."""
    labels = list(table)
    series = {key: [table[c][key] for c in labels] for key in ("prior_alpha", "learned_alpha", "call_fraction")}
    plotting.bars(labels, series, path, "mean channel weight / call fraction", title=name)


def distributions(observables: Mapping[str, Mapping[str, np.ndarray]], path: Path, name: str) -> None:
    """Unweighted distributions per observable, one curve per sample (``exact`` first)."""
    groups = {}
    for key in observables["exact"]:
        lo, hi = np.quantile(observables["exact"][key], [0.001, 0.999])
        axis = hist.axis.Regular(30, lo, hi if hi > lo else lo + 1)
        groups[key] = {}
        for label, obs in observables.items():
            h = hist.Hist(axis)
            h.fill(obs[key])
            groups[key][f"{label} |M|^2"] = h
    plotting.panels(groups, path, title=f"{name}: unweighted events")
