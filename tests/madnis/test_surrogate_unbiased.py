"""Surrogate-accelerated unweighting (:mod:`lhcchain.madnis.surrogate`) gives the exact cross-section.

Per call of the surrogate integrand, the two-stage estimate is ``y = 1[stage 1 accepts] u w_s,max``
(``u`` from :func:`~lhcchain.madnis.surrogate.stage_two_ratio`, stage 1 by
:func:`~lhcchain.madnis.weights.accept`); its mean must equal that of the exact weight ``w`` of the
same point for *any* surrogate and any ``w_s,max``. The test uses a deliberately poor surrogate
(the exact gg -> ggg |M|^2 times a factor between 1.0 and 2.24 that varies over phase space), a
``w_s,max`` at the median or the 90 % quantile of the surrogate weights (half or a tenth of the
points overweight in stage 1), and asks that the paired difference ``y - w`` averages to zero within
4 of its standard errors (measured: 0.02 % and 0.36 % of sigma) and within 2 % of sigma. (The
stage's truncated maximum accepts 0.1 % of the points of this briefly trained integrator: too few
to test; the estimator is unbiased for every ``w_s,max``.)
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lhcchain.madnis.integrator import CheckedIntegrand, draw
from lhcchain.madnis.surrogate import stage_two_ratio, surrogate_matrix_element
from lhcchain.madnis.weights import accept

N_CALLS = 20_000


class DistortedSurrogate:
    """Exact |M|^2 times 1.5 exp(0.4 sin(p_x of the first outgoing gluon / 20 GeV))."""

    amplitude_kind = "bare"
    n_legs = 5
    process = "gg_3g"

    def __init__(self, process) -> None:
        self.exact = process

    def factor(self, lab: torch.Tensor) -> torch.Tensor:
        return 1.5 * torch.exp(0.4 * torch.sin(lab[:, 2, 1] / 20.0))

    def __call__(self, lab: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        value = self.exact.subprocess_matrix_element(lab, 0) * self.factor(lab)
        return value, 0.1 * value


@pytest.fixture(scope="module")
def paired_weights(gg3g_trained):
    """Surrogate weights, exact weights and surrogate/exact ratios at the same N_CALLS points."""
    integrator, exact = gg3g_trained.integrator, gg3g_trained.function
    process = exact.process
    fast = CheckedIntegrand(process, surrogate_matrix_element(process, DistortedSurrogate(process)))
    original = integrator.integrand
    integrator.integrand = fast.integrand()
    try:
        torch.manual_seed(5)
        s = draw(integrator, N_CALLS, 5000)
    finally:
        integrator.integrand = original
    f_exact, _ = exact(s.x, s.channels)
    f_sur = s.func_vals
    ratio = torch.where(f_sur > 0, f_exact.to(f_sur.dtype) / f_sur.clamp(min=1e-300), torch.zeros_like(f_sur))
    return s.weights, s.weights * ratio, ratio


@pytest.mark.parametrize("quantile", [0.5, 0.9])
def test_two_stage_estimate_is_the_exact_cross_section(paired_weights, quantile):
    ws, w, ratio = paired_weights
    ws_np = ws.numpy()
    r = ratio[ws > 0].numpy()
    assert 0.44 < r.min() and r.max() < 1.0  # the surrogate is 1.0-2.24 x the exact |M|^2
    w_s_max = float(np.quantile(ws_np[ws_np > 0], quantile))
    rng = np.random.default_rng(6)
    stage1 = accept(ws_np, w_s_max, rng)
    u = stage_two_ratio(ratio, ws, w_s_max).numpy()
    y = np.where(stage1, u * w_s_max, 0.0)
    d = y - w.numpy()
    sigma = w.numpy().mean()
    assert abs(d.mean()) < 4 * d.std() / np.sqrt(d.size)
    assert abs(d.mean()) < 0.02 * sigma
    # the surrogate's own weights are 1.5 x too high: without the second stage the estimate is off
    assert ws_np.mean() > 1.3 * sigma
