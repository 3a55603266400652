"""Density ratios and pass probabilities from the project's one classifier (:mod:`lhcchain.reweight.classifier`).

:func:`ratio` cross-fits target against source and returns ``p_target(x) / p_source(x)`` scaled by
``sum(w_target) / sum(w_source)`` (the classifier balances the classes by weight sums, so its
``D / (1 - D)`` is the ratio of normalised densities): out of fold for the source events, the
ensemble of the k fold networks for other events. :class:`PassProbability` turns the ratio of
passing to failing events into ``P(pass | x)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from ..io import derive_seed
from ..reweight.classifier import cross_fit, density_ratio


def ratio(x1: np.ndarray, w1: np.ndarray, x0: np.ndarray, w0: np.ndarray, settings: Mapping[str, Any], seed: int,
          device: torch.device, apply_to: np.ndarray | None = None, ensemble: int = 1, label: str = "unfold") -> tuple[np.ndarray, np.ndarray]:
    """Weights moving source ``x0`` onto target ``x1`` (module doc), averaged over ``ensemble`` cross-fits
    with different seeds: (out-of-fold weights of ``x0``, ensemble weights of ``apply_to``)."""
    norm = float(np.sum(w1) / np.sum(w0))
    oof, new = np.zeros(len(x0)), np.zeros(0 if apply_to is None else len(apply_to))
    for e in range(int(ensemble)):
        fit = cross_fit(x1, x0, w1, w0, settings=settings, seed=derive_seed(seed, "ensemble", e), device=device,
                        label=f"{label} {e + 1}/{ensemble}")
        oof += density_ratio(fit.logit[len(x1):])
        if apply_to is not None and len(apply_to):
            new += density_ratio(fit.predict_logit(apply_to))
    return norm * oof / ensemble, norm * new / ensemble


class PassProbability:
    """``P(pass | x)`` learned from events ``x`` with pass flags ``passed`` and weights ``w``: ``r / (1 + r)``
    with ``r`` the (weight-sum scaled) ratio of passing to failing events, from the cross-fitted
    ensemble; a constant when fewer than two events pass or fail."""

    def __init__(self, x: np.ndarray, passed: np.ndarray, w: np.ndarray, settings: Mapping[str, Any], seed: int, device: torch.device,
                 label: str = "pass probability") -> None:
        self.constant = None if passed.sum() >= 2 and (~passed).sum() >= 2 else float(np.sum(w[passed]) / np.sum(w))
        if self.constant is None:
            self.norm = float(np.sum(w[passed]) / np.sum(w[~passed]))
            self.fit = cross_fit(x[passed], x[~passed], w[passed], w[~passed], settings=settings, seed=seed, device=device, label=label)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.constant is not None:
            return np.full(len(x), self.constant)
        r = self.norm * density_ratio(self.fit.predict_logit(x))
        return r / (1.0 + r)
