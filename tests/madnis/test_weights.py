"""Figures of merit of weighted samples (:mod:`lhcchain.madnis.weights`), checked against independent
numpy computations: the truncated ``w_max``, the (stratified) cross-section and error, unweighting
efficiencies and hit-or-miss acceptance."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from lhcchain.errors import InputError
from lhcchain.madnis.weights import accept, summarize, truncated_maximum


def excess(w: np.ndarray, t: float) -> float:
    """Weight mass above ``t``: ``sum_i max(w_i - t, 0)``."""
    return float(np.clip(w - t, 0, None).sum())


def bisect_truncated_maximum(w: np.ndarray, epsilon: float) -> float:
    """Smallest ``t >= 0`` with ``excess(w, t) <= epsilon sum(w)``, by bisection (excess decreases in t)."""
    budget = epsilon * w.sum()
    lo, hi = 0.0, float(w.max())
    if excess(w, lo) <= budget:
        return 0.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if excess(w, mid) <= budget:
            hi = mid
        else:
            lo = mid
    return hi


def outlier_weights(seed: int) -> np.ndarray:
    """Log-normal weights, a fifth of them zero (cut), five outliers a thousand times larger."""
    rng = np.random.default_rng(seed)
    w = rng.lognormal(0.0, 1.5, 5000)
    w[:5] *= 1000.0
    w[rng.random(w.size) < 0.2] = 0.0
    return rng.permutation(w)


SAMPLES = {
    "outliers": outlier_weights(1),
    "pareto": np.random.default_rng(2).pareto(1.5, 3000),
    "ties": np.repeat([1.0, 2.0, 3.0, 50.0, 50.0], [400, 300, 200, 2, 1]).astype(float),
}


@pytest.mark.parametrize("name", SAMPLES)
@pytest.mark.parametrize("epsilon", [1e-4, 1e-3, 1e-2, 0.1])
def test_truncated_maximum_is_smallest_within_budget(name, epsilon):
    w = SAMPLES[name]
    w_max = truncated_maximum(w, epsilon)
    total = w.sum()
    assert 0 < w_max <= w.max()
    # the overweights carry at most epsilon of the total ...
    assert excess(w, w_max) <= epsilon * total * (1 + 1e-9)
    # ... and any smaller threshold exceeds it (smallest such w_max)
    assert excess(w, w_max * (1 - 1e-6)) > epsilon * total
    assert w_max == pytest.approx(bisect_truncated_maximum(w, epsilon), rel=1e-9)


def test_truncated_maximum_grows_with_smaller_epsilon():
    w = SAMPLES["outliers"]
    values = [truncated_maximum(w, e) for e in (0.1, 1e-2, 1e-3, 1e-4, 0.0)]
    assert all(a < b for a, b in zip(values, values[1:]))
    assert values[-1] == w.max()
    # with 1e-4 of the mass allowed above it, w_max sits among the outliers (which carry ~ 2/3 of the total)
    assert values[-2] > np.sort(w)[-6]


def test_truncated_maximum_edge_cases():
    assert truncated_maximum(np.zeros(10), 1e-3) == 0.0
    assert truncated_maximum(np.array([0.0, 2.0, 0.0]), 0.0) == 2.0
    # constant weights: nothing can be cut without exceeding a small budget by much
    w = np.full(100, 0.1)
    assert truncated_maximum(w, 1e-3) == pytest.approx(bisect_truncated_maximum(w, 1e-3), rel=1e-9)


def test_summarize_single_channel_matches_numpy():
    w = SAMPLES["outliers"]
    eps = 1e-3
    s = summarize(w, None, eps, 1)
    n = w.size
    assert s.n_calls == n
    assert s.cross_section_pb == pytest.approx(w.mean(), rel=1e-12)
    assert s.error_pb == pytest.approx(w.std(ddof=1) / math.sqrt(n), rel=1e-10)
    assert s.rel_stddev == pytest.approx(w.std(ddof=1) / w.mean(), rel=1e-10)
    positive = w[w > 0]
    assert s.cut_efficiency == pytest.approx(positive.size / n)
    w_max = bisect_truncated_maximum(w, eps)
    assert s.w_max_truncated_pb == pytest.approx(w_max, rel=1e-9)
    # the accepted fraction of hit-or-miss unweighting with w_max (capped weights; ~ <w>/w_max)
    assert s.unweighting_efficiency_truncated == pytest.approx(np.minimum(w / w_max, 1).mean(), rel=1e-9)
    assert s.overweight_fraction == pytest.approx(np.mean(positive > w_max))
    assert s.truncated_fraction == pytest.approx(excess(w, w_max) / w.sum(), rel=1e-6)
    assert 0 < s.truncated_fraction <= eps * (1 + 1e-9)
    assert 0 < s.unweighting_efficiency <= 1
    assert 0 <= s.overweight_rate < 0.01
    assert set(s.as_dict()) >= {"cross_section_pb", "error_pb", "rel_stddev", "unweighting_efficiency", "n_calls"}


def test_bootstrap_efficiency_without_tail():
    """Uniform weights: the bootstrap median maximum is the sample maximum to < 1 %, so the
    efficiency is ``mean / max`` (~ 1/2 times the cut efficiency)."""
    rng = np.random.default_rng(3)
    w = rng.random(20000)
    w[rng.random(w.size) < 0.25] = 0.0
    s = summarize(w, None, 1e-3, 1)
    assert s.unweighting_efficiency == pytest.approx(w.mean() / w.max(), rel=0.01)
    assert s.unweighting_efficiency == pytest.approx(0.375, abs=0.01)


def test_bootstrap_has_its_own_seed():
    """The bootstrap of w_max depends on its seed only: not on torch's global generator, which it
    leaves where it was. Heavy-tailed weights, so that replicas differ."""
    w = np.random.default_rng(4).pareto(1.5, 5000)
    torch.manual_seed(0)
    first = summarize(w, None, 1e-3, 7)
    state = torch.random.get_rng_state()
    torch.rand(1000)
    again = summarize(w, None, 1e-3, 7)
    assert again == first
    torch.random.set_rng_state(state)
    summarize(w, None, 1e-3, 7)
    assert torch.equal(torch.random.get_rng_state(), state)
    others = {summarize(w, None, 1e-3, seed).unweighting_efficiency for seed in range(8)}
    assert len(others) > 1


def test_summarize_stratified_error_by_hand():
    """Channels drawn with different call counts: ``sigma = sum_c (N_c/N) mean_c`` (= the mean of all
    weights) and ``err^2 = sum_c (N_c/N)^2 var_c / N_c``, which here is far below the naive error."""
    rng = np.random.default_rng(4)
    sizes, means = (300, 1200, 500), (10.0, 200.0, 1.0)
    n = sum(sizes)
    w = np.concatenate([rng.gamma(20.0, m / 20.0, k) * n / k for m, k in zip(means, sizes)])
    ch = np.repeat(np.arange(3), sizes)
    order = rng.permutation(n)
    w, ch = w[order], ch[order]
    s = summarize(w, ch, 1e-3, 1)
    sigma = sum(np.mean(w[ch == c]) * k / n for c, k in enumerate(sizes))
    var = sum((k / n) ** 2 * np.var(w[ch == c], ddof=1) / k for c, k in enumerate(sizes))
    assert s.cross_section_pb == pytest.approx(sigma, rel=1e-12)
    assert s.cross_section_pb == pytest.approx(w.mean(), rel=1e-12)
    assert s.error_pb == pytest.approx(math.sqrt(var), rel=1e-10)
    assert s.rel_stddev == pytest.approx(math.sqrt(var) * math.sqrt(n) / sigma, rel=1e-10)
    naive = w.std(ddof=1) / math.sqrt(n)
    assert s.error_pb < 0.5 * naive  # the between-channel spread is not an error of the stratified estimate


def test_stratified_error_is_calibrated():
    """Over replicas of a stratified sample, the spread of the cross-section matches the reported error."""
    rng = np.random.default_rng(5)
    sizes, means = (200, 600, 200), (5.0, 50.0, 0.5)
    n = sum(sizes)
    ch = np.repeat(np.arange(3), sizes)
    sigmas, errors = [], []
    for _ in range(200):
        w = np.concatenate([rng.exponential(m, k) * n / k for m, k in zip(means, sizes)])
        s = summarize(w, ch, 1e-3, 1)
        sigmas.append(s.cross_section_pb)
        errors.append(s.error_pb)
    truth = sum(means)
    assert np.mean(sigmas) == pytest.approx(truth, rel=0.01)
    assert np.std(sigmas, ddof=1) == pytest.approx(np.mean(errors), rel=0.15)


@pytest.mark.parametrize("channels", [None, np.repeat([0, 1], 500)])
def test_constant_weights(channels):
    w = np.full(1000, 2.5)
    s = summarize(w, channels, 1e-3, 1)
    assert s.cross_section_pb == pytest.approx(2.5, rel=1e-14)
    assert s.error_pb == pytest.approx(0.0, abs=1e-12)
    assert s.rel_stddev == pytest.approx(0.0, abs=1e-12)
    assert s.unweighting_efficiency == pytest.approx(1.0, rel=1e-12)
    assert s.overweight_rate == 0.0 and s.cut_efficiency == 1.0


def test_truncated_efficiency_of_constant_weights_is_one():
    """Every point of a constant-weight sample is accepted: the truncated efficiency is 1, not above."""
    w = np.full(1000, 2.5)
    s = summarize(w, None, 1e-3, 1)
    assert np.minimum(w / s.w_max_truncated_pb, 1).mean() == 1.0
    assert s.unweighting_efficiency_truncated <= 1.0


def test_summarize_needs_two_weights():
    with pytest.raises(InputError, match="2 weights"):
        summarize(np.array([1.0]), None, 1e-3, 1)


def test_accept_probability():
    """``accept`` keeps a point with probability ``min(1, w / w_max)``: per weight value, the accepted
    fraction of 20000 copies is within 5 binomial sigma of it."""
    values = np.array([0.0, 0.05, 0.3, 0.5, 0.9, 1.0, 1.5, 10.0])
    w = np.repeat(values, 20000)
    w_max = 1.0
    ok = accept(w, w_max, np.random.default_rng(6))
    assert ok.dtype == bool and ok.shape == w.shape
    for v in values:
        p = min(v / w_max, 1.0)
        frac = ok[w == v].mean()
        assert abs(frac - p) <= 5 * math.sqrt(p * (1 - p) / 20000) + 1e-12, (v, frac)
    # over the whole sample, the accepted count follows sum min(1, w/w_max)
    expected = np.minimum(w / w_max, 1).sum()
    assert stats.binomtest(int(ok.sum()), w.size, expected / w.size).pvalue > 1e-4


def test_accept_is_reproducible_and_rejects_all_without_maximum():
    w = np.random.default_rng(7).random(1000)
    a = accept(w, 0.5, np.random.default_rng(8))
    b = accept(w, 0.5, np.random.default_rng(8))
    assert np.array_equal(a, b)
    assert not accept(w, 0.0, np.random.default_rng(8)).any()
