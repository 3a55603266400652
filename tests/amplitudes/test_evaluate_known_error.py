"""The amplitude stage's accuracy and pull figures (:func:`lhcchain.amplitudes.evaluate.evaluate`) on a
stand-in surrogate with a known, injected error.

The stand-in returns ``ln A_NN = ln A_true + eps z`` with z ~ N(0, 1) drawn once per test point and
uncertainties ``sigma_syst = 0.6 eps``, ``sigma_stat = 0.8 eps`` (``sigma_tot = eps``). Then, to
O(eps^2): ``Delta = eps z``, so median |Delta| = 0.6745 eps, p99 |Delta| = 2.5758 eps, mean 0 and
standard deviation eps; the pulls are z / 0.6, z / 0.8 and z (means 0, widths 1/0.6, 1/0.8, 1).
Tolerances are 4 standard errors for 20 000 points: 3.3 % (median), 3.8 % (p99), 2 % (widths).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import norm

import lhcchain.amplitudes.evaluate as evaluate_module
from lhcchain.amplitudes.data import import_dataset

EPS = 1e-3
N = 20_000
SYST, STAT = 0.6, 0.8


class InjectedErrorSurrogate:
    """Looks up each test point's true ln A and its z by the point's momenta (see the module doc)."""

    settings = {"network": "stand-in", "uncertainty": "ensemble", "features": "invariants"}
    process = "known_error"
    amplitude_kind = "external"
    sigma_scale = 1.0
    device = torch.device("cpu")

    def __init__(self, momenta: np.ndarray, log_a: np.ndarray, z: np.ndarray) -> None:
        self.n_legs = momenta.shape[1]
        self.table = {row.tobytes(): (la, zz) for row, la, zz in zip(momenta, log_a, z)}

    def predict_log(self, momenta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        la, z = np.array([self.table[row.tobytes()] for row in momenta.numpy()]).T
        ones = torch.ones(len(la), dtype=torch.float64)
        return torch.from_numpy(la + EPS * z), SYST * EPS * ones, STAT * EPS * ones

    def __call__(self, momenta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.ones(momenta.shape[0]), torch.ones(momenta.shape[0])


@pytest.fixture(scope="module")
def known_error_metrics(tmp_path_factory):
    rng = np.random.default_rng(7)
    folder = tmp_path_factory.mktemp("known_error")
    momenta = rng.normal(0.0, 100.0, (N, 4, 4))
    log_a = rng.normal(-10.0, 2.0, N)
    np.savez(folder / "amps.npz", momenta=momenta, amplitudes=np.exp(log_a))
    import_dataset(folder / "amps.npz", folder / "data.h5", split={"train": 1e-3, "test": 1.0}, seed=1)
    z = rng.normal(size=N)
    stand_in = InjectedErrorSurrogate(momenta, log_a, z)
    outputs = {k: folder / f"{k}.{ext}" for k, ext in (("metrics", "json"), ("accuracy", "png"), ("pulls", "png"))}
    mp = pytest.MonkeyPatch()
    mp.setattr(evaluate_module, "load_surrogate", lambda checkpoint, device: stand_in)
    try:
        metrics = evaluate_module.evaluate(folder / "data.h5", "stand-in.pt", outputs, device="cpu", n_timing=100, repeats=1)
    finally:
        mp.undo()
    return metrics


def test_accuracy_figures_of_a_known_error(known_error_metrics):
    m = known_error_metrics
    n = m["n_test"]
    assert n > 0.99 * N
    assert m["median_abs_delta"] == pytest.approx(norm.ppf(0.75) * EPS, rel=0.033)
    assert m["p99_abs_delta"] == pytest.approx(norm.ppf(0.995) * EPS, rel=0.038)
    assert abs(m["mean_delta"]) < 4 * EPS / math.sqrt(n)
    assert m["std_delta"] == pytest.approx(EPS, rel=0.02)


def test_pulls_of_a_known_error(known_error_metrics):
    m = known_error_metrics
    n = m["n_test"]
    for name, scale in (("syst", SYST), ("stat", STAT), ("tot", 1.0)):
        assert abs(m[f"pull_{name}_mean"]) < 4 / (scale * math.sqrt(n)), name
        assert m[f"pull_{name}_std"] == pytest.approx(1 / scale, rel=0.02), name
    assert m["median_sigma_syst_rel"] == pytest.approx(SYST * EPS, rel=1e-9)
    assert m["median_sigma_tot_rel"] == pytest.approx(EPS, rel=1e-9)
