"""Shower surrogate in the CaloDREAM style (Favaro et al., arXiv:2405.09629): two conditional generative
networks from :mod:`lhcchain.generate.models`, trained with :mod:`lhcchain.training`.

* **energy model** ``p(u | E_inc)``: the layer energies as ``u_0 = ln(E_tot / E_inc)`` and
  ``u_i = E_i / sum_{j >= i} E_j`` (i = 1 .. L-1, fractions in [0, 1]; CaloFlow, arXiv:2106.05285),
  the fractions through ``logit(alpha + (1 - 2 alpha) u)``; condition ``ln(E_inc)``.
* **shower model** ``p(x | E_inc, layer energies)``: the voxels of each layer divided by the layer's
  energy, through the same logit, given ``ln(E_inc)`` and ``ln(E_layer / E_inc)``.

Every coordinate is standardised by its training mean and spread *at its incident energy*
(:class:`EnergyProfile`: both piecewise linear in ``ln E_inc`` between the means of ``PROFILE_BINS``
bins of the training energies), every condition by its overall training mean and spread. The
conditional standardisation matters: at 64 GeV a central voxel's fraction of its layer fluctuates by
about 20 % from shower to shower, while its logit varies by several units across the energy range;
standardised over all energies, the network's residual errors of a fraction of a unit became voxel
fluctuations six times larger than the reference's (docs/showers.md). Voxels below the
read-out ``threshold_mev`` (zeros) get uniform noise in ``(0, 0.01 threshold_mev)`` in training, so the
networks learn a continuous density (the layer energies of the energy model are the sums of these
noisy voxels); after sampling, each layer's voxels are renormalised to sum 1, scaled by the sampled
layer energy and voxels below the threshold are set to 0. Noise up to the full threshold was worse
(docs/showers.md): summed over the 368 voxels it added about 18 MeV to a 256 MeV photon's 42 MeV of
visible energy, and the network's spread of the noise voxels crossed the threshold, so generated
showers had 100 non-zero voxels at 256 MeV instead of 11.

Settings: ``family`` (``cfm`` or ``flow``), ``hidden``, ``layers``, ``bayesian``, ``prior_std``,
``kl_weight``, ``transforms``, ``bins`` (see :mod:`lhcchain.generate.models`), and the training keys of
:mod:`lhcchain.training` (``epochs``, ``batch_size``, ``lr``, ``lr_min_factor``, ``warmup``,
``weight_decay``, ``patience``, ``max_minutes``); the energy and shower models have one such set each
(``showers.surrogate.energy`` and ``.shower``; the default config's fills what is missing).
Sampling: ``solver`` and ``steps`` of the CFM's ODE.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import config
from ..device import select_device
from ..errors import InputError
from ..io import Progress
from ..generate.models import Generator, make_generator
from ..stats import bin_index
from ..training import Trainer, seeded
from .geometry import Geometry, load_geometry
from .io import Showers, in_chunks, read_incident_energies, read_showers, write_showers

log = logging.getLogger("lhcchain.showers")

FORMAT = "lhcchain-shower-surrogate/2"  # /2: coordinates standardised per incident energy (EnergyProfile)
PARTS = ("energy", "shower")
ALPHA = 1e-6  # logit regularisation
NOISE_FRACTION = 0.01  # training noise of empty voxels: uniform up to this fraction of the threshold (module doc)
PROFILE_BINS = 16  # ln E_inc bins of EnergyProfile (the 15 powers of two of dataset 1 fall in separate bins)
PROFILE_MIN_STD = 0.05  # EnergyProfile's spread is at least this fraction of the coordinate's overall spread
VAL_SEED = 20240602
VAL_FRACTION = 0.2


def resolve_settings(settings: Mapping[str, Any], part: str) -> dict[str, Any]:
    """``settings`` laid over the default config's ``showers.surrogate.<part>`` (:func:`lhcchain.config.resolve_settings`);
    InputError on unknown keys or values."""
    out = config.resolve_settings(settings, f"showers.surrogate.{part}")
    if out["family"] not in ("cfm", "flow"):
        raise InputError(f"showers.surrogate: family must be 'cfm' or 'flow', got {out['family']!r}")
    if out["bayesian"] and out["family"] != "cfm":
        raise InputError("showers.surrogate: bayesian: true needs family: cfm")
    return out


def logit(u: np.ndarray) -> np.ndarray:
    v = ALPHA + (1 - 2 * ALPHA) * np.clip(u, 0.0, 1.0)
    return np.log(v) - np.log1p(-v)


def expit(z: np.ndarray) -> np.ndarray:
    return np.clip((1.0 / (1.0 + np.exp(-z)) - ALPHA) / (1 - 2 * ALPHA), 0.0, 1.0)


def noisy(showers: Showers, threshold_mev: float, rng: np.random.Generator) -> np.ndarray:
    """Voxels (MeV) with uniform noise in (0, NOISE_FRACTION x threshold) where they are below the threshold (module doc)."""
    v = showers.voxels.astype(np.float64)
    below = v < threshold_mev
    return np.where(below, rng.uniform(0.0, NOISE_FRACTION * max(threshold_mev, 1e-6), v.shape), v)


def energy_coordinates(e_layer: np.ndarray, e_inc: np.ndarray) -> np.ndarray:
    """``u_0 = ln(E_tot / E_inc)`` and the logits of ``u_i = E_i / sum_{j >= i} E_j`` (module doc)."""
    tail = np.cumsum(e_layer[:, ::-1], 1)[:, ::-1]
    u = e_layer[:, :-1] / tail[:, :-1]
    return np.concatenate([np.log(tail[:, :1] / e_inc[:, None]), logit(u)], 1)


def energies_from_coordinates(z: np.ndarray, e_inc: np.ndarray) -> np.ndarray:
    """Inverse of :func:`energy_coordinates`: layer energies (N, L) in MeV."""
    remaining = np.exp(z[:, 0]) * e_inc
    u = expit(z[:, 1:])
    out = []
    for i in range(u.shape[1]):
        out.append(remaining * u[:, i])
        remaining = remaining - out[-1]
    out.append(remaining)
    return np.stack(out, 1)


def shower_coordinates(voxels: np.ndarray, e_layer: np.ndarray, geometry: Geometry) -> np.ndarray:
    return logit(voxels / np.maximum(e_layer[:, geometry.voxel_layer()], 1e-30))


def conditions(part: str, e_inc: np.ndarray, e_layer: np.ndarray | None) -> np.ndarray:
    """Network conditions: ``ln E_inc`` (energy model), plus ``ln(E_layer / E_inc)`` (shower model)."""
    log_e = np.log(e_inc)[:, None]
    if part == "energy":
        return log_e
    return np.concatenate([log_e, np.log(np.maximum(e_layer, 1e-30) / e_inc[:, None])], 1)


def part_arrays(part: str, showers: Showers, geometry: Geometry, threshold_mev: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Network coordinates (N, D) and conditions (N, C) of ``part`` for noisy training showers."""
    v = noisy(showers, threshold_mev, rng)
    e_layer = geometry.layer_sums(v)
    x = energy_coordinates(e_layer, showers.energy) if part == "energy" else shower_coordinates(v, e_layer, geometry)
    return x, conditions(part, showers.energy, e_layer)


class Standardise:
    """Per-column ``(x - mean) / std`` fitted on training data."""

    def __init__(self, mean: np.ndarray, std: np.ndarray) -> None:
        self.mean, self.std = np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)

    @classmethod
    def fit(cls, x: np.ndarray) -> Standardise:
        std = x.std(0)
        return cls(x.mean(0), np.where(std > 1e-12, std, 1.0))

    def forward(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) / self.std

    def inverse(self, z: np.ndarray) -> np.ndarray:
        return z * self.std + self.mean

    def state(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}


class EnergyProfile:
    """Per-coordinate ``(x - mean(E)) / std(E)`` with mean and spread piecewise linear in ``ln E_inc`` (module doc)."""

    def __init__(self, log_e: np.ndarray, mean: np.ndarray, std: np.ndarray) -> None:
        self.log_e = np.asarray(log_e, dtype=np.float64)
        self.mean, self.std = np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)

    @classmethod
    def fit(cls, x: np.ndarray, log_e: np.ndarray, bins: int = PROFILE_BINS) -> EnergyProfile:
        """Means and spreads of ``x`` (N, D) in ``bins`` equal bins of ``log_e`` (N,) that hold at least two rows,
        placed at the bins' mean ``log_e``; spreads floored at ``PROFILE_MIN_STD`` times the overall spread."""
        edges = np.linspace(log_e.min(), log_e.max(), bins + 1)
        idx = bin_index(log_e, edges)
        groups = [idx == b for b in range(bins) if np.count_nonzero(idx == b) >= 2] or [np.ones(len(x), bool)]
        floor = np.maximum(PROFILE_MIN_STD * x.std(0), 1e-6)
        return cls(np.array([log_e[g].mean() for g in groups]), np.stack([x[g].mean(0) for g in groups]),
                   np.stack([np.maximum(x[g].std(0), floor) for g in groups]))

    def _at(self, log_e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if len(self.log_e) == 1:
            return self.mean[:1], self.std[:1]
        j = np.clip(np.searchsorted(self.log_e, log_e), 1, len(self.log_e) - 1)
        w = np.clip((log_e - self.log_e[j - 1]) / (self.log_e[j] - self.log_e[j - 1]), 0.0, 1.0)[:, None]
        return (1 - w) * self.mean[j - 1] + w * self.mean[j], (1 - w) * self.std[j - 1] + w * self.std[j]

    def forward(self, x: np.ndarray, log_e: np.ndarray) -> np.ndarray:
        mean, std = self._at(log_e)
        return (x - mean) / std

    def inverse(self, z: np.ndarray, log_e: np.ndarray) -> np.ndarray:
        mean, std = self._at(log_e)
        return z * std + mean

    def state(self) -> dict[str, list]:
        return {"log_e": self.log_e.tolist(), "mean": self.mean.tolist(), "std": self.std.tolist()}


def network(settings: Mapping[str, Any], dim: int, n_cond: int) -> Generator:
    """The energy or shower network: a CFM with an MLP velocity field or a zuko spline flow (generate.models)."""
    return make_generator({**settings, "network": "mlp", "heads": 1, "components": 1}, dim, n_cond)


def train(part: str, data: str | os.PathLike[str], checkpoint: str | os.PathLike[str], settings: Mapping[str, Any], *,
          binning: str, threshold_mev: float, device: str = "auto", threads: int = 1, seed: int = 0,
          max_showers: int | None = None, log_every: float = 10.0, save_every: float = 30.0) -> dict[str, Any]:
    """Train the ``part`` (``energy`` or ``shower``) network on the CaloChallenge file ``data`` (its last
    fifth validates) and write ``checkpoint``; returns a summary (module doc)."""
    if part not in PARTS:
        raise InputError(f"showers: surrogate part must be one of {PARTS}, got {part!r}")
    s = resolve_settings(settings, part)
    geometry = load_geometry(binning)
    showers = read_showers(data, geometry, max_showers)
    n_val = max(1, int(VAL_FRACTION * len(showers)))
    if len(showers) - n_val < 2:
        raise InputError(f"{data}: {len(showers)} showers are too few to train on")
    rng = np.random.default_rng(seed)
    x, c = part_arrays(part, showers, geometry, float(threshold_mev), rng)
    n_tr = len(showers) - n_val
    log_e = np.log(showers.energy)
    x_std, c_std = EnergyProfile.fit(x[:n_tr], log_e[:n_tr]), Standardise.fit(c[:n_tr])
    dev = select_device(device, threads)
    xt = torch.as_tensor(x_std.forward(x, log_e), dtype=torch.float32, device=dev)
    ct = torch.as_tensor(c_std.forward(c), dtype=torch.float32, device=dev)
    torch.manual_seed(int(seed))
    net = network(s, x.shape[1], c.shape[1]).to(dev)
    ones = torch.ones(1, x.shape[1], device=dev)
    opt = torch.optim.AdamW(net.parameters(), lr=float(s["lr"]), weight_decay=float(s["weight_decay"]))
    fingerprint = [len(showers), float(showers.voxels[:, :8].sum()), float(showers.energy.sum())]
    meta = {"format": FORMAT, "part": part, "settings": s, "binning": str(binning), "threshold_mev": float(threshold_mev),
            "dim": int(x.shape[1]), "n_cond": int(c.shape[1]), "x_profile": x_std.state(), "c_transform": c_std.state(),
            "fingerprint": fingerprint, "data": str(data)}
    trainer = Trainer(f"train_{part}", net, opt, s, meta, checkpoint, match=("format", "part", "settings", "fingerprint"),
                      seed=int(seed), log=log, log_every=log_every, save_every=save_every)
    kl_weight = float(s["kl_weight"])

    def batch_loss(idx: torch.Tensor) -> torch.Tensor:
        loss = net.loss(xt[idx], ones.expand(len(idx), -1), ct[idx]).mean()
        if net.bayesian:
            loss = loss + kl_weight * net.kl().to(loss.device) / n_tr
        return loss

    @torch.no_grad()
    def validate() -> float:
        was = net.training
        net.eval()
        net.set_bayes_mode("mean")
        with seeded(VAL_SEED, dev):
            val = float(net.loss(xt[n_tr:], ones.expand(n_val, -1), ct[n_tr:]).mean())
        net.set_bayes_mode("local")
        net.train(was)
        return val

    train_idx = torch.arange(n_tr)
    stop = trainer.run(lambda: train_idx, batch_loss, validate)
    state = trainer.state
    minutes = trainer.finish()
    log.info("train_%s: %d epochs in %.2f min (%s), best val loss %.4f", part, state["epoch"], minutes, stop, state["best_val"])
    return {"part": part, "family": s["family"], "epochs_run": state["epoch"], "best_epoch": state["best_epoch"],
            "best_val_loss": state["best_val"], "stop_reason": stop, "train_minutes": minutes,
            "n_params": sum(p.numel() for p in net.parameters()), "n_train": n_tr, "n_val": n_val, "device": str(dev),
            "resumed": trainer.resumed, "settings": s}


class Surrogate:
    """The two trained networks and their transforms; :meth:`sample` generates showers (module doc)."""

    def __init__(self, energy: str | os.PathLike[str], shower: str | os.PathLike[str], device: torch.device,
                 solver: str = "midpoint", steps: int = 8) -> None:
        self.device = device
        self.nets, self.meta = {}, {}
        for part, path in (("energy", energy), ("shower", shower)):
            try:
                ckpt = torch.load(Path(path), map_location=device, weights_only=False)
            except Exception as exc:
                raise InputError(f"{path}: not a readable shower-surrogate checkpoint: {type(exc).__name__}: {exc}") from exc
            if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT or ckpt.get("part") != part:
                raise InputError(f"{path}: not the {part} network of a shower surrogate (checkpoint format {FORMAT!r})")
            net = network(ckpt["settings"], ckpt["dim"], ckpt["n_cond"]).to(device)
            net.load_state_dict(ckpt["model"])
            net.eval()
            net.set_bayes_mode("mean")
            net.set_solver(solver, steps)
            self.nets[part], self.meta[part] = net, ckpt
        if self.meta["energy"]["binning"] != self.meta["shower"]["binning"]:
            raise InputError(f"{energy}, {shower}: trained on different binnings")
        self.geometry = load_geometry(self.meta["shower"]["binning"])
        self.threshold = float(self.meta["shower"]["threshold_mev"])
        self.tf = {p: (EnergyProfile(**m["x_profile"]), Standardise(**m["c_transform"])) for p, m in self.meta.items()}

    def _sample(self, part: str, cond: np.ndarray, e_inc: np.ndarray) -> np.ndarray:
        x_std, c_std = self.tf[part]
        c = torch.as_tensor(c_std.forward(cond), dtype=torch.float32, device=self.device)
        mask = torch.ones(len(cond), x_std.mean.shape[1], device=self.device)
        with torch.no_grad():
            z = self.nets[part].sample(mask, c)
        return x_std.inverse(z.double().cpu().numpy(), np.log(e_inc))

    def sample(self, e_inc: np.ndarray) -> np.ndarray:
        """Voxel energies (N, n_voxels) in MeV for incident energies ``e_inc`` (MeV)."""
        e_inc = np.asarray(e_inc, dtype=np.float64)
        e_layer = np.maximum(energies_from_coordinates(self._sample("energy", conditions("energy", e_inc, None), e_inc), e_inc), 0.0)
        x = expit(self._sample("shower", conditions("shower", e_inc, e_layer), e_inc))
        layer = self.geometry.voxel_layer()
        v = x / np.maximum(self.geometry.layer_sums(x)[:, layer], 1e-30) * e_layer[:, layer]
        v[v < self.threshold] = 0.0
        return v.astype(np.float32)


def sample(energy: str | os.PathLike[str], shower: str | os.PathLike[str], energies_from: str | os.PathLike[str],
           output: str | os.PathLike[str], settings: Mapping[str, Any], *, device: str = "auto", threads: int = 1,
           seed: int = 0) -> dict[str, Any]:
    """Generate one shower per incident energy of the CaloChallenge file ``energies_from`` (the held-out
    reference, so that both samples share their energies) and write them to ``output``; ``settings``:
    ``solver``, ``steps``, ``batch_size``. Returns a summary with the generation time per shower."""
    dev = select_device(device, threads)
    torch.manual_seed(int(seed))
    model = Surrogate(energy, shower, dev, settings["solver"], int(settings["steps"]))
    e_inc = read_incident_energies(energies_from)
    bs = int(settings["batch_size"])
    progress = Progress("sample showers", len(e_inc), "showers")
    start = time.perf_counter()
    voxels = in_chunks(model.sample, e_inc, bs, progress)
    seconds = time.perf_counter() - start
    progress.done()
    write_showers(output, Showers(e_inc, voxels))
    return {"n_showers": len(e_inc), "batch_size": bs, "solver": settings["solver"], "steps": int(settings["steps"]),
            "time_per_shower_ms": 1e3 * seconds / len(e_inc), "device": str(dev), "energies_from": str(energies_from)}
