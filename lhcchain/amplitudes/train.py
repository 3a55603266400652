"""Training of the amplitude surrogate: progress, early stopping, checkpoints, resume, boosting.

Settings (``amplitudes.model`` and ``amplitudes.training``; the default config's sections fill what is
missing): ``features``, ``network``, ``hidden``, ``layers``,
``uncertainty``, ``ensemble_size``, ``sort_legs`` (canonical order of identical legs, :mod:`.features`), ``kl_weight``, ``repulsion`` (see :mod:`.networks`); ``epochs``,
``batch_size``, ``lr`` (peak AdamW learning rate), ``lr_min_factor`` (final lr / peak), ``warmup``
(fraction of the run with a linear warm-up), ``weight_decay``, ``patience``, ``max_minutes``,
``boosting``, ``eval_samples`` (weight samples of a Bayesian net at evaluation), ``calibrate_sigma``,
``loss_weight_power``.

Learning-rate schedule, early stopping and the resumable loop: :mod:`lhcchain.training`. Loss:
heteroscedastic Gaussian NLL of the standardised log-amplitude (+ KL / N_train for Bayesian nets,
+ repulsion for repulsive ensembles). Validation loss: the same NLL, Bayesian nets at their mean weights.
With ``loss_weight_power`` p > 0 and a dataset drawn by a MadNIS integrator (which stores each point's
integrand weight ``w``, :mod:`.data`; other datasets train unweighted) every point's NLL term, in training and validation, is weighted
by ``(w / <w>)^p`` (normalised to mean 1 on each split): p = 1 weights the error by the point's
contribution to the cross-section and to the unweighting, so the surrogate is most accurate where the
largest weights, which set the unweighting efficiency, sit.

Uncertainty calibration (``calibrate_sigma``, default on): after training, the best model's total
pulls ``(mu - y) / sqrt(sigma_syst^2 + sigma_stat^2)`` on the validation set give the factor
``sigma_scale = sqrt(mean(pull^2))`` (:func:`sigma_scale`), stored in the checkpoint; the surrogate
multiplies both uncertainties by it, so that validation pulls have unit width. Deep ensembles and
Bayesian networks otherwise over-cover: each member's ``sigma_syst`` describes a single network's
error, larger than that of the members' mean. The test set then checks the calibration out of sample.

Boosting (``boosting.mode``): the epochs are split into ``rounds + 1`` equal phases; after each phase
but the last, points of the (un-boosted) training set are selected by :func:`select_boost` and appended
once more to the training index list (cumulative):

* ``loss``: points whose pull ``|mu - y| / sigma_tot`` exceeds ``threshold``;
* ``performance``: the ``fraction`` of points with the largest ``sigma_tot``.

Checkpoints and resume: ``checkpoint`` (written atomically at the end) holds the best model and the
constants to use it (:mod:`.surrogate`). ``<checkpoint>.last`` (:class:`lhcchain.training.Trainer`)
is also written after each boosting phase and keeps the phase and the training index list; a run
resumes from it when the settings and the dataset (row count and amplitude checksum) match.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from .. import config
from ..device import select_device
from ..errors import InputError
from ..training import Trainer, seeded
from .data import read_dataset
from .features import FeatureMap, TargetMap
from .networks import AmplitudeNet, combine, heteroscedastic_loss, repulsion_term

log = logging.getLogger("lhcchain.amplitudes")

FORMAT = "lhcchain-amplitude-surrogate/1"
BOOSTING = ("none", "loss", "performance")


def resolve_settings(settings: Mapping) -> dict:
    """``settings`` laid over the default config's ``amplitudes.model`` and ``amplitudes.training``
    (:func:`lhcchain.config.resolve_settings`); InputError on unknown keys or bad values."""
    out = config.resolve_settings(settings, ("amplitudes.model", "amplitudes.training"))
    if out["boosting"]["mode"] not in BOOSTING:
        raise InputError(f"amplitudes: boosting.mode must be one of {', '.join(BOOSTING)}, got {out['boosting']['mode']!r}")
    for key in ("epochs", "batch_size", "hidden", "layers"):
        if int(out[key]) < 1:
            raise InputError(f"amplitudes: {key} must be >= 1, got {out[key]}")
    if not float(out["lr"]) > 0 or not float(out["max_minutes"]) > 0:
        raise InputError(f"amplitudes: lr and max_minutes must be > 0, got {out['lr']}, {out['max_minutes']}")
    return out


def select_boost(pull: np.ndarray, sigma_tot: np.ndarray, mode: str, threshold: float, fraction: float) -> np.ndarray:
    """Indices of the training points a boosting round repeats (module doc)."""
    if mode == "loss":
        return np.flatnonzero(np.abs(pull) > threshold)
    if mode == "performance":
        k = int(round(fraction * len(sigma_tot)))
        return np.sort(np.argsort(-sigma_tot, kind="stable")[:k]) if k > 0 else np.zeros(0, dtype=np.int64)
    if mode == "none":
        return np.zeros(0, dtype=np.int64)
    raise InputError(f"amplitudes: boosting.mode must be one of {', '.join(BOOSTING)}, got {mode!r}")


def build_model(settings: Mapping, n_in: int, structure: Mapping) -> AmplitudeNet:
    return AmplitudeNet(n_in, network=settings["network"], uncertainty=settings["uncertainty"], hidden=settings["hidden"],
                        layers=settings["layers"], ensemble_size=settings["ensemble_size"],
                        prior_std=settings["prior_std"], structure=dict(structure))


@torch.no_grad()
def predict(model: AmplitudeNet, x: torch.Tensor, samples: int = 20, chunk: int = 65536) -> tuple[torch.Tensor, ...]:
    """``(mean, sigma_syst, sigma_stat)`` of the standardised log-amplitude at inputs ``x``."""
    was = model.training
    model.eval()
    bayes = model.uncertainty == "bayesian"
    if bayes:
        model.set_bayes_mode("sample")
    outs = []
    for start in range(0, x.shape[0], chunk):
        xb = x[start:start + chunk]
        if bayes:
            # one weight sample set for the whole call: every chunk draws from the same seed (the
            # generators' states, the GPUs' included, are restored afterwards)
            with seeded(12345, xb.device):
                mu, s = model(xb, members=samples)
        else:
            mu, s = model(xb)
        outs.append(combine(mu, s))
    if bayes:
        model.set_bayes_mode("local")
    model.train(was)
    return tuple(torch.cat([o[i] for o in outs]) for i in range(3))


def total_pulls(model: AmplitudeNet, x: torch.Tensor, y: torch.Tensor, samples: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``((mu - y) / sigma_tot, sigma_tot)`` of ``model`` at ``(x, y)``, ``sigma_tot^2 = sigma_syst^2 + sigma_stat^2``
    (standardised log-amplitude, uncalibrated)."""
    mean, syst, stat = predict(model, x, samples)
    tot = torch.sqrt(syst**2 + stat**2)
    return (mean - y) / tot, tot


def sigma_scale(model: AmplitudeNet, x: torch.Tensor, y: torch.Tensor, samples: int) -> float:
    """Root mean square of the total pulls of ``model`` on ``(x, y)`` (module doc)."""
    pull, _ = total_pulls(model, x, y, samples)
    return float(pull.double().pow(2).mean().sqrt())


def loss_weights(weights: np.ndarray | None, power: float, where: str) -> torch.Tensor | None:
    """``(w / <w>)^power`` (float32, mean 1) of integrand weights ``w``, or None (an unweighted loss) for
    ``power == 0`` or a dataset without weights (flat, importance or external points: the setting is
    shared by every process of the stage)."""
    if power == 0 or weights is None:
        return None
    if power < 0 or not np.isfinite(weights).all() or (weights <= 0).any():
        raise InputError(f"amplitudes: loss_weight_power must be >= 0 and the weights of {where} finite and > 0")
    factor = (weights / weights.mean()) ** power
    return torch.from_numpy(factor / factor.mean()).to(torch.float32)


@torch.no_grad()
def _val_loss(model: AmplitudeNet, x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None,
              chunk: int = 65536) -> float:
    model.eval()
    if model.uncertainty == "bayesian":
        model.set_bayes_mode("mean")
    total = 0.0
    for start in range(0, x.shape[0], chunk):
        mu, s = model(x[start:start + chunk])
        w = None if weight is None else weight[start:start + chunk]
        total += float(heteroscedastic_loss(mu, s, y[start:start + chunk], w)) * min(chunk, x.shape[0] - start)
    if model.uncertainty == "bayesian":
        model.set_bayes_mode("local")
    model.train()
    return total / x.shape[0]


def _fingerprint(data: dict) -> list:
    return [int(len(data["amplitudes"])), float(np.log(data["amplitudes"]).sum())]


def train(dataset, checkpoint, settings: Mapping, *, device: str = "auto", threads: int = 1, seed: int = 0,
          log_every: float = 10.0, save_every: float = 30.0) -> dict:
    """Train a surrogate on the train/val parts of ``dataset`` (HDF5 of :mod:`.data`) and write
    ``checkpoint`` (module doc). Returns a summary dict."""
    settings = resolve_settings(settings)
    dev = select_device(device, threads)
    checkpoint = Path(checkpoint)
    data = read_dataset(dataset)
    attrs = data["attrs"]
    fingerprint = _fingerprint(data)
    split = data["split"]
    mom = torch.from_numpy(data["momenta"])
    amp = torch.from_numpy(data["amplitudes"])
    tr, va = np.flatnonzero(split == 0), np.flatnonzero(split == 1)
    if len(tr) < 2:
        raise InputError(f"amplitude dataset {dataset}: fewer than 2 training points")
    if len(va) == 0:
        log.warning("amplitude dataset %s has no validation points; validating on the training set", dataset)
        va = tr
    n_legs = int(mom.shape[1])
    identical = [int(i) for i in attrs.get("identical_legs", [])]
    sqrt_s = float(attrs.get("sqrt_s", 0.0)) or None
    if settings["network"] == "deepsets" and settings["features"] != "invariants":
        raise InputError("amplitudes: the deepsets network needs features: invariants")
    sort = identical if settings["sort_legs"] else None
    fmap = FeatureMap(settings["features"], n_legs, sqrt_s, sort=sort).fit(mom[tr], identical)
    tmap = TargetMap().fit(amp[tr])
    x_all = fmap(mom).to(dev)
    y_all = tmap.forward(amp).to(torch.float32).to(dev)
    x_tr, y_tr, x_va, y_va = x_all[tr], y_all[tr], x_all[va], y_all[va]
    power, sampled = float(settings["loss_weight_power"]), data.get("weights")
    w_tr = loss_weights(None if sampled is None else sampled[tr], power, str(dataset))
    w_va = loss_weights(None if sampled is None else sampled[va], power, str(dataset))
    w_tr, w_va = (None if w is None else w.to(dev) for w in (w_tr, w_va))
    if power > 0 and sampled is None:
        log.info("train_amplitude: %s has no integrand weights (sampling %s): the loss is unweighted", dataset,
                 attrs.get("sampling"))
    structure = {"n_legs": n_legs, "identical": identical, "n_extra": fmap.dim - fmap.n_pairs if fmap.kind == "invariants" else 0}

    torch.manual_seed(int(seed))
    model = build_model(settings, fmap.dim, structure).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=float(settings["lr"]), weight_decay=float(settings["weight_decay"]))
    n_params = sum(p.numel() for p in model.parameters())
    meta = {"format": FORMAT, "settings": settings, "features": fmap.state(), "target": tmap.state(),
            "structure": structure, "process": attrs.get("process"), "amplitude_kind": attrs.get("amplitude_kind"),
            "n_legs": n_legs, "fingerprint": fingerprint, "dataset": str(dataset)}
    trainer = Trainer(f"train_amplitude {attrs.get('process')}", model, opt, settings, meta, checkpoint,
                      match=("settings", "fingerprint", "format"), seed=seed, log=log,
                      extra_state={"phase": 0, "train_index": np.arange(len(tr))}, log_every=log_every, save_every=save_every)
    state = trainer.state
    epochs = int(settings["epochs"])
    boost = settings["boosting"]
    rounds = int(boost.get("rounds", 0)) if boost["mode"] != "none" else 0
    phase_len = max(1, math.ceil(epochs / (rounds + 1)))
    bayes, repel = settings["uncertainty"] == "bayesian", float(settings["repulsion"])
    n_train = len(tr)

    def batch_loss(idx: torch.Tensor) -> torch.Tensor:
        mu, s = model(x_tr[idx])
        loss = heteroscedastic_loss(mu, s, y_tr[idx], None if w_tr is None else w_tr[idx])
        if bayes:
            loss = loss + float(settings["kl_weight"]) * model.kl().to(loss.device) / n_train
        if repel > 0 and mu.shape[0] > 1:
            loss = loss + repel * repulsion_term(mu) / n_train
        return loss

    def boost_round() -> bool:
        """After each phase but the last, repeat the selected points (module doc); True if it did."""
        if not rounds or state["phase"] >= rounds or state["epoch"] < (state["phase"] + 1) * phase_len:
            return False
        pull, tot = total_pulls(model, x_tr, y_tr, int(settings["eval_samples"]))
        chosen = select_boost(pull.cpu().numpy(), tot.cpu().numpy(), boost["mode"], float(boost["threshold"]),
                              float(boost["fraction"]))
        state["train_index"] = np.concatenate([state["train_index"], chosen])
        state["phase"] += 1
        state["bad"] = 0
        log.info("train_amplitude: boosting round %d (%s) repeats %d points", state["phase"], boost["mode"], len(chosen))
        return True

    stop_reason = trainer.run(lambda: torch.from_numpy(state["train_index"]), batch_loss,
                              lambda: _val_loss(model, x_va, y_va, w_va), boost_round)
    scale = sigma_scale(model, x_va, y_va, int(settings["eval_samples"])) if settings["calibrate_sigma"] else 1.0
    trainer.meta["sigma_scale"] = scale
    minutes = trainer.finish()
    summary = {
        "process": attrs.get("process"),
        "epochs_run": state["epoch"],
        "best_epoch": state["best_epoch"],
        "best_val_loss": state["best_val"],
        "stop_reason": stop_reason,
        "train_time_s": 60.0 * minutes,
        "n_params": n_params,
        "n_train": n_train,
        "n_boosted": int(len(state["train_index"]) - n_train),
        "sigma_scale": scale,
        "loss_weighted": w_tr is not None,
        "device": str(dev),
        "resumed": trainer.resumed,
        "settings": settings,
    }
    log.info("train_amplitude %s: %d epochs in %.2f min (%s), best val loss %.4f", attrs.get("process"), state["epoch"],
             minutes, stop_reason, state["best_val"])
    return summary
