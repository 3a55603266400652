"""Training of the event generators: progress, early stopping, checkpoints, resume.

Settings (``DEFAULTS`` fills what is missing): ``family`` (``cfm``, ``flow``, ``transformer``),
``conditional`` (one network conditioned on the one-hot multiplicity, or one per multiplicity),
``dilepton_mass`` (the dilepton mass as network coordinate instead of l1's pt, :class:`.data.Transform`),
``network``, ``hidden``, ``layers``, ``heads``, ``bayesian``, ``kl_weight``, ``prior_std``,
``transforms``, ``bins``, ``components`` (see :mod:`.models`); ``epochs``, ``batch_size``, ``lr``
(peak AdamW learning rate), ``lr_min_factor``, ``warmup`` (fraction of the run), ``weight_decay``,
``patience`` (epochs without validation improvement), ``max_minutes`` (wall-clock budget).

The learning rate warms up linearly, then decays as a cosine to ``lr * lr_min_factor`` as a function
of ``progress = max(epoch / epochs, elapsed / max_minutes)`` (the amplitude stage's schedule). The loss
is the family's per-event loss weighted by the event weights (normalised to mean 1), plus
``kl_weight * KL / N_train`` for a Bayesian network. The validation loss (the same loss with a fixed
random seed, Bayesian networks at their mean weights) selects the best model.

Checkpoints: ``checkpoint`` holds the best model with everything sampling needs (settings, transform,
multiplicities and their fractions, lepton flavours, selection). ``<checkpoint>.last`` is rewritten
atomically at most every ``save_every`` seconds; a run finding one that matches its settings and data
resumes from it. It is deleted after a successful run.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..device import select_device
from ..errors import InputError
from ..io import staged_outputs
from .data import Events, Transform, lepton_flavours, load_events
from .models import FAMILIES, EventModel

log = logging.getLogger("lhcchain.generate")

FORMAT = "lhcchain-event-generator/1"
DEFAULTS: dict[str, Any] = {
    "family": "cfm",
    "conditional": True,
    "dilepton_mass": False,
    "network": "mlp",
    "hidden": 256,
    "layers": 4,
    "heads": 4,
    "bayesian": False,
    "kl_weight": 1.0,
    "prior_std": 1.0,
    "transforms": 6,
    "bins": 8,
    "components": 10,
    "epochs": 2000,
    "batch_size": 1024,
    "lr": 1e-3,
    "lr_min_factor": 1e-2,
    "warmup": 0.02,
    "weight_decay": 0.0,
    "patience": 200,
    "max_minutes": 10.0,
}
VAL_SEED = 20240601


def resolve_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``DEFAULTS`` with ``settings`` laid over; InputError on unknown keys or bad values."""
    unknown = set(settings) - set(DEFAULTS)
    if unknown:
        raise InputError(f"generate: unknown model/training key(s) {sorted(unknown)}; valid: {sorted(DEFAULTS)}")
    out = {**DEFAULTS, **settings}
    if out["family"] not in FAMILIES:
        raise InputError(f"generate: family must be one of {', '.join(FAMILIES)}, got {out['family']!r}")
    for key in ("epochs", "batch_size", "hidden", "layers", "heads", "transforms", "bins", "components"):
        if int(out[key]) < 1:
            raise InputError(f"generate: {key} must be >= 1, got {out[key]}")
    if not float(out["lr"]) > 0 or not float(out["max_minutes"]) > 0:
        raise InputError(f"generate: lr and max_minutes must be > 0, got {out['lr']}, {out['max_minutes']}")
    return out


def schedule(settings: Mapping[str, Any], progress: float) -> float:
    """Learning rate at ``progress`` in [0, 1] (module doc)."""
    peak, floor, warm = float(settings["lr"]), float(settings["lr"]) * float(settings["lr_min_factor"]), float(settings["warmup"])
    progress = min(max(progress, 0.0), 1.0)
    if warm > 0 and progress < warm:
        return peak * max(progress / warm, 0.01)
    frac = (progress - warm) / max(1.0 - warm, 1e-12)
    return floor + 0.5 * (peak - floor) * (1.0 + math.cos(math.pi * frac))


def tensors(events: Events, transform: Transform, multiplicities: Sequence[int], device: torch.device) -> tuple[torch.Tensor, ...]:
    """Network-space ``x`` (NaN -> 0), multiplicity index ``k`` and weights normalised to mean 1."""
    if not (events.weight > 0).all():
        raise InputError(f"{events.source}: {int((events.weight <= 0).sum())} events have weight <= 0; "
                         "the generators need positive event weights")
    z = np.nan_to_num(transform.forward(events.x, events.source), nan=0.0)
    k = np.searchsorted(np.array(sorted(multiplicities)), events.n_jets)
    w = events.weight / events.weight.mean()
    return (torch.as_tensor(z, dtype=torch.float32, device=device), torch.as_tensor(k, dtype=torch.long, device=device),
            torch.as_tensor(w, dtype=torch.float32, device=device))


@torch.no_grad()
def validation_loss(model: EventModel, x: torch.Tensor, k: torch.Tensor, w: torch.Tensor, chunk: int = 8192) -> float:
    """Weighted mean loss on ``x`` with a fixed random seed, Bayesian nets at their mean weights."""
    was = model.training
    model.eval()
    model.set_bayes_mode("mean")
    state = torch.random.get_rng_state()
    cuda_state = torch.cuda.get_rng_state_all() if x.is_cuda else None
    torch.manual_seed(VAL_SEED)
    total = sum(float((model.loss(x[s:s + chunk], k[s:s + chunk]) * w[s:s + chunk]).sum()) for s in range(0, len(k), chunk))
    torch.random.set_rng_state(state)
    if cuda_state is not None:
        torch.cuda.set_rng_state_all(cuda_state)
    model.set_bayes_mode("local")
    model.train(was)
    return total / float(w.sum())


def _save_atomic(obj: dict, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def train(train_data: str | os.PathLike[str], val_data: str | os.PathLike[str], checkpoint: str | os.PathLike[str],
          settings: Mapping[str, Any], *, level: str = "particle", multiplicities: Sequence[int] = (1, 2, 3),
          selection: Mapping[str, Any] | None = None, max_jets: int = 3, device: str = "auto", threads: int = 1,
          seed: int = 0, log_every: float = 10.0, save_every: float = 30.0) -> dict[str, Any]:
    """Train a generator on ``train_data`` (validating on ``val_data``), prepared parquet or LHE files,
    and write ``checkpoint`` (module doc). ``selection`` is the prepare selection of the data (its
    ``lepton_pt_min`` and ``jet_pt_min`` set the transform, and sampling enforces it). Returns a summary."""
    settings = resolve_settings(settings)
    mult = sorted(int(m) for m in multiplicities)
    if not mult or mult[0] < 0:
        raise InputError(f"generate: multiplicities must be a non-empty list of jet counts >= 0, got {list(multiplicities)}")
    sel = dict(selection or {})
    dev = select_device(device, threads)
    checkpoint = Path(checkpoint)
    last_path = checkpoint.with_name(checkpoint.name + ".last")
    tr_ev = load_events(train_data, level, mult, max_jets, sel)
    va_ev = load_events(val_data, level, mult, max_jets, sel)
    transform = Transform(max(mult), float(sel.get("lepton_pt_min") or 0.0), float(sel.get("jet_pt_min") or 0.0),
                          bool(settings["dilepton_mass"])).fit(tr_ev)
    x_tr, k_tr, w_tr = tensors(tr_ev, transform, mult, dev)
    x_va, k_va, w_va = tensors(va_ev, transform, mult, dev)
    counts = {m: int((tr_ev.n_jets == m).sum()) for m in mult}
    empty = [m for m, c in counts.items() if c == 0]
    if empty:
        raise InputError(f"{train_data}: no training events with {empty} jets at level {level!r}")
    fractions = {m: float(tr_ev.weight[tr_ev.n_jets == m].sum() / tr_ev.weight.sum()) for m in mult}
    fingerprint = [len(tr_ev), len(va_ev), float(np.nansum(tr_ev.x)), float(np.nansum(va_ev.x))]

    torch.manual_seed(int(seed))
    model = EventModel(settings, mult).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=float(settings["lr"]), weight_decay=float(settings["weight_decay"]))
    n_params = sum(p.numel() for p in model.parameters())
    state: dict[str, Any] = {"epoch": 0, "elapsed": 0.0, "bad": 0, "best_val": math.inf, "best_epoch": 0, "history": []}
    best_state = copy.deepcopy(model.state_dict())
    info = {"format": FORMAT, "settings": settings, "level": level, "multiplicities": mult, "max_jets": int(max_jets),
            "selection": sel, "transform": transform.state(), "fractions": fractions, "flavours": lepton_flavours(tr_ev, mult),
            "n_train": counts, "fingerprint": fingerprint, "train_data": str(train_data)}
    resumed = False
    if last_path.exists():
        try:
            last = torch.load(last_path, map_location=dev, weights_only=False)
            ok = all(last.get(key) == info[key] for key in ("format", "settings", "fingerprint", "multiplicities", "level"))
        except Exception as exc:  # corrupt partial file: start afresh
            log.warning("ignoring unreadable %s (%s)", last_path, exc)
            ok = False
        if ok:
            model.load_state_dict(last["model"])
            opt.load_state_dict(last["optimizer"])
            best_state, state = last["best_model"], last["state"]
            torch.set_rng_state(last["rng"])
            resumed = True
            log.info("train_generator: resuming from %s at epoch %d", last_path, state["epoch"])
        else:
            log.warning("train_generator: %s does not match these settings/data; starting afresh", last_path)

    epochs, bs = int(settings["epochs"]), int(settings["batch_size"])
    budget = 60.0 * float(settings["max_minutes"])
    n_train, kl_weight = len(k_tr), float(settings["kl_weight"])
    gen = torch.Generator(device="cpu").manual_seed(int(seed) + state["epoch"])
    t_start = time.perf_counter() - state["elapsed"]
    t_log = t_save = time.perf_counter()
    stop_reason = "epochs"

    def save_last() -> None:
        state["elapsed"] = time.perf_counter() - t_start
        _save_atomic({**info, "model": model.state_dict(), "optimizer": opt.state_dict(), "best_model": best_state,
                      "state": state, "rng": torch.get_rng_state()}, last_path)

    model.train()
    while state["epoch"] < epochs:
        if time.perf_counter() - t_start > budget:
            stop_reason = "max_minutes"
            break
        if state["epoch"] > 0 and state["bad"] >= int(settings["patience"]):
            stop_reason = "early_stopping"
            break
        perm = torch.randperm(n_train, generator=gen).to(dev)
        total, count = 0.0, 0
        n_batches = max(1, n_train // bs)
        for b in range(n_batches):
            progress = max((state["epoch"] + b / n_batches) / epochs, (time.perf_counter() - t_start) / budget)
            for g in opt.param_groups:
                g["lr"] = schedule(settings, progress)
            idx = perm[b * bs:(b + 1) * bs]
            loss = (model.loss(x_tr[idx], k_tr[idx]) * w_tr[idx]).mean()
            if model.bayesian:
                loss = loss + kl_weight * model.kl().to(loss.device) / n_train
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
        state["epoch"] += 1
        val = validation_loss(model, x_va, k_va, w_va)
        state["history"].append([state["epoch"], total / max(count, 1), val])
        if val < state["best_val"]:
            state["best_val"], state["best_epoch"], state["bad"] = val, state["epoch"], 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            state["bad"] += 1
        now = time.perf_counter()
        if now - t_log >= log_every:
            t_log = now
            log.info("train_generator: epoch %d/%d, train loss %.4f, val loss %.4f (best %.4f @ %d), lr %.2e, %.0f events/s",
                     state["epoch"], epochs, total / max(count, 1), val, state["best_val"], state["best_epoch"],
                     opt.param_groups[0]["lr"], state["epoch"] * n_batches * bs / max(now - t_start, 1e-9))
        if now - t_save >= save_every:
            save_last()
            t_save = time.perf_counter()
    minutes = (time.perf_counter() - t_start) / 60.0
    with staged_outputs(checkpoint) as (tmp,):
        torch.save({**info, "model": best_state, "epoch": state["epoch"], "best_epoch": state["best_epoch"],
                    "best_val_loss": state["best_val"], "history": state["history"]}, tmp)
    last_path.unlink(missing_ok=True)
    summary = {
        "family": settings["family"], "epochs_run": state["epoch"], "best_epoch": state["best_epoch"],
        "best_val_loss": state["best_val"], "stop_reason": stop_reason, "train_minutes": minutes, "n_params": n_params,
        "n_train": counts, "n_val": {m: int((va_ev.n_jets == m).sum()) for m in mult}, "device": str(dev),
        "resumed": resumed, "settings": settings,
    }
    log.info("train_generator (%s): %d epochs in %.2f min (%s), best val loss %.4f", settings["family"], state["epoch"], minutes,
             stop_reason, state["best_val"])
    return summary


def load_model(checkpoint: str | os.PathLike[str], device: torch.device) -> tuple[EventModel, dict[str, Any]]:
    """The best model of ``checkpoint`` (in eval mode on ``device``) and the checkpoint's metadata."""
    path = Path(checkpoint)
    try:
        ckpt = torch.load(path, map_location=device, weights_only=False)
    except Exception as exc:
        raise InputError(f"{path}: not a readable generator checkpoint: {type(exc).__name__}: {exc}") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise InputError(f"{path}: not a generator checkpoint of format {FORMAT!r}")
    model = EventModel(ckpt["settings"], ckpt["multiplicities"]).to(device)
    model.load_state_dict(ckpt["model"])
    model.eval()
    return model, ckpt
