"""IBU recovers a known truth through a known response, with efficiency losses and fakes."""

from __future__ import annotations

import numpy as np
import pytest

from lhcchain.errors import InputError
from lhcchain.stats import weighted_histogram
from lhcchain.unfold.data import bin_edges
from lhcchain.unfold.ibu import run_ibu, unfold_observable

from .conftest import toy_events, toy_input


def test_ibu_recovers_shifted_truth():
    inp = toy_input(n_sim=40000, n_data=20000, shift=0.5)
    out = run_ibu(inp, {"bins": 12, "ts_stopping": 0.01, "max_iter": 50})["x0"]
    edges = np.asarray(out["edges"])
    truth, _ = weighted_histogram(inp.truth[:, 0], inp.truth_weight, edges)
    prior, _ = weighted_histogram(inp.sim.particle[inp.sim.pass_particle, 0], inp.sim.weight[inp.sim.pass_particle], edges)
    u, err = np.asarray(out["unfolded"]), np.hypot(out["stat_err"], out["sys_err"])
    pull = (u - truth) / np.sqrt(err**2 + truth)
    assert 1 < out["iterations"] < 50
    assert abs(u.sum() / truth.sum() - 1) < 0.03  # fakes removed, efficiency losses put back
    assert np.all(np.abs(pull) < 4), pull
    prior_pull = (prior / prior.sum() * truth.sum() - truth) / np.sqrt(truth)
    assert np.sum(pull**2) < 0.2 * np.sum(prior_pull**2)  # far from the prior


def test_empty_truth_bin_raises():
    sim = toy_events("sim", 2000, 0.0, 3)
    edges = np.r_[bin_edges(sim.particle[sim.pass_particle, 0], 5, False), 50.0, 60.0]
    with pytest.raises(InputError, match="x0.*bin.*5.*sim"):
        unfold_observable(sim.reco[sim.pass_reco, 0], sim.weight[sim.pass_reco], sim, 0, edges, 0.01, 10)
