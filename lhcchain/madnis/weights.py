"""Figures of merit of weighted samples and their unweighting.

Every method (MadNIS, VEGAS, flat) hands over the weights of ``N`` integrand calls, zeros for points
outside the cuts included, with the channel each point was drawn in. A point of channel ``c`` carries
``w = (N / N_c) alpha_c f / q`` (MadNIS's :meth:`~madnis.integrator.Integrator.sample` convention), so
that ``sigma = mean(w)`` for any allocation ``N_c`` of the calls to the channels.

* cross-section and error: the stratified estimate ``sigma = sum_c (N_c / N) mean_c(w)``,
  ``err^2 = sum_c (N_c / N)^2 var_c(w) / N_c``;
* relative standard deviation ``err sqrt(N) / sigma`` (MadNIS's ``rel_stddev``; independent of N);
* unweighting efficiency ``<w> / w_max`` over all calls (so it includes the cut efficiency), with
  ``w_max`` the median, over bootstrap replicas of the ``N`` weights, of the replica's maximum
  (arXiv:2001.10028, computed by ``madnis.integrator.unweighting_metrics``; ``overweight_rate`` is
  the fraction of weights above it). This is the figure compared between methods. The bootstrap
  draws from its own torch generator state seeded with ``seed``, so the figures of one sample do not
  depend on what else the process drew before.
* for writing events, ``w_max`` is instead chosen by truncation (it must not grow with ``N``): the
  smallest ``w_max`` with ``sum_i max(w_i - w_max, 0) <= epsilon sum_i w_i``, i.e. the overweights
  carry at most a fraction ``epsilon`` of the cross-section. The efficiency with that ``w_max``
  (the accepted fraction ``<min(1, w / w_max)>``, overweights capped),
  the fraction of events above it and the truncated cross-section fraction are reported too.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from madnis.integrator import unweighting_metrics

from ..errors import InputError

REPLICAS = 100
"""Bootstrap replicas of the N weights for the median-maximum ``w_max`` (memory 8 REPLICAS N bytes)."""


def truncated_maximum(weights: np.ndarray, epsilon: float) -> float:
    """Smallest ``w_max`` whose overweights carry at most ``epsilon`` of ``sum(weights)`` (module doc).

    ``weights`` >= 0; ``epsilon = 0`` gives the plain maximum.
    """
    w = np.sort(np.asarray(weights, dtype=np.float64)[weights > 0])[::-1]
    if w.size == 0:
        return 0.0
    if epsilon <= 0:
        return float(w[0])
    budget = epsilon * w.sum()
    # with the m largest weights above the threshold t: sum_(i<m) (w_i - t) = budget -> t = (c_m - budget) / m
    m = np.arange(1, w.size + 1)
    t = (np.cumsum(w) - budget) / m
    below = np.append(w[1:], 0.0)
    valid = (t <= w) & (t >= below)
    return float(t[np.argmax(valid)]) if valid.any() else float(w[-1])


@dataclass
class WeightSummary:
    """Figures of merit of one method's weights (module doc); cross-sections in pb."""

    cross_section_pb: float
    error_pb: float
    rel_stddev: float
    unweighting_efficiency: float
    """``<w> / w_max``, ``w_max`` the bootstrap median maximum"""
    overweight_rate: float
    """fraction of weights above the bootstrap median maximum"""
    w_max_truncated_pb: float
    """``w_max`` by cross-section truncation (used to write events)"""
    unweighting_efficiency_truncated: float
    """accepted fraction of hit-or-miss unweighting with ``w_max_truncated_pb``: ``<min(1, w / w_max)>``"""
    overweight_fraction: float
    """fraction of the non-zero weights above ``w_max_truncated_pb``"""
    truncated_fraction: float
    """fraction of the cross-section above ``w_max_truncated_pb`` (at most ``epsilon``)"""
    cut_efficiency: float
    n_calls: int

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass
class Overweights:
    """Running tally of weights (>= 0, pb) against a threshold ``w_max``, batch by batch."""

    nonzero: int = 0
    over: int = 0
    total: float = 0.0
    excess: float = 0.0

    def add(self, weights: np.ndarray, w_max: float) -> None:
        w = np.asarray(weights, dtype=np.float64)
        self.nonzero += int((w > 0).sum())
        self.over += int((w > w_max).sum())
        self.total += float(w.sum())
        self.excess += float(np.clip(w - w_max, 0, None).sum())

    @property
    def overweight_fraction(self) -> float:
        """Fraction of the non-zero weights above ``w_max``."""
        return self.over / self.nonzero if self.nonzero else 0.0

    @property
    def truncated_fraction(self) -> float:
        """Fraction of the weights' sum above ``w_max``: ``sum max(w - w_max, 0) / sum w``."""
        return self.excess / self.total if self.total > 0 else 0.0


def stratified_estimate(weights: np.ndarray, channels: np.ndarray | None) -> tuple[float, float]:
    """Cross-section and error of ``weights`` (pb) drawn in ``channels``, stratified (module doc)."""
    w = np.asarray(weights, dtype=np.float64)
    n = w.size
    if n < 2:
        raise InputError(f"need at least 2 weights to summarise, got {n}")
    chans = np.zeros(n, dtype=np.int64) if channels is None else np.asarray(channels, dtype=np.int64)
    sigma, var = 0.0, 0.0
    for c in np.unique(chans):
        wc = w[chans == c]
        frac = wc.size / n
        sigma += frac * wc.mean()
        var += frac**2 * (wc.var(ddof=1) if wc.size > 1 else 0.0) / wc.size
    return float(sigma), math.sqrt(var)


def summarize(weights: np.ndarray, channels: np.ndarray | None, epsilon: float, seed: int) -> WeightSummary:
    """:class:`WeightSummary` of ``weights`` (one per call, pb) drawn in ``channels``; ``seed`` seeds the
    bootstrap of ``w_max`` (module doc)."""
    w = np.asarray(weights, dtype=np.float64)
    n = w.size
    sigma, error = stratified_estimate(w, channels)
    w_max = truncated_maximum(w, epsilon)
    tally = Overweights()
    tally.add(w, w_max)
    with torch.random.fork_rng(devices=[]):  # madnis draws the replicas from torch's global generator
        torch.manual_seed(seed)
        bootstrap = unweighting_metrics(torch.from_numpy(w), replica_count=REPLICAS)
    return WeightSummary(
        cross_section_pb=float(sigma),
        error_pb=error,
        rel_stddev=error * math.sqrt(n) / abs(sigma) if sigma else math.inf,
        unweighting_efficiency=bootstrap.uweff_before_cuts,
        overweight_rate=bootstrap.over_weight_rate,
        w_max_truncated_pb=w_max,
        unweighting_efficiency_truncated=float(np.minimum(w / w_max, 1.0).mean()) if w_max > 0 else 0.0,
        overweight_fraction=tally.overweight_fraction,
        truncated_fraction=tally.truncated_fraction,
        cut_efficiency=tally.nonzero / n,
        n_calls=n,
    )


def accept(weights: np.ndarray, w_max: float, rng: np.random.Generator) -> np.ndarray:
    """Hit-or-miss unweighting: True with probability ``min(1, w / w_max)``."""
    if w_max <= 0:
        return np.zeros(len(weights), dtype=bool)
    return rng.random(len(weights)) * w_max < np.asarray(weights)
