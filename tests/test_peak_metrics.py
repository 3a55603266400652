"""Known-input tests of the peak and ratio figures: samples drawn from a known Breit-Wigner, Voigt or
Gaussian shape, and a perfect generator, against truths computed here (not by the code under test).

* Voigt FWHM: found numerically as the half-maximum point of ``scipy.special.voigt_profile``
  (not Olivero's approximation, which :func:`lhcchain.generate.evaluate.fwhm` uses).
* Peak position, width and their errors: :func:`lhcchain.stats.fit_peak` and
  :func:`lhcchain.generate.evaluate.z_peak` on 10^5-event samples, within 4 of their own errors.
* Core width: :func:`lhcchain.stats.core_width` of a Gaussian is its sigma.
* Ratio pulls (:func:`lhcchain.generate.evaluate.compare`): for a perfect generator every pull is
  |N(0, 1)|, so the largest of k is distributed as (2 Phi(x) - 1)^k.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize, special, stats

from lhcchain.generate.evaluate import compare, fwhm, z_peak
from lhcchain.stats import core_width, fit_peak

M_Z, GAMMA_Z = 91.1876, 2.4952


def voigt_fwhm(sigma: float, gamma: float) -> float:
    """FWHM of a Voigt profile (Gaussian sigma, Lorentzian half-width gamma), by root finding."""
    peak = special.voigt_profile(0.0, sigma, gamma)
    half = optimize.brentq(lambda x: special.voigt_profile(x, sigma, gamma) - peak / 2, 1e-9, 50 * (sigma + gamma))
    return 2 * half


def voigt_sample(rng: np.random.Generator, n: int, mass: float, gamma: float, sigma: float) -> np.ndarray:
    """Cauchy (half-width ``gamma``) plus Gaussian (``sigma``) draws around ``mass``."""
    return mass + gamma * rng.standard_cauchy(n) + sigma * rng.normal(size=n)


@pytest.mark.parametrize("sigma, gamma", [(1e-6, 1.2476), (1.5, 1.2476), (1.0, 0.1), (0.3, 2.0)])
def test_fwhm_of_voigt(sigma, gamma):
    """Olivero's formula (0.02 % accuracy) against the numerical half maximum; the pure Lorentzian limit is 2 gamma."""
    assert fwhm({"sigma": sigma, "gamma": gamma}) == pytest.approx(voigt_fwhm(sigma, gamma), rel=3e-4)
    if sigma < 1e-3:
        assert fwhm({"sigma": sigma, "gamma": gamma}) == pytest.approx(2 * gamma, rel=1e-5)


@pytest.mark.parametrize("sigma", [0.0, 1.5])
def test_fit_peak_recovers_breit_wigner_and_voigt(sigma):
    """Free Lorentzian width: the mean of a known Z-like shape within 4 fit errors, sigma, gamma and
    the FWHM near the shape's (numerical) FWHM. Over 40 seeds the mean pulls had width 0.91 / 0.97,
    gamma a spread of 0.6 / 1.3 % and the FWHM 0.9 / 0.6 % (sigma = 0 / 1.5 GeV)."""
    rng = np.random.default_rng(1 if sigma else 2)
    x = voigt_sample(rng, 100_000, M_Z, GAMMA_Z / 2, sigma)
    edges = np.linspace(81.0, 101.0, 81)
    counts, _ = np.histogram(x, edges)
    p = fit_peak(counts, edges)
    assert abs(p["mean"] - M_Z) < 4 * p["mean_err"] and p["mean_err"] < 0.02
    if sigma:
        assert abs(p["sigma"] - sigma) < 4 * p["sigma_err"] and p["sigma_err"] < 0.05
    else:  # sigma -> 0 sits at the boundary of |sigma|, where the fit error means nothing
        assert p["sigma"] < 0.05
    assert p["gamma"] == pytest.approx(GAMMA_Z / 2, rel=0.05)
    assert fwhm(p) == pytest.approx(voigt_fwhm(max(sigma, 1e-9), GAMMA_Z / 2), rel=0.03)
    # Gamma_Z fixed (the prepare stage's fit): the Gaussian width is the resolution
    fixed = fit_peak(counts, edges, gamma=GAMMA_Z / 2)
    assert fixed["gamma"] == GAMMA_Z / 2
    assert abs(fixed["mean"] - M_Z) < 4 * fixed["mean_err"]
    if sigma:
        assert abs(fixed["sigma"] - sigma) < 4 * fixed["sigma_err"] and fixed["sigma_err"] < 0.05
    else:
        assert fixed["sigma"] < 0.05


def test_fit_peak_errors_of_weighted_events():
    """Exponential event weights (E[w^2] / E[w]^2 = 2): with the sum of squared weights per bin the
    mean's error is sqrt(2) times that of the same events unweighted (30 seeds: 1.409 +- 0.009),
    and the mean lies within 4 of it."""
    rng = np.random.default_rng(8)
    x = voigt_sample(rng, 50_000, M_Z, GAMMA_Z / 2, 1.0)
    w = rng.exponential(1.0, x.size)
    edges = np.linspace(81.0, 101.0, 81)
    counts, _ = np.histogram(x, edges, weights=w)
    sumw2, _ = np.histogram(x, edges, weights=w * w)
    weighted = fit_peak(counts, edges, sumw2, gamma=GAMMA_Z / 2)
    plain = fit_peak(np.histogram(x, edges)[0], edges, gamma=GAMMA_Z / 2)
    assert weighted["mean_err"] / plain["mean_err"] == pytest.approx(math.sqrt(2), rel=0.03)
    assert abs(weighted["mean"] - M_Z) < 4 * weighted["mean_err"]


def test_z_peak_shift_and_width_ratio():
    """Truth: Breit-Wigner of Gamma_Z; generated: shifted by +0.3 GeV and smeared by 1.5 GeV. The
    shift and the FWHM ratio come out within 4 of their errors (FWHM errors from Poisson replicas)."""
    rng = np.random.default_rng(3)
    truth = voigt_sample(rng, 100_000, M_Z, GAMMA_Z / 2, 0.0)
    gen = voigt_sample(rng, 100_000, M_Z + 0.3, GAMMA_Z / 2, 1.5)
    out = z_peak(truth, gen, seed=4)
    t, g = out["truth"], out["generated"]
    assert abs(out["mean_shift_gev"] - 0.3) < 4 * math.hypot(t["mean_err"], g["mean_err"])
    for res, sigma in ((t, 1e-9), (g, 1.5)):
        assert 0 < res["fwhm_err"] < 0.02 * res["fwhm"]
        assert abs(res["fwhm"] - voigt_fwhm(sigma, GAMMA_Z / 2)) < 4 * res["fwhm_err"]
    ratio = voigt_fwhm(1.5, GAMMA_Z / 2) / GAMMA_Z
    ratio_err = out["fwhm_ratio"] * math.hypot(t["fwhm_err"] / t["fwhm"], g["fwhm_err"] / g["fwhm"])
    assert abs(out["fwhm_ratio"] - ratio) < 4 * ratio_err


def test_core_width_of_a_gaussian():
    """Half the 15.87-84.13 % interquantile range of a Gaussian histogram is its sigma (error of a
    quantile difference, ~1.1 sigma / sqrt(n) for n = 40 000: 0.6 %)."""
    rng = np.random.default_rng(5)
    edges = np.linspace(-0.2, 0.2, 401)
    counts, _ = np.histogram(rng.normal(0.01, 0.02, 40_000), edges)
    assert core_width(counts, edges) == pytest.approx(0.02, rel=0.025)
    # a radiative tail on one side moves the core width little, the RMS a lot
    tail = np.concatenate([rng.normal(0.0, 0.02, 36_000), -rng.exponential(0.08, 4000)])
    counts, _ = np.histogram(np.clip(tail, -0.1999, 0.1999), edges)
    assert core_width(counts, edges) < 1.2 * 0.02 < np.std(tail)


def test_ratio_pulls_of_a_perfect_generator():
    """Truth and generated drawn from one shape: the largest pull over the checked bins follows the
    distribution of the largest of k |N(0, 1)| (median and 90 % quantile over 300 toys), and the
    largest |ratio - 1| follows the perfect-generator floor that ``compare`` reports."""
    rng = np.random.default_rng(6)
    edges = np.linspace(-2.0, 2.0, 21)
    pulls, devs, floors = [], [], []
    for _ in range(300):
        truth, gen = rng.normal(size=20_000), rng.normal(size=60_000)
        c = compare(truth, gen, np.zeros(len(gen), np.int64), edges, 100.0, rng)
        k = c["metrics"]["bins_checked"]
        pulls.append(c["metrics"]["max_pull"])
        devs.append(c["metrics"]["max_abs_dev"])
        floors.append(np.median(c["toy_max_dev"]))
    assert k == 20
    for q in (0.5, 0.9):
        expected = stats.norm.ppf(0.5 * (1 + q ** (1 / k)))  # (2 Phi(x) - 1)^k = q
        # quantile of 300 toys: binomial error sqrt(q (1 - q) / 300) in probability, < 0.03
        assert np.mean(np.array(pulls) <= expected) == pytest.approx(q, abs=0.09)
    assert np.median(devs) == pytest.approx(np.median(floors), rel=0.08)
