"""How optimal is an observable? Fisher information captured and expected limits on ``f``.

Every event carries ``A, B, C`` with ``|M|^2(f) = A + f B + f^2 C``, so it is reweighted exactly to
any ``f`` by ``w(f) = 1 + f t + f^2 r`` with ``t = B/A`` (the score, TeV^2) and ``r = C/A``.
For SM events (``f = 0``) the score has ``E[t] = 0`` and the Fisher information per event is
``Var(t)``; the estimators below use the sample's centred score ``t - mean(t)``.

* Linear use of an observable ``O`` (its mean): ``I_O / I = Cov(t, O)^2 / (Var(O) Var(t)) = corr(t, O)^2``.
* Histogram of ``O`` in bins ``b`` with probabilities ``P_b``: ``I_O / I = sum_b E[t 1_b]^2 / P_b / Var(t)``;
  the loss is the variance of ``t`` inside each bin (MadMiner's ``histo_information`` computes the
  same at ``f = 0``). The plug-in estimate is biased upwards by ``sum_b Var_b(t) / N``; that term
  is subtracted. Bins are quantiles of ``O`` (equal SM probability).
* Calibrated use (how an analysis uses a formula as its observable): ``g(O) = E[t | O]`` estimated by
  isotonic regression (monotone in ``O``), cross-fitted over two halves of the events (each half's
  ``g`` fitted on the other), then ``corr(t, g(O))^2``. For a monotone ``E[t | O]`` this is the
  most any function of ``O`` captures; a histogram's quantile bins and so its limits do not change
  under a monotone ``g``.
* Expected limits: the expected counts per bin are ``n_b(f) = L sigma / N sum_(i in b) w_i(f)``; the
  Asimov data are ``n_b(0)``, and ``q(f) = 2 sum_b [n_b(f) - n_b(0) + n_b(0) ln(n_b(0) / n_b(f))]``
  (Poisson, normalisation included). The intervals are ``q(f) < 1`` (68 % CL) and ``q(f) < 3.84``
  (95 % CL), by Wilks. The unbinned reference is the exact per-event likelihood,
  ``q(f) = 2 L sigma E_0[w(f) - 1 - ln w(f)]``.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from scipy.optimize import brentq

from ..config import default_section
from ..errors import InputError
from ..stats import bin_index

log = logging.getLogger("lhcchain")

#: ``-2 ln lambda`` thresholds of one parameter: 68.27 % and 95 % CL.
Q_THRESHOLDS = {"68": 1.0, "95": 3.841458820694124}
#: 1 fb^-1 in pb^-1.
INVERSE_FB_TO_PB = 1.0e3


def _centred(t: np.ndarray) -> np.ndarray:
    t = np.asarray(t, dtype=np.float64)
    return t - t.mean()


def linear_information(t: np.ndarray, o: np.ndarray) -> float:
    """Fraction of the Fisher information an observable used linearly captures: ``corr(t, O)^2``."""
    o = np.asarray(o, dtype=np.float64)
    if np.std(o) == 0:
        return 0.0
    return float(np.corrcoef(t, o)[0, 1] ** 2)


def calibrated_information(t: np.ndarray, o: np.ndarray, seed: int = 0) -> float:
    """Fraction of the Fisher information captured by the isotonic calibration ``E[t | O]`` of ``O``
    (module doc; two-fold cross-fitted with a permutation drawn from ``seed``)."""
    from sklearn.isotonic import IsotonicRegression

    t, o = np.asarray(t, dtype=np.float64), np.asarray(o, dtype=np.float64)
    if np.std(o) == 0:
        return 0.0
    half = np.random.default_rng(seed).permutation(len(t)) < len(t) // 2
    g = np.empty_like(t)
    for fit, apply in ((half, ~half), (~half, half)):
        with warnings.catch_warnings():  # "auto" warns when O and t are uncorrelated (a CP-even O): expected
            warnings.simplefilter("ignore", UserWarning)
            iso = IsotonicRegression(increasing="auto", out_of_bounds="clip").fit(o[fit], t[fit])
        g[apply] = iso.predict(o[apply])
    return linear_information(t, g)


def quantile_edges(o: np.ndarray, bins: int) -> np.ndarray:
    """``bins + 1`` edges at the quantiles of ``o`` (duplicates of discrete values merged)."""
    inner = np.unique(np.quantile(np.asarray(o, dtype=np.float64), np.linspace(0.0, 1.0, bins + 1)))[1:-1]
    return np.concatenate([[-np.inf], inner, [np.inf]])


def histogram_information(t: np.ndarray, o: np.ndarray, bins: int) -> float:
    """Fraction of the Fisher information a histogram of ``O`` (``bins`` quantile bins) captures
    (module doc; bias-corrected, so it may fall slightly below 0 for an uninformative ``O``)."""
    tc = _centred(t)
    idx = bin_index(np.asarray(o, dtype=np.float64), quantile_edges(o, bins))
    n = len(tc)
    count = np.bincount(idx, minlength=idx.max() + 1).astype(np.float64)
    total = np.bincount(idx, weights=tc, minlength=len(count))
    total2 = np.bincount(idx, weights=tc * tc, minlength=len(count))
    filled = count > 0
    mean = np.where(filled, total / np.maximum(count, 1), 0.0)
    within = np.where(count > 1, (total2 - count * mean**2) / np.maximum(count - 1, 1), 0.0)
    captured = np.sum(total[filled] ** 2 / (n * count[filled])) - np.sum(within[filled]) / n
    return float(captured / np.mean(tc * tc))


def _crossing(q: Callable[[float], float], threshold: float, direction: float, scale: float) -> float:
    """The first ``f`` from 0 in ``direction`` with ``q(f) = threshold`` (bracketed by doubling from ``scale``)."""
    lo, hi = 0.0, direction * scale
    for _ in range(60):
        if q(hi) >= threshold:
            return brentq(lambda f: q(f) - threshold, lo, hi, xtol=1e-6 * scale, rtol=1e-10)
        lo, hi = hi, 2.0 * hi
    return direction * math.inf


def intervals(q: Callable[[float], float], scale: float) -> dict[str, list[float]]:
    """68 % and 95 % CL intervals ``[lo, hi]`` of ``f`` where ``q(f)`` stays below the thresholds;
    ``scale``: a first guess of the interval's half-width (TeV^-2)."""
    return {f"cl{k}": [_crossing(q, v, -1.0, scale), _crossing(q, v, 1.0, scale)] for k, v in Q_THRESHOLDS.items()}


def binned_q(o: np.ndarray, t: np.ndarray, r: np.ndarray, expected: float, bins: int) -> Callable[[float], float]:
    """``q(f)`` of the Asimov binned likelihood of ``O`` (module doc); ``expected``: SM events ``L sigma``."""
    idx = bin_index(np.asarray(o, dtype=np.float64), quantile_edges(o, bins))
    per_event = expected / len(t)
    n0 = per_event * np.bincount(idx).astype(np.float64)
    s1 = per_event * np.bincount(idx, weights=t, minlength=len(n0))
    s2 = per_event * np.bincount(idx, weights=r, minlength=len(n0))
    keep = n0 > 0
    n0, s1, s2 = n0[keep], s1[keep], s2[keep]

    def q(f: float) -> float:
        nf = np.maximum(n0 + f * s1 + f * f * s2, 1e-300)
        return float(2.0 * np.sum(nf - n0 + n0 * np.log(n0 / nf)))

    return q


def unbinned_q(t: np.ndarray, r: np.ndarray, expected: float) -> Callable[[float], float]:
    """``q(f)`` of the exact unbinned per-event likelihood (module doc)."""

    def q(f: float) -> float:
        w = np.maximum(1.0 + f * t + f * f * r, 1e-300)
        return float(2.0 * expected * np.mean(w - 1.0 - np.log(w)))

    return q


def expected_events(cross_section_pb: float, luminosity_fb: float, branching_ratio: float) -> float:
    """SM events ``L sigma BR`` at ``luminosity_fb`` (fb^-1) for ``cross_section_pb`` (pb)."""
    if not cross_section_pb > 0:
        raise InputError(f"symbolic: the events' cross-section must be positive, got {cross_section_pb} pb")
    return cross_section_pb * branching_ratio * luminosity_fb * INVERSE_FB_TO_PB


def evaluate_observable(o: np.ndarray, t: np.ndarray, r: np.ndarray, expected: float, bins: int) -> dict[str, Any]:
    """Captured information (linear, calibrated and histogram) and expected intervals of one observable."""
    scale = 1.0 / math.sqrt(max(expected * float(np.var(t)), 1e-300))  # Fisher estimate of the 68 % half-width
    return {"information_linear": linear_information(t, o), "information_calibrated": calibrated_information(t, o),
            "information_histogram": histogram_information(t, o, bins), **intervals(binned_q(o, t, r, expected, bins), scale)}


def train_sally(x_train: np.ndarray, t_train: np.ndarray, x_val: np.ndarray, t_val: np.ndarray,
                settings: Mapping[str, Any], checkpoint: str | os.PathLike[str], seed: int) -> Callable[[np.ndarray], np.ndarray]:
    """A SALLY network (arXiv:1805.00020): an MLP regressing the score on the observables with the MSE
    loss, trained by :class:`lhcchain.training.Trainer` on standardised inputs; returns its predictor."""
    from ..generate.models import mlp
    from ..training import Trainer

    torch.manual_seed(int(seed))
    mean, std = x_train.mean(0), x_train.std(0) + 1e-12
    t_scale = float(t_train.std()) or 1.0

    def features(x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor((x - mean) / std, dtype=torch.float32)

    xt, yt = features(x_train), torch.as_tensor(t_train / t_scale, dtype=torch.float32)
    xv, yv = features(x_val), torch.as_tensor(t_val / t_scale, dtype=torch.float32)
    model = mlp(x_train.shape[1], int(settings["hidden"]), int(settings["layers"]), 1)
    # a caller leaving weight_decay out gets the default config's symbolic.evaluation.sally.weight_decay
    decay = settings["weight_decay"] if "weight_decay" in settings else default_section("symbolic.evaluation.sally")["weight_decay"]
    opt = torch.optim.AdamW(model.parameters(), lr=float(settings["lr"]), weight_decay=float(decay))
    meta = {"settings": dict(settings), "mean": mean.tolist(), "std": std.tolist(), "t_scale": t_scale}
    trainer = Trainer("symbolic SALLY", model, opt, settings, meta, checkpoint, match=("settings",), seed=seed, log=log)

    def val_loss() -> float:
        with torch.no_grad():
            return float(((model(xv).squeeze(-1) - yv) ** 2).mean())

    trainer.run(lambda: torch.arange(len(xt)), lambda idx: ((model(xt[idx]).squeeze(-1) - yt[idx]) ** 2).mean(), val_loss)
    trainer.finish()
    model.eval()

    def predict(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(features(x)).squeeze(-1).double().numpy() * t_scale

    return predict
