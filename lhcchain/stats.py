"""Small statistics helpers shared by stage evaluations, working on histograms (bounded memory)."""

from __future__ import annotations

import numpy as np
from scipy.optimize import curve_fit
from scipy.special import voigt_profile

Z_MASS = 91.1876  # GeV (PDG)
Z_HALF_WIDTH = 2.4952 / 2  # GeV: the Z's Breit-Wigner half width, the Lorentzian part fit_peak fixes for a Z peak


def fit_peak(counts: np.ndarray, edges: np.ndarray, sumw2: np.ndarray | None = None, gamma: float | None = None) -> dict[str, float]:
    """Fit a Voigt profile (Breit-Wigner of half-width ``gamma`` convolved with a Gaussian ``sigma``) to a histogram.

    ``gamma`` fixes the Lorentzian half-width (e.g. Gamma_Z/2), leaving the Gaussian width as the
    resolution; ``None`` fits it. Returns ``mean, sigma, gamma`` (units of the axis) with errors.
    """
    counts = np.asarray(counts, dtype=np.float64)
    centres = 0.5 * (edges[1:] + edges[:-1])
    width = float(edges[1] - edges[0])
    err = np.sqrt(np.maximum(counts if sumw2 is None else sumw2, 1.0))
    p0 = [counts.sum() * width, centres[np.argmax(counts)], 1.0]

    if gamma is None:
        def model(x: np.ndarray, n: float, mu: float, sig: float, gam: float) -> np.ndarray:
            return n * voigt_profile(x - mu, abs(sig), abs(gam))
        p0.append(1.25)
    else:
        def model(x: np.ndarray, n: float, mu: float, sig: float) -> np.ndarray:
            return n * voigt_profile(x - mu, abs(sig), gamma)
    popt, pcov = curve_fit(model, centres, counts, p0=p0, sigma=err, absolute_sigma=True, maxfev=20000)
    perr = np.sqrt(np.diag(pcov))
    return {
        "mean": float(popt[1]), "mean_err": float(perr[1]),
        "sigma": float(abs(popt[2])), "sigma_err": float(perr[2]),
        "gamma": float(abs(popt[3])) if gamma is None else float(gamma),
        "entries": float(counts.sum()),
    }


def hist_quantiles(counts: np.ndarray, edges: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Quantiles ``q`` (in [0, 1]) of a histogram, interpolating linearly within bins."""
    cdf = np.concatenate([[0.0], np.cumsum(np.maximum(counts, 0.0))])
    if cdf[-1] <= 0:
        return np.full(np.shape(q), np.nan)
    return np.interp(np.asarray(q) * cdf[-1], cdf, edges)


def core_width(counts: np.ndarray, edges: np.ndarray) -> float:
    """Robust Gaussian-equivalent width of a histogram: half its 15.87-84.13 % interquantile range."""
    lo, hi = hist_quantiles(counts, edges, np.array([0.15865, 0.84135]))
    return float(0.5 * (hi - lo))


def bin_index(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin of each value in right-open bins ``edges``; under- and overflow go into the outer bins."""
    return np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 2)


def weighted_histogram(values: np.ndarray, weights: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sums of weights and of squared weights per bin (:func:`bin_index`); NaN values are dropped."""
    ok = np.isfinite(values)
    idx, w, n = bin_index(values[ok], edges), weights[ok], len(edges) - 1
    return np.bincount(idx, w, n), np.bincount(idx, w * w, n)


def chi2_ndf(h: np.ndarray, var_h: np.ndarray, t: np.ndarray, var_t: np.ndarray) -> tuple[float, int]:
    """chi2 of two histograms with variances over the bins whose combined variance is non-zero, and
    ndf = those bins - 1 (at least 1)."""
    var = var_h + var_t
    used = var > 0
    return float(np.sum((h[used] - t[used]) ** 2 / var[used])), max(int(used.sum()) - 1, 1)
