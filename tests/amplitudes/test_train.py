"""Networks, heads, training, checkpoint/resume, boosting, the surrogate loader and the evaluation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import lhcchain.amplitudes.train as train_module
from lhcchain.amplitudes.data import read_dataset
from lhcchain.amplitudes.evaluate import evaluate
from lhcchain.amplitudes.features import FeatureMap
from lhcchain.amplitudes.networks import AmplitudeNet
from lhcchain.amplitudes.surrogate import load_surrogate
from lhcchain.amplitudes.train import resolve_settings, select_boost, train
from lhcchain.errors import InputError

FAST = {"hidden": 32, "layers": 2, "epochs": 6, "batch_size": 128, "lr": 3e-3, "patience": 100, "max_minutes": 2.0,
        "ensemble_size": 3, "eval_samples": 8}


@pytest.mark.parametrize("network", ["mlp", "deepsets"])
@pytest.mark.parametrize("uncertainty", ["heteroscedastic", "bayesian", "ensemble"])
def test_each_network_and_head_learns(small_dataset, tmp_path, network, uncertainty):
    """Validation NLL of the standardised log|M|^2 drops well below 0.5, the best a constant can do."""
    ckpt = tmp_path / "model.pt"
    summary = train(small_dataset[0], ckpt, {**FAST, "network": network, "uncertainty": uncertainty}, device="cpu",
                    threads=2, seed=1)
    assert summary["epochs_run"] == FAST["epochs"] and summary["n_params"] > 0 and summary["device"] == "cpu"
    assert summary["best_val_loss"] < 0.2, summary["best_val_loss"]
    saved = torch.load(ckpt, weights_only=False)
    history = np.array(saved["history"])
    assert history[-1, 1] < history[0, 1]  # training loss decreases
    assert not ckpt.with_name(ckpt.name + ".last").exists()


def test_momenta_features_baseline(small_dataset, tmp_path):
    summary = train(small_dataset[0], tmp_path / "m.pt", {**FAST, "features": "momenta"}, device="cpu", threads=2)
    assert summary["best_val_loss"] < 0.45
    with pytest.raises(InputError, match="invariants"):
        train(small_dataset[0], tmp_path / "m.pt", {**FAST, "features": "momenta", "network": "deepsets"}, device="cpu")


def test_deepsets_exactly_symmetric_in_final_gluons(small_dataset):
    torch.manual_seed(0)
    data = read_dataset(small_dataset[0])
    p = torch.from_numpy(data["momenta"][:64])
    fmap = FeatureMap("invariants", 5, None).fit(torch.from_numpy(data["momenta"]), [2, 3, 4])
    for unc in ("heteroscedastic", "ensemble"):
        net = AmplitudeNet(10, network="deepsets", uncertainty=unc, hidden=16, layers=2, ensemble_size=2,
                           structure={"n_legs": 5, "identical": [2, 3, 4]}).double()
        ref = net(fmap(p, torch.float64))
        for perm in ([0, 1, 3, 2, 4], [0, 1, 4, 3, 2], [0, 1, 3, 4, 2]):
            out = net(fmap(p[:, perm], torch.float64))
            for a, b in zip(ref, out):
                torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
        # but not symmetric in an incoming and an outgoing leg (those are distinct)
        swapped = net(fmap(p[:, [2, 1, 0, 3, 4]], torch.float64))[0]
        assert not torch.allclose(ref[0], swapped)
    # a plain MLP is not symmetric
    mlp = AmplitudeNet(10, network="mlp", hidden=16, layers=2).double()
    assert not torch.allclose(mlp(fmap(p, torch.float64))[0], mlp(fmap(p[:, [0, 1, 3, 2, 4]], torch.float64))[0])


def test_checkpoint_resume(small_dataset, tmp_path, monkeypatch):
    ckpt = tmp_path / "model.pt"
    last = tmp_path / "model.pt.last"
    settings = {**FAST, "epochs": 5}
    real = train_module._val_loss
    calls = {"n": 0}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(train_module, "_val_loss", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(small_dataset[0], ckpt, settings, device="cpu", threads=2, seed=4, save_every=0.0)
    monkeypatch.setattr(train_module, "_val_loss", real)
    assert last.exists() and not ckpt.exists()
    saved = torch.load(last, weights_only=False)
    assert saved["state"]["epoch"] == 2 and len(saved["state"]["history"]) == 2
    summary = train(small_dataset[0], ckpt, settings, device="cpu", threads=2, seed=4)
    assert summary["resumed"] and summary["epochs_run"] == 5
    final = torch.load(ckpt, weights_only=False)
    assert final["epoch"] == 5 and len(final["history"]) == 5
    assert final["history"][:2] == saved["state"]["history"]
    assert not last.exists()
    # a companion file from other settings is ignored
    torch.save({**saved, "settings": resolve_settings({**settings, "hidden": 8})}, last)
    summary = train(small_dataset[0], ckpt, {**settings, "epochs": 2}, device="cpu", threads=2, seed=4)
    assert not summary["resumed"] and summary["epochs_run"] == 2


def test_early_stopping_and_settings(small_dataset, tmp_path):
    summary = train(small_dataset[0], tmp_path / "m.pt", {**FAST, "epochs": 50, "patience": 0}, device="cpu", threads=2)
    assert summary["stop_reason"] == "early_stopping" and summary["epochs_run"] == 1
    with pytest.raises(InputError, match="unknown"):
        resolve_settings({"hiden": 3})
    with pytest.raises(InputError, match="boosting"):
        resolve_settings({"boosting": {"mode": "adaboost"}})


def test_boost_selection():
    pull = np.array([0.1, -4.0, 2.9, 3.1, -0.5, 10.0])
    sigma = np.array([1.0, 0.5, 7.0, 0.2, 3.0, 0.1])
    assert select_boost(pull, sigma, "loss", 3.0, 0.5).tolist() == [1, 3, 5]
    assert select_boost(pull, sigma, "performance", 3.0, 0.5).tolist() == [0, 2, 4]
    assert select_boost(pull, sigma, "performance", 3.0, 1 / 6).tolist() == [2]
    assert select_boost(pull, sigma, "none", 3.0, 0.5).tolist() == []


@pytest.mark.parametrize("mode", ["loss", "performance"])
def test_boosting_training(small_dataset, tmp_path, mode):
    boost = {"mode": mode, "threshold": 1.0, "fraction": 0.2, "rounds": 2}
    summary = train(small_dataset[0], tmp_path / "m.pt", {**FAST, "boosting": boost}, device="cpu", threads=2)
    n_train = summary["n_train"]
    if mode == "performance":
        assert summary["n_boosted"] == 2 * round(0.2 * n_train)
    else:
        assert 0 < summary["n_boosted"] < 2 * n_train


@pytest.fixture(scope="module")
def trained(small_dataset, tmp_path_factory):
    ckpt = tmp_path_factory.mktemp("model") / "model.pt"
    train(small_dataset[0], ckpt, {**FAST, "uncertainty": "ensemble", "epochs": 8}, device="cpu", threads=2)
    return ckpt


def test_load_surrogate(trained, small_dataset, gg3g):
    sur = load_surrogate(trained, device="cpu")
    p = torch.from_numpy(read_dataset(small_dataset[0], parts=[2])["momenta"][:100])
    value, sigma = sur(p)
    assert value.shape == (100,) and sigma.shape == (100,) and value.dtype == torch.float64
    assert torch.isfinite(value).all() and torch.isfinite(sigma).all() and (value > 0).all() and (sigma > 0).all()
    exact = gg3g.subprocess_matrix_element(p, 0)
    assert (value / exact).log().abs().median() < 0.6  # roughly right after a few epochs (spread of ln|M|^2: 1.9)
    # sort_legs (default): exactly symmetric in the outgoing gluons
    v_perm, s_perm = sur(p[:, [0, 1, 4, 2, 3]])
    assert torch.equal(v_perm, value) and torch.equal(s_perm, sigma)
    v32, _ = sur(p.float())
    assert v32.dtype == torch.float32
    with pytest.raises(InputError, match="shape"):
        sur(p[:, :4])
    with pytest.raises(InputError):
        load_surrogate(small_dataset[0])


def test_sigma_calibration_out_of_sample(trained, small_dataset):
    """The calibrated total pulls on the test set, which the calibration never saw, have unit RMS
    within 4 standard errors of the two RMS estimates (validation set fixing the scale, test set
    checking it), each sqrt(Var(pull^2) / 4n) from the pulls themselves (measured: RMS 1.06 in a
    band of +-0.21 for 450 + 450 points). Without the scale the ensemble over-covers (RMS < 0.9)."""
    sur = load_surrogate(trained, device="cpu")

    def pulls(part: int) -> np.ndarray:
        data = read_dataset(small_dataset[0], parts=[part])
        log_nn, syst, stat = (t.numpy() for t in sur.predict_log(torch.from_numpy(data["momenta"])))
        return (log_nn - np.log(data["amplitudes"])) / np.hypot(syst, stat)

    val, test = pulls(1), pulls(2)
    band = 4 * np.sqrt(sum(np.var(p**2) / (4 * len(p)) for p in (val, test)))
    rms = np.sqrt(np.mean(test**2))
    assert band < 0.25 and abs(rms - 1) < band, (rms, band)
    assert np.sqrt(np.mean((test * sur.sigma_scale) ** 2)) < 0.9  # uncalibrated: sigma_scale = 1


def test_no_sigma_calibration(small_dataset, tmp_path):
    ckpt = tmp_path / "model.pt"
    summary = train(small_dataset[0], ckpt, {**FAST, "epochs": 2, "calibrate_sigma": False}, device="cpu", threads=2)
    assert summary["sigma_scale"] == 1.0 and load_surrogate(ckpt, device="cpu").sigma_scale == 1.0


def test_evaluate_writes_metrics_and_figures(trained, small_dataset, tmp_path, gg3g):
    outputs = {k: tmp_path / f"{k}.{ext}" for k, ext in (("metrics", "json"), ("accuracy", "png"), ("pulls", "png"))}
    metrics = evaluate(small_dataset[0], trained, outputs, process=gg3g, device="cpu", threads=2, n_timing=300, repeats=1)
    saved = json.loads(outputs["metrics"].read_text())
    for key in ("median_abs_delta", "p99_abs_delta", "mean_delta", "pull_syst_mean", "pull_syst_std", "pull_stat_std",
                "pull_tot_mean", "pull_tot_std", "surrogate_evals_per_s", "exact_evals_per_s", "speedup", "sigma_scale"):
        assert saved[key] is not None and np.isfinite(saved[key]), key
    assert saved["median_abs_delta"] <= saved["p99_abs_delta"] and saved["n_test"] == metrics["n_test"]
    for key in ("accuracy", "pulls"):
        assert outputs[key].read_bytes()[:4] == b"\x89PNG"
    # imported data: no process, surrogate speed only
    metrics = evaluate(small_dataset[0], trained, outputs, process=None, device="cpu", n_timing=100, repeats=1)
    assert metrics["exact_evals_per_s"] is None and metrics["surrogate_evals_per_s"] > 0
