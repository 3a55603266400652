"""``amplitudes.data.sampling: integrator``: training points drawn by a MadNIS integrator with their
weights, and the loss weighted by them (``loss_weight_power``)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from lhcchain.amplitudes.data import make_dataset, read_dataset
from lhcchain.amplitudes.features import exact_amplitude
from lhcchain.amplitudes.networks import heteroscedastic_loss
from lhcchain.amplitudes.train import loss_weights, train
from lhcchain.config import resolve_settings
from lhcchain.errors import InputError
from lhcchain.madnis.integrator import CheckedIntegrand, draw, load_integrator, save_integrator, train_madnis
from lhcchain.physics import get_process

from .conftest import SPLIT

TINY = {"steps": 5, "batch_size": 256, "vegas": {"iterations": 2, "samples_per_channel": 300},
        "flow": {"layers": 2, "units": 16, "bins": 8}}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, gg3g):
    """A tiny trained gg -> ggg integrator, saved as the madnis stage does."""
    settings = resolve_settings(TINY, "madnis.training")
    integrator, summary = train_madnis(CheckedIntegrand(gg3g), settings, torch.device("cpu"), seed=3)
    path = tmp_path_factory.mktemp("int") / "integrator.pt"
    save_integrator(str(path), integrator, {"process": "gg_3g"}, settings, {k: v for k, v in summary.items() if k != "loss"})
    return path


@pytest.fixture(scope="module")
def sampled(tmp_path_factory, gg3g, checkpoint):
    path = tmp_path_factory.mktemp("amp") / "gg_3g_int.h5"
    metrics = make_dataset(gg3g, 600, path, sampling="integrator", split=SPLIT, seed=5, batch_size=500,
                           integrator=checkpoint)
    return path, metrics


def test_points_carry_the_exact_amplitude_and_their_weight(sampled, gg3g, checkpoint):
    path, metrics = sampled
    data = read_dataset(path)
    assert data["attrs"]["sampling"] == "integrator" and data["attrs"]["integrator"] == str(checkpoint)
    assert metrics["n_points"] == 600 and data["weights"].shape == (600,)
    # the amplitude recovered from the integrand equals a direct evaluation at the stored momenta
    mom = torch.from_numpy(data["momenta"])
    direct = exact_amplitude(gg3g, mom).numpy()
    np.testing.assert_allclose(data["amplitudes"], direct, rtol=1e-9)
    assert gg3g.cuts(mom).all()
    # w = f / q: the integrand at the point over the integrator's density, > 0 inside the cuts
    assert np.isfinite(data["weights"]).all() and (data["weights"] > 0).all()


def test_weights_are_the_integrators_weights(gg3g, checkpoint):
    """Independent of the dataset code: the integrator's own sample, f / q, with the same seed."""
    integrator, function, _ = load_integrator(str(checkpoint), "cpu")
    torch.manual_seed(5)
    s = draw(integrator, 500, 500)
    keep = (s.func_vals > 0).numpy()
    expected = (s.func_vals / s.q_sample).numpy()[keep]
    np.testing.assert_allclose(s.weights.numpy()[keep], expected, rtol=1e-9)
    out = checkpoint.parent / "w.h5"
    make_dataset(gg3g, 20, out, sampling="integrator", split=SPLIT, seed=5, batch_size=500, integrator=checkpoint)
    with h5py.File(out) as f:
        np.testing.assert_allclose(f["weights"][:], expected[:20], rtol=1e-9)


def test_integrator_sampling_needs_a_matching_checkpoint(tmp_path, gg3g, checkpoint):
    with pytest.raises(InputError, match="integrator checkpoint"):
        make_dataset(gg3g, 10, tmp_path / "a.h5", sampling="integrator", split=SPLIT, seed=1)
    with pytest.raises(InputError, match="'gg_3g', not 'gg_4g'"):
        make_dataset(get_process("gg_4g"), 10, tmp_path / "b.h5", sampling="integrator", split=SPLIT, seed=1,
                     integrator=checkpoint)
    with pytest.raises(InputError, match="cannot be read"):
        make_dataset(gg3g, 10, tmp_path / "c.h5", sampling="integrator", split=SPLIT, seed=1,
                     integrator=tmp_path / "missing.pt")
    assert not any(tmp_path.glob("*.h5"))


def test_loss_weights():
    w = np.array([1.0, 3.0, 4.0])
    assert loss_weights(w, 0.0, "x") is None
    np.testing.assert_allclose(loss_weights(w, 1.0, "x").numpy(), w / w.mean(), rtol=1e-6)
    sqrt = np.sqrt(w)
    np.testing.assert_allclose(loss_weights(w, 0.5, "x").numpy(), sqrt / sqrt.mean(), rtol=1e-6)
    assert loss_weights(None, 1.0, "data.h5") is None  # no weights (flat, external data): unweighted
    with pytest.raises(InputError, match="> 0"):
        loss_weights(np.array([1.0, 0.0]), 1.0, "data.h5")


def test_weighted_loss_counts_each_point_by_its_weight():
    mu, s, y = torch.tensor([0.0, 1.0]), torch.tensor([0.0, 0.5]), torch.tensor([1.0, 1.0])
    terms = 0.5 * (y - mu) ** 2 * torch.exp(-2 * s) + s
    assert float(heteroscedastic_loss(mu, s, y, torch.tensor([2.0, 0.0]))) == pytest.approx(float(terms[0]))
    assert float(heteroscedastic_loss(mu, s, y)) == pytest.approx(float(terms.mean()))


def test_training_with_weighted_loss(sampled, small_dataset, tmp_path):
    settings = {"hidden": 16, "layers": 2, "epochs": 2, "batch_size": 128, "max_minutes": 1.0, "loss_weight_power": 1.0}
    summary = train(sampled[0], tmp_path / "model.pt", settings, device="cpu", seed=1, log_every=1e9)
    assert summary["settings"]["loss_weight_power"] == 1.0 and np.isfinite(summary["best_val_loss"])
    assert summary["loss_weighted"]
    # flat data have no weights: the same settings train them unweighted (the setting is stage-wide)
    flat = train(small_dataset[0], tmp_path / "flat.pt", {**settings, "epochs": 1}, device="cpu", seed=1, log_every=1e9)
    assert not flat["loss_weighted"]
