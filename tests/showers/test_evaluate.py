"""CaloChallenge evaluation: features, separation power, FPD/KPD and classifier tests on known inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lhcchain.showers.evaluate import (
    classifier_features,
    classifier_test,
    fpd,
    high_level_features,
    kpd,
    mmd2_poly,
    published,
    separation_power,
    separation_powers,
    time_per_shower,
)
from lhcchain.showers.geometry import load_geometry
from lhcchain.showers.io import Showers

GEO = load_geometry("1_photons")


def test_separation_power_known_histograms() -> None:
    assert separation_power([3, 1, 0], [6, 2, 0]) == 0.0
    assert separation_power([1, 0], [0, 1]) == pytest.approx(1.0)
    # 1/2 [(1 - 0.5)^2 / 1.5 + (0 - 0.5)^2 / 0.5] = 1/3
    assert separation_power([2, 0], [1, 1]) == pytest.approx(1.0 / 3.0)


def test_features_of_hand_made_showers() -> None:
    """Layer 2 (position 2, 10 angular x 19 radial bins): energy in radial bin 3 (12.5 mm) of angular bins
    2 and 7, which lie opposite each other (centres -pi + 5 pi / 10 and -pi + 15 pi / 10)."""
    v = np.zeros((2, GEO.n_voxels), dtype=np.float32)
    lay = GEO.layers[2]
    v[0, GEO.index(2, 2, 3)] = 100.0
    v[1, GEO.index(2, 2, 3)] = 50.0
    v[1, GEO.index(2, 7, 3)] = 50.0
    v[:, GEO.index(0, 0, 0)] = 10.0
    f = high_level_features(Showers(np.array([1000.0, 500.0]), v), GEO)
    np.testing.assert_allclose(f["etot_einc"], [0.11, 0.22])
    np.testing.assert_allclose(f["layer_energy"][:, 2], [100.0, 100.0])
    r, a = 12.5, -np.pi + 5 * np.pi / 10
    assert f["centre_x"][0, 1] == pytest.approx(r * np.cos(a), abs=1e-9)
    assert f["centre_y"][0, 1] == pytest.approx(r * np.sin(a))
    assert f["width_y"][0, 1] == pytest.approx(0.0, abs=1e-4)
    assert f["centre_y"][1, 1] == pytest.approx(0.0, abs=1e-6)
    assert f["width_y"][1, 1] == pytest.approx(r)  # +-12.5 mm in y with equal weights
    assert f["sparsity"][0, 2] == pytest.approx(1 - 1 / lay.n_voxels)
    assert classifier_features(Showers(np.array([1000.0, 500.0]), v), f, GEO, "cls-high").shape == (2, 1 + 5 + 8)
    assert classifier_features(Showers(np.array([1000.0, 500.0]), v), f, GEO, "cls-low-normed").shape == (2, 1 + 368 + 5)


def test_fpd_of_known_gaussians() -> None:
    """N(0, 1) vs N(mu, sigma^2) in d dimensions: |mu|^2 + d (1 - sigma)^2 = 1 + 3 = 4; identical: 0."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4000, 3))
    y = 2.0 * rng.standard_normal((4000, 3)) + np.array([1.0, 0.0, 0.0])
    value, err = fpd(x, y, rng, n_points=5, n_draws=2)
    assert value == pytest.approx(4.0, abs=max(0.15, 3 * err))
    same, err = fpd(x, rng.standard_normal((4000, 3)), rng, n_points=5, n_draws=2)
    assert abs(same) < max(0.01, 3 * err)


def test_kpd_of_known_gaussians() -> None:
    """1D, k = (xy + 1)^3: MMD^2 = sum_j c_j (E x^j - E y^j)^2 with c = (3, 3, 1) for j = 1, 2, 3; for
    N(0, 1) vs N(mu, 1): 3 mu^2 + 3 mu^4 + (mu^3 + 3 mu)^2 = 3.578 at mu = 0.5."""
    rng = np.random.default_rng(1)
    mu = 0.5
    expected = 3 * mu**2 + 3 * mu**4 + (mu**3 + 3 * mu) ** 2
    x, y = rng.standard_normal((20000, 1)), rng.standard_normal((20000, 1)) + mu
    value, err = kpd(x, y, rng, n_batches=5, batch_size=2000)
    assert value == pytest.approx(expected, rel=0.1)
    same = mmd2_poly(x[:2000], rng.standard_normal((2000, 1)))
    assert abs(same) < 0.05


def test_classifier_test_separates_only_different_samples() -> None:
    rng = np.random.default_rng(2)
    settings = {"hidden": 16, "layers": 2, "epochs": 60, "batch_size": 128, "lr": 3e-3, "folds": 2, "patience": 15}
    a, b = rng.standard_normal((600, 2)), rng.standard_normal((600, 2))
    same = classifier_test(a, b, settings, seed=3)
    assert abs(same["auc"] - 0.5) < 0.07 and abs(same["jsd_bits"]) < 0.07
    diff = classifier_test(a, b + np.array([1.5, 0.0]), settings, seed=3)
    # two unit Gaussians 1.5 apart: AUC = Phi(1.5 / sqrt(2)) = 0.856
    assert diff["auc"] == pytest.approx(0.5 * (1 + math.erf(1.5 / 2)), abs=0.05)
    # its JSD is 0.319 bits (numerical integral); a calibrated classifier's estimate is a lower bound
    assert 0.15 < diff["jsd_bits"] < 0.33


def test_separation_powers_and_published_table() -> None:
    rng = np.random.default_rng(4)
    sh = Showers(np.full(300, 1000.0), rng.exponential(1.0, (300, GEO.n_voxels)).astype(np.float32))
    f = high_level_features(sh, GEO)
    sep = separation_powers(f, f, bins=20)
    assert all(v == 0.0 for v in sep["mean"].values())
    rows = {r["submission"]: r for r in published("ds1_photons")}
    assert rows["CaloINN"]["auc_low"] == pytest.approx(0.62592)
    assert math.isnan(rows["GEANT4"]["time_cpu_batch1_ms"])


def test_time_per_shower_keys() -> None:
    times = time_per_shower(lambda n: np.zeros((n, 3)), batch_sizes=(1, 10), min_seconds=0.0)
    assert set(times) == {"batch1", "batch10"} and all(t > 0 for t in times.values())
