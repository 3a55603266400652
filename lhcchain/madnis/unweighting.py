"""Hit-or-miss unweighting of a trained integrator, and the comparison of two unweighted samples.

:func:`unweight_events` is the one loop: it draws batches of weighted points and keeps those a
selector accepts, until ``n_events`` or ``max_calls``. Two selectors:

* :class:`HitOrMiss`: accept with probability ``min(1, w / w_max)`` against the truncated ``w_max``
  (:mod:`.weights`), tallying the overweights of every drawn weight;
* :class:`TwoStage`: the integrator draws with the surrogate ``|M|^2``; stage 1 accepts against
  ``w_s,max``, the exact ``|M|^2`` of the survivors gives ``u``, stage 2 accepts against ``u_max``
  (:mod:`.surrogate`). :meth:`TwoStage.calibrate` fixes both maxima on a calibration sample.

:func:`compare_samples` tests whether two unweighted samples follow the same distribution, per
observable of :func:`observables`. Units: GeV, pb, s.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np
import torch
from madnis.integrator import Integrator, SampleBatch
from scipy import stats

from ..errors import InputError
from ..physics.kinematics import pair_mass, pseudorapidity, transverse_momentum
from ..physics.process import Process
from .integrator import CheckedIntegrand, draw
from .surrogate import stage_two_ratio
from .weights import Overweights, accept, truncated_maximum

log = logging.getLogger("lhcchain.madnis")

PROGRESS_EVERY = 30.0
"""Seconds between progress lines of the unweighting loop."""


class Selector(Protocol):
    def __call__(self, sample: SampleBatch, rng: np.random.Generator) -> np.ndarray:
        """Boolean mask of the accepted points of ``sample``."""

    def figures(self) -> dict[str, Any]:
        """The selector's figures for the summary (overweights, ...)."""


class HitOrMiss:
    """Accept with probability ``min(1, w / w_max)``; overweights of all drawn weights (fraction of
    the non-zero weights above ``w_max``, and the fraction of their sum above it)."""

    def __init__(self, w_max: float) -> None:
        self.w_max = w_max
        self.tally = Overweights()

    def __call__(self, sample: SampleBatch, rng: np.random.Generator) -> np.ndarray:
        w = sample.weights.cpu().numpy()
        self.tally.add(w, self.w_max)
        return accept(w, self.w_max, rng)

    def figures(self) -> dict[str, Any]:
        return {"overweight_fraction": self.tally.overweight_fraction, "truncated_fraction": self.tally.truncated_fraction}


class TwoStage:
    """Two-stage unweighting with the surrogate installed in the integrator (module doc). Stage 1 is
    tallied on the calibration sample that fixes ``w_s_max``, stage 2 on every drawn survivor; the
    cross-section is the mean over all calls of ``1_stage1 u w_s_max`` (unbiased, :mod:`.surrogate`),
    with the standard error of that mean."""

    def __init__(self, exact: CheckedIntegrand, w_s_max: float, u_max: float, stage1: Overweights) -> None:
        self.exact, self.w_s_max, self.u_max, self.stage1 = exact, w_s_max, u_max, stage1
        self.stage2 = Overweights()
        self.calls = self.exact_calls = 0
        self.u_sum = self.u2_sum = 0.0

    @classmethod
    def calibrate(cls, integrator: Integrator, exact: CheckedIntegrand, calls: int, batch: int, epsilon: float,
                  rng: np.random.Generator) -> TwoStage:
        """Truncated maxima ``w_s_max`` of the surrogate weights and ``u_max`` of the stage-1 survivors'
        ``u``, from ``calls`` points drawn with the surrogate integrand."""
        calib = draw(integrator, calls, batch)
        ws = calib.weights.cpu().numpy()
        w_s_max = truncated_maximum(ws, epsilon)
        f_exact, _ = exact(calib.x, calib.channels)
        ratio = (f_exact.to(calib.func_vals.dtype) / calib.func_vals).nan_to_num(0.0)
        u = stage_two_ratio(ratio, calib.weights, w_s_max).cpu().numpy()
        u_max = truncated_maximum(u[accept(ws, w_s_max, rng)], epsilon)
        stage1 = Overweights()
        stage1.add(ws, w_s_max)
        return cls(exact, w_s_max, u_max, stage1)

    def __call__(self, sample: SampleBatch, rng: np.random.Generator) -> np.ndarray:
        ws = sample.weights.cpu().numpy()
        self.calls += ws.size
        survivors = np.flatnonzero(accept(ws, self.w_s_max, rng))
        index = torch.from_numpy(survivors).to(sample.x.device)
        f_exact, _ = self.exact(sample.x[index], sample.channels[index])
        self.exact_calls += survivors.size
        f_sur = sample.func_vals[index]
        u = stage_two_ratio(f_exact.to(f_sur.dtype) / f_sur, sample.weights[index], self.w_s_max).cpu().numpy()
        self.u_sum += float(u.sum())
        self.u2_sum += float((u**2).sum())
        self.stage2.add(u, self.u_max)
        ok = np.zeros(ws.size, dtype=bool)
        ok[survivors[accept(u, self.u_max, rng)]] = True
        return ok

    def figures(self) -> dict[str, Any]:
        sigma = self.u_sum * self.w_s_max / self.calls
        variance = (self.u2_sum * self.w_s_max**2 / self.calls - sigma**2) * self.calls / max(self.calls - 1, 1)
        return {
            "exact_calls": self.exact_calls,
            "stage1_efficiency": self.exact_calls / self.calls,
            "w_s_max_pb": self.w_s_max, "u_max": self.u_max,
            "stage1_overweight_fraction": self.stage1.overweight_fraction,
            "stage1_truncated_fraction": self.stage1.truncated_fraction,
            "stage2_overweight_fraction": self.stage2.overweight_fraction,
            "stage2_truncated_fraction": self.stage2.truncated_fraction,
            "cross_section_pb": sigma,
            "error_pb": math.sqrt(max(variance, 0.0) / self.calls),
        }


def unweight_events(integrator: Integrator, select: Selector, n_events: int, batch: int, max_calls: int,
                    rng: np.random.Generator, label: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Draw batches of ``batch`` points and keep those ``select`` accepts until ``n_events``: the first
    ``n_events`` points (``x``, ``channels``) and the calls, accepted events and seconds with the
    selector's figures. InputError when ``max_calls`` calls give fewer than ``n_events``."""
    kept: dict[str, list[torch.Tensor]] = {"x": [], "channels": []}
    calls, have, start = 0, 0, time.perf_counter()
    last = start
    while have < n_events and calls < max_calls:
        s = draw(integrator, batch, batch)
        calls += batch
        ok = torch.from_numpy(select(s, rng)).to(s.x.device)
        kept["x"].append(s.x[ok])
        kept["channels"].append(s.channels[ok])
        have += int(ok.sum())
        if time.perf_counter() - last > PROGRESS_EVERY:
            last = time.perf_counter()
            log.info("madnis: %s: %d of %d events from %d calls, %.0f s", label, have, n_events, calls, last - start)
    if have < n_events:
        raise InputError(f"{label}: only {have} of {n_events} events after {calls} calls (madnis.events.max_calls); "
                         f"raise max_calls or lower n_events")
    seconds = time.perf_counter() - start
    points = {k: torch.cat(v)[:n_events] for k, v in kept.items()}
    return points, {"calls": calls, "accepted": have, "time_s": seconds, "efficiency": have / calls,
                    "time_per_event_s": seconds / have, **select.figures()}


def observables(process: Process, lab: torch.Tensor) -> dict[str, np.ndarray]:
    """Per event: p_T and eta of the p_T-ordered outgoing legs and the mass of the two leading (GeV)."""
    out = lab[:, 2:].to(torch.float64)
    order = transverse_momentum(out).argsort(-1, descending=True)
    out = torch.gather(out, 1, order[..., None].expand_as(out))
    obs = {}
    for i in range(out.shape[1]):
        obs[f"p_T,{i + 1} [GeV]"] = transverse_momentum(out[:, i]).cpu().numpy()
        obs[f"eta_{i + 1}"] = pseudorapidity(out[:, i]).cpu().numpy()
    obs["m_12 [GeV]"] = pair_mass(out[:, 0], out[:, 1]).cpu().numpy()
    return obs


def compare_samples(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray], bins: int = 20) -> dict[str, dict[str, float]]:
    """Per observable, Pearson's chi^2 test that two unweighted samples come from one distribution:
    ``scipy.stats.chi2_contingency`` of their 2 x ``bins`` table of counts (quantile bins of the union;
    bins empty in both dropped; no continuity correction). ``chi2``, ``ndf`` and ``p_value``."""
    result = {}
    for key in a:
        edges = np.unique(np.quantile(np.concatenate([a[key], b[key]]), np.linspace(0, 1, bins + 1)))
        table = np.stack([np.histogram(a[key], edges)[0], np.histogram(b[key], edges)[0]])
        test = stats.chi2_contingency(table[:, table.sum(axis=0) > 0], correction=False)
        result[key] = {"chi2": float(test.statistic), "ndf": int(test.dof), "p_value": float(test.pvalue)}
    return result
