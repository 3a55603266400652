"""The generative networks on toy densities: learning, normalised likelihoods, masking, causality, Bayesian weights."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lhcchain.errors import InputError
from lhcchain.generate.models import CFM, AutoregressiveTransformer, EventModel, SplineFlow
from lhcchain.generate.train import resolve_settings

TINY = {"hidden": 32, "layers": 2, "heads": 2, "transforms": 2, "bins": 6, "components": 4}


def mixture(n: int, seed: int) -> torch.Tensor:
    """2D mixture of two narrow Gaussians at (+-2, 0), sigma 0.3."""
    g = torch.Generator().manual_seed(seed)
    centre = torch.where(torch.rand(n, generator=g) < 0.5, -2.0, 2.0)
    return torch.stack([centre, torch.zeros(n)], 1) + 0.3 * torch.randn(n, 2, generator=g)


def fit(net, x: torch.Tensor, steps: int, lr: float = 3e-3) -> None:
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    mask, cond = torch.ones_like(x), x.new_zeros(len(x), 0)
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        idx = torch.randint(len(x), (256,), generator=g)
        loss = net.loss(x[idx], mask[idx], cond[idx]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


def grid_integral(net, half: float = 5.0, n: int = 40) -> float:
    """Integral of exp(log_prob) over [-half, half]^2 on an n x n grid (midpoint rule)."""
    h = 2 * half / n
    c = torch.linspace(-half + h / 2, half - h / 2, n)
    pts = torch.cartesian_prod(c, c)
    with torch.no_grad():
        lp = net.log_prob(pts, torch.ones_like(pts), pts.new_zeros(len(pts), 0))
    return float(lp.exp().sum() * h * h)


def test_cfm_learns_a_gaussian_mixture_and_its_likelihood_is_normalised():
    torch.manual_seed(1)
    train, test = mixture(4000, 1), mixture(1000, 2)
    trained, untrained = CFM(2, 0, hidden=64, layers=3), CFM(2, 0, hidden=64, layers=3)
    for net in (trained, untrained):
        net.steps = 12
    fit(trained, train, 400)
    ones, none = torch.ones_like(test), test.new_zeros(len(test), 0)
    with torch.no_grad():
        ll_trained = float(trained.log_prob(test, ones, none).mean())
        ll_untrained = float(untrained.log_prob(test, ones, none).mean())
        samples = trained.sample(torch.ones(2000, 2), torch.zeros(2000, 0))
    exact = float(torch.logsumexp(torch.stack([-(((test - torch.tensor([s, 0.0])) / 0.3) ** 2).sum(1) / 2 for s in (-2, 2)]), 0).mean()
                  - math.log(2 * 2 * math.pi * 0.09))
    assert ll_trained > ll_untrained + 1.0, (ll_trained, ll_untrained)
    assert ll_trained > exact - 0.5, (ll_trained, exact)
    near = ((samples[:, 0].abs() - 2).abs() < 0.9) & (samples[:, 1].abs() < 0.9)
    assert float(near.float().mean()) > 0.85
    assert abs(float((samples[:, 0] > 0).float().mean()) - 0.5) < 0.06
    # the divergence integral gives a normalised density, trained or not
    assert grid_integral(trained) == pytest.approx(1.0, abs=0.05)
    assert grid_integral(untrained) == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("solver", ["euler", "midpoint", "rk4"])
def test_cfm_solvers_integrate_a_known_velocity(solver):
    """With zero weights in the last layer the velocity is constant in x: samples are noise + b, exactly."""
    net = CFM(3, 0, hidden=8, layers=1)
    last = net.net[-1]
    torch.nn.init.zeros_(last.weight)
    with torch.no_grad():
        last.bias.copy_(torch.tensor([1.0, -2.0, 0.5]))
    net.solver, net.steps = solver, 3
    torch.manual_seed(0)
    out = net.sample(torch.ones(5, 3), torch.zeros(5, 0))
    torch.manual_seed(0)
    noise = torch.randn(5, 3)
    torch.testing.assert_close(out, noise + torch.tensor([1.0, -2.0, 0.5]))


def test_autoregressive_transformer_is_causal_and_normalised():
    torch.manual_seed(2)
    net = AutoregressiveTransformer(4, 0, hidden=16, layers=2, heads=2, components=3)
    x = torch.randn(8, 4)
    none = x.new_zeros(8, 0)
    base = net._mixture(x, none, 4)
    y = x.clone()
    y[:, 2] += 5.0
    changed = net._mixture(y, none, 4)
    for a, b in zip(base, changed):
        torch.testing.assert_close(a[:, :3], b[:, :3])  # parameters of features 0..2 do not see feature 2
        assert not torch.allclose(a[:, 3], b[:, 3])
    net2 = AutoregressiveTransformer(2, 0, hidden=16, layers=1, heads=2, components=3)
    fit(net2, mixture(2000, 3), 150)
    assert grid_integral(net2) == pytest.approx(1.0, abs=0.02)


def test_spline_flow_learns():
    torch.manual_seed(3)
    data = mixture(3000, 4)
    flow = SplineFlow(2, 0, transforms=3, bins=8, hidden=32, layers=2)
    ones, none = torch.ones(500, 2), torch.zeros(500, 0)
    test = mixture(500, 5)
    with torch.no_grad():
        before = float(flow.log_prob(test, ones, none).mean())
    fit(flow, data, 150)
    with torch.no_grad():
        after = float(flow.log_prob(test, ones, none).mean())
    assert after > before + 1.0, (before, after)


@pytest.mark.parametrize("conditional", [True, False])
@pytest.mark.parametrize("family,extra", [("cfm", {}), ("cfm", {"network": "transformer"}), ("cfm", {"bayesian": True}),
                                          ("flow", {}), ("transformer", {})])
def test_every_family_routes_multiplicities(family, extra, conditional):
    """Loss, samples and log-likelihoods per event; nothing leaks into dimensions an event does not have."""
    torch.manual_seed(4)
    model = EventModel(resolve_settings({**TINY, "family": family, "conditional": conditional, **extra}), [1, 2, 3])
    model.set_solver("midpoint", 3)
    k = torch.tensor([0, 1, 2, 0, 2, 1])
    x = torch.randn(6, 17) * model.mask(k)
    loss = model.loss(x, k)
    assert loss.shape == (6,) and torch.isfinite(loss).all()
    loss.mean().backward()
    with torch.no_grad():
        s = model.sample(k)
        lp = model.log_prob(x, k)
    assert s.shape == (6, 17) and torch.all(s[model.mask(k) == 0] == 0) and torch.isfinite(s).all()
    assert lp.shape == (6,) and torch.isfinite(lp).all()
    # values in absent dimensions do not change an event's likelihood (flows: up to the noise fill)
    if family != "flow":
        junk = x + 7.0 * (1 - model.mask(k))
        torch.manual_seed(5)
        a = model.log_prob(x, k)
        torch.manual_seed(5)
        b = model.log_prob(junk, k)
        torch.testing.assert_close(a, b)


def test_bayesian_cfm_weight_draws():
    torch.manual_seed(6)
    model = EventModel(resolve_settings({**TINY, "family": "cfm", "bayesian": True, "prior_std": 1.0}), [1])
    assert model.bayesian and float(model.kl().detach()) > 0
    k = torch.zeros(64, dtype=torch.long)
    model.set_solver("euler", 4)
    with torch.no_grad():
        model.set_bayes_mode("fixed")
        model.resample_weights()
        torch.manual_seed(7)
        a = model.sample(k)
        torch.manual_seed(7)
        a2 = model.sample(k)
        model.resample_weights()
        torch.manual_seed(7)
        b = model.sample(k)
    torch.testing.assert_close(a, a2)  # one draw is one deterministic network
    assert not torch.allclose(a, b)  # another draw is another network
    with pytest.raises(InputError, match="bayesian"):
        EventModel(resolve_settings({**TINY, "family": "cfm", "bayesian": True, "network": "transformer"}), [1])


def test_solver_and_bayes_mode_of_one_network():
    """A bare network (the showers surrogate's, the cINN's) takes the solver and the Bayesian mode itself: one
    Euler step from t = 0 at the mean weights is x0 + v(x0, 0); a flow has no ODE but checks the solver too."""
    torch.manual_seed(8)
    net = CFM(3, 1, hidden=16, layers=2, bayesian=True)
    net.set_solver("euler", 1)
    net.set_bayes_mode("mean")
    mask, cond = torch.ones(5, 3), torch.randn(5, 1)
    with torch.no_grad():
        torch.manual_seed(9)
        s = net.sample(mask, cond)
        torch.manual_seed(9)
        x0 = torch.randn(5, 3)
        torch.manual_seed(10)  # at the mean weights the velocity draws no random numbers
        torch.testing.assert_close(s, x0 + net.velocity(x0, torch.zeros(1, 1), mask, cond))
    with pytest.raises(InputError, match="solver steps"):
        net.set_solver("rk4", 0)
    with pytest.raises(InputError, match="solver must be one of"):
        SplineFlow(3, 1, transforms=1, bins=4, hidden=8, layers=1).set_solver("dopri", 4)


def test_settings_are_checked():
    with pytest.raises(InputError, match="unknown"):
        resolve_settings({"hiden": 3})
    with pytest.raises(InputError, match="family"):
        resolve_settings({"family": "gan"})
    with pytest.raises(InputError, match="solver"):
        EventModel(resolve_settings(TINY), [1]).set_solver("dopri", 4)
    assert np.isclose(resolve_settings({})["lr"], 1e-3)
