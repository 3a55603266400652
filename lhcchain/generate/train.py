"""Training of the event generators: progress, early stopping, checkpoints, resume.

Settings (``generate.model`` and ``generate.training``; the default config's sections fill what is
missing): ``family`` (``cfm``, ``flow``, ``transformer``),
``conditional`` (one network conditioned on the one-hot multiplicity, or one per multiplicity),
``dilepton_mass`` (the dilepton mass as network coordinate instead of l1's pt, :class:`.data.Transform`),
``mll_peak`` ([mass, width] in GeV: that mass through the resonance's Breit-Wigner, or null),
``network``, ``hidden``, ``layers``, ``heads``, ``bayesian``, ``kl_weight``, ``prior_std``,
``transforms``, ``bins``, ``components`` (see :mod:`.models`); ``epochs``, ``batch_size``, ``lr``
(peak AdamW learning rate), ``lr_min_factor``, ``warmup`` (fraction of the run), ``weight_decay``,
``patience`` (epochs without validation improvement), ``max_minutes`` (wall-clock budget).

Learning-rate schedule, early stopping and the resumable loop: :mod:`lhcchain.training`. The loss
is the family's per-event loss weighted by the event weights (normalised to mean 1), plus
``kl_weight * KL / N_train`` for a Bayesian network. The validation loss (the same loss with a fixed
random seed, Bayesian networks at their mean weights) selects the best model.

Checkpoints: ``checkpoint`` holds the best model with everything sampling needs (settings, transform,
multiplicities and their fractions, lepton flavours, selection). A run resumes from
``<checkpoint>.last`` when its settings and data match.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import config
from ..device import select_device
from ..errors import InputError
from ..training import Trainer, seeded
from .data import Events, Transform, lepton_flavours, load_events
from .models import FAMILIES, EventModel

log = logging.getLogger("lhcchain.generate")

FORMAT = "lhcchain-event-generator/2"  # 2: eta and Breit-Wigner m_ll maps in the transform
VAL_SEED = 20240601


def resolve_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``settings`` laid over the default config's ``generate.model`` and ``generate.training``
    (:func:`lhcchain.config.resolve_settings`); InputError on unknown keys or bad values."""
    out = config.resolve_settings(settings, ("generate.model", "generate.training"), "generate.models/training")
    if out["family"] not in FAMILIES:
        raise InputError(f"generate: family must be one of {', '.join(FAMILIES)}, got {out['family']!r}")
    for key in ("epochs", "batch_size", "hidden", "layers", "heads", "transforms", "bins", "components"):
        if int(out[key]) < 1:
            raise InputError(f"generate: {key} must be >= 1, got {out[key]}")
    if not float(out["lr"]) > 0 or not float(out["max_minutes"]) > 0:
        raise InputError(f"generate: lr and max_minutes must be > 0, got {out['lr']}, {out['max_minutes']}")
    return out


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
    with seeded(VAL_SEED, x.device):
        total = sum(float((model.loss(x[s:s + chunk], k[s:s + chunk]) * w[s:s + chunk]).sum()) for s in range(0, len(k), chunk))
    model.set_bayes_mode("local")
    model.train(was)
    return total / float(w.sum())


def train(train_data: str | os.PathLike[str], val_data: str | os.PathLike[str], checkpoint: str | os.PathLike[str],
          settings: Mapping[str, Any], *, level: str = "particle", multiplicities: Sequence[int] = (1, 2, 3),
          selection: Mapping[str, Any] | None = None, max_jets: int = 3, device: str = "auto", threads: int = 1,
          seed: int = 0, log_every: float = 10.0, save_every: float = 30.0) -> dict[str, Any]:
    """Train a generator on ``train_data`` (validating on ``val_data``), prepared parquet or LHE files,
    and write ``checkpoint`` (module doc). ``selection`` is the prepare selection of the data (its
    thresholds, eta limits and m_ll window set the transform, and sampling enforces it). Returns a summary."""
    settings = resolve_settings(settings)
    mult = sorted(int(m) for m in multiplicities)
    if not mult or mult[0] < 0:
        raise InputError(f"generate: multiplicities must be a non-empty list of jet counts >= 0, got {list(multiplicities)}")
    sel = dict(selection or {})
    dev = select_device(device, threads)
    checkpoint = Path(checkpoint)
    tr_ev = load_events(train_data, level, mult, max_jets, sel)
    va_ev = load_events(val_data, level, mult, max_jets, sel)
    transform = Transform(max(mult), sel, bool(settings["dilepton_mass"]), settings["mll_peak"]).fit(tr_ev)
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
    info = {"format": FORMAT, "settings": settings, "level": level, "multiplicities": mult, "max_jets": int(max_jets),
            "selection": sel, "transform": transform.state(), "fractions": fractions, "flavours": lepton_flavours(tr_ev, mult),
            "n_train": counts, "fingerprint": fingerprint, "train_data": str(train_data)}
    trainer = Trainer("train_generator", model, opt, settings, info, checkpoint,
                      match=("format", "settings", "fingerprint", "multiplicities", "level"), seed=seed, log=log,
                      log_every=log_every, save_every=save_every)
    n_train, kl_weight = len(k_tr), float(settings["kl_weight"])

    def batch_loss(idx: torch.Tensor) -> torch.Tensor:
        loss = (model.loss(x_tr[idx], k_tr[idx]) * w_tr[idx]).mean()
        if model.bayesian:
            loss = loss + kl_weight * model.kl().to(loss.device) / n_train
        return loss

    all_events = torch.arange(n_train)
    stop_reason = trainer.run(lambda: all_events, batch_loss, lambda: validation_loss(model, x_va, k_va, w_va))
    state = trainer.state
    minutes = trainer.finish()
    summary = {
        "family": settings["family"], "epochs_run": state["epoch"], "best_epoch": state["best_epoch"],
        "best_val_loss": state["best_val"], "stop_reason": stop_reason, "train_time_s": 60.0 * minutes, "n_params": n_params,
        "n_train": counts, "n_val": {m: int((va_ev.n_jets == m).sum()) for m in mult}, "device": str(dev),
        "resumed": trainer.resumed, "settings": settings,
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
