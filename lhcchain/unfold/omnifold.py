"""OmniFold (Andreassen et al., arXiv 1911.09107) in torch with the reweight classifier, with pass masks.

Simulation events carry generator weights ``g`` and push weights ``nu`` (1 at the start). Iteration i
(a fresh cross-fitted classifier, :func:`.classify.ratio`, for each step, averaged over ``ensemble``
seeds):

1. *Pull*: pseudo-data reco against simulated reco (events passing reco, weights ``g nu``): the pull
   weights ``omega = nu r(x_reco)`` of those events.
   1b. Events passing only the particle level have no reco value: their ``omega / nu`` is the
   ensemble's estimate of ``E[omega / nu | x_particle]`` learned on the pairs (pairs weighted
   ``g omega`` against ``g nu`` at particle level), as in OmniFold PR #21.
2. *Push*: simulated particle level weighted ``g omega`` against itself weighted ``g``: the new push
   weights ``nu = r(x_particle)`` of every particle-level event.
   2b. Fakes (reco only) have no particle value: their ``nu`` is learned on the pairs at reco level
   (``g nu`` against ``g``), so that they keep following the data in the next pull.

Out-of-fold ratios are used for the events a classifier trained on. The result is the full
particle-level distribution of the simulation, every event passing the particle level weighted
``g nu``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from ..io import derive_seed
from .classify import ratio
from .data import Events

log = logging.getLogger("lhcchain.unfold")


def omnifold(sim: Events, data_reco: np.ndarray, data_weight: np.ndarray, settings: Mapping[str, Any], seed: int,
             device: torch.device) -> dict[str, Any]:
    """Run ``settings['iterations']`` OmniFold iterations (module doc).

    ``settings``: ``iterations``, ``ensemble``, ``classifier`` (keys of the reweight classifier).
    Returns the push weights ``nu`` (all simulation rows; fakes included), the unfolded events and
    weights (rows passing the particle level) and per-iteration timings.
    """
    clf, n_ens = dict(settings["classifier"]), int(settings["ensemble"])
    g = sim.weight
    pp, pr, pairs = sim.pass_particle, sim.pass_reco, sim.pairs
    only_p, fakes = pp & ~pr, pr & ~pp
    nu = np.ones(len(sim))
    history = []
    for it in range(int(settings["iterations"])):
        t0 = time.perf_counter()
        s = derive_seed(seed, "omnifold", it)
        omega = nu.copy()
        r, _ = ratio(data_reco, data_weight, sim.reco[pr], g[pr] * nu[pr], clf, derive_seed(s, 1), device, ensemble=n_ens,
                     label=f"omnifold it {it + 1} step 1")
        omega[pr] = nu[pr] * r
        if only_p.any():
            _, r1b = ratio(sim.particle[pairs], g[pairs] * omega[pairs], sim.particle[pairs], g[pairs] * nu[pairs], clf, derive_seed(s, "1b"),
                           device, apply_to=sim.particle[only_p], ensemble=n_ens, label=f"omnifold it {it + 1} step 1b")
            omega[only_p] = nu[only_p] * r1b
        new = np.ones(len(sim))
        r2, _ = ratio(sim.particle[pp], g[pp] * omega[pp], sim.particle[pp], g[pp], clf, derive_seed(s, 2), device, ensemble=n_ens,
                      label=f"omnifold it {it + 1} step 2")
        new[pp] = r2
        if fakes.any():
            _, r2b = ratio(sim.reco[pairs], g[pairs] * new[pairs], sim.reco[pairs], g[pairs], clf, derive_seed(s, "2b"), device,
                           apply_to=sim.reco[fakes], ensemble=n_ens, label=f"omnifold it {it + 1} step 2b")
            new[fakes] = r2b
        change = float(np.sum(g[pp] * np.abs(new[pp] - nu[pp])) / np.sum(g[pp] * nu[pp]))
        nu = new
        history.append({"iteration": it + 1, "seconds": time.perf_counter() - t0, "mean_abs_weight_change": change})
        log.info("omnifold iteration %d: %.1f s, mean |change| of the push weights %.4f", it + 1, history[-1]["seconds"], change)
    return {"nu": nu, "events": sim.particle[pp], "weights": g[pp] * nu[pp], "history": history, "iterations": len(history)}
