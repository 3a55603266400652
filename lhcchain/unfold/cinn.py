"""Generative unfolding: a conditional network for p(x_particle | x_reco), single pass (cINN) and iterative (IcINN).

Network: a :class:`lhcchain.generate.models.CFM` (conditional flow matching, default) or
:class:`~lhcchain.generate.models.SplineFlow` (zuko conditional spline flow, ``family: flow``) on the
standardised particle-level observables, conditioned on the standardised reco-level observables
(every dimension present: mask of ones). Integer observables (a constituent multiplicity) are
dequantised with uniform noise of one unit in training and rounded when sampled. Trained on the
simulation's pairs with the generator weights (times the IcINN weights) in the loss, by the shared
:class:`lhcchain.training.Trainer`, ``val_fraction`` of the pairs held out for early stopping.

Acceptance (every pseudo-data event draws ``draws`` particle-level events):

* fakes: each pseudo-data event is weighted by ``P(pass particle | x_reco)`` learned on the
  simulation's reco-level events (:func:`.classify.pass_probability`);
* efficiency: each draw is weighted by ``1 / P(pass reco | x_particle)`` learned on the simulation's
  particle-level events, floored at ``efficiency_min`` (the draws at the floor are counted), so that
  the result is the full particle-level distribution.

Calibration (:func:`calibration`): for held-out simulated pairs, ``calibration_draws`` draws per event;
per observable the fraction of true values inside the central 68 % and 95 % intervals of the draws
(coverage) and the histogram of the truth's rank among the draws (flat when calibrated).

IcINN (:func:`icinn`, arXiv 2212.08674): after an unfolding, a fresh cross-fitted classifier learns
the unfolded events (one draw per pseudo-data event) against the simulation's particle level
(weighted ``g w``); when its out-of-fold AUC is within ``auc_sigmas`` bootstrap errors of 0.5 the
prior is removed and the iteration stops; else ``w`` is multiplied by the classifier's ratio, the
network is trained further on the reweighted pairs and the pseudo-data unfolded again, up to
``iterations`` times.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..config import resolve_settings
from ..errors import InputError
from ..generate.models import Generator, make_generator
from ..io import derive_seed
from ..reweight.classifier import cross_fit, density_ratio, fold_auc
from ..training import Trainer, seeded
from .classify import PassProbability
from .data import Events, integer_columns

log = logging.getLogger("lhcchain.unfold")

FAMILIES = ("cfm", "flow")
SAMPLE_BATCH = 16384


def resolve_network(settings: Mapping[str, Any], where: str = "unfold.cinn.network") -> dict[str, Any]:
    """``settings`` laid over the default config's ``unfold.cinn.network`` (:func:`lhcchain.config.resolve_settings`);
    InputError naming ``where`` on bad keys or a bad family (the solver and its steps are checked by
    :meth:`lhcchain.generate.models.Generator.set_solver` when the network is built)."""
    s = resolve_settings(settings, "unfold.cinn.network", where)
    if s["family"] not in FAMILIES:
        raise InputError(f"{where}: family must be one of {FAMILIES}, got {s['family']!r}")
    return s


class ConditionalUnfolder:
    """p(x_particle | x_reco) with its standardisation (module doc)."""

    def __init__(self, particle: np.ndarray, reco: np.ndarray, settings: Mapping[str, Any], device: torch.device) -> None:
        self.s = resolve_network(settings)
        self.device = device
        self.mu_p, self.sd_p = particle.mean(0), np.where(particle.std(0) > 0, particle.std(0), 1.0)
        self.mu_r, self.sd_r = reco.mean(0), np.where(reco.std(0) > 0, reco.std(0), 1.0)
        self.integer = integer_columns(particle)
        dim = particle.shape[1]
        self.net: Generator = make_generator(self.s, dim, dim).to(device)
        self.net.set_solver(self.s["solver"], int(self.s["steps"]), "unfold.cinn.network")
        self.epochs_trained = 0

    def state(self) -> dict[str, Any]:
        """Everything :meth:`from_state` needs (torch-saveable)."""
        return {"format": "lhcchain.unfold.cinn/1", "settings": self.s, "model": self.net.state_dict(), "epochs_trained": self.epochs_trained,
                **{k: getattr(self, k).tolist() for k in ("mu_p", "sd_p", "mu_r", "sd_r", "integer")}}

    @classmethod
    def from_state(cls, state: Mapping[str, Any], device: torch.device) -> ConditionalUnfolder:
        """The network saved by :meth:`state`."""
        dim = len(state["mu_p"])
        out = cls(np.zeros((2, dim)), np.zeros((2, dim)), state["settings"], device)
        for k in ("mu_p", "sd_p", "mu_r", "sd_r"):
            setattr(out, k, np.asarray(state[k], np.float64))
        out.integer = np.asarray(state["integer"], bool)
        out.net.load_state_dict(state["model"])
        out.net.eval()
        out.epochs_trained = int(state["epochs_trained"])
        return out

    def _z(self, x: np.ndarray, mu: np.ndarray, sd: np.ndarray) -> torch.Tensor:
        return torch.as_tensor((x - mu) / sd, dtype=torch.float32, device=self.device)

    def fit(self, particle: np.ndarray, reco: np.ndarray, weight: np.ndarray, seed: int, label: str) -> dict[str, Any]:
        """Train (further) on pairs with per-event loss weights ``weight`` (normalised to mean 1 here)."""
        s = self.s
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        n = len(particle)
        w = np.asarray(weight, np.float64)
        if not w.sum() > 0:
            raise InputError(f"{label}: the training weights of the pairs sum to {w.sum()} (need > 0)")
        x, c = self._z(particle, self.mu_p, self.sd_p), self._z(reco, self.mu_r, self.sd_r)
        wt = torch.as_tensor(w / w.mean(), dtype=torch.float32, device=self.device)
        noise = torch.as_tensor(np.where(self.integer, 1.0 / self.sd_p, 0.0), dtype=torch.float32, device=self.device)
        perm = rng.permutation(n)
        n_val = max(1, int(round(float(s["val_fraction"]) * n)))
        val, train = torch.as_tensor(perm[:n_val]), torch.as_tensor(perm[n_val:])
        ones = torch.ones_like(x)
        opt = torch.optim.AdamW(self.net.parameters(), lr=float(s["lr"]), weight_decay=0.0)
        # held in memory: no checkpoint is written (save_every = inf, no finish())
        trainer = Trainer(label, self.net, opt, s, {}, os.devnull, (), seed, log, save_every=math.inf)

        def batch_loss(idx: torch.Tensor) -> torch.Tensor:
            xb = x[idx] + (torch.rand_like(x[idx]) - 0.5) * noise
            return (self.net.loss(xb, ones[idx], c[idx]) * wt[idx]).mean()

        @torch.no_grad()
        def validate() -> float:
            self.net.eval()
            vi = val.to(self.device)
            with seeded(seed, self.device):  # the same noise and times every epoch: comparable validation losses
                out = float((self.net.loss(x[vi], ones[vi], c[vi]) * wt[vi]).sum() / wt[vi].sum())
            self.net.train()
            return out

        stop = trainer.run(lambda: train, batch_loss, validate)
        self.net.eval()
        self.epochs_trained += trainer.state["epoch"]
        return {"epochs": trainer.state["epoch"], "best_epoch": trainer.state["best_epoch"], "best_val_loss": trainer.state["best_val"],
                "stop": stop, "seconds": trainer.elapsed}

    @torch.no_grad()
    def sample(self, reco: np.ndarray, draws: int, seed: int) -> np.ndarray:
        """``draws`` particle-level draws per reco event: (n, draws, F) in the observables' units."""
        torch.manual_seed(seed)
        c = self._z(reco, self.mu_r, self.sd_r).repeat_interleave(int(draws), 0)
        out = []
        for i in range(0, len(c), SAMPLE_BATCH):
            cb = c[i:i + SAMPLE_BATCH]
            out.append(self.net.sample(torch.ones_like(cb), cb).double().cpu().numpy())
        z = np.concatenate(out) if out else np.zeros((0, reco.shape[1]))
        x = z * self.sd_p + self.mu_p
        x[:, self.integer] = np.round(x[:, self.integer])
        return x.reshape(len(reco), int(draws), -1)


@dataclass
class Acceptance:
    """``P(pass particle | x_reco)`` (fakes) and ``P(pass reco | x_particle)`` (efficiency), learned once on the simulation."""

    true: PassProbability
    efficiency: PassProbability

    @classmethod
    def fit(cls, sim: Events, clf: Mapping[str, Any], seed: int, device: torch.device) -> Acceptance:
        pr, pp = sim.pass_reco, sim.pass_particle
        return cls(PassProbability(sim.reco[pr], pp[pr], sim.weight[pr], clf, derive_seed(seed, "fakes"), device, "fake probability"),
                   PassProbability(sim.particle[pp], pr[pp], sim.weight[pp], clf, derive_seed(seed, "efficiency"), device, "efficiency"))


def unfold_events(model: ConditionalUnfolder, acc: Acceptance, data_reco: np.ndarray, data_weight: np.ndarray, settings: Mapping[str, Any],
                  seed: int) -> dict[str, Any]:
    """Draws for every pseudo-data event with the acceptance weights (module doc): ``events`` (n draws, F),
    ``weights``, ``event_index`` (the pseudo-data row of each draw)."""
    draws = int(settings["draws"])
    t0 = time.perf_counter()
    x = model.sample(data_reco, draws, derive_seed(seed, "sample"))
    t_sample = time.perf_counter() - t0
    flat = x.reshape(-1, x.shape[-1])
    p_true = acc.true(data_reco)
    eff_raw = acc.efficiency(flat)
    floor = float(settings["efficiency_min"])
    idx = np.repeat(np.arange(len(data_reco)), draws)
    w = data_weight[idx] * p_true[idx] / np.maximum(eff_raw, floor) / draws
    return {"events": flat, "weights": w, "event_index": idx, "sample_seconds": t_sample, "n_efficiency_floored": int((eff_raw < floor).sum()),
            "fake_fraction_data": float(1 - np.average(p_true, weights=data_weight))}


def calibration(model: ConditionalUnfolder, particle: np.ndarray, reco: np.ndarray, draws: int, seed: int,
                observables: list[str], rank_bins: int = 10) -> dict[str, Any]:
    """Coverage of the central 68 % and 95 % intervals and rank histograms on held-out pairs (module doc)."""
    x = model.sample(reco, draws, seed)
    out: dict[str, Any] = {"events": len(reco), "draws": int(draws), "coverage_68": {}, "coverage_95": {}, "rank_histogram": {}}
    for j, name in enumerate(observables):
        d, t = x[:, :, j], particle[:, j]
        lo68, hi68, lo95, hi95 = np.quantile(d, [0.16, 0.84, 0.025, 0.975], axis=1)
        out["coverage_68"][name] = float(np.mean((t >= lo68) & (t <= hi68)))
        out["coverage_95"][name] = float(np.mean((t >= lo95) & (t <= hi95)))
        # rank with ties split at random (integer observables)
        rank = (d < t[:, None]).sum(1) + np.random.default_rng(seed).integers(0, (d == t[:, None]).sum(1) + 1)
        out["rank_histogram"][name] = np.bincount(np.minimum(rank * rank_bins // (draws + 1), rank_bins - 1), minlength=rank_bins).tolist()
    return out


def train_model(sim: Events, settings: Mapping[str, Any], seed: int, device: torch.device, weight: np.ndarray | None = None,
                model: ConditionalUnfolder | None = None, label: str = "cinn") -> tuple[ConditionalUnfolder, dict[str, Any]]:
    """A new (or further trained) network on the simulation's pairs, weighted ``g`` (times ``weight``)."""
    pairs = sim.pairs
    w = sim.weight[pairs] * (1.0 if weight is None else weight[pairs])
    model = model or ConditionalUnfolder(sim.particle[pairs], sim.reco[pairs], settings["network"], device)
    info = model.fit(sim.particle[pairs], sim.reco[pairs], w, seed, label)
    return model, info


def icinn(sim: Events, acc: Acceptance, data_reco: np.ndarray, data_weight: np.ndarray, settings: Mapping[str, Any], seed: int,
          device: torch.device, first: tuple[ConditionalUnfolder, dict[str, Any]]) -> dict[str, Any]:
    """Iterative cINN (module doc) from ``first``, the single-pass network and its unfolding."""
    clf = dict(settings["classifier"])
    w = np.ones(len(sim))
    model, result = first
    trainings = []
    history = []
    pp = sim.pass_particle
    for it in range(1, int(settings["iterations"]) + 1):
        one = result["events"][:: int(settings["draws"])]
        w_one = result["weights"][:: int(settings["draws"])] * int(settings["draws"])
        fit = cross_fit(one, sim.particle[pp], w_one, sim.weight[pp] * w[pp], settings=clf, seed=derive_seed(seed, "classifier", it),
                        device=device, label=f"icinn iteration {it} classifier")
        y = np.r_[np.ones(len(one)), np.zeros(int(pp.sum()))]
        auc, boots = fold_auc(fit, y, np.r_[w_one, sim.weight[pp] * w[pp]], int(settings["bootstrap_auc"]),
                              np.random.default_rng(derive_seed(seed, "auc", it)))
        err = float(np.std(boots, ddof=1)) if len(boots) > 1 else 0.0
        done = abs(auc - 0.5) <= float(settings["auc_sigmas"]) * err
        history.append({"iteration": it, "auc": auc, "auc_err": err, "prior_removed": bool(done)})
        log.info("icinn iteration %d: AUC(unfolded vs weighted prior) %.4f +- %.4f%s", it, auc, err, " -> stop" if done else "")
        if done:
            break
        norm = np.sum(w_one) / np.sum(sim.weight[pp] * w[pp])
        r = np.ones(len(sim))
        r[pp] = density_ratio(fit.logit[len(one):]) * norm
        w = w * r
        model, info = train_model(sim, settings, derive_seed(seed, "train", it), device, weight=w, model=model,
                                  label=f"icinn iteration {it}")
        trainings.append(info)
        result = unfold_events(model, acc, data_reco, data_weight, settings, derive_seed(seed, "unfold", it))
        history[-1]["retrained"] = True
    return {**result, "model": model, "history": history, "iterations": len(history), "trainings": trainings, "prior_weights": w}
