"""Time per call of each part of a draw, and the gain they predict (lhcchain.madnis.profile)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lhcchain.amplitudes.surrogate import load_surrogate
from lhcchain.madnis.profile import PARTS, expected_gain, sample_efficiencies, time_per_call
from lhcchain.madnis.surrogate import surrogate_matrix_element
from lhcchain.madnis.weights import truncated_maximum


def test_expected_gain_against_hand_computed_times():
    times = {"flow_sampling": 1.0, "channel_weights": 0.5, "phase_space": 0.5, "pdfs_flux": None,
             "matrix_element": 10.0, "surrogate": 0.2}
    out = expected_gain(times, efficiency=0.01, stage1=0.008, stage2=0.8)
    # exact: 12 / 0.01 = 1200; two-stage: 2.2 / 0.0064 + 10 / 0.8 = 343.75 + 12.5 = 356.25
    assert out["time_per_event_exact_s"] == pytest.approx(1200.0)
    assert out["time_per_event_surrogate_s"] == pytest.approx(356.25)
    assert out["gain"] == pytest.approx(1200.0 / 356.25)


def test_time_per_call_times_every_part(gg3g_trained, gg3g_surrogate):
    process = gg3g_trained.process
    surrogate = surrogate_matrix_element(process, load_surrogate(gg3g_surrogate, process.device))
    torch.manual_seed(0)
    times = time_per_call(gg3g_trained.integrator, process, surrogate, 300, repeats=2)
    assert set(times) == set(PARTS)
    assert times["pdfs_flux"] is None  # partonic
    assert times["channel_weights"] == 0.0  # one channel
    for key in ("flow_sampling", "phase_space", "matrix_element", "surrogate"):
        assert times[key] > 0
    assert time_per_call(gg3g_trained.integrator, process, None, 50, repeats=1)["surrogate"] is None


def test_time_per_call_hadronic_parts(dy_trained):
    times = time_per_call(dy_trained.integrator, dy_trained.process, None, 200, repeats=1)
    assert times["pdfs_flux"] > 0 and times["channel_weights"] > 0


def test_sample_efficiencies_of_a_perfect_and_a_scaled_surrogate():
    rng = np.random.default_rng(1)
    w = rng.exponential(1.0, 200_000) ** 2  # a heavy tail
    perfect = sample_efficiencies(w, w.copy(), 1e-3, np.random.default_rng(2))
    w_max = truncated_maximum(w[:100_000], 1e-3)
    assert perfect["efficiency_exact"] == pytest.approx(np.minimum(1, w[100_000:] / w_max).mean())
    assert perfect["stage1_efficiency"] == pytest.approx(perfect["efficiency_exact"])
    assert perfect["w_s_max_over_w_max"] == pytest.approx(1.0)
    # u = max(1, w / w_max) in [1, ...): nearly every survivor passes stage 2
    assert perfect["stage2_efficiency"] > 0.99
    # a surrogate twice the exact weight everywhere: same stage-1 efficiency, u = 1/2 max(1, ...)
    scaled = sample_efficiencies(w, 2 * w, 1e-3, np.random.default_rng(2))
    assert scaled["stage1_efficiency"] == pytest.approx(perfect["efficiency_exact"])
    assert scaled["w_s_max_over_w_max"] == pytest.approx(2.0)
    # a surrogate blind to the weights (constant): stage 1 accepts everything, stage 2 is the exact unweighting
    blind = sample_efficiencies(w, np.ones_like(w), 1e-3, np.random.default_rng(2))
    assert blind["stage1_efficiency"] == pytest.approx(1.0)
    assert blind["stage2_efficiency"] == pytest.approx(perfect["efficiency_exact"], rel=0.05)
    for key in ("exact_truncated_fraction", "stage1_truncated_fraction", "stage2_truncated_fraction"):
        assert 0 <= perfect[key] < 5e-3
