"""The comparison of two unweighted samples (:func:`lhcchain.madnis.unweighting.compare_samples`),
against Pearson's chi^2 of a 2 x k table written out, and on samples with a known answer."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from lhcchain.madnis.unweighting import compare_samples


def _samples(rng, n, shift=0.0):
    return {"x": rng.normal(shift, 1.0, n), "y": rng.exponential(1.0 + shift, n)}


def test_two_bins_by_hand():
    """Counts (10, 20) against (20, 10): every expected count is 15, chi^2 = 4 * 5^2 / 15 = 20/3 with
    one degree of freedom, whose survival function is erfc(sqrt(chi^2 / 2))."""
    a = {"x": np.repeat([0.0, 1.0], [10, 20])}
    b = {"x": np.repeat([0.0, 1.0], [20, 10])}
    result = compare_samples(a, b, bins=2)["x"]
    assert result["chi2"] == pytest.approx(20 / 3, rel=1e-12) and result["ndf"] == 1
    assert result["p_value"] == pytest.approx(math.erfc(math.sqrt(10 / 3)), rel=1e-9)


def test_unequal_sizes_against_the_homogeneity_formula():
    """chi^2 = sum_j (N_b a_j - N_a b_j)^2 / (N_a N_b (a_j + b_j)) over k bins, k - 1 degrees of freedom."""
    rng = np.random.default_rng(10)
    a, b = _samples(rng, 1500), _samples(rng, 2500, shift=0.05)
    result = compare_samples(a, b, bins=15)
    for key in a:
        edges = np.quantile(np.concatenate([a[key], b[key]]), np.linspace(0, 1, 16))
        ha, hb = np.histogram(a[key], edges)[0], np.histogram(b[key], edges)[0]
        na, nb = ha.sum(), hb.sum()
        chi2 = float(((nb * ha - na * hb) ** 2 / (na * nb * (ha + hb))).sum())
        assert result[key]["chi2"] == pytest.approx(chi2, rel=1e-9) and result[key]["ndf"] == 14
        assert result[key]["p_value"] == pytest.approx(stats.chi2.sf(chi2, 14), rel=1e-6)


def test_same_and_shifted():
    rng = np.random.default_rng(9)
    a, b = _samples(rng, 5000), _samples(rng, 5000)
    same = compare_samples(a, b)
    assert set(same) == {"x", "y"}
    assert all(v["p_value"] > 1e-3 and v["ndf"] == 19 for v in same.values())
    shifted = compare_samples(a, _samples(rng, 5000, shift=0.2))
    assert all(v["p_value"] < 1e-6 for v in shifted.values())


def test_p_values_are_uniform():
    rng = np.random.default_rng(11)
    p = [v["p_value"] for _ in range(150) for v in compare_samples(_samples(rng, 800), _samples(rng, 1200)).values()]
    assert stats.kstest(p, "uniform").pvalue > 1e-3
