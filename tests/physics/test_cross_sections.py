"""Cross-sections of the processes: against Pythia 8, channel by channel, by quadrature, and the CP-odd WBF terms.

Every Monte Carlo here uses fixed seeds; comparisons are pulls against the combined statistical
error (or a stated tolerance when the two sides differ by known approximations), so they can fail.
Numbers are printed (``pytest -s``) and recorded as junit properties.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lhcchain.physics.electroweak import ElectroweakParameters, ZPrimeParameters
from lhcchain.physics.process import GEV2_TO_PB
from lhcchain.physics.processes import WBFHiggs, get_process

from .conftest import boost_z

EW = ElectroweakParameters()


def pythia_sigma(lines: list[str], n_events: int, pdf_path, seed: int = 4711) -> tuple[float, float]:
    """Pythia 8's ``sigmaGen`` and ``sigmaErr`` in pb at 13 TeV, hard process only, same PDF file."""
    pythia8mc = pytest.importorskip("pythia8mc")
    py = pythia8mc.Pythia("", False)
    common = [
        "Beams:eCM = 13000",
        f"PDF:pSet = LHAGrid1:{pdf_path}",
        "PartonLevel:all = off",
        "HadronLevel:all = off",
        "ProcessLevel:resonanceDecays = off",
        "Print:quiet = on",
        "Random:setSeed = on",
        f"Random:seed = {seed}",
    ]
    for line in common + lines:
        assert py.readString(line), line
    assert py.init()
    for _ in range(n_events):
        py.next()
    info = py.infoPython()
    return info.sigmaGen() * 1e9, info.sigmaErr() * 1e9


def report(record_property, label: str, ours: tuple[float, float], ref: tuple[float, float]) -> tuple[float, float]:
    """Print and record ``ours +- err``, ``ref +- err`` and their ratio; returns (ratio, its error)."""
    ratio = ours[0] / ref[0]
    err = ratio * math.hypot(ours[1] / ours[0], ref[1] / ref[0])
    line = (
        f"{label}: ours {ours[0]:.5g} +- {ours[1]:.2g} pb, reference {ref[0]:.5g} +- {ref[1]:.2g} pb, "
        f"ratio {ratio:.4f} +- {err:.4f}"
    )
    print(line)
    record_property(label, line)
    return ratio, err


# ------------------------------------------------------------------ Pythia


def test_drell_yan_matches_pythia(record_property):
    """pp -> gamma*/Z -> mu mu, 60 < m_mumu < 120 GeV: Pythia's ffbar2gmZ with the same PDF file,
    muF^2 = s_hat and running alpha_em(s_hat) on both sides; agreement to 2% (in practice ~0.2%)."""
    dy = get_process("drell_yan", zprime=False, mll_min=60.0, mll_max=120.0)
    ours = dy.cross_section(30_000, seed=1)
    ref = pythia_sigma(
        [
            "WeakSingleBoson:ffbar2gmZ = on",
            "WeakZ0:gmZmode = 0",
            "23:onMode = off",
            "23:onIfAny = 13",
            "PhaseSpace:mHatMin = 60",
            "PhaseSpace:mHatMax = 120",
        ],
        40_000,
        dy.pdf.path,
    )
    ratio, err = report(record_property, "drell_yan vs Pythia", ours, ref)
    assert err < 0.007  # the comparison resolves well below the tolerance
    assert abs(ratio - 1) < 0.02
    assert abs(ratio - 1) < 4 * err + 0.003  # and is statistically compatible
    # the same integrand by quadrature (no Monte Carlo error on our side)
    ratio, err = report(record_property, "drell_yan quadrature vs Pythia", (drell_yan_quadrature(dy), 0.0), ref)
    assert abs(ratio - 1) < 4 * err + 0.002


@pytest.mark.parametrize("exchange, pythia_process", [("charged", "t:WW"), ("neutral", "t:ZZ")])
def test_wbf_matches_pythia(exchange, pythia_process, record_property):
    """SM W or Z fusion without cuts (Pythia applies none to these 2 -> 3 processes: pTHatMin = 0) vs
    ``HiggsSM:ff2Hff(t:WW)``/``(t:ZZ)`` with an on-shell Higgs, same PDF file and scales
    (factorScale3VV = 2, renormScale3VV = 3, running alpha_em). Pythia keeps one topology and uses
    quark-quark kinematics for antiquark lines; the exact result is ~2% lower (measured ratios 0.979
    for t:WW and 0.982 for t:ZZ, each +-~1.1% statistical). The band [0.95, 1.00] asserts that
    deficit's sign and size: a ratio above 1 or below 0.95 would mean a change beyond the known
    differences (see lhcchain.physics.wbf)."""
    wbf = get_process("wbf_higgs", exchange=exchange, jet_pt_min=None, jet_eta_max=None)
    ours = wbf.cross_section(40_000, seed=2)
    ref = pythia_sigma(
        [f"HiggsSM:ff2Hff({pythia_process}) = on", "PhaseSpace:useBreitWigners = off"], 10_000, wbf.pdf.path
    )
    ratio, err = report(record_property, f"wbf_higgs {exchange} vs Pythia {pythia_process}", ours, ref)
    assert err < 0.015
    assert 0.95 <= ratio <= 1.00


# ------------------------------------------------------------------ channels and quadrature


def test_every_drell_yan_channel_gives_the_same_cross_section(record_property):
    """With a Z' each channel alone (photon 1/tau, Z and Z' Breit-Wigners) and the prior-weighted
    multi-channel sum estimate the same cross-section. The Z' is made wide (30 GeV) and the window
    [150, 700] GeV so that every single channel has a finite, measurable variance: a 0.5 GeV Z'
    channel alone puts a fraction ~1e-3 of its points off its peak."""
    zprime = ZPrimeParameters.sm_like(scale=1.0, mass=400.0, width=30.0)
    dy = get_process("drell_yan", zprime=zprime, mll_min=150.0, mll_max=700.0)
    multi = dy.cross_section(30_000, seed=3)
    for c, name in enumerate(dy.channel_names):
        single = dy.cross_section(30_000, channel=c, seed=4 + c)
        ratio, err = report(record_property, f"drell_yan channel {name} vs multi-channel", single, multi)
        assert abs(ratio - 1) < 4.5 * err, name


def drell_yan_quadrature(dy, n_y: int = 40, n_s: int = 24) -> float:
    """sigma (pb) by Gauss-Legendre quadrature in s_hat (segments split at M^2 +- k M Gamma around the
    Z and Z' poles), the rapidity y and cos(theta) (4 nodes, exact: |M|^2 is quadratic in cos):

        sigma = int ds/s int dy 1/(2 s) 1/(16 pi) int dcos M(p),  M = sum_k L_k |M_k|^2,

    with momenta built here (partonic frame, boosted by y), independent of the phase-space mappings."""
    s_tot = dy.sqrt_s**2
    lo, hi = dy.mll_min**2, dy.mll_max**2
    edges = {lo, hi}
    poles = [(EW.mz, EW.gamma_z)] + ([(dy.zprime.mass, dy.zprime.width)] if dy.zprime is not None else [])
    for mass, width in poles:
        for k in (0.0, 1.0, 4.0, 16.0, 64.0, 256.0, 1024.0):
            for sign in (-1.0, 1.0):
                e = mass**2 + sign * k * mass * width
                if lo < e < hi:
                    edges.add(e)
    edges = sorted(edges)
    xs, ws = np.polynomial.legendre.leggauss(n_s)
    s_nodes = np.concatenate([(a + b) / 2 + (b - a) / 2 * xs for a, b in zip(edges[:-1], edges[1:])])
    s_weights = np.concatenate([(b - a) / 2 * ws for a, b in zip(edges[:-1], edges[1:])])
    xy, wy = np.polynomial.legendre.leggauss(n_y)
    xc, wc = np.polynomial.legendre.leggauss(4)
    s = torch.tensor(s_nodes)[:, None, None].expand(-1, n_y, 4)
    y_max = -0.5 * torch.log(s / s_tot)
    y = y_max * torch.tensor(xy)[None, :, None]
    cos = torch.tensor(xc)[None, None, :].expand_as(s)
    e = torch.sqrt(s) / 2
    sin = torch.sqrt(1 - cos**2)
    zero = torch.zeros_like(e)
    p = torch.stack(
        [
            torch.stack([e, zero, zero, e], -1),
            torch.stack([e, zero, zero, -e], -1),
            torch.stack([e, e * sin, zero, e * cos], -1),
            torch.stack([e, -e * sin, zero, -e * cos], -1),
        ],
        -2,
    )
    p = boost_z(p, y[..., None])
    me = dy.matrix_element(p.reshape(-1, 4, 4)).reshape(s.shape)
    integrand = me / (2 * s) / (16 * math.pi) / s_tot * GEV2_TO_PB
    total = (integrand * torch.tensor(wc)).sum(-1)  # cos
    total = (total * torch.tensor(wy) * y_max[..., 0]).sum(-1)  # y
    return float((total * torch.tensor(s_weights)).sum())


def test_multi_channel_drell_yan_matches_quadrature(record_property):
    """The default Drell-Yan (narrow 400 GeV Z', 60 < m_ll < 500 GeV): the multi-channel Monte Carlo of
    the full integrand (mappings, Jacobians, flux, pb) agrees with an independent quadrature."""
    dy = get_process("drell_yan")
    reference = drell_yan_quadrature(dy)
    assert drell_yan_quadrature(dy, n_y=24, n_s=16) == pytest.approx(reference, rel=2e-4)  # converged
    ours = dy.cross_section(30_000, seed=9)
    ratio, err = report(record_property, "drell_yan multi-channel vs quadrature", ours, (reference, 0.0))
    assert err < 0.01
    assert abs(ratio - 1) < 4 * err


# ------------------------------------------------------------------ CP-odd WBF


@pytest.fixture(scope="module")
def wbf_cut_events():
    """Weighted WBF events (SM, all exchanges) after typical WBF cuts: p_T,j > 20 GeV, |eta_j| < 5,
    m_jj > 500 GeV, |Delta y_jj| > 3; multi-channel with prior weights, ``N_PER_CHANNEL`` points per
    channel. Returns the process, the events' weights (summing to sigma, pb), momenta and channels."""
    wbf = get_process("wbf_higgs", m_jj_min=500.0, delta_y_min=3.0)
    weights, momenta, channels = [], [], []
    for c in range(wbf.n_channels):
        _, w, p = wbf.sample(N_PER_CHANNEL, channel=c, seed=20 + c)
        keep = w > 0
        w, p = w[keep] * wbf.channel_weights(p[keep])[:, c], p[keep]
        weights.append(w / N_PER_CHANNEL)
        momenta.append(p)
        channels.append(torch.full_like(w, c, dtype=torch.long))
    return wbf, torch.cat(weights), torch.cat(momenta), torch.cat(channels)


N_PER_CHANNEL = 5000


def multi_channel_estimate(terms: torch.Tensor, channels: torch.Tensor, n_channels: int) -> tuple[float, float]:
    """Sum and standard error of per-event contributions ``terms`` (already divided by
    ``N_PER_CHANNEL``); events that failed the cuts count as zeros of their channel's sample."""
    total, variance = 0.0, 0.0
    for c in range(n_channels):
        v = terms[channels == c].double() * N_PER_CHANNEL
        mean = v.sum().item() / N_PER_CHANNEL
        total += mean
        variance += ((v**2).sum().item() / N_PER_CHANNEL - mean**2) / (N_PER_CHANNEL - 1)
    return total, math.sqrt(variance)


def test_cp_odd_interference_integrates_to_zero(wbf_cut_events, record_property):
    wbf, w, p, chan = wbf_cut_events
    abc = wbf.coefficients(p)
    sigma = w.sum().item()
    terms = w * abc[:, 1] / abc[:, 0]  # per-event B contribution (w is proportional to A at f = 0)
    integral, err = multi_channel_estimate(terms, chan, wbf.n_channels)
    obs = WBFHiggs.jet_observables(p)
    asymmetry, _ = multi_channel_estimate(terms * torch.sign(obs["delta_phi"]), chan, wbf.n_channels)
    line = (
        f"WBF sigma(cuts) = {sigma:.4g} pb, int B = {integral:.3g} +- {err:.2g} pb TeV^2, "
        f"int B sign(delta_phi_jj) = {asymmetry:.3g} pb TeV^2"
    )
    print(line)
    record_property("wbf interference", line)
    assert abs(integral) < 4 * err
    # ...while B itself is large and odd in delta_phi_jj (so the test above has something to cancel)
    assert abs(asymmetry) > 20 * err
    assert asymmetry < 0  # eps_0123 = +1: B anticorrelates with sin(phi_forward - phi_backward)


def test_cp_odd_terms_flip_under_the_mirror(wbf_cut_events):
    wbf, _, p, _ = wbf_cut_events
    p = p[:200]
    mirror = p * torch.tensor([1.0, 1.0, -1.0, 1.0], dtype=p.dtype)
    torch.testing.assert_close(wbf.score(mirror), -wbf.score(p), rtol=1e-8, atol=1e-10)
    obs, obs_m = WBFHiggs.jet_observables(p), WBFHiggs.jet_observables(mirror)
    torch.testing.assert_close(obs_m["cp_odd"], -obs["cp_odd"], rtol=1e-9, atol=1e-9)


def test_score_tracks_the_signed_azimuthal_correlation(wbf_cut_events, record_property):
    """Convention: delta_phi_jj = phi(forward jet) - phi(backward jet), forward = larger rapidity.
    With eps_0123 = +1 the hadron-level score B/A is *anti*-correlated with pT1 pT2 sin(delta_phi_jj)
    (positively with pT1 pT2 sin(phi_backward - phi_forward)); weighted Pearson correlation < -0.9."""
    wbf, w, p, _ = wbf_cut_events
    score = wbf.score(p)
    x = WBFHiggs.jet_observables(p)["cp_odd"]
    weights = w / w.sum()

    def wcorr(a: torch.Tensor, b: torch.Tensor) -> float:
        ma, mb = (weights * a).sum(), (weights * b).sum()
        cov = (weights * (a - ma) * (b - mb)).sum()
        return float(cov / torch.sqrt((weights * (a - ma) ** 2).sum() * (weights * (b - mb) ** 2).sum()))

    corr = wcorr(score, x)
    line = f"corr(score, pT1 pT2 sin(phi_fwd - phi_bwd)) = {corr:.4f} over {score.numel()} weighted events"
    print(line)
    record_property("wbf score correlation", line)
    assert corr < -0.9


def test_madnis_integrates_drell_yan(record_property):
    """The MadNIS wrapper end to end: a short training and an integration of the SM Drell-Yan
    (60 < m_ll < 120 GeV, channels photon and Z with their priors) agree with the quadrature."""
    import madnis.integrator as madnis
    dy = get_process("drell_yan", zprime=False, mll_min=60.0, mll_max=120.0)
    torch.manual_seed(0)
    integrator = madnis.Integrator(dy.madnis_integrand(), batch_size=512, dtype=torch.float64)
    integrator.train(20)
    ours = integrator.integrate(20_000)
    ratio, err = report(record_property, "drell_yan MadNIS vs quadrature", ours, (drell_yan_quadrature(dy), 0.0))
    assert err < 0.01
    assert abs(ratio - 1) < 4 * err
