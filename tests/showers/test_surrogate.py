"""Shower surrogate: coordinate maps invert exactly; a tiny energy and shower model train, resume-safe
checkpoints load, and sampled showers respect the geometry and the read-out threshold."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lhcchain.errors import InputError
from lhcchain.showers.geometry import load_geometry
from lhcchain.showers.io import read_showers
from lhcchain.showers.reference import make_reference
from lhcchain.showers.surrogate import (
    EnergyProfile,
    Surrogate,
    energies_from_coordinates,
    energy_coordinates,
    expit,
    logit,
    sample,
    train,
)

from ..conftest import torch_threads

GEO = load_geometry("1_photons")
TINY = {"hidden": 16, "layers": 2, "epochs": 2, "batch_size": 64, "max_minutes": 1.0}


def test_energy_coordinates_round_trip() -> None:
    rng = np.random.default_rng(0)
    e_inc = 2.0 ** rng.integers(8, 23, 100)
    e_layer = rng.exponential(1.0, (100, 5)) * e_inc[:, None] * 0.04
    e_layer[:10, 0] = 0.0  # an empty presampler
    z = energy_coordinates(e_layer, e_inc)
    np.testing.assert_allclose(energies_from_coordinates(z, e_inc), e_layer, rtol=1e-6, atol=1e-9 * e_inc.max())
    u = rng.random(50)
    np.testing.assert_allclose(expit(logit(u)), u, atol=1e-9)


def test_energy_profile() -> None:
    """Standardised per incident energy: zero mean and unit spread at each training energy, linear in ln E
    between them, and an exact inverse."""
    rng = np.random.default_rng(1)
    e = 2.0 ** rng.integers(8, 23, 6000)
    log_e = np.log(e)
    # a spread that depends on E, a mean that depends on E, and a column without spread at fixed E
    x = np.stack([0.5 * log_e + rng.normal(0, 1, len(e)) * log_e / 10, rng.normal(-log_e, 0.5), log_e], 1)
    prof = EnergyProfile.fit(x, log_e)
    assert len(prof.log_e) == 15  # one node per power of two
    z = prof.forward(x, log_e)
    for v in np.unique(e)[[0, 7, 14]]:
        np.testing.assert_allclose(z[e == v].mean(0), 0.0, atol=1e-9)
        np.testing.assert_allclose(z[e == v].std(0)[:2], 1.0, rtol=1e-9)
    np.testing.assert_allclose(prof.std[:, 2], 0.05 * log_e.std(), rtol=1e-9)  # the floor, not 0
    np.testing.assert_allclose(prof.inverse(z, log_e), x, rtol=1e-12)
    mid = np.log(np.array([2.0**10 * np.sqrt(2.0)]))  # halfway between two nodes in ln E
    np.testing.assert_allclose(prof.inverse(np.zeros((1, 3)), mid), 0.5 * (prof.mean[2] + prof.mean[3])[None], rtol=1e-12)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, reference_settings) -> dict:
    settings = {**reference_settings, "e_max_mev": 65536}
    d = tmp_path_factory.mktemp("surrogate")
    make_reference(d / "train.h5", 300, "1_photons", settings, seed=1)
    make_reference(d / "test.h5", 50, "1_photons", settings, seed=2)
    out = {"dir": d, "threshold": settings["threshold_mev"]}
    with torch_threads(1):
        for part in ("energy", "shower"):
            out[part] = train(part, d / "train.h5", d / f"{part}.pt", TINY, binning="1_photons", threshold_mev=settings["threshold_mev"],
                              device="cpu", threads=1, seed=3)
    return out


def test_training_summaries(trained) -> None:
    for part in ("energy", "shower"):
        s = trained[part]
        assert s["epochs_run"] == 2 and s["n_train"] == 240 and s["n_val"] == 60 and np.isfinite(s["best_val_loss"])


def test_sampled_showers(trained) -> None:
    d = trained["dir"]
    with torch_threads(1):
        summary = sample(d / "energy.pt", d / "shower.pt", d / "test.h5", d / "gen.h5", {"solver": "euler", "steps": 2, "batch_size": 20},
                         device="cpu", seed=4)
    gen, test = read_showers(d / "gen.h5", GEO), read_showers(d / "test.h5", GEO)
    assert summary["n_showers"] == len(gen) == 50
    np.testing.assert_allclose(gen.energy, test.energy, rtol=1e-6)  # the held-out energies
    assert np.all((gen.voxels == 0) | (gen.voxels >= trained["threshold"]))


def test_wrong_checkpoints(trained) -> None:
    d = trained["dir"]
    with pytest.raises(InputError, match="not the energy network of a shower surrogate"):
        Surrogate(d / "shower.pt", d / "energy.pt", torch.device("cpu"))
    with pytest.raises(InputError, match="unknown key"):
        train("energy", d / "train.h5", d / "x.pt", {"hiden": 3}, binning="1_photons", threshold_mev=0.1)


def test_flow_alternative(trained) -> None:
    """``family: flow`` (zuko spline couplings) trains and samples through the same interface."""
    d = trained["dir"]
    with torch_threads(1):
        s = train("energy", d / "train.h5", d / "energy_flow.pt", {**TINY, "family": "flow", "transforms": 2, "bins": 4},
                  binning="1_photons", threshold_mev=trained["threshold"], device="cpu", seed=5)
        model = Surrogate(d / "energy_flow.pt", d / "shower.pt", torch.device("cpu"))
        v = model.sample(np.full(7, 4096.0))
    assert s["family"] == "flow" and v.shape == (7, GEO.n_voxels) and np.all(np.isfinite(v))
