"""Where the time of one integrand call goes when a trained integrator draws points, and what that
means for surrogate unweighting.

:func:`time_per_call` times, on the same points, each part a call of the first stage (drawing a point
with its surrogate weight) and of exact unweighting costs: flow sampling (channel choice included),
channel weights (prior and MadNIS's channel-weight network; none for one channel), the phase-space
mapping with the cuts, PDFs and flux (hadronic processes only), the exact ``|M|^2`` and the surrogate.
Each part runs ``repeats`` times on ``n`` points in one batch; the minimum over the repeats, divided
by ``n``, is its time per call in s (the minimum is the least disturbed by other jobs on a shared
machine).

:func:`sample_efficiencies` gives the exact, stage-1 and stage-2 efficiencies on one weighted sample
with both weights per point, and :func:`expected_gain` turns times per call and efficiencies into the time per unweighted event of
exact and of two-stage unweighting (stage-1 efficiency ``e1``, stage-2 ``e2``): exact
``(t_draw + t_me) / e``, two-stage ``(t_draw + t_sur) / (e1 e2) + t_me / e2``, ``t_draw`` the parts
besides the matrix elements. Their ratio is the gain the unweighting loop should reach.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from madnis.integrator import Integrator

from ..physics.process import MatrixElement, Process
from .events import event_momenta
from .surrogate import stage_two_ratio
from .weights import Overweights, accept, truncated_maximum

PARTS = ("flow_sampling", "channel_weights", "phase_space", "pdfs_flux", "matrix_element", "surrogate")
"""The parts of a call :func:`time_per_call` times (seconds per call each)."""
DRAW = ("flow_sampling", "channel_weights", "phase_space", "pdfs_flux")
"""The parts every drawn point costs, whichever matrix element weights it."""


def _best(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


@torch.no_grad()
def time_per_call(integrator: Integrator, process: Process, surrogate: MatrixElement | None, n: int,
                  repeats: int = 3) -> dict[str, float | None]:
    """Seconds per call of each of :data:`PARTS` on ``n`` points drawn by ``integrator`` (module doc);
    ``pdfs_flux`` is None for a partonic process, ``surrogate`` None without one. Draws with torch's
    global generator."""
    channels = torch.multinomial(torch.ones(process.n_channels), n, replacement=True).to(integrator.dummy.device)
    t_flow, (x, _) = _best(lambda: integrator.flow.sample(n, channel=channels, return_prob=True,
                                                          device=integrator.dummy.device, dtype=integrator.dummy.dtype),
                           repeats)
    x = x.to(process.device)
    chan = channels.to(process.device)

    def mapping() -> tuple[torch.Tensor, ...]:
        kin = event_momenta(process, x, chan)
        process.cuts(kin["lab"])
        x1, x2 = (kin["x1"], kin["x2"]) if process.hadronic else (None, None)
        return kin["lab"], kin["partonic"], x1, x2

    t_map, (lab, partonic, x1, x2) = _best(mapping, repeats)

    def alphas() -> torch.Tensor:
        alpha = process.channel_weights(partonic).to(integrator.dummy.dtype)
        if integrator.cwnet is not None:  # as madnis's Integrator._get_alphas
            alpha = alpha * integrator.cwnet(x.to(integrator.dummy.dtype)).exp()
        return alpha / alpha.sum(1, keepdim=True)

    t_alpha = _best(alphas, repeats)[0] if process.n_channels > 1 else 0.0
    t_pdf = _best(lambda: process.parton_luminosities(partonic, x1, x2), repeats)[0] if process.hadronic else None
    t_me = _best(lambda: process.matrix_element(partonic, x1, x2), repeats)[0]
    t_sur = _best(lambda: surrogate(lab, partonic, x1, x2), repeats)[0] if surrogate is not None else None
    times = {"flow_sampling": t_flow, "channel_weights": t_alpha, "phase_space": t_map, "pdfs_flux": t_pdf,
             "matrix_element": t_me, "surrogate": t_sur}
    return {k: None if v is None else v / n for k, v in times.items()}


def sample_efficiencies(w: np.ndarray, w_s: np.ndarray, epsilon: float, rng: np.random.Generator) -> dict[str, float]:
    """Unweighting efficiencies on one weighted sample: ``w`` the exact weights, ``w_s`` the surrogate
    weights of the same points (pb). The maxima ``w_max``, ``w_s,max`` and ``u_max`` (``u`` of
    :mod:`.surrogate`) are truncated at ``epsilon`` (:func:`~.weights.truncated_maximum`) on the first
    half, as :class:`~.unweighting.TwoStage` calibrates them; on the second half, the exact efficiency
    ``<min(1, w/w_max)>``, stage 1 ``<min(1, w_s/w_s,max)>``, stage 2 ``<min(1, u/u_max)>`` over the
    stage-1 survivors (drawn with ``rng``), and the fractions of the cross-section beyond the maxima."""
    half = len(w) // 2
    w_max, w_s_max = truncated_maximum(w[:half], epsilon), truncated_maximum(w_s[:half], epsilon)
    ratio = np.divide(w, w_s, out=np.zeros_like(w), where=w_s > 0)
    u = stage_two_ratio(torch.from_numpy(ratio), torch.from_numpy(w_s), w_s_max).numpy()
    survivors = accept(w_s, w_s_max, rng)
    first = np.arange(len(w)) < half
    u_max = truncated_maximum(u[survivors & first], epsilon)
    w, w_s, u = w[half:], w_s[half:], u[survivors & ~first]
    tallies = [Overweights(), Overweights(), Overweights()]
    for tally, values, top in zip(tallies, (w, w_s, u), (w_max, w_s_max, u_max)):
        tally.add(values, top)
    return {"efficiency_exact": float(np.minimum(1.0, w / w_max).mean()),
            "stage1_efficiency": float(np.minimum(1.0, w_s / w_s_max).mean()),
            "stage2_efficiency": float(np.minimum(1.0, u / u_max).mean()),
            "exact_truncated_fraction": tallies[0].truncated_fraction,
            "stage1_truncated_fraction": tallies[1].truncated_fraction,
            "stage2_truncated_fraction": tallies[2].truncated_fraction,
            "w_s_max_over_w_max": w_s_max / w_max}


def expected_gain(times: dict[str, float | None], efficiency: float, stage1: float, stage2: float) -> dict[str, float]:
    """Seconds per unweighted event of exact and two-stage unweighting and their ratio (module doc),
    from :func:`time_per_call`'s ``times`` (with a surrogate) and the three efficiencies."""
    draw = sum(times[k] or 0.0 for k in DRAW)
    exact = (draw + times["matrix_element"]) / efficiency
    two_stage = (draw + times["surrogate"]) / (stage1 * stage2) + times["matrix_element"] / stage2
    return {"time_per_event_exact_s": exact, "time_per_event_surrogate_s": two_stage, "gain": exact / two_stage}
