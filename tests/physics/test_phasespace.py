"""Tests for lhcchain.physics.phasespace: kinematics, Jacobians and phase-space volumes (PDG measure)."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from scipy.integrate import quad

from lhcchain.errors import InputError
from lhcchain.physics.phasespace import (
    BreitWigner,
    Channel,
    FlatInvariant,
    HadronicMapping,
    LuminosityMapping,
    PartonicMapping,
    PowerLaw,
    Rambo,
    TChannel2to2,
    TChannel2to3,
    ThreeBody,
    TPropagator,
    TwoBody,
    channel_weights,
    massless_phase_space_volume,
    shared_n_random,
    two_body_decay,
)

from .conftest import msq

F64 = torch.float64
SQRT_S = 1000.0
MW, MH = 80.4, 125.0


def uniform(n: int, dim: int, seed: int, dtype: torch.dtype = F64) -> torch.Tensor:
    return torch.rand(n, dim, generator=torch.Generator().manual_seed(seed), dtype=F64).to(dtype)


def estimate(values: torch.Tensor) -> tuple[float, float]:
    """Monte Carlo mean and its standard error."""
    return values.mean().item(), values.std().item() / math.sqrt(values.numel())


def assert_pull(values: torch.Tensor, exact: float, n_sigma: float = 5.0) -> None:
    """|estimate - exact| < n_sigma standard errors (plus round-off, for weights that are exactly flat)."""
    mean, err = estimate(values)
    message = f"estimate {mean} +- {err}, exact {exact}"
    assert abs(mean - exact) < n_sigma * err + 1e-12 * abs(exact), message


def phi3_one_massive(s: float, m: float) -> float:
    """Phi_3(s; 0, 0, m) in closed form."""
    m2 = m * m
    return ((s * s - m2 * m2) / 2 - s * m2 * math.log(s / m2)) / (128 * math.pi**3 * s)


# ------------------------------------------------------------------ momentum conservation, on-shell

PARTONIC: dict[str, tuple[Callable[[], PartonicMapping], tuple[float, ...]]] = {
    "rambo2": (lambda: Rambo(2), (0.0, 0.0)),
    "rambo3": (lambda: Rambo(3), (0.0,) * 3),
    "rambo5": (lambda: Rambo(5), (0.0,) * 5),
    "twobody": (lambda: TwoBody((MW, 91.19)), (MW, 91.19)),
    "threebody_bw": (lambda: ThreeBody((0.0, 4.7, 173.0), (0, 2), BreitWigner(173.0, 1.4)), (0.0, 4.7, 173.0)),
    "threebody_pow": (lambda: ThreeBody((0.0, 0.0, 0.0), (1, 2), PowerLaw(1.0, 10.0)), (0.0, 0.0, 0.0)),
    "t2to2": (lambda: TChannel2to2((0.0, 0.0), TPropagator(MW)), (0.0, 0.0)),
    "t2to2_massive_u": (lambda: TChannel2to2((173.0, 10.0), TPropagator(MW, 1.3), leg=1), (173.0, 10.0)),
    "t2to3": (
        lambda: TChannel2to3((0.0, 0.0, MH), TPropagator(MW), TPropagator(91.19), PowerLaw(0.5), legs=(1, 0, 2)),
        (0.0, 0.0, MH),
    ),
}


@pytest.mark.parametrize("name", list(PARTONIC))
def test_partonic_conservation_and_on_shell(name: str) -> None:
    factory, masses = PARTONIC[name]
    mapping = factory()
    r = uniform(2000, mapping.n_random, seed=1)
    sqrt_s = SQRT_S * (0.5 + uniform(2000, 1, seed=2)[:, 0])  # per-event energies
    momenta, weight = mapping.map(r, sqrt_s)
    assert momenta.shape == (2000, 2 + mapping.n_out, 4) and weight.shape == (2000,)
    assert momenta.dtype == F64 and torch.isfinite(momenta).all() and torch.isfinite(weight).all()
    assert (weight > 0).all()
    scale = sqrt_s.unsqueeze(-1)
    torch.testing.assert_close(momenta[:, 0] + momenta[:, 1], momenta[:, 2:].sum(1), rtol=0, atol=1e-10 * SQRT_S)
    torch.testing.assert_close(momenta[:, 0, 0], sqrt_s / 2, rtol=1e-15, atol=0)
    torch.testing.assert_close(momenta[:, 0, 3], sqrt_s / 2, rtol=1e-15, atol=0)
    expected = torch.tensor([0.0, 0.0, *(m * m for m in masses)], dtype=F64).expand(2000, -1)
    torch.testing.assert_close(msq(momenta) / scale**2, expected / scale**2, rtol=0, atol=1e-12)
    assert (momenta[:, 2:, 0] >= torch.tensor(masses, dtype=F64) - 1e-9).all()


@pytest.mark.parametrize("beams", [(6500.0, 6500.0), (7000.0, 4000.0)])
def test_hadronic_conservation_and_lab_frame(beams: tuple[float, float]) -> None:
    e1, e2 = beams
    lum = LuminosityMapping(e1, e2, s_hat_min=300.0**2)
    partonic = TChannel2to3((0.0, 0.0, MH), TPropagator(MW), TPropagator(MW))
    mapping = HadronicMapping(partonic, lum)
    assert mapping.n_random == 7 and mapping.n_out == 3
    momenta, weight, x1, x2, _ = mapping.map(uniform(2000, 7, seed=3))
    assert torch.isfinite(momenta).all() and torch.isfinite(weight).all() and (weight >= 0).all()
    assert ((x1 > 0) & (x1 <= 1) & (x2 > 0) & (x2 <= 1)).all()
    assert (x1 * x2 * lum.s >= 300.0**2 * (1 - 1e-12)).all()
    zero = torch.zeros_like(x1)
    torch.testing.assert_close(momenta[:, 0], torch.stack([x1 * e1, zero, zero, x1 * e1], -1), rtol=1e-12, atol=1e-9)
    torch.testing.assert_close(momenta[:, 1], torch.stack([x2 * e2, zero, zero, -x2 * e2], -1), rtol=1e-12, atol=1e-9)
    torch.testing.assert_close(momenta[:, 0] + momenta[:, 1], momenta[:, 2:].sum(1), rtol=0, atol=1e-9 * e1)
    torch.testing.assert_close(msq(momenta[:, 4]), torch.full_like(x1, MH**2), rtol=1e-10, atol=0)
    torch.testing.assert_close(msq(momenta[:, 2]) / momenta[:, 2, 0] ** 2, zero, rtol=0, atol=1e-10)


# ------------------------------------------------------------------ RAMBO and the analytic volume


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_massless_volume_formula(n: int) -> None:
    """The closed form obeys Phi_n(s) = int ds'/(2 pi) Phi_2(s; 0, s') Phi_(n-1)(s'), Phi_2 = 1/(8 pi)."""
    s = 3.0e5
    assert massless_phase_space_volume(2, s) == pytest.approx(1 / (8 * math.pi), rel=1e-14)
    assert massless_phase_space_volume(3, s) == pytest.approx(s / (256 * math.pi**3), rel=1e-14)
    if n > 2:
        value, _ = quad(
            lambda x: (s - x) / (8 * math.pi * s) * massless_phase_space_volume(n - 1, x) / (2 * math.pi), 0, s
        )
        assert massless_phase_space_volume(n, s) == pytest.approx(value, rel=1e-10)


def flat_chain(n: int, sqrt_s: float, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Independent n-body massless generator: nested two-body decays with flat masses; outgoing momenta, weight."""
    q = torch.zeros(r.shape[0], 4, dtype=r.dtype)
    q[:, 0] = sqrt_s
    q_sq = torch.full((r.shape[0],), sqrt_s**2, dtype=r.dtype)
    weight = torch.ones_like(q_sq)
    out = []
    for i in range(n - 2):
        m_sq = r[:, 3 * i] * q_sq
        p, q, w = two_body_decay(q, 0.0, m_sq, r[:, 3 * i + 1], r[:, 3 * i + 2], q_sq=q_sq)
        weight = weight * w * q_sq / (2 * math.pi)
        out.append(p)
        q_sq = m_sq
    p1, p2, w = two_body_decay(q, 0.0, 0.0, r[:, -2], r[:, -1], q_sq=q_sq)
    return torch.stack([*out, p1, p2], 1), weight * w


def observable(p: torch.Tensor, s: float) -> torch.Tensor:
    """A non-trivial, permutation-symmetric test function of the outgoing momenta (batch, n, 4)."""
    e = p[..., 0]
    pt2 = p[..., 1] ** 2 + p[..., 2] ** 2
    return (e**2 * pt2).sum(-1) / s**2 + (p[..., 3].clamp(min=0) * e).sum(-1) / s


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_rambo_volume_and_uniformity(n: int) -> None:
    s = SQRT_S**2
    exact = massless_phase_space_volume(n, s)
    rambo = Rambo(n, SQRT_S)
    assert rambo.n_random == 3 * n - 4
    momenta, weight = rambo.map(uniform(50_000, rambo.n_random, seed=10 + n))
    torch.testing.assert_close(weight, torch.full_like(weight, exact), rtol=1e-14, atol=0)
    # an independent generator estimates the same volume and the same integral of a test function
    p_chain, w_chain = flat_chain(n, SQRT_S, uniform(50_000, 3 * n - 4, seed=20 + n))
    assert_pull(w_chain, exact)
    mean_r, err_r = estimate(weight * observable(momenta[:, 2:], s))
    mean_c, err_c = estimate(w_chain * observable(p_chain, s))
    assert abs(mean_r - mean_c) < 5 * math.hypot(err_r, err_c)
    # each particle's x = 2E/sqrt(s) follows Beta(2, n-2); directions are isotropic
    x = 2 * momenta[:, 2:, 0] / SQRT_S
    cos = momenta[:, 2:, 3] / momenta[:, 2:, 0]
    for i in range(n):
        if n > 2:
            assert_pull(x[:, i], 2 / n)
            assert_pull(x[:, i] ** 2, 6 / (n * (n + 1)))
        assert_pull(cos[:, i], 0.0)
        assert_pull(cos[:, i] ** 2, 1 / 3)


# ------------------------------------------------------------------ one-dimensional mappings


LO, HI = 50.0**2, 900.0**2


@pytest.mark.parametrize(
    "mapping, density",
    [
        (FlatInvariant(), lambda s: torch.ones_like(s)),
        (BreitWigner(300.0, 5.0), lambda s: 1 / ((s - 300.0**2) ** 2 + (300.0 * 5.0) ** 2)),
        (PowerLaw(0.0), lambda s: torch.ones_like(s)),
        (PowerLaw(0.8), lambda s: s**-0.8),
        (PowerLaw(1.0, 1.0), lambda s: 1 / s),
        (PowerLaw(1.0 + 1e-9, 1.0), lambda s: s ** -(1.0 + 1e-9)),
        (PowerLaw(1.5, 1.0), lambda s: s**-1.5),
    ],
)
def test_invariant_jacobians_are_exact(mapping, density) -> None:
    """ds/dr equals 1/(normalised density): jac * density is the same constant for every point."""
    r = uniform(5000, 1, seed=4)[:, 0]
    lo, hi = torch.full_like(r, LO), torch.full_like(r, HI)
    s, jac = mapping.sample(r, lo, hi)
    assert ((s >= LO) & (s <= HI)).all()
    norm, _ = quad(lambda x: density(torch.tensor(x, dtype=F64)).item(), LO, HI, points=[300.0**2], limit=200)
    torch.testing.assert_close(jac * density(s), torch.full_like(s, norm), rtol=1e-9, atol=0)
    assert (torch.diff(s[torch.argsort(r)]) >= 0).all()


def test_breit_wigner_inverse_undoes_sample() -> None:
    """inverse(sample(r)) = r, and inverse is the truncated cumulative distribution: 0 and 1 at the
    edges, 1/2 at the pole of a range symmetric in s around it; an infinite upper edge is allowed."""
    bw = BreitWigner(300.0, 5.0)
    r = uniform(5000, 1, seed=6)[:, 0]
    lo, hi = torch.full_like(r, LO), torch.full_like(r, HI)
    s, _ = bw.sample(r, lo, hi)
    torch.testing.assert_close(bw.inverse(s, lo, hi), r, rtol=0, atol=1e-12)
    edges = torch.tensor([LO, HI], dtype=F64)
    torch.testing.assert_close(bw.inverse(edges, edges[:1], edges[1:]), torch.tensor([0.0, 1.0], dtype=F64))
    half = torch.tensor(300.0**2 - 1e4, dtype=F64), torch.tensor(300.0**2 + 1e4, dtype=F64)
    assert bw.inverse(torch.tensor(300.0**2, dtype=F64), *half).item() == pytest.approx(0.5, abs=1e-14)
    up = bw.inverse(torch.tensor([1e5, 1e7], dtype=F64), torch.tensor(LO, dtype=F64), torch.tensor(math.inf, dtype=F64))
    assert ((up > 0) & (up < 1)).all() and up[0] < up[1]


def test_power_law_lower_bound_and_nu_near_one() -> None:
    r = uniform(1000, 1, seed=5)[:, 0]
    zero, hi = torch.zeros_like(r), torch.full_like(r, HI)
    s, jac = PowerLaw(0.6).sample(r, zero, hi)  # integrable at s = 0
    torch.testing.assert_close(jac * s**-0.6, torch.full_like(s, HI**0.4 / 0.4), rtol=1e-9, atol=0)
    s_cut, _ = PowerLaw(1.0, LO).sample(r, zero, hi)  # generation cut
    assert (s_cut >= LO * (1 - 1e-12)).all()
    base = PowerLaw(1.0, LO).sample(r, zero, hi)
    for nu in (1.0 - 1e-7, 1.0 + 1e-7):
        near = PowerLaw(nu, LO).sample(r, zero, hi)
        torch.testing.assert_close(near[0], base[0], rtol=1e-5, atol=0)
        torch.testing.assert_close(near[1], base[1], rtol=1e-5, atol=0)


@pytest.mark.parametrize(
    "prop", [TPropagator(MW), TPropagator(MW, 1.4), TPropagator(0.0, 1.0, cut=25.0), TPropagator(0.0, 0.5)]
)
def test_t_propagator_jacobian_is_exact(prop: TPropagator) -> None:
    r = uniform(5000, 1, seed=6)[:, 0]
    t_lo, t_hi = torch.full_like(r, -HI), torch.zeros_like(r)
    t, jac = prop.sample(r, t_lo, t_hi)
    assert ((t >= -HI) & (t <= -prop.cut)).all()
    x_lo, x_hi = prop.mass**2 + prop.cut, prop.mass**2 + HI
    norm = math.log(x_hi / x_lo) if prop.nu == 1 else (x_hi ** (1 - prop.nu) - x_lo ** (1 - prop.nu)) / (1 - prop.nu)
    torch.testing.assert_close(jac * (prop.mass**2 - t) ** -prop.nu, torch.full_like(t, norm), rtol=1e-9, atol=0)


# ------------------------------------------------------------------ volumes with non-uniform mappings

N = 100_000


@pytest.mark.parametrize(
    "s_mapping, s_min, pair",
    [
        (FlatInvariant(), 0.0, (1, 2)),
        (BreitWigner(400.0, 20.0), 0.0, (0, 1)),
        (PowerLaw(0.7), 0.0, (0, 2)),
        (PowerLaw(1.0, 100.0**2), 100.0**2, (1, 2)),
        (PowerLaw(1.3, 200.0**2), 200.0**2, (2, 0)),
    ],
)
def test_three_body_volume_massless(s_mapping, s_min: float, pair: tuple[int, int]) -> None:
    """int dPhi_3 over s_X >= s_min = (s - s_min)^2 / (256 pi^3 s) for massless particles."""
    s = SQRT_S**2
    mapping = ThreeBody((0.0, 0.0, 0.0), pair, s_mapping, SQRT_S)
    _, weight = mapping.map(uniform(N, 5, seed=7))
    assert_pull(weight, (s - s_min) ** 2 / (256 * math.pi**3 * s))


@pytest.mark.parametrize("pair", [(1, 2), (0, 2), (0, 1)])
def test_three_body_volume_massive(pair: tuple[int, int]) -> None:
    mapping = ThreeBody((0.0, 0.0, MH), pair, sqrt_s=SQRT_S)
    _, weight = mapping.map(uniform(N, 5, seed=8))
    assert_pull(weight, phi3_one_massive(SQRT_S**2, MH))


def test_t_channel_2to2_volumes_and_propagator_integral() -> None:
    s = SQRT_S**2
    r = uniform(N, 2, seed=9)
    # full volume through a massive-exchange mapping; and int dPhi_2 1/(t - m^2)^2
    momenta, weight = TChannel2to2((0.0, 0.0), TPropagator(MW), sqrt_s=SQRT_S).map(r)
    assert_pull(weight, 1 / (8 * math.pi))
    t = msq(momenta[:, 0] - momenta[:, 2])
    assert_pull(weight / (t - MW**2) ** 2, (1 / MW**2 - 1 / (s + MW**2)) / (8 * math.pi * s))
    # point by point: dPhi_2 = dt dphi / (16 pi^2 s) and t ~ 1/(m^2 - t), so weight / (m^2 - t) is constant
    norm = math.log((MW**2 + s) / MW**2) / (8 * math.pi * s)
    torch.testing.assert_close(weight / (MW**2 - t), torch.full_like(t, norm), rtol=1e-9, atol=0)
    # leg=1 maps u = (p_a - p_2)^2; a massless exchange with the cut -u >= c covers (s - c)/(8 pi s)
    cut = 50.0**2
    momenta, weight = TChannel2to2((0.0, 0.0), TPropagator(0.0, 1.0, cut), leg=1, sqrt_s=SQRT_S).map(r)
    u = msq(momenta[:, 0] - momenta[:, 3])
    assert (u <= -cut * (1 - 1e-9)).all()
    assert_pull(weight, (s - cut) / (8 * math.pi * s))
    # massive final state: lambda^(1/2)/(8 pi s)
    m1, m2 = 173.0, 300.0
    _, weight = TChannel2to2((m1, m2), TPropagator(MW, 0.8), sqrt_s=SQRT_S).map(r)
    lam = (s - m1**2 - m2**2) ** 2 - 4 * m1**2 * m2**2
    assert_pull(weight, math.sqrt(lam) / (8 * math.pi * s))


def test_t_channel_2to3_volume_and_matches_three_body() -> None:
    s = SQRT_S**2
    mapping = TChannel2to3((0.0, 0.0, MH), TPropagator(MW), TPropagator(MW), sqrt_s=SQRT_S)
    momenta, weight = mapping.map(uniform(N, 5, seed=11))
    assert_pull(weight, phi3_one_massive(s, MH))

    def vbf_like(p: torch.Tensor) -> torch.Tensor:
        t1 = msq(p[:, 0] - p[:, 2])
        t2 = msq(p[:, 1] - p[:, 3])
        return MW**4 / ((t1 - MW**2) * (t2 - MW**2))

    est_t, err_t = estimate(weight * vbf_like(momenta))
    p3, w3 = ThreeBody((0.0, 0.0, MH), (1, 2), sqrt_s=SQRT_S).map(uniform(N, 5, seed=12))
    est_3, err_3 = estimate(w3 * vbf_like(p3))
    assert abs(est_t - est_3) < 5 * math.hypot(err_t, err_3)
    assert err_t < err_3 / 3  # the t-channel mapping follows this integrand


def bw_density(x: float, mass: float, width: float) -> float:
    return mass * width / ((x - mass**2) ** 2 + (mass * width) ** 2)


def test_breit_wigner_reduces_variance() -> None:
    s, mass, width = SQRT_S**2, 300.0, 3.0

    def bw(p: torch.Tensor) -> torch.Tensor:
        s12 = msq(p[:, 3] + p[:, 4])
        return mass * width / ((s12 - mass**2) ** 2 + (mass * width) ** 2)

    exact, _ = quad(
        lambda x: (s - x) / (8 * math.pi * s) / (8 * math.pi) / (2 * math.pi) * bw_density(x, mass, width),
        0,
        s,
        points=[mass**2],
        limit=200,
    )
    r = uniform(50_000, 5, seed=13)
    p_bw, w_bw = ThreeBody((0.0, 0.0, 0.0), (1, 2), BreitWigner(mass, width), SQRT_S).map(r)
    p_fl, w_fl = ThreeBody((0.0, 0.0, 0.0), (1, 2), FlatInvariant(), SQRT_S).map(r)
    assert_pull(w_bw * bw(p_bw), exact)
    var_bw, var_fl = (w_bw * bw(p_bw)).var().item(), (w_fl * bw(p_fl)).var().item()
    assert var_fl / var_bw > 1000


# ------------------------------------------------------------------ luminosity and hadronic composition

E_BEAM = 500.0
S_HAD = 4 * E_BEAM**2
TAU0, TAU1 = 0.01, 0.8


def lum_exact(g: str, t0: float, t1: float) -> float:
    """int_{t0 <= x1 x2 <= t1} dx1 dx2 g with dx1 dx2 = dtau dy."""
    if g == "one":
        f = lambda t: t - t * math.log(t)  # noqa: E731
    elif g == "inv_tau":
        f = lambda t: -math.log(t) ** 2 / 2  # noqa: E731
    else:  # "x1": int dtau (1 - tau)
        f = lambda t: t - t * t / 2  # noqa: E731
    return f(t1) - f(t0)


@pytest.mark.parametrize(
    "mapping", [None, FlatInvariant(), BreitWigner(300.0, 30.0), PowerLaw(0.5)], ids=["default", "flat", "bw", "pow"]
)
@pytest.mark.parametrize("g", ["one", "inv_tau", "x1"])
def test_luminosity_integrals(mapping, g: str) -> None:
    lum = LuminosityMapping(E_BEAM, E_BEAM, TAU0 * S_HAD, TAU1 * S_HAD, mapping)
    x1, x2, weight = lum.map(uniform(N, 2, seed=14))
    values = {"one": torch.ones_like(x1), "inv_tau": 1 / (x1 * x2), "x1": x1}[g]
    assert_pull(weight * values, lum_exact(g, TAU0, TAU1))


def test_hadronic_volume() -> None:
    """int dx1 dx2 Phi_n(x1 x2 s) = int dtau (-ln tau) Phi_n(tau s), for n = 2 and n = 3 (massless)."""
    lum = LuminosityMapping(E_BEAM, E_BEAM, TAU0 * S_HAD)
    _, weight, _, _, _ = HadronicMapping(Rambo(2), lum).map(uniform(N, 4, seed=15))
    assert_pull(weight, lum_exact("one", TAU0, 1.0) / (8 * math.pi))
    mapping = HadronicMapping(ThreeBody((0.0, 0.0, 0.0), (1, 2), PowerLaw(0.5)), lum)
    _, weight, _, _, _ = mapping.map(uniform(N, 7, seed=16))
    tau_integral = 0.25 - (TAU0**2 / 4 - TAU0**2 * math.log(TAU0) / 2)
    assert_pull(weight, tau_integral * S_HAD / (256 * math.pi**3))


# ------------------------------------------------------------------ precision, forbidden points, channels


def assert_close_per_event(p32: torch.Tensor, p64: torch.Tensor) -> None:
    """Every component within 1e-4 of its event's largest energy (float32 round-off through the boosts)."""
    scale = p64[..., 0].amax(-1)[:, None, None]
    assert ((p32.double() - p64).abs() / scale).max() < 1e-4


@pytest.mark.parametrize("name", ["rambo5", "threebody_bw", "t2to2_massive_u", "t2to3"])
def test_float32_matches_float64(name: str) -> None:
    mapping = PARTONIC[name][0]()
    r = 1e-3 + (1 - 2e-3) * uniform(2000, mapping.n_random, seed=17)
    p64, w64 = mapping.map(r, SQRT_S)
    p32, w32 = mapping.map(r.float(), SQRT_S)
    assert p32.dtype == torch.float32 and w32.dtype == torch.float32
    assert_close_per_event(p32, p64)
    torch.testing.assert_close(w32.double(), w64, rtol=1e-3, atol=0)


def test_float32_hadronic_matches_float64() -> None:
    partonic = TChannel2to3((0.0, 0.0, MH), TPropagator(MW), TPropagator(MW))
    mapping = HadronicMapping(partonic, LuminosityMapping(6500, 6500, 300.0**2))
    r = 1e-3 + (1 - 2e-3) * uniform(2000, 7, seed=18)
    p64, w64, x1_64, _, _ = mapping.map(r)
    p32, w32, x1_32, _, _ = mapping.map(r.float())
    torch.testing.assert_close(x1_32.double(), x1_64, rtol=1e-5, atol=0)
    assert_close_per_event(p32, p64)
    torch.testing.assert_close(w32.double(), w64, rtol=1e-3, atol=0)


def test_forbidden_points_get_zero_weight() -> None:
    r = uniform(500, 5, seed=19)
    for mapping in (
        ThreeBody((400.0, 400.0, 300.0), sqrt_s=SQRT_S),
        TChannel2to3((0.0, 600.0, 500.0), TPropagator(MW), TPropagator(MW), sqrt_s=SQRT_S),
    ):
        momenta, weight = mapping.map(r)
        assert torch.isfinite(momenta).all() and (weight == 0).all()
    momenta, weight = TwoBody((600.0, 600.0), SQRT_S).map(r[:, :2])
    assert torch.isfinite(momenta).all() and (weight == 0).all()
    _, weight = TChannel2to2((0.0, 0.0), TPropagator(0.0, 1.0, cut=2 * SQRT_S**2), sqrt_s=SQRT_S).map(r[:, :2])
    assert (weight == 0).all()
    # hadronic: events below the partonic threshold get weight 0, the others not
    lum = LuminosityMapping(E_BEAM, E_BEAM, 100.0**2, mapping=FlatInvariant())
    hadronic = HadronicMapping(TwoBody((300.0, 300.0)), lum)
    _, weight, x1, x2, _ = hadronic.map(uniform(2000, 4, seed=20))
    above = x1 * x2 * S_HAD > 600.0**2
    assert torch.isfinite(weight).all() and (weight[~above] == 0).all() and (weight[above] > 0).all()


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_hypercube_corners_are_finite(dtype: torch.dtype) -> None:
    lum = LuminosityMapping(6500, 6500, 100.0**2)
    mappings = [
        HadronicMapping(Rambo(4), lum),
        HadronicMapping(ThreeBody((0.0, 0.0, 0.0), (1, 2), PowerLaw(0.7)), lum),
        HadronicMapping(ThreeBody((0.0, 0.0, MH), (0, 1), BreitWigner(91.19, 2.5)), lum),
        HadronicMapping(TChannel2to3((0.0, 0.0, MH), TPropagator(MW), TPropagator(0.0, 0.5)), lum),
        HadronicMapping(
            TChannel2to2((0.0, 0.0), TPropagator(0.0, 1.0, 10.0)),
            LuminosityMapping(6500, 6500, 100.0**2, mapping=PowerLaw(0.0)),
        ),
    ]
    for mapping in mappings:
        dim = mapping.n_random
        corners = ((torch.arange(2**dim).unsqueeze(-1) >> torch.arange(dim)) & 1).to(dtype)
        momenta, weight, _, _, _ = mapping.map(corners)
        assert torch.isfinite(momenta).all() and torch.isfinite(weight).all() and (weight >= 0).all()


DEVICES = ["meta"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_outputs_follow_the_input_device(device: str) -> None:
    """Nothing is created on the CPU behind the caller's back (the meta device fails on any mix)."""
    lum = LuminosityMapping(6500, 6500, 100.0**2, mapping=BreitWigner(91.19, 2.5))
    partonic = [
        Rambo(4),
        ThreeBody((0.0, 0.0, MH), (0, 1), PowerLaw(1.0, 10.0)),
        TChannel2to3((0.0, 0.0, MH), TPropagator(MW), TPropagator(MW)),
    ]
    for mapping in (HadronicMapping(p, lum) for p in partonic):
        point = mapping.map(torch.rand(64, mapping.n_random, device=device))
        assert all(t.device.type == device and t.dtype == torch.float32 for t in point)
        alpha = channel_weights([Channel("a", mapping), Channel("b", mapping, lambda p: p[:, 2, 0])], point.momenta)
        assert alpha.device.type == device and alpha.shape == (64, 2)


def test_channels_and_prior_weights() -> None:
    rambo = Channel("flat", Rambo(3, SQRT_S))
    bw_mapping = ThreeBody((0.0, 0.0, 0.0), (1, 2), BreitWigner(300.0, 3.0), SQRT_S)
    resonant = Channel("bw", bw_mapping, lambda p: msq(p[:, 3] + p[:, 4]))
    dead = Channel("zero", TChannel2to3((0.0, 0.0, 0.0), TPropagator(MW), TPropagator(MW), sqrt_s=SQRT_S), 0.0)
    channels = [rambo, resonant, dead]
    assert shared_n_random(channels) == 5
    momenta, _ = rambo.mapping.map(uniform(100, 5, seed=21))
    alpha = channel_weights(channels, momenta)
    assert alpha.shape == (100, 3) and alpha.dtype == F64
    torch.testing.assert_close(alpha.sum(-1), torch.ones(100, dtype=F64))
    assert (alpha[:, 2] == 0).all()
    torch.testing.assert_close(alpha[:, 0] / alpha[:, 1], 1 / msq(momenta[:, 3] + momenta[:, 4]))
    torch.testing.assert_close(channel_weights([dead, dead], momenta), torch.full((100, 2), 0.5, dtype=F64))
    with pytest.raises(InputError):
        shared_n_random([rambo, Channel("2body", TwoBody(sqrt_s=SQRT_S))])


def test_input_errors() -> None:
    with pytest.raises(InputError):
        PowerLaw(1.0)
    with pytest.raises(InputError):
        TPropagator(0.0, 1.0)
    with pytest.raises(InputError):
        BreitWigner(91.19, 0.0)
    with pytest.raises(InputError):
        LuminosityMapping(6500, 6500, 0.0)
    with pytest.raises(InputError):
        Rambo(3, SQRT_S).map(torch.rand(10, 4, dtype=F64))
    with pytest.raises(InputError):
        Rambo(3).map(torch.rand(10, 5, dtype=F64))
    with pytest.raises(InputError):
        ThreeBody(pair=(1, 1))
