"""Toys of the unfold tests: Gaussian truth, Gaussian smearing, x-dependent efficiency and fakes."""

from __future__ import annotations

import numpy as np
import pytest

from lhcchain.unfold.data import Events, UnfoldingInput

from ..conftest import torch_threads

SIGMA = 0.5  # detector smearing of the toys


def toy_events(name: str, n: int, mu: float, seed: int, dims: int = 1, fake_rate: float = 0.05, efficiency: bool = True,
               tau: float = 1.0) -> Events:
    """``n`` events with particle level x ~ N(mu, tau^2) per dimension, reco x + N(0, SIGMA^2); reco is lost with
    probability rising with x (efficiency 0.95 -> 0.75), and ``fake_rate`` of the reco events are fakes ~ N(0, 1.5^2)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(mu, tau, (n, dims))
    y = x + rng.normal(0.0, SIGMA, (n, dims))
    eff = 0.95 - 0.2 / (1 + np.exp(-2 * x[:, 0])) if efficiency else np.ones(n)
    pr = rng.random(n) < eff
    n_fake = int(fake_rate * pr.sum())
    fake = rng.normal(0.0, 1.5, (n_fake, dims))
    particle = np.concatenate([x, np.full((n_fake, dims), np.nan)])
    reco = np.concatenate([np.where(pr[:, None], y, np.nan), fake])
    pp = np.r_[np.ones(n, bool), np.zeros(n_fake, bool)]
    pr = np.r_[pr, np.ones(n_fake, bool)]
    return Events(name, [f"x{d}" for d in range(dims)], particle, reco, pp, pr, np.ones(n + n_fake), np.full(n + n_fake, "train"))


def toy_input(n_sim: int = 20000, n_data: int = 10000, shift: float = 0.5, dims: int = 1, seed: int = 1) -> UnfoldingInput:
    """Simulation at mean 0, pseudo-data at mean ``shift``."""
    return UnfoldingInput(toy_events("sim", n_sim, 0.0, seed, dims), toy_events("data", n_data, shift, seed + 1, dims))


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    with torch_threads(1):
        yield
