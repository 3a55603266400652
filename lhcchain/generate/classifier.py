"""Classifier two-sample test: out-of-fold probabilities, the ROC AUC and density-ratio weights.

A small MLP is trained to separate sample A (label 1, e.g. held-out truth) from sample B (label 0,
e.g. generated events) on standardised features, with binary cross-entropy. ``folds``-fold
cross-prediction gives every event a probability ``D`` from a network that did not see it; each fold
trains on the other folds, of which a fifth is kept for early stopping (``patience`` epochs).
Classes are balanced by per-event weights. ``D / (1 - D)`` estimates ``p_A / p_B``: applied to
sample-B events it reweights them to sample A. A perfect generator gives AUC = 0.5.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from scipy.stats import rankdata
from torch import nn

from ..config import resolve_settings
from ..errors import InputError

CLASSIFIER_DEFAULTS: dict[str, Any] = {"hidden": 128, "layers": 3, "epochs": 300, "batch_size": 128, "lr": 3e-3, "patience": 30,
                                       "folds": 5}


def resolve_classifier(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``CLASSIFIER_DEFAULTS`` with ``settings`` laid over (:func:`lhcchain.config.resolve_settings`);
    InputError on unknown keys or bad values."""
    out = resolve_settings(settings, CLASSIFIER_DEFAULTS, "generate.evaluation.classifier")
    if int(out["folds"]) < 2:
        raise InputError(f"generate.evaluation.classifier: folds must be >= 2, got {out['folds']}")
    return out


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """Area under the ROC curve (Mann-Whitney, ties averaged) and its Hanley-McNeil standard error."""
    labels = np.asarray(labels).astype(bool)
    n1, n0 = int(labels.sum()), int((~labels).sum())
    if n1 == 0 or n0 == 0:
        raise ValueError("roc_auc needs both classes")
    ranks = rankdata(scores)
    auc = (ranks[labels].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    var = (auc * (1 - auc) + (n1 - 1) * (q1 - auc**2) + (n0 - 1) * (q2 - auc**2)) / (n1 * n0)
    return float(auc), float(math.sqrt(max(var, 0.0)))


def _fit(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor, xv: torch.Tensor, yv: torch.Tensor, wv: torch.Tensor,
         s: Mapping[str, Any], gen: torch.Generator) -> nn.Module:
    layers: list[nn.Module] = []
    width = x.shape[1]
    for _ in range(int(s["layers"])):
        layers += [nn.Linear(width, int(s["hidden"])), nn.SiLU()]
        width = int(s["hidden"])
    net = nn.Sequential(*layers, nn.Linear(width, 1)).to(x.device)
    opt = torch.optim.Adam(net.parameters(), lr=float(s["lr"]))
    bce = nn.BCEWithLogitsLoss(reduction="none")
    best, best_state, bad = math.inf, copy.deepcopy(net.state_dict()), 0
    bs = int(s["batch_size"])
    for _ in range(int(s["epochs"])):
        perm = torch.randperm(len(y), generator=gen).to(x.device)
        for b in range(0, len(y), bs):
            idx = perm[b:b + bs]
            loss = (bce(net(x[idx]).squeeze(1), y[idx]) * w[idx]).sum() / w[idx].sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.no_grad():
            val = float((bce(net(xv).squeeze(1), yv) * wv).sum() / wv.sum())
        if val < best - 1e-5:
            best, best_state, bad = val, copy.deepcopy(net.state_dict()), 0
        else:
            bad += 1
            if bad >= int(s["patience"]):
                break
    net.load_state_dict(best_state)
    return net


def cross_validated_probabilities(a: np.ndarray, b: np.ndarray, settings: Mapping[str, Any], seed: int = 0,
                                  device: torch.device | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold ``D = p(A | x)`` for the events of ``a`` and of ``b`` (module doc); features are
    standardised on the union of both samples."""
    s = resolve_classifier(settings)
    dev = device or torch.device("cpu")
    x = np.concatenate([a, b]).astype(np.float64)
    x = (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1.0)
    y = np.concatenate([np.ones(len(a)), np.zeros(len(b))])
    w = np.where(y == 1, len(y) / (2 * len(a)), len(y) / (2 * len(b)))
    rng = np.random.default_rng(seed)
    fold = rng.permutation(len(y)) % int(s["folds"])
    gen = torch.Generator().manual_seed(int(seed))
    torch.manual_seed(int(seed))
    xt, yt, wt = (torch.as_tensor(v, dtype=torch.float32, device=dev) for v in (x, y, w))
    prob = np.empty(len(y))
    for f in range(int(s["folds"])):
        test = np.flatnonzero(fold == f)
        rest = np.flatnonzero(fold != f)
        stop = rest[rng.permutation(len(rest))[: max(1, len(rest) // 5)]]
        fit = np.setdiff1d(rest, stop)
        ti, si = torch.as_tensor(fit, device=dev), torch.as_tensor(stop, device=dev)
        net = _fit(xt[ti], yt[ti], wt[ti], xt[si], yt[si], wt[si], s, gen)
        with torch.no_grad():
            prob[test] = torch.sigmoid(net(xt[torch.as_tensor(test, device=dev)]).squeeze(1)).double().cpu().numpy()
    return prob[: len(a)], prob[len(a):]


def two_sample_test(a: np.ndarray, b: np.ndarray, settings: Mapping[str, Any], seed: int = 0,
                    device: torch.device | None = None) -> dict[str, Any]:
    """AUC (with error) of separating ``a`` from ``b``, and the weights ``w = D / (1 - D)`` of both samples."""
    pa, pb = cross_validated_probabilities(a, b, settings, seed, device)
    auc, err = roc_auc(np.concatenate([np.ones(len(pa)), np.zeros(len(pb))]), np.concatenate([pa, pb]))
    clip = 1e-6
    wa, wb = (np.clip(p, clip, 1 - clip) / (1 - np.clip(p, clip, 1 - clip)) for p in (pa, pb))
    return {"auc": auc, "auc_err": err, "weights_a": wa, "weights_b": wb, "n_a": len(a), "n_b": len(b)}
