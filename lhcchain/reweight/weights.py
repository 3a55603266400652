"""Weights you can trust: checks and summaries of classifier weights ``w`` on weighted source events.

An event's total weight is ``g * w``, with ``g`` its generator weight (negative ones included). The
classifier's ``w = D / (1 - D)`` is multiplied by ``sum(g_target) / sum(g_source)`` so that the
reweighted source carries the target's total weight; ``normalisation = sum(g_source * w) / sum(g_target)``
is then 1 for a calibrated classifier. Summaries (:func:`summarise`):

* quantiles of ``w`` (``QUANTILES``) and its mean;
* the ``LARGEST`` largest weights with their event keys;
* the effective sample size ``(sum g w)^2 / sum (g w)^2``, before (``w = 1``) and after, and their ratio;
* the fraction of events with ``w`` above the configured ``clip`` and the share of the total weight
  ``sum(g w)`` they carry. Nothing is clipped: the tail is counted.

A NaN or infinite weight stops the run (:func:`check_finite`) with the pair and the event named.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import InputError

QUANTILES = (0.001, 0.01, 0.16, 0.5, 0.84, 0.99, 0.999)
LARGEST = 10


def check_finite(w: np.ndarray, pair: str, keys: Mapping[str, np.ndarray]) -> None:
    """InputError naming ``pair`` and the first event (by its ``keys`` columns) whose weight is NaN or infinite."""
    bad = np.flatnonzero(~np.isfinite(w))
    if bad.size:
        i = int(bad[0])
        key = ", ".join(f"{k}={v[i]}" for k, v in keys.items())
        raise InputError(f"reweight pair {pair!r}: {bad.size} weights are NaN or infinite; first: event {i} ({key}) has w = {w[i]}")


def effective_sample_size(total: np.ndarray) -> float:
    """``(sum t)^2 / sum t^2`` of per-event total weights ``t``."""
    return float(total.sum() ** 2 / np.sum(total**2))


def summarise(w: np.ndarray, g_source: np.ndarray, g_target: np.ndarray, clip: float,
              keys: Mapping[str, np.ndarray] | None = None) -> dict[str, Any]:
    """Summary of the weights ``w`` of source events with generator weights ``g_source`` (module doc)."""
    total = g_source * w
    beyond = w > clip
    out: dict[str, Any] = {
        "n_events": int(len(w)),
        "mean": float(np.mean(w)),
        "quantiles": {f"{100 * q:g}%": float(v) for q, v in zip(QUANTILES, np.quantile(w, QUANTILES))},
        "min": float(w.min()), "max": float(w.max()),
        "ess": effective_sample_size(total),
        "ess_unweighted": effective_sample_size(np.asarray(g_source, np.float64)),
        "clip": float(clip),
        "fraction_beyond_clip": float(beyond.mean()),
        "n_beyond_clip": int(beyond.sum()),
        "weight_share_beyond_clip": float(total[beyond].sum() / total.sum()),
        "normalisation": float(total.sum() / np.sum(g_target)),
    }
    out["ess_fraction"] = out["ess"] / out["ess_unweighted"]
    top = np.argsort(w)[::-1][:LARGEST]
    out["largest"] = [{"w": float(w[i]), **{k: v[i].item() for k, v in (keys or {}).items()}} for i in top]
    return out
