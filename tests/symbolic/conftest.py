"""Shared fixtures of the symbolic-stage tests: a small SM WBF sample from the physics core with its
score data, built once per package on the CPU with one torch thread."""

from __future__ import annotations

import numpy as np
import pytest

from lhcchain.physics import get_process
from lhcchain.symbolic.data import generate_events, score_data

from ..conftest import torch_threads


@pytest.fixture(scope="package")
def wbf():
    """The default ``wbf_higgs`` process (13 TeV, p_T,j > 20 GeV, |eta_j| < 5)."""
    return get_process("wbf_higgs")


@pytest.fixture(scope="package")
def wbf_events(wbf):
    """2000 unweighted SM events and their score data (about 5 s)."""
    with torch_threads(1):
        events = generate_events(wbf, 2000, seed=11)
        return events, score_data(wbf, events)


def weighted_corr(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.corrcoef(x, y)[0, 1])
