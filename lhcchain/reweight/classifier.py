"""The project's one density-ratio classifier: cross-fitted, calibrated ``D = p(target | x)`` and ``w = D / (1 - D)``.

Classes and weights. Class 1 is the *target*, class 0 the *source*. Every event carries a generator
weight, negative ones included; it enters the loss and every sum. Each class's weights are scaled to
sum to half the number of events (class balance by weight sums, not event counts), so the trained
``D / (1 - D)`` estimates ``p_target(x) / p_source(x)`` for densities normalised to one. The loss is
the weighted binary cross-entropy averaged over the batch.

Features. :class:`Standardiser` centres and scales every column (NaN-aware); a column with NaN
(an absent object) adds a 0/1 indicator column (one per distinct NaN pattern) and its NaN become 0.

Networks (``network``). ``mlp``: ``layers`` hidden layers of ``hidden`` SiLU units on all columns.
``deepsets``: permutation-invariant over the objects named by the feature names (:func:`object_sets`:
``j1_pt, j1_eta, j2_pt, j2_eta`` are two slots of the set ``j``, the slots sharing their standardisation);
per set, a network phi (``layers`` layers of ``hidden`` units) maps each present object (NaN pattern of its
first feature) to ``hidden`` numbers, summed over the objects; a network rho of the same size maps the
sums and the other columns to the logit.

Cross-fitting (:func:`cross_fit`). Events are split into ``folds`` class-stratified folds (each holds
the same share of each class). The network of fold f trains on the other folds, of which a
class-stratified share ``val_fraction`` is kept for early stopping, with :class:`lhcchain.training.Trainer`
(warm-up plus cosine schedule, ``patience``, ``max_minutes`` per fold); it predicts fold f. So every
event's D comes from a network that never saw it. New events get the ensemble average of the k
networks' D (:meth:`CrossFit.predict_logit`).

Calibration (:func:`calibrate`). The out-of-fold logits are split into two class-stratified halves; a
temperature (``D = sigmoid(z / T)``) and an isotonic map (scikit-learn, on ``CALIBRATION_BINS``
quantile bins of z, so that negative weights are handled) are each fitted on one half and scored on the
other, both ways. A map is applied only when its held-out loss is below the uncalibrated one
(``calibration: auto`` picks the better of the two; ``isotonic`` or ``temperature`` tries one;
``none`` skips). Each event's calibrated D comes from the map fitted on the other half; new events
use the map fitted on all. The reliability curve (weighted target fraction against mean D, per
quantile bin of D) is reported before and after.

Two-sample AUC (:func:`two_sample_auc`). The AUC of each fold's out-of-fold scores (weighted
Mann-Whitney, ties counted half), averaged over the folds (weighted by their pair weights), so that
fold-to-fold offsets of the networks do not enter; its mean over ``repeats`` independent fold
assignments and network seeds. Error: ``sqrt(s_boot^2 + s_rep^2 / repeats)``, with ``s_boot`` the
Poisson-bootstrap spread of the events at fixed scores (data fluctuation) and ``s_rep`` the spread
over the repeats (training and fold assignment). Two samples from one distribution give an AUC
compatible with 0.5 within this error (tests/reweight).
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from scipy.optimize import minimize_scalar
from scipy.special import expit, log_expit
from sklearn.isotonic import IsotonicRegression
from torch import nn

from ..config import resolve_settings
from ..errors import InputError
from ..generate.models import mlp
from ..io import derive_seed
from ..training import Trainer

log = logging.getLogger("lhcchain.reweight")

NETWORKS = ("mlp", "deepsets")
SLOT = re.compile(r"^([a-z]+)(\d+)_(.+)$")
CALIBRATIONS = ("auto", "isotonic", "temperature", "none")
CALIBRATION_BINS = 100  # quantile bins of the logit for the isotonic fit (fewer for small samples: >= 20 events each)
RELIABILITY_BINS = 10
PREDICT_BATCH = 65536


def resolve_classifier(settings: Mapping[str, Any], where: str = "classifier") -> dict[str, Any]:
    """``settings`` laid over the default config's ``reweight.classifier`` (:func:`lhcchain.config.resolve_settings`);
    InputError naming ``where`` on bad keys or values."""
    out = resolve_settings(settings, "reweight.classifier", where)
    if int(out["folds"]) < 2:
        raise InputError(f"{where}: folds must be >= 2, got {out['folds']}")
    if out["calibration"] not in CALIBRATIONS:
        raise InputError(f"{where}: calibration must be one of {CALIBRATIONS}, got {out['calibration']!r}")
    if out["network"] not in NETWORKS:
        raise InputError(f"{where}: network must be one of {NETWORKS}, got {out['network']!r}")
    if int(out["repeats"]) < 1:
        raise InputError(f"{where}: repeats must be >= 1, got {out['repeats']}")
    return out


# ---------------------------------------------------------------------------------------------- features

@dataclass
class Standardiser:
    """Column means and widths (NaN ignored) and the columns whose NaN pattern adds an indicator (module doc)."""

    mean: np.ndarray
    std: np.ndarray
    indicators: list[int]
    flag_of: dict[int, int] = field(default_factory=dict)  # column with NaN -> position of its indicator in the output

    @classmethod
    def fit(cls, x: np.ndarray, sets: Sequence[Sequence[Sequence[int]]] = ()) -> Standardiser:
        """Fit on ``x``; the columns at one feature position of every slot of a set (:func:`object_sets`) share
        their mean and width."""
        x = np.asarray(x, dtype=np.float64)
        nan = np.isnan(x)
        mean = np.where(nan.all(0), 0.0, np.nanmean(np.where(nan.all(0), 0.0, x), 0))
        std = np.nanstd(np.where(nan.all(0), 0.0, x), 0)
        for slots in sets:
            for cols in zip(*slots):
                pooled = x[:, list(cols)]
                if np.isfinite(pooled).any():
                    mean[list(cols)], std[list(cols)] = np.nanmean(pooled), np.nanstd(pooled)
        seen: dict[bytes, int] = {}
        indicators, flag_of = [], {}
        for j in np.flatnonzero(nan.any(0)):
            key = np.packbits(nan[:, j]).tobytes()
            if key not in seen:
                seen[key] = len(indicators)
                indicators.append(int(j))
            flag_of[int(j)] = x.shape[1] + seen[key]
        return cls(mean, np.where(std > 0, std, 1.0), indicators, flag_of)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        z = np.nan_to_num((x - self.mean) / self.std, nan=0.0)
        flags = np.isnan(x[:, self.indicators]).astype(np.float64)
        return np.concatenate([z, flags], 1).astype(np.float32)

    @property
    def width(self) -> int:
        return len(self.mean) + len(self.indicators)

    def state(self) -> dict[str, Any]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist(), "indicators": list(self.indicators),
                "flag_of": [[k, v] for k, v in self.flag_of.items()]}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Standardiser:
        return cls(np.asarray(state["mean"]), np.asarray(state["std"]), list(state["indicators"]), {k: v for k, v in state["flag_of"]})


def object_sets(names: Sequence[str]) -> list[list[list[int]]]:
    """Sets of object slots among feature ``names``: per object type (``j`` in ``j1_pt``) with the same
    features in every slot, the column indices of each slot in one feature order."""
    slots: dict[str, dict[int, dict[str, int]]] = {}
    for i, name in enumerate(names):
        m = SLOT.match(name)
        if m:
            slots.setdefault(m.group(1), {}).setdefault(int(m.group(2)), {})[m.group(3)] = i
    out = []
    for kind in sorted(slots):
        per = [slots[kind][k] for k in sorted(slots[kind])]
        feats = list(per[0])
        if all(sorted(p) == sorted(feats) for p in per):
            out.append([[p[f] for f in feats] for p in per])
    return out


class DeepSets(nn.Module):
    """Permutation-invariant classifier over object slots (module doc); input: the standardiser's output."""

    def __init__(self, width: int, sets: Sequence[Sequence[Sequence[int]]], flag_of: Mapping[int, int], hidden: int, layers: int) -> None:
        super().__init__()
        in_sets = {c for slots in sets for slot in slots for c in slot}
        self.register_buffer("glob", torch.tensor([c for c in range(width) if c not in in_sets], dtype=torch.long))
        for i, slots in enumerate(sets):
            self.register_buffer(f"slots{i}", torch.tensor(slots, dtype=torch.long))
            self.register_buffer(f"flags{i}", torch.tensor([flag_of.get(slot[0], -1) for slot in slots], dtype=torch.long))
        self.phi = nn.ModuleList(mlp(len(slots[0]), hidden, layers - 1, hidden) for slots in sets)
        self.rho = mlp(len(self.glob) + hidden * len(sets), hidden, layers, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        parts = [z[:, self.glob]]
        for i, phi in enumerate(self.phi):
            slots, flags = getattr(self, f"slots{i}"), getattr(self, f"flags{i}")
            present = torch.where(flags >= 0, 1.0 - z[:, flags.clamp(min=0)], torch.ones_like(z[:, :1]))
            parts.append((phi(z[:, slots]) * present.unsqueeze(-1)).sum(1))
        return self.rho(torch.cat(parts, 1))


def make_network(s: Mapping[str, Any], scaler: Standardiser, sets: Sequence[Sequence[Sequence[int]]]) -> nn.Module:
    """The classifier network of settings ``s`` (module doc) on the output of ``scaler``."""
    if s["network"] == "deepsets":
        return DeepSets(scaler.width, sets, scaler.flag_of, int(s["hidden"]), int(s["layers"]))
    return mlp(scaler.width, int(s["hidden"]), int(s["layers"]), 1)


# ------------------------------------------------------------------------------------------ loss and AUC

def bce(logit: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    """Weighted binary cross-entropy of logits, ``sum(w * loss) / sum(w)`` (nats)."""
    per = -np.where(y > 0.5, log_expit(logit), log_expit(-logit))
    return float(np.sum(w * per) / np.sum(w))


def balanced_weights(y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weights scaled so that each class sums to half the number of events (module doc)."""
    out = np.asarray(w, dtype=np.float64).copy()
    for c in (0, 1):
        m = y == c
        total = out[m].sum()
        if not total > 0:
            raise InputError(f"class {'target' if c else 'source'}: the generator weights sum to {total} (need > 0)")
        out[m] *= 0.5 * len(y) / total
    return out


def weighted_auc(labels: np.ndarray, scores: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray | float:
    """ROC AUC (weighted Mann-Whitney, ties counted half) of ``scores`` for class 1 against class 0.

    ``weights`` (n,) gives a float; (B, n) gives one AUC per row (bootstrap replicas) at the same scores.
    """
    labels = np.asarray(labels).astype(bool)
    if labels.all() or not labels.any():
        raise ValueError("weighted_auc needs both classes")
    w = np.ones((1, len(labels))) if weights is None else np.atleast_2d(np.asarray(weights, dtype=np.float64))
    order = np.argsort(scores, kind="stable")
    s, lab, w = np.asarray(scores)[order], labels[order], w[:, order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    w1 = np.add.reduceat(np.where(lab, w, 0.0), starts, axis=1)
    w0 = np.add.reduceat(np.where(lab, 0.0, w), starts, axis=1)
    below = np.cumsum(w0, axis=1) - w0
    auc = (w1 * (below + 0.5 * w0)).sum(1) / (w1.sum(1) * w0.sum(1))
    return float(auc[0]) if weights is None or np.ndim(weights) == 1 else auc


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """Unweighted AUC and its Hanley-McNeil standard error (which ignores training noise: see module doc)."""
    labels = np.asarray(labels).astype(bool)
    n1, n0 = int(labels.sum()), int((~labels).sum())
    auc = float(weighted_auc(labels, scores))
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    var = (auc * (1 - auc) + (n1 - 1) * (q1 - auc**2) + (n0 - 1) * (q2 - auc**2)) / (n1 * n0)
    return auc, float(math.sqrt(max(var, 0.0)))


def stratified_folds(y: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Fold index per event: each class dealt round-robin over ``k`` folds in random order."""
    fold = np.empty(len(y), dtype=np.int64)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        fold[idx[rng.permutation(len(idx))]] = (np.arange(len(idx)) + rng.integers(k)) % k
    return fold


# ----------------------------------------------------------------------------------------- calibration

@dataclass
class Calibration:
    """A monotone map of logits: ``none``, ``temperature`` (z / T) or ``isotonic`` (knots in z -> D)."""

    method: str = "none"
    temperature: float = 1.0
    knots_x: np.ndarray = field(default_factory=lambda: np.zeros(0))
    knots_y: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __call__(self, z: np.ndarray) -> np.ndarray:
        if self.method == "temperature":
            return z / self.temperature
        if self.method == "isotonic":
            d = np.interp(z, self.knots_x, self.knots_y)
            return np.log(d) - np.log1p(-d)
        return z

    def state(self) -> dict[str, Any]:
        return {"method": self.method, "temperature": self.temperature, "knots_x": self.knots_x.tolist(), "knots_y": self.knots_y.tolist()}

    @classmethod
    def from_state(cls, s: Mapping[str, Any]) -> Calibration:
        return cls(s["method"], float(s["temperature"]), np.asarray(s["knots_x"]), np.asarray(s["knots_y"]))


def _fit_map(method: str, z: np.ndarray, y: np.ndarray, w: np.ndarray) -> Calibration:
    if method == "temperature":
        res = minimize_scalar(lambda t: bce(z / math.exp(t), y, w), bounds=(-3.0, 3.0), method="bounded")
        return Calibration("temperature", temperature=math.exp(float(res.x)))
    n_bins = int(min(CALIBRATION_BINS, max(2, len(z) // 20)))
    edges = np.quantile(z, np.linspace(0, 1, n_bins + 1))
    b = np.clip(np.searchsorted(edges, z, side="right") - 1, 0, n_bins - 1)
    sw = np.bincount(b, w, n_bins)
    x = np.bincount(b, w * z, n_bins)
    t = np.bincount(b, w * y, n_bins)
    ok = sw > 0
    eps = 0.5 / max(len(z), 1)  # D stays inside (0, 1): finite logits and weights
    iso = IsotonicRegression(y_min=eps, y_max=1 - eps, out_of_bounds="clip").fit(x[ok] / sw[ok], t[ok] / sw[ok], sample_weight=sw[ok])
    return Calibration("isotonic", knots_x=np.asarray(iso.X_thresholds_, float), knots_y=np.asarray(iso.y_thresholds_, float))


def reliability(z: np.ndarray, y: np.ndarray, w: np.ndarray, bins: int = RELIABILITY_BINS) -> dict[str, list[float]]:
    """Per quantile bin of D: mean D, weighted target fraction and its (binomial, weighted) error."""
    d = expit(z)
    edges = np.unique(np.quantile(d, np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:  # a constant D (e.g. a flat isotonic map): one bin
        edges = np.repeat(edges, 2)
    b = np.clip(np.searchsorted(edges, d, side="right") - 1, 0, len(edges) - 2)
    n = len(edges) - 1
    sw, sw2 = np.bincount(b, w, n), np.bincount(b, w * w, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.bincount(b, w * y, n) / sw
        mean = np.bincount(b, w * d, n) / sw
        err = np.sqrt(np.clip(frac * (1 - frac), 0, None) * sw2) / np.abs(sw)
    return {"mean_d": mean.tolist(), "target_fraction": frac.tolist(), "error": err.tolist()}


def calibrate(z: np.ndarray, y: np.ndarray, w: np.ndarray, mode: str, seed: int) -> tuple[np.ndarray, Calibration, dict[str, Any]]:
    """Calibrated out-of-fold logits, the map for new events, and a report (module doc)."""
    report: dict[str, Any] = {"mode": mode, "heldout_loss": {"none": bce(z, y, w)}, "reliability_raw": reliability(z, y, w)}
    if mode == "none":
        report.update(applied="none", reliability_calibrated=report["reliability_raw"])
        return z, Calibration(), report
    half = stratified_folds(y, 2, np.random.default_rng(seed))
    candidates = ("isotonic", "temperature") if mode == "auto" else (mode,)
    cross: dict[str, np.ndarray] = {}
    for method in candidates:
        out = np.empty_like(z)
        for h in (0, 1):
            fit, apply = half != h, half == h
            out[apply] = _fit_map(method, z[fit], y[fit], w[fit])(z[apply])
        cross[method] = out
        report["heldout_loss"][method] = bce(out, y, w)
    best = min(report["heldout_loss"], key=report["heldout_loss"].get)
    report["applied"] = best
    if best == "none":
        report["reliability_calibrated"] = report["reliability_raw"]
        return z, Calibration(), report
    report["reliability_calibrated"] = reliability(cross[best], y, w)
    final = _fit_map(best, z, y, w)
    if final.method == "temperature":
        report["temperature"] = final.temperature
    return cross[best], final, report


# ------------------------------------------------------------------------------------------ cross-fitting

@dataclass
class CrossFit:
    """k fold networks, their out-of-fold logits and the calibration (module doc)."""

    scaler: Standardiser
    models: list[nn.Module]
    fold: np.ndarray
    logit_raw: np.ndarray
    logit: np.ndarray
    calibration: Calibration
    report: dict[str, Any]
    settings: dict[str, Any]
    sets: list[list[list[int]]] = field(default_factory=list)

    @torch.no_grad()
    def member_logits(self, x: np.ndarray) -> np.ndarray:
        """Raw logits of each of the k networks for new events, shape (k, n)."""
        dev = next(self.models[0].parameters()).device
        z = self.scaler(x)
        out = np.zeros((len(self.models), len(z)))
        for m, net in enumerate(self.models):
            net.eval()
            for i in range(0, len(z), PREDICT_BATCH):
                out[m, i:i + PREDICT_BATCH] = net(torch.as_tensor(z[i:i + PREDICT_BATCH], device=dev)).squeeze(1).double().cpu().numpy()
        return out

    def predict_logit(self, x: np.ndarray, calibrated: bool = True) -> np.ndarray:
        """Ensemble logit for new events: logit of the mean D of the k networks, then the calibration map."""
        logit = ensemble_logit(self.member_logits(x))
        return self.calibration(logit) if calibrated else logit

    def state(self) -> dict[str, Any]:
        """Everything :func:`load_crossfit` needs (torch-saveable)."""
        return {"format": "lhcchain.reweight.classifier/1", "settings": self.settings, "scaler": self.scaler.state(),
                "models": [m.state_dict() for m in self.models], "calibration": self.calibration.state(), "report": self.report,
                "sets": self.sets}


def load_crossfit(path: str | os.PathLike[str], device: torch.device | None = None) -> CrossFit:
    """The ensemble and calibration saved by :meth:`CrossFit.state` (no out-of-fold arrays)."""
    try:
        state = torch.load(path, map_location=device or "cpu", weights_only=False)
    except Exception as exc:
        raise InputError(f"{path}: not a readable classifier checkpoint: {exc}") from exc
    if not isinstance(state, dict) or state.get("format") != "lhcchain.reweight.classifier/1":
        raise InputError(f"{path}: format {state.get('format') if isinstance(state, dict) else None!r}, expected 'lhcchain.reweight.classifier/1'")
    scaler = Standardiser.from_state(state["scaler"])
    s = state["settings"]
    models = []
    for sd in state["models"]:
        net = make_network(s, scaler, state["sets"]).to(device or "cpu")
        net.load_state_dict(sd)
        models.append(net)
    empty = np.zeros(0)
    return CrossFit(scaler, models, empty, empty, empty, Calibration.from_state(state["calibration"]), state["report"], s, state["sets"])


def _fit_fold(z: torch.Tensor, y: torch.Tensor, w: torch.Tensor, train: np.ndarray, val: np.ndarray, s: Mapping[str, Any],
              seed: int, name: str, scaler: Standardiser, sets: list[list[list[int]]]) -> tuple[nn.Module, dict[str, Any]]:
    torch.manual_seed(seed)
    net = make_network(s, scaler, sets).to(z.device)
    opt = torch.optim.AdamW(net.parameters(), lr=float(s["lr"]), weight_decay=float(s["weight_decay"]))
    # held in memory: no checkpoint is written (save_every = inf, no finish())
    trainer = Trainer(name, net, opt, s, {}, os.devnull, (), seed, log, save_every=math.inf)
    va = torch.as_tensor(val, device=z.device)
    lossf = nn.BCEWithLogitsLoss(reduction="none")

    def batch_loss(idx: torch.Tensor) -> torch.Tensor:
        return (lossf(net(z[idx]).squeeze(1), y[idx]) * w[idx]).mean()

    @torch.no_grad()
    def validate() -> float:
        net.eval()
        out = float((lossf(net(z[va]).squeeze(1), y[va]) * w[va]).sum() / w[va].sum())
        net.train()
        return out

    stop = trainer.run(lambda: torch.as_tensor(train), batch_loss, validate)
    net.eval()
    return net, {"epochs": trainer.state["epoch"], "best_epoch": trainer.state["best_epoch"], "best_val_loss": trainer.state["best_val"],
                 "stop": stop, "seconds": trainer.elapsed}


def _inputs(x1: np.ndarray, x0: np.ndarray, w1: np.ndarray | None, w0: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = np.concatenate([np.asarray(x1, np.float64), np.asarray(x0, np.float64)])
    y = np.concatenate([np.ones(len(x1)), np.zeros(len(x0))])
    w = np.concatenate([np.ones(len(x1)) if w1 is None else np.asarray(w1, np.float64),
                        np.ones(len(x0)) if w0 is None else np.asarray(w0, np.float64)])
    if len(x1) < 2 or len(x0) < 2:
        raise InputError(f"classifier: needs at least 2 events per class, got {len(x1)} target and {len(x0)} source")
    if not np.isfinite(w).all():
        bad = int(np.flatnonzero(~np.isfinite(w))[0])
        which, i = ("target", bad) if bad < len(x1) else ("source", bad - len(x1))
        raise InputError(f"classifier: {which} event {i} has weight {w[bad]}")
    return x, y, w


def _sets(s: Mapping[str, Any], names: Sequence[str] | None) -> list[list[list[int]]]:
    if s["network"] != "deepsets":
        return []
    sets = object_sets(names or [])
    if not sets:
        raise InputError(f"classifier: network 'deepsets' finds no objects (names like j1_pt, j2_pt) among the features {list(names or [])}")
    return sets


def cross_fit(x1: np.ndarray, x0: np.ndarray, w1: np.ndarray | None = None, w0: np.ndarray | None = None, *,
              settings: Mapping[str, Any], seed: int = 0, device: torch.device | None = None, calibrate_: bool = True,
              scaler: Standardiser | None = None, names: Sequence[str] | None = None, label: str = "classifier") -> CrossFit:
    """Cross-fit the classifier of target ``x1`` (weights ``w1``) against source ``x0`` (``w0``) (module doc).

    Rows of the out-of-fold arrays are the target events, then the source events. ``scaler``: a fitted
    :class:`Standardiser` (default: fitted on both samples). ``names``: the feature names, which
    ``network: deepsets`` needs to find the objects.
    """
    s = resolve_classifier(settings)
    dev = device or torch.device("cpu")
    x, y, w = _inputs(x1, x0, w1, w0)
    wb = balanced_weights(y, w)
    sets = _sets(s, names)
    scaler = scaler or Standardiser.fit(x, sets)
    rng = np.random.default_rng(seed)
    k = int(s["folds"])
    fold = stratified_folds(y, k, rng)
    zt = torch.as_tensor(scaler(x), device=dev)
    yt = torch.as_tensor(y, dtype=torch.float32, device=dev)
    wt = torch.as_tensor(wb, dtype=torch.float32, device=dev)
    logit = np.empty(len(y))
    models, info = [], []
    for f in range(k):
        rest = np.flatnonzero(fold != f)
        inner = stratified_folds(y[rest], max(2, round(1 / float(s["val_fraction"]))), rng)
        val, train = rest[inner == 0], rest[inner != 0]
        net, fit_info = _fit_fold(zt, yt, wt, train, val, s, derive_seed(seed, "fold", f), f"{label} fold {f + 1}/{k}", scaler, sets)
        test = np.flatnonzero(fold == f)
        with torch.no_grad():
            logit[test] = torch.cat([net(zt[torch.as_tensor(test[i:i + PREDICT_BATCH], device=dev)]).squeeze(1)
                                     for i in range(0, len(test), PREDICT_BATCH)]).double().cpu().numpy()
        models.append(net)
        info.append(fit_info)
    report: dict[str, Any] = {"folds": info, "train_seconds": sum(i["seconds"] for i in info),
                              "n_target": int(y.sum()), "n_source": int(len(y) - y.sum())}
    if calibrate_:
        cal_logit, cal, cal_report = calibrate(logit, y, wb, s["calibration"], derive_seed(seed, "calibration"))
    else:
        cal_logit, cal, cal_report = logit, Calibration(), {"applied": "none"}
    report["calibration"] = cal_report
    return CrossFit(scaler, models, fold, logit, cal_logit, cal, report, s, sets)


def ensemble_logit(logits: np.ndarray) -> np.ndarray:
    """Logit of the mean D over the first axis of ``logits`` (the ensemble's members)."""
    d = np.clip(expit(logits).mean(0), 1e-300, 1 - 1e-16)
    return np.log(d) - np.log1p(-d)


def density_ratio(logit: np.ndarray) -> np.ndarray:
    """``w = D / (1 - D) = exp(logit)``."""
    with np.errstate(over="ignore"):
        return np.exp(logit)


def train_events_per_s(report: Mapping[str, Any], n_events: int, settings: Mapping[str, Any]) -> float:
    """Training rate of a cross fit (``report``: :attr:`CrossFit.report`) on ``n_events`` events: the events each
    fold trains on, ``n_events (1 - 1/k) (1 - val_fraction)``, times the epochs of all folds, over ``train_seconds``."""
    epochs = sum(f["epochs"] for f in report["folds"])
    n_fit = n_events * (1 - 1 / int(settings["folds"])) * (1 - float(settings["val_fraction"]))
    return n_fit * epochs / max(report["train_seconds"], 1e-9)


def fold_auc(fit: CrossFit, y: np.ndarray, w: np.ndarray, bootstrap: int, rng: np.random.Generator) -> tuple[float, np.ndarray]:
    """AUC of the out-of-fold raw scores, per fold, averaged with the folds' pair weights; and its
    ``bootstrap`` Poisson replicas at fixed scores (module doc)."""
    aucs, pairs, boots = [], [], []
    for f in np.unique(fit.fold):
        m = fit.fold == f
        lab, ww = y[m] > 0.5, w[m]
        aucs.append(weighted_auc(lab, fit.logit_raw[m], ww))
        pairs.append(ww[lab].sum() * ww[~lab].sum())
        if bootstrap:
            boots.append(weighted_auc(lab, fit.logit_raw[m], ww * rng.poisson(1.0, size=(bootstrap, int(m.sum())))))
    p = np.asarray(pairs) / np.sum(pairs)
    return float(np.dot(p, aucs)), (np.einsum("f,fb->b", p, np.asarray(boots)) if bootstrap else np.zeros(0))


def two_sample_auc(x1: np.ndarray, x0: np.ndarray, w1: np.ndarray | None = None, w0: np.ndarray | None = None, *,
                   settings: Mapping[str, Any], seed: int = 0, device: torch.device | None = None,
                   names: Sequence[str] | None = None, label: str = "two-sample test") -> dict[str, Any]:
    """Honest two-sample AUC of target ``x1`` against source ``x0`` with its error (module doc).

    Returns ``auc``, ``auc_err`` (with its parts ``auc_err_bootstrap``, ``auc_err_repeats``), the
    per-repeat ``auc_repeats``, and the out-of-fold weights ``w = D / (1 - D)`` of both samples (the
    calibrated D averaged over the repeats): ``weights_target``, ``weights_source``.
    """
    s = resolve_classifier(settings)
    x, y, w = _inputs(x1, x0, w1, w0)
    scaler = Standardiser.fit(x, _sets(s, names))
    rng = np.random.default_rng(seed)
    aucs, boot_var, d = [], [], np.zeros(len(y))
    for r in range(int(s["repeats"])):
        fit = cross_fit(x1, x0, w1, w0, settings=s, seed=derive_seed(seed, "repeat", r), device=device, scaler=scaler, names=names,
                        label=f"{label} repeat {r + 1}")
        auc, boots = fold_auc(fit, y, w, int(s["bootstrap"]), rng)
        aucs.append(auc)
        boot_var.append(float(np.var(boots, ddof=1)) if len(boots) > 1 else 0.0)
        d += expit(fit.logit)
    reps = len(aucs)
    err_boot = math.sqrt(float(np.mean(boot_var)))
    err_rep = float(np.std(aucs, ddof=1)) / math.sqrt(reps) if reps > 1 else 0.0
    wr = density_ratio(np.log(d / reps) - np.log1p(-d / reps))
    return {"auc": float(np.mean(aucs)), "auc_err": math.hypot(err_boot, err_rep), "auc_err_bootstrap": err_boot,
            "auc_err_repeats": err_rep, "auc_repeats": aucs, "n_target": len(x1), "n_source": len(x0),
            "weights_target": wr[: len(x1)], "weights_source": wr[len(x1):]}

