"""Fisher information and Asimov limits against closed forms; the SALLY network on a known score."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import lambertw
from scipy.stats import norm

from lhcchain.symbolic.information import (
    Q_THRESHOLDS,
    binned_q,
    calibrated_information,
    histogram_information,
    intervals,
    linear_information,
    train_sally,
    unbinned_q,
)

from ..conftest import torch_threads

N = 200_000


def gaussian_pair(rho: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Standard bivariate normal (t, O) with correlation ``rho``."""
    rng = np.random.default_rng(seed)
    t = rng.standard_normal(N)
    return t, rho * t + math.sqrt(1 - rho**2) * rng.standard_normal(N)


def gaussian_histogram_information(rho: float, bins: int) -> float:
    """Closed form for equal-probability bins of O: E[t 1_b] = rho (phi(a_b) - phi(a_b+1)), P_b = 1/bins."""
    a = norm.ppf(np.linspace(0.0, 1.0, bins + 1))
    phi = norm.pdf(a)
    return float(rho**2 * np.sum((phi[:-1] - phi[1:]) ** 2) * bins)


@pytest.mark.parametrize("rho", [1.0, 0.6, 0.0])
@pytest.mark.parametrize("bins", [5, 40])
def test_information_gaussian(rho, bins):
    t, o = gaussian_pair(rho, seed=bins)
    assert linear_information(t, o) == pytest.approx(rho**2, abs=0.01)
    assert histogram_information(t, o, bins) == pytest.approx(gaussian_histogram_information(rho, bins), abs=0.01)


def test_information_limits():
    """O = t captures everything linearly and in the limit of fine bins; O independent of t nothing;
    a CP-even O of a parity-odd t nothing, even binned finely."""
    t, o = gaussian_pair(0.0, seed=3)
    assert linear_information(t, t) == pytest.approx(1.0)
    assert histogram_information(t, t, 200) > 0.99
    assert abs(histogram_information(t, o, 50)) < 0.005
    assert abs(histogram_information(t, np.abs(t), 50)) < 0.005


def test_one_bin_asimov_matches_closed_form():
    """One bin, E[t] = 0 (a symmetric sample): n(f) = n0 (1 + f^2 m) and
    q(f) = 2 n0 (u - ln(1 + u)) with u = m f^2, solved by the Lambert W function."""
    rng = np.random.default_rng(5)
    half = rng.standard_normal(5000)
    t = np.concatenate([half, -half])
    r = np.full_like(t, 0.7)
    n0, m = 400.0, 0.7
    q = binned_q(np.zeros_like(t), t, r, n0, bins=1)
    got = intervals(q, scale=0.1)
    for key, threshold in Q_THRESHOLDS.items():
        k = threshold / (2 * n0)
        v = -lambertw(-math.exp(-(1 + k)), -1).real  # v - 1 - ln v = k, v > 1
        f = math.sqrt((v - 1) / m)
        assert got[f"cl{key}"] == pytest.approx([-f, f], rel=1e-6)


def test_asimov_fisher_limit():
    """With r = 0 and many events the exact likelihood's 68 % interval is +-1/sqrt(n0 Var t) to O(f)."""
    t, _ = gaussian_pair(0.0, seed=6)
    t = 0.3 * t
    n0 = 1.0e5
    width = 1.0 / math.sqrt(n0 * t.var())
    for q in (unbinned_q(t, np.zeros_like(t), n0), binned_q(t, t, np.zeros_like(t), n0, bins=200)):
        lo, hi = intervals(q, scale=width)["cl68"]
        assert lo == pytest.approx(-width, rel=0.02) and hi == pytest.approx(width, rel=0.02)


def test_sally_learns_known_score(tmp_path):
    rng = np.random.default_rng(7)
    x = rng.normal(size=(4000, 3))
    t = x[:, 0] * np.sin(x[:, 1])
    settings = {"hidden": 32, "layers": 2, "lr": 3e-3, "lr_min_factor": 0.01, "warmup": 0.0, "epochs": 20,
                "batch_size": 128, "patience": 10, "max_minutes": 1.0}
    with torch_threads(1):
        predict = train_sally(x[:3000], t[:3000], x[3000:3500], t[3000:3500], settings, tmp_path / "sally.pt", seed=1)
    assert linear_information(t[3500:], predict(x[3500:])) > 0.9
    assert (tmp_path / "sally.pt").exists()


def test_calibrated_information_undoes_a_monotone_distortion():
    """For a Gaussian pair E[t | O] = rho O: the calibrated information is rho^2 for O and for the
    monotone O^3, whose linear information is lower; a parity-even O (O^2) carries none."""
    rho = 0.8
    t, o = gaussian_pair(rho, seed=3)
    assert calibrated_information(t, o) == pytest.approx(rho**2, abs=0.005)
    assert linear_information(t, o**3) < rho**2 - 0.05
    assert calibrated_information(t, o**3) == pytest.approx(rho**2, abs=0.005)
    assert calibrated_information(t, o**2) < 0.005
