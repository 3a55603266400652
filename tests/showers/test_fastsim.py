"""Showers as fast simulation: the ee-pair selection of a prepared sample, and the Z -> ee comparison on
hand-made events whose reco-level width follows from the reference's configured stochastic term."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from lhcchain.errors import InputError
from lhcchain.stats import Z_HALF_WIDTH, Z_MASS
from lhcchain.showers.fastsim import compare, electron_pairs
from lhcchain.showers.reference import make_reference
from lhcchain.showers.surrogate import train

from ..conftest import ROOT, torch_threads

CFG = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["showers"]
E_MAX_MEV = 65536.0  # training energies up to 64 GeV: the 100 GeV electrons below are extrapolated


def write_events(path, pt: np.ndarray, eta: np.ndarray, pdg: np.ndarray, passed: np.ndarray, mll: np.ndarray) -> None:
    cols = {"particle_pass": passed, "particle_mll": mll.astype(np.float32)}
    for i, lep in enumerate(("l1", "l2")):
        cols.update({f"particle_{lep}_pt": pt[:, i].astype(np.float32), f"particle_{lep}_eta": eta[:, i].astype(np.float32),
                     f"particle_{lep}_phi": np.zeros(len(pt), np.float32), f"particle_{lep}_pdgId": pdg[:, i].astype(np.int32)})
    pq.write_table(pa.table(cols), path)


def test_electron_pairs(tmp_path) -> None:
    pt = np.array([[40.0, 30.0], [40.0, 30.0], [40.0, 30.0], [40.0, 30.0]])
    eta = np.array([[0.5, -1.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    pdg = np.array([[11, -11], [13, -13], [11, -11], [11, -13]])
    write_events(tmp_path / "a.parquet", pt, eta, pdg, np.array([True, True, False, True]), np.full(4, 90.0))
    e, m = electron_pairs([tmp_path / "a.parquet"])
    np.testing.assert_allclose(e, [[40 * np.cosh(0.5), 30 * np.cosh(1.0)]], rtol=1e-6)  # only the selected ee event
    np.testing.assert_allclose(m, [90.0])
    pq.write_table(pa.table({"particle_pass": [True]}), tmp_path / "b.parquet")
    with pytest.raises(InputError, match="b.parquet: lacks columns"):
        electron_pairs([tmp_path / "b.parquet"])
    write_events(tmp_path / "c.parquet", pt[1:2], eta[1:2], pdg[1:2], np.array([True]), np.full(1, 90.0))
    with pytest.raises(InputError, match="no selected particle-level event with two electrons"):
        electron_pairs([tmp_path / "c.parquet"])


@pytest.fixture(scope="module")
def z_events(tmp_path_factory, reference_settings) -> dict:
    """2000 back-to-back Z -> ee decays at rest (each electron E = m/2 at eta 0), 10 % of them with one
    electron boosted to 100 GeV, and a tiny surrogate trained up to 64 GeV."""
    d = tmp_path_factory.mktemp("fastsim")
    rng = np.random.default_rng(5)
    n = 2000
    m = Z_MASS + Z_HALF_WIDTH * np.tan(np.pi * (rng.random(n) - 0.5))  # Breit-Wigner
    m = np.where(np.abs(m - Z_MASS) < 20, m, Z_MASS)
    pt = np.stack([m / 2, m / 2], 1)
    pt[: n // 10, 0] = 100.0
    write_events(d / "events.parquet", pt, np.zeros((n, 2)), np.tile([11, -11], (n, 1)), np.ones(n, bool), m)
    ref = {**reference_settings, "e_max_mev": E_MAX_MEV}
    make_reference(d / "train.h5", 300, "1_photons", ref, seed=1)
    tiny = {"hidden": 16, "layers": 2, "epochs": 1, "batch_size": 64, "max_minutes": 1.0}
    with torch_threads(1):
        for part in ("energy", "shower"):
            train(part, d / "train.h5", d / f"{part}.pt", tiny, binning="1_photons", threshold_mev=CFG["threshold_mev"], device="cpu", seed=2)
        outputs = {k: d / f"{k}.{ext}" for k, ext in (("metrics", "json"), ("mass_plot", "png"), ("response_plot", "png"))}
        compare([d / "events.parquet"], d / "energy.pt", d / "shower.pt", d / "train.h5", outputs, CFG["fastsim"], binning="1_photons",
                reference_settings=ref, sampling={"solver": "euler", "steps": 2, "batch_size": 1000}, device="cpu", seed=3)
    return {"n": n, "metrics": json.loads(outputs["metrics"].read_text()), "outputs": outputs}


def test_z_to_ee(z_events) -> None:
    m = z_events["metrics"]
    n = z_events["n"]
    assert m["n_events"] == n and m["n_electrons"] == 2 * n
    assert m["n_electrons_outside_training"] == n // 10 and m["extrapolated"]  # the 100 GeV electrons
    assert m["training_energy_range_gev"][1] == pytest.approx(E_MAX_MEV / 1e3)
    particle, reference = m["mee_peak"]["particle"], m["mee_peak"]["reference"]
    assert particle["mean"] == pytest.approx(Z_MASS, abs=0.1) and particle["sigma"] < 0.3
    # each electron's resolution ~ a / sqrt(E / GeV) (a = configured stochastic term; leakage adds ~ 10 %),
    # so sigma(m) ~ m a / sqrt(E) / sqrt(2) at E = m / 2
    expected = Z_MASS * CFG["reference"]["sampling_term"] / np.sqrt(Z_MASS / 2) / np.sqrt(2)
    assert 0.9 * expected < reference["sigma"] < 1.4 * expected
    assert 0.9 < m["mean_response"]["reference"] < 1.02  # containment of the calibrated visible energy
    table = m["response"]["reference"]
    assert sum(table["n_electrons"]) == 2 * n
    if "error" not in m["mee_peak"]["surrogate"]:  # the tiny surrogate may miss the window; its ratio then is absent
        assert m["mee_sigma_surrogate_over_reference"] > 0 and m["mee_sigma_surrogate_over_reference_err"] > 0
    for path in z_events["outputs"].values():
        assert path.stat().st_size > 0
