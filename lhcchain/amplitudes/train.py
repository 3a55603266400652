"""Training of the amplitude surrogate: progress, early stopping, checkpoints, resume, boosting.

Settings (``DEFAULTS`` fills what is missing): ``features``, ``network``, ``hidden``, ``layers``,
``uncertainty``, ``ensemble_size``, ``sort_legs`` (canonical order of identical legs, :mod:`.features`), ``kl_weight``, ``repulsion`` (see :mod:`.networks`); ``epochs``,
``batch_size``, ``lr`` (peak AdamW learning rate), ``lr_min_factor`` (final lr / peak), ``warmup``
(fraction of the run with a linear warm-up), ``weight_decay``, ``patience``, ``max_minutes``,
``boosting``, ``eval_samples`` (weight samples of a Bayesian net at evaluation).

Learning-rate schedule: linear warm-up, then cosine decay to ``lr * lr_min_factor``, as a function of
``progress = max(epoch / epochs, elapsed / max_minutes)``, so a wall-clock budget always ends at the
low learning rate. Loss: heteroscedastic Gaussian NLL of the standardised log-amplitude (+ KL / N_train
for Bayesian nets, + repulsion for repulsive ensembles). Validation loss (the same NLL, Bayesian nets at
their mean weights) after every epoch selects the best model; training stops after ``patience`` epochs
without improvement, after ``epochs`` epochs or after ``max_minutes``.

Boosting (``boosting.mode``): the epochs are split into ``rounds + 1`` equal phases; after each phase
but the last, points of the (un-boosted) training set are selected by :func:`select_boost` and appended
once more to the training index list (cumulative):

* ``loss``: points whose pull ``|mu - y| / sigma_tot`` exceeds ``threshold``;
* ``performance``: the ``fraction`` of points with the largest ``sigma_tot``.

Checkpoints and resume: ``checkpoint`` (written atomically at the end) holds the best model and the
constants to use it (:mod:`.surrogate`). While training, ``<checkpoint>.last`` is rewritten atomically
(temp file + rename) at most every ``save_every`` seconds and after each phase: current and best model,
optimiser, epoch, phase, training index list, elapsed time, patience counter and the RNG state. If it
exists when ``train`` starts and matches the settings and the dataset (row count and amplitude
checksum), training resumes from it; otherwise it is ignored. It is deleted after a successful run.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from ..device import select_device
from ..errors import InputError
from ..io import staged_outputs
from .data import read_dataset
from .features import FeatureMap, TargetMap
from .networks import AmplitudeNet, combine, heteroscedastic_loss, repulsion_term

log = logging.getLogger("lhcchain.amplitudes")

FORMAT = "lhcchain-amplitude-surrogate/1"
DEFAULTS: dict = {
    "features": "invariants",
    "sort_legs": True,
    "network": "mlp",
    "hidden": 64,
    "layers": 4,
    "uncertainty": "heteroscedastic",
    "ensemble_size": 5,
    "kl_weight": 1.0,
    "repulsion": 0.0,
    "prior_std": 1.0,
    "epochs": 1000,
    "batch_size": 512,
    "lr": 2e-3,
    "lr_min_factor": 1e-3,
    "warmup": 0.02,
    "weight_decay": 0.0,
    "patience": 50,
    "max_minutes": 10.0,
    "eval_samples": 20,
    "boosting": {"mode": "none", "threshold": 3.0, "fraction": 0.1, "rounds": 1},
}
BOOSTING = ("none", "loss", "performance")


def resolve_settings(settings: Mapping) -> dict:
    """``DEFAULTS`` with ``settings`` laid over (``boosting`` merged key by key); InputError on unknown keys."""
    unknown = set(settings) - set(DEFAULTS)
    if unknown:
        raise InputError(f"amplitudes training settings: unknown key(s) {sorted(unknown)}; valid: {sorted(DEFAULTS)}")
    out = copy.deepcopy(DEFAULTS)
    for k, v in settings.items():
        out[k] = {**out[k], **dict(v)} if k == "boosting" else v
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
        model.set_mode("sample")
    outs = []
    for start in range(0, x.shape[0], chunk):
        xb = x[start:start + chunk]
        if bayes:
            # one weight sample set for the whole call: reseed so chunks share the same weights
            state = torch.random.get_rng_state()
            torch.manual_seed(12345)
            mu, s = model(xb, members=samples)
            torch.random.set_rng_state(state)
        else:
            mu, s = model(xb)
        outs.append(combine(mu, s))
    if bayes:
        model.set_mode("local")
    model.train(was)
    return tuple(torch.cat([o[i] for o in outs]) for i in range(3))


@torch.no_grad()
def _val_loss(model: AmplitudeNet, x: torch.Tensor, y: torch.Tensor, chunk: int = 65536) -> float:
    model.eval()
    if model.uncertainty == "bayesian":
        model.set_mode("mean")
    total = 0.0
    for start in range(0, x.shape[0], chunk):
        mu, s = model(x[start:start + chunk])
        total += float(heteroscedastic_loss(mu, s, y[start:start + chunk])) * min(chunk, x.shape[0] - start)
    if model.uncertainty == "bayesian":
        model.set_mode("local")
    model.train()
    return total / x.shape[0]


def _lr(settings: Mapping, progress: float) -> float:
    peak, floor, warm = float(settings["lr"]), float(settings["lr"]) * float(settings["lr_min_factor"]), float(settings["warmup"])
    progress = min(max(progress, 0.0), 1.0)
    if warm > 0 and progress < warm:
        return peak * max(progress / warm, 0.01)
    frac = (progress - warm) / max(1.0 - warm, 1e-12)
    return floor + 0.5 * (peak - floor) * (1.0 + math.cos(math.pi * frac))


def _save_atomic(obj: dict, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _fingerprint(data: dict) -> list:
    return [int(len(data["amplitudes"])), float(np.log(data["amplitudes"]).sum())]


def train(dataset, checkpoint, settings: Mapping, *, device: str = "auto", threads: int = 1, seed: int = 0,
          log_every: float = 10.0, save_every: float = 30.0) -> dict:
    """Train a surrogate on the train/val parts of ``dataset`` (HDF5 of :mod:`.data`) and write
    ``checkpoint`` (module doc). Returns a summary dict."""
    settings = resolve_settings(settings)
    dev = select_device(device, threads)
    checkpoint = Path(checkpoint)
    last_path = checkpoint.with_name(checkpoint.name + ".last")
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
    structure = {"n_legs": n_legs, "identical": identical, "n_extra": fmap.dim - fmap.n_pairs if fmap.kind == "invariants" else 0}

    torch.manual_seed(int(seed))
    model = build_model(settings, fmap.dim, structure).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=float(settings["lr"]), weight_decay=float(settings["weight_decay"]))
    n_params = sum(p.numel() for p in model.parameters())
    state = {"epoch": 0, "phase": 0, "elapsed": 0.0, "bad": 0, "best_val": math.inf, "best_epoch": 0,
             "train_index": np.arange(len(tr)), "history": []}
    best_state = copy.deepcopy(model.state_dict())
    resumed = False
    if last_path.exists():
        try:
            last = torch.load(last_path, map_location=dev, weights_only=False)
            ok = last.get("settings") == settings and last.get("fingerprint") == fingerprint and last.get("format") == FORMAT
        except Exception as exc:  # corrupt partial file: start afresh
            log.warning("ignoring unreadable %s (%s)", last_path, exc)
            ok = False
        if ok:
            model.load_state_dict(last["model"])
            opt.load_state_dict(last["optimizer"])
            best_state = last["best_model"]
            state = last["state"]
            torch.set_rng_state(last["rng"])
            resumed = True
            log.info("train_amplitude: resuming from %s at epoch %d", last_path, state["epoch"])
        else:
            log.warning("train_amplitude: %s does not match these settings/dataset; starting afresh", last_path)

    epochs, bs = int(settings["epochs"]), int(settings["batch_size"])
    budget = 60.0 * float(settings["max_minutes"])
    boost = settings["boosting"]
    rounds = int(boost.get("rounds", 0)) if boost["mode"] != "none" else 0
    phase_len = max(1, math.ceil(epochs / (rounds + 1)))
    bayes, repel = settings["uncertainty"] == "bayesian", float(settings["repulsion"])
    n_train = len(tr)
    gen = torch.Generator(device="cpu").manual_seed(int(seed) + state["epoch"])
    t_start = time.perf_counter() - state["elapsed"]
    t_log = t_save = time.perf_counter()
    stop_reason = "epochs"

    def meta() -> dict:
        return {"format": FORMAT, "settings": settings, "features": fmap.state(), "target": tmap.state(),
                "structure": structure, "process": attrs.get("process"), "amplitude_kind": attrs.get("amplitude_kind"),
                "n_legs": n_legs, "fingerprint": fingerprint, "dataset": str(dataset)}

    def save_last() -> None:
        state["elapsed"] = time.perf_counter() - t_start
        _save_atomic({**meta(), "model": model.state_dict(), "optimizer": opt.state_dict(), "best_model": best_state,
                      "state": state, "rng": torch.get_rng_state()}, last_path)

    model.train()
    while state["epoch"] < epochs:
        elapsed = time.perf_counter() - t_start
        if elapsed > budget:
            stop_reason = "max_minutes"
            break
        if state["epoch"] > 0 and state["bad"] >= int(settings["patience"]):
            stop_reason = "early_stopping"
            break
        index = torch.from_numpy(state["train_index"])
        perm = index[torch.randperm(len(index), generator=gen)].to(dev)
        total, count = 0.0, 0
        n_batches = max(1, len(perm) // bs)
        for b in range(n_batches):
            progress = max((state["epoch"] + b / n_batches) / epochs, (time.perf_counter() - t_start) / budget)
            for g in opt.param_groups:
                g["lr"] = _lr(settings, progress)
            idx = perm[b * bs:(b + 1) * bs]
            mu, s = model(x_tr[idx])
            loss = heteroscedastic_loss(mu, s, y_tr[idx])
            if bayes:
                loss = loss + float(settings["kl_weight"]) * model.kl().to(loss.device) / n_train
            if repel > 0 and mu.shape[0] > 1:
                loss = loss + repel * repulsion_term(mu) / n_train
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
        state["epoch"] += 1
        val = _val_loss(model, x_va, y_va)
        state["history"].append([state["epoch"], total / max(count, 1), val])
        if val < state["best_val"]:
            state["best_val"], state["best_epoch"], state["bad"] = val, state["epoch"], 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            state["bad"] += 1
        now = time.perf_counter()
        if now - t_log >= log_every:
            t_log = now
            log.info("train_amplitude %s: epoch %d/%d, train loss %.4f, val loss %.4f (best %.4f @ %d), lr %.2e, %.1f epochs/min",
                     attrs.get("process"), state["epoch"], epochs, total / max(count, 1), val, state["best_val"],
                     state["best_epoch"], opt.param_groups[0]["lr"], 60.0 * state["epoch"] / max(now - t_start, 1e-9))
        if rounds and state["phase"] < rounds and state["epoch"] >= (state["phase"] + 1) * phase_len:
            mean, syst, stat = predict(model, x_tr, int(settings["eval_samples"]))
            tot = torch.sqrt(syst**2 + stat**2)
            pull = ((mean - y_tr) / tot).cpu().numpy()
            chosen = select_boost(pull, tot.cpu().numpy(), boost["mode"], float(boost["threshold"]), float(boost["fraction"]))
            state["train_index"] = np.concatenate([state["train_index"], chosen])
            state["phase"] += 1
            state["bad"] = 0
            log.info("train_amplitude: boosting round %d (%s) repeats %d points", state["phase"], boost["mode"], len(chosen))
            save_last()
            t_save = time.perf_counter()
        elif now - t_save >= save_every:
            save_last()
            t_save = time.perf_counter()
    minutes = (time.perf_counter() - t_start) / 60.0
    model.load_state_dict(best_state)
    with staged_outputs(checkpoint) as (tmp,):
        torch.save({**meta(), "model": best_state, "optimizer": opt.state_dict(), "epoch": state["epoch"],
                    "best_epoch": state["best_epoch"], "best_val_loss": state["best_val"], "history": state["history"]}, tmp)
    last_path.unlink(missing_ok=True)
    summary = {
        "process": attrs.get("process"),
        "epochs_run": state["epoch"],
        "best_epoch": state["best_epoch"],
        "best_val_loss": state["best_val"],
        "stop_reason": stop_reason,
        "train_minutes": minutes,
        "n_params": n_params,
        "n_train": n_train,
        "n_boosted": int(len(state["train_index"]) - n_train),
        "device": str(dev),
        "resumed": resumed,
        "settings": settings,
    }
    log.info("train_amplitude %s: %d epochs in %.2f min (%s), best val loss %.4f", attrs.get("process"), state["epoch"],
             minutes, stop_reason, state["best_val"])
    return summary
