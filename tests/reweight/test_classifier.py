"""The density-ratio classifier: AUC arithmetic, stratified folds, the honest two-sample AUC on same and
shifted Gaussians, weights against analytic density ratios (negative generator weights included),
calibration, the ensemble for new events and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from lhcchain.errors import InputError
from lhcchain.reweight.classifier import (
    Standardiser,
    calibrate,
    cross_fit,
    density_ratio,
    load_crossfit,
    object_sets,
    resolve_classifier,
    roc_auc,
    stratified_folds,
    two_sample_auc,
    weighted_auc,
)

from .conftest import FAST


def test_weighted_auc_matches_brute_force_with_ties_and_weights():
    rng = np.random.default_rng(0)
    labels, scores, w = rng.integers(0, 2, 300), rng.integers(0, 20, 300).astype(float), rng.normal(1.0, 0.7, 300)
    s1, s0, w1, w0 = scores[labels == 1], scores[labels == 0], w[labels == 1], w[labels == 0]
    brute = sum(a * b * ((x > y) + 0.5 * (x == y)) for x, a in zip(s1, w1) for y, b in zip(s0, w0)) / (w1.sum() * w0.sum())
    assert weighted_auc(labels, scores, w) == pytest.approx(brute)
    plain = np.mean([(x > y) + 0.5 * (x == y) for x in s1 for y in s0])
    assert roc_auc(labels, scores)[0] == pytest.approx(plain)
    replicas = weighted_auc(labels, scores, np.stack([w, np.ones(300)]))
    assert replicas == pytest.approx([brute, plain])


def test_folds_are_class_stratified():
    y = np.r_[np.ones(418), np.zeros(4180)]
    fold = stratified_folds(y, 5, np.random.default_rng(1))
    for f in range(5):
        assert abs((y[fold == f] == 1).sum() - 418 / 5) <= 1 and abs((y[fold == f] == 0).sum() - 4180 / 5) <= 1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_same_distribution_auc_is_compatible_with_one_half(seed):
    """Issue 14's case: 418 against 4180 events of one 16-dimensional Gaussian."""
    rng = np.random.default_rng(100 + seed)
    res = two_sample_auc(rng.normal(size=(418, 16)), rng.normal(size=(4180, 16)), settings=FAST, seed=seed)
    assert res["auc_err"] > 0.01  # larger than nothing: the bootstrap of 418 x 4180 events alone gives ~0.015
    assert abs(res["auc"] - 0.5) < 2 * res["auc_err"]


def test_shifted_gaussians_give_the_analytic_auc():
    """Unit Gaussians shifted by dmu along one axis: the optimal AUC is Phi(dmu / sqrt(2))."""
    rng = np.random.default_rng(3)
    dmu = 0.5
    a, b = rng.normal(size=(3000, 3)), rng.normal(size=(3000, 3))
    a[:, 0] += dmu
    res = two_sample_auc(a, b, settings=FAST, seed=4)
    assert abs(res["auc"] - norm.cdf(dmu / np.sqrt(2))) < 2.5 * res["auc_err"] + 0.005


def test_weights_follow_the_analytic_density_ratio():
    """Source N(0, 1), target N(0.4, 0.8^2) in x0 and N(0, 1) in x1: w = p_t / p_s known in closed form."""
    rng = np.random.default_rng(5)
    src = rng.normal(size=(6000, 2))
    tgt = np.column_stack([rng.normal(0.4, 0.8, 6000), rng.normal(size=6000)])
    fit = cross_fit(tgt, src, settings=FAST, seed=6)
    w = density_ratio(fit.logit[6000:])
    exact = norm.pdf(src[:, 0], 0.4, 0.8) / norm.pdf(src[:, 0])
    bulk = np.abs(src[:, 0]) < 1.5
    assert np.median(np.abs(np.log(w[bulk] / exact[bulk]))) < 0.1
    assert np.average(src[:, 0], weights=w) == pytest.approx(0.4, abs=0.04)
    assert np.sqrt(np.cov(src[:, 0], aweights=w)) == pytest.approx(0.8, abs=0.04)
    # the ensemble of the 5 networks on new events, also after a save/load round trip
    new = rng.normal(size=(2000, 2))
    z = fit.predict_logit(new)
    assert np.median(np.abs(z - np.log(norm.pdf(new[:, 0], 0.4, 0.8) / norm.pdf(new[:, 0])))[np.abs(new[:, 0]) < 1.5]) < 0.1


def test_negative_generator_weights_enter_the_loss(tmp_path):
    """Target p_t = 1.5 N(0, 1) - 0.5 N(0, 0.5^2): 1.5 n positive and 0.5 n negative events; p_t / p_s = 1.5 - exp(-1.5 x^2)."""
    rng = np.random.default_rng(7)
    n = 8000
    tgt = np.r_[rng.normal(size=int(1.5 * n)), rng.normal(0, 0.5, n // 2)][:, None]
    g = np.r_[np.ones(int(1.5 * n)), -np.ones(n // 2)]
    src = rng.normal(size=(n, 1))
    fit = cross_fit(tgt, src, g, None, settings={**FAST, "folds": 3}, seed=8)
    w = density_ratio(fit.logit[len(tgt):])
    exact = 1.5 - np.exp(-1.5 * src[:, 0] ** 2)
    bulk = np.abs(src[:, 0]) < 2
    assert np.median(np.abs(w[bulk] - exact[bulk])) < 0.12
    assert np.mean(w[np.abs(src[:, 0]) < 0.3]) < 0.8  # the dip the negative events make (ignoring them: w ~ 1)
    path = tmp_path / "clf.pt"
    import torch
    torch.save(fit.state(), path)
    again = load_crossfit(path)
    assert np.allclose(again.predict_logit(src[:100]), fit.predict_logit(src[:100]))


def test_calibration_applies_only_when_the_heldout_loss_improves():
    rng = np.random.default_rng(9)
    true = rng.normal(0, 1.5, 20000)
    y = (rng.uniform(size=true.size) < 1 / (1 + np.exp(-true))).astype(float)
    w = np.ones_like(true)
    over, cal, report = calibrate(3 * true, y, w, "auto", seed=1)  # overconfident scores
    assert report["applied"] in ("temperature", "isotonic")
    assert report["heldout_loss"][report["applied"]] < report["heldout_loss"]["none"]
    assert cal.method == report["applied"]
    _, cal, report = calibrate(3 * true, y, w, "temperature", seed=1)
    assert cal.temperature == pytest.approx(3.0, rel=0.1)
    _, _, report = calibrate(true, y, w, "none", seed=1)
    assert report["applied"] == "none"
    same, _, report = calibrate(true, y, w, "auto", seed=1)
    assert report["heldout_loss"][report["applied"]] <= report["heldout_loss"]["none"]
    flat, _, report = calibrate(np.zeros(400), y[:400], w[:400], "auto", seed=1)  # no information: a constant D
    assert len(report["reliability_calibrated"]["mean_d"]) >= 1 and np.isfinite(flat).all()


def test_standardiser_adds_one_indicator_per_nan_pattern():
    x = np.array([[1.0, np.nan, np.nan, 2.0], [2.0, 1.0, 3.0, np.nan], [3.0, np.nan, np.nan, 1.0]])
    s = Standardiser.fit(x)
    z = s(x)
    assert s.indicators == [1, 3] and z.shape == (3, 6) and np.isfinite(z).all()
    assert z[:, 4].tolist() == [1.0, 0.0, 1.0]


def jets(n: int, scale: float, rng: np.random.Generator) -> np.ndarray:
    """A global N(0, 1) feature and 1-3 jets with p_T = 20 GeV + Exp(scale), eta ~ N(0, 1.5); NaN for absent jets."""
    present = np.arange(3)[None, :] < rng.integers(1, 4, n)[:, None]
    pt = np.where(present, 20 + rng.exponential(scale, (n, 3)), np.nan)
    eta = np.where(present, rng.normal(0, 1.5, (n, 3)), np.nan)
    return np.column_stack([rng.normal(size=n), pt[:, 0], eta[:, 0], pt[:, 1], eta[:, 1], pt[:, 2], eta[:, 2]])


def test_deepsets_is_permutation_invariant_and_learns_the_ratio(tmp_path):
    names = ["g", "j1_pt", "j1_eta", "j2_pt", "j2_eta", "j3_pt", "j3_eta"]
    assert object_sets(names) == [[[1, 2], [3, 4], [5, 6]]]
    rng = np.random.default_rng(11)
    src, tgt = jets(6000, 25.0, rng), jets(6000, 30.0, rng)
    fit = cross_fit(tgt, src, settings={**FAST, "network": "deepsets", "folds": 3}, names=names, seed=12)
    two = src[np.isfinite(src[:, 3])][:300]
    assert np.allclose(fit.predict_logit(two), fit.predict_logit(two[:, [0, 3, 4, 1, 2, 5, 6]]), atol=1e-5)
    pt = np.nan_to_num(src[:, [1, 3, 5]] - 20, nan=0.0)
    log_exact = np.sum(np.where(np.isfinite(src[:, [1, 3, 5]]), np.log(25 / 30) + pt / 25 - pt / 30, 0.0), axis=1)
    bulk = np.nanmax(src[:, [1, 3, 5]], axis=1) < 80
    assert np.median(np.abs(fit.logit[6000:][bulk] - log_exact[bulk])) < 0.1
    import torch
    torch.save(fit.state(), tmp_path / "ds.pt")
    assert np.allclose(load_crossfit(tmp_path / "ds.pt").predict_logit(two), fit.predict_logit(two))
    with pytest.raises(InputError, match="finds no objects"):
        cross_fit(tgt, src, settings={**FAST, "network": "deepsets"}, names=["a", "b", "c", "d", "e", "f", "g"])


def test_bad_settings_and_weights_are_input_errors():
    with pytest.raises(InputError, match="unknown key"):
        resolve_classifier({"hiden": 3})
    with pytest.raises(InputError, match="calibration"):
        resolve_classifier({"calibration": "platt"})
    x = np.zeros((10, 2))
    with pytest.raises(InputError, match="source event 3 has weight nan"):
        cross_fit(x, x, None, np.r_[np.ones(3), np.nan, np.ones(6)], settings=FAST)
    with pytest.raises(InputError, match="sum to"):
        cross_fit(x, x, -np.ones(10), None, settings=FAST)
