"""Figures shared by every stage: CMS-style (mplhep) histogram overlays written as PNG."""

from __future__ import annotations

import os
from collections.abc import Mapping

import hist
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mplhep  # noqa: E402

plt.style.use(mplhep.style.CMS)


def overlay(histograms: Mapping[str, hist.Hist], path: str | os.PathLike[str], xlabel: str, title: str = "",
            density: bool = True, logy: bool = False) -> None:
    """Draw 1D histograms (label -> Hist) on one axis and save to ``path``."""
    fig, ax = plt.subplots(figsize=(8, 6))
    for label, h in histograms.items():
        if h.values().sum() > 0:
            mplhep.histplot(h, ax=ax, label=label, density=density, histtype="step", yerr=True)
    ax.set_xlabel(xlabel)
    if logy:
        ax.set_yscale("log")
    save(fig, ax, path, "normalised" if density else "events", title)


def panels(groups: Mapping[str, Mapping[str, hist.Hist]], path: str | os.PathLike[str], title: str = "", density: bool = True) -> None:
    """One panel per observable (x label -> {label -> Hist}), side by side, saved to ``path``."""
    fig, axes = plt.subplots(1, len(groups), figsize=(7 * len(groups), 6))
    for ax, (xlabel, histograms) in zip(np.atleast_1d(axes), groups.items()):
        for label, h in histograms.items():
            if h.values().sum() > 0:
                mplhep.histplot(h, ax=ax, label=label, density=density, histtype="step", yerr=True)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("normalised" if density else "events")
        ax.legend(fontsize=14)
    if title:
        fig.suptitle(title, fontsize=16)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def ratio_grid(n: int, max_cols: int, cell_size: tuple[float, float], ratio_height: float = 1.0,
               hspace: float = 0.35, wspace: float = 0.35) -> tuple[plt.Figure, list[tuple[plt.Axes, plt.Axes]]]:
    """A figure of ``n`` cells, row by row in at most ``max_cols`` columns, each a main axis above a ratio
    axis (heights 3 : ``ratio_height``) that shares its x axis; ``cell_size`` (width, height) in inches."""
    ncol = min(max_cols, n)
    nrow = -(-n // ncol)
    fig = plt.figure(figsize=(cell_size[0] * ncol, cell_size[1] * nrow))
    grid = fig.add_gridspec(nrow, ncol, hspace=hspace, wspace=wspace)
    axes = []
    for i in range(n):
        cell = grid[divmod(i, ncol)].subgridspec(2, 1, height_ratios=[3, ratio_height], hspace=0.05)
        top = fig.add_subplot(cell[0])
        axes.append((top, fig.add_subplot(cell[1], sharex=top)))
    return fig, axes


def bars(labels: list[str], values: Mapping[str, list[float]], path: str | os.PathLike[str], ylabel: str, title: str = "") -> None:
    """Grouped bar chart (e.g. a cut-flow: cut labels x series), saved to ``path``."""
    fig, ax = plt.subplots(figsize=(9, 6))
    x = np.arange(len(labels))
    width = 0.8 / max(len(values), 1)
    for i, (name, vals) in enumerate(values.items()):
        ax.bar(x + i * width - 0.4 + width / 2, vals, width, label=name)
    ax.set_xticks(x, labels, rotation=20, fontsize=12)
    save(fig, ax, path, ylabel, title)


def save(fig: plt.Figure, ax: plt.Axes, path: str | os.PathLike[str], ylabel: str, title: str = "") -> None:
    """Label, add the legend and title, write ``path`` (PNG) and close the figure."""
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=16, loc="right")
    if ax.get_legend_handles_labels()[0]:  # an empty plot (no events of any input) gets no legend
        ax.legend(fontsize=14)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
