"""Weak-boson-fusion Higgs production with the CP-odd operator O_WWt."""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math

import numpy as np
import pytest
import torch

from lhcchain.errors import InputError
from lhcchain.physics.electroweak import DIAGONAL_CKM, ElectroweakParameters
from lhcchain.physics.wbf import (
    WBFCoefficients,
    wbf_final_states,
    wbf_me2,
    wbf_me2_coefficients,
    wbf_score,
    wbf_topologies,
)

from .conftest import boost, general_lorentz, msq

EW = ElectroweakParameters()
SQRT_S = 1500.0


# --- local phase space ------------------------------------------------------------------------


def wbf_phase_space(n: int, sqrt_s: float = SQRT_S, seed: int = 0, dtype=torch.float64):
    """Flat 2 -> 3 phase space ``[q1, q2, q1', q2', H]`` in the partonic rest frame (massless quarks).

    Sequential: s -> H + (34) with m34 uniform, then (34) -> 3 4 isotropic. Returns the momenta
    and the phase-space weight (up to a constant); both are parity symmetric.
    """
    g = torch.Generator().manual_seed(seed)
    mh, s = EW.mh, sqrt_s**2

    def direction() -> torch.Tensor:
        cos = 2 * torch.rand(n, generator=g, dtype=dtype) - 1
        phi = 2 * math.pi * torch.rand(n, generator=g, dtype=dtype)
        sin = torch.sqrt(1 - cos**2)
        return torch.stack([sin * torch.cos(phi), sin * torch.sin(phi), cos], -1)

    m34 = (sqrt_s - mh) * torch.rand(n, generator=g, dtype=dtype)
    lam = torch.clamp((s - mh**2 - m34**2) ** 2 - 4 * mh**2 * m34**2, min=0.0)
    e_h = (s + mh**2 - m34**2) / (2 * sqrt_s)
    k = torch.sqrt(lam) / (2 * sqrt_s)
    nh, n3 = direction(), direction()
    ph = torch.cat([e_h[:, None], k[:, None] * nh], -1)
    p34 = torch.cat([(sqrt_s - e_h)[:, None], -k[:, None] * nh], -1)
    half = (m34 / 2)[:, None]
    p3 = boost(torch.cat([half, half * n3], -1), p34)
    p4 = boost(torch.cat([half, -half * n3], -1), p34)
    e, z = torch.full((n,), sqrt_s / 2, dtype=dtype), torch.zeros(n, dtype=dtype)
    p = torch.stack([torch.stack([e, z, z, e], -1), torch.stack([e, z, z, -e], -1), p3, p4, ph], 1)
    weight = m34 * torch.sqrt(lam) / s
    return p, weight


def jet_observables(p: torch.Tensor):
    """m_jj, |Delta y_jj|, min p_T and p_T1 p_T2 sin(Delta phi) with Delta phi = phi(forward) - phi(backward)."""
    j1, j2 = p[:, 2], p[:, 3]
    rap = lambda q: 0.5 * torch.log((q[:, 0] + q[:, 3]) / (q[:, 0] - q[:, 3]))  # noqa: E731
    pt = lambda q: torch.sqrt(q[:, 1] ** 2 + q[:, 2] ** 2)  # noqa: E731
    phi = lambda q: torch.atan2(q[:, 2], q[:, 1])  # noqa: E731
    forward = rap(j1) > rap(j2)
    dphi = torch.where(forward, phi(j1) - phi(j2), phi(j2) - phi(j1))
    mjj = torch.sqrt(torch.clamp(msq(j1 + j2), min=0.0))
    return mjj, (rap(j1) - rap(j2)).abs(), torch.minimum(pt(j1), pt(j2)), pt(j1) * pt(j2) * torch.sin(dphi)


def wbf_cut_events(n: int, seed: int):
    """Flat events passing m_jj > 500 GeV, |Delta y_jj| > 3, p_T,j > 20 GeV."""
    p, w = wbf_phase_space(n, seed=seed)
    mjj, dy, ptmin, x = jet_observables(p)
    keep = (mjj > 500) & (dy > 3) & (ptmin > 20)
    return p[keep], w[keep], x[keep]


FLAVOURS = [
    (2, 1, 2, 1),  # Z fusion (A) + W fusion (B), interfering
    (2, 1, 1, 2),  # the same final state in the other order
    (2, 4, 2, 4),  # Z fusion only
    (2, 2, 2, 2),  # identical quarks: Z fusion in both topologies
    (2, 3, 1, 4),  # W fusion with V_ud V_cs
    (-2, -1, -2, -1),  # antiquarks
    (2, -1, 2, -1),  # q qbar', Z only
    (2, -2, 1, -1),  # q qbar, W only
    (-3, 4, -3, 4),  # qbar q
    (5, 2, 4, 1),  # b -> c via V_cb
]


# --- tests ------------------------------------------------------------------------------------


@pytest.mark.parametrize("flavours", FLAVOURS[:6])
def test_lorentz_invariance(flavours):
    p, _ = wbf_phase_space(200, seed=2)
    moved = p @ general_lorentz(seed=3).T
    ref, new = wbf_me2_coefficients(p, flavours), wbf_me2_coefficients(moved, flavours)
    scale = torch.sqrt(ref[0] * ref[2])
    for r, m in zip(ref, new):
        assert torch.allclose(m, r, rtol=1e-9, atol=0.0) or ((m - r).abs() < 1e-9 * scale).all()


@pytest.mark.parametrize("flavours", FLAVOURS)
def test_interference_is_parity_odd(flavours):
    p, _ = wbf_phase_space(200, seed=4)
    a, b, c = wbf_me2_coefficients(p, flavours)
    for sign in ([1.0, -1.0, -1.0, -1.0], [1.0, 1.0, -1.0, 1.0]):  # p -> -p, and the mirror y -> -y
        ma, mb, mc = wbf_me2_coefficients(p * torch.tensor(sign, dtype=p.dtype), flavours)
        assert torch.allclose(ma, a, rtol=1e-10) and torch.allclose(mc, c, rtol=1e-10)
        assert torch.allclose(mb, -b, rtol=1e-9, atol=1e-10 * float(b.abs().max()))
    assert (b.abs() > 1e-3 * a).float().mean() > 0.5  # B is not trivially zero


@pytest.fixture(scope="module")
def cut_events():
    """About 4000 flat events with WBF cuts at sqrt(s) = 1.5 TeV: momenta, weights, p_T1 p_T2
    sin(Delta phi), and (A, B) per flavour combination (computed once)."""
    p, w, x = wbf_cut_events(100000, seed=6)
    coefficients = functools.cache(lambda flavours: wbf_me2_coefficients(p, flavours)[:2])
    return w, x, coefficients


@pytest.mark.parametrize("flavours", [(2, 1, 2, 1), (2, 4, 2, 4), (2, -2, 1, -1)])
def test_interference_integrates_to_zero(flavours, cut_events):
    """Over a parity-symmetric phase space (with parity-symmetric cuts) int B = 0 within MC error,
    while over the half sin(Delta phi) > 0 it is many standard deviations from zero."""
    w, x, coefficients = cut_events
    _, b = coefficients(flavours)
    bw = b * w

    def z_score(v: torch.Tensor) -> float:
        return float(v.sum() / (v.std() * math.sqrt(len(v))))

    assert abs(z_score(bw)) < 4
    assert z_score(torch.where(x > 0, bw, 0.0 * bw)) < -8


@pytest.mark.parametrize("flavours", [(2, 1, 2, 1), (2, 4, 2, 4), (-1, 2, -1, 2), (2, -2, 1, -1)])
def test_score_tracks_signed_delta_phi(flavours, cut_events, record_property):
    """t = B/A against p_T1 p_T2 sin(Delta phi_jj) at sqrt(s) = 1.5 TeV with WBF cuts, events
    distributed as in the SM (weight A times phase space)."""
    w, x, coefficients = cut_events
    a, b = coefficients(flavours)
    t, weight = b / a, a * w / (a * w).sum()
    mt, mx = (weight * t).sum(), (weight * x).sum()
    cov = (weight * (t - mt) * (x - mx)).sum()
    corr = float(cov / torch.sqrt((weight * (t - mt) ** 2).sum() * (weight * (x - mx) ** 2).sum()))
    record_property("correlation", corr)
    # With eps_{0123} = +1, f > 0 favours sin(Delta phi) < 0: the correlation is negative.
    assert corr < -0.9


def test_closed_forms():
    """Z fusion in u c -> u c H and u cbar -> u cbar H, W fusion in u d -> d u H, against the
    standard closed forms (Pythia's Sigma3ff2HfftZZ / WW expressions for quark lines)."""
    p, _ = wbf_phase_space(300, seed=7)
    dot = lambda u, v: u[:, 0] * v[:, 0] - (u[:, 1:] * v[:, 1:]).sum(-1)  # noqa: E731
    p1, p2, p3, p4 = p[:, 0], p[:, 1], p[:, 2], p[:, 3]
    t1, t2 = dot(p1 - p3, p1 - p3), dot(p2 - p4, p2 - p4)
    g = math.sqrt(4 * math.pi * EW.alpha_em / EW.sin2_theta_w)
    gz, cw = g / math.sqrt(1 - EW.sin2_theta_w), math.sqrt(1 - EW.sin2_theta_w)

    def lr(q, t3):
        return gz * (t3 - q * EW.sin2_theta_w_eff), -gz * q * EW.sin2_theta_w_eff

    (lu, ru), (lc, rc) = lr(2 / 3, 0.5), lr(2 / 3, 0.5)
    same, opposite = lu**2 * lc**2 + ru**2 * rc**2, lu**2 * rc**2 + ru**2 * lc**2
    prop_z = (t1 - EW.mz**2) ** 2 * (t2 - EW.mz**2) ** 2
    g_hzz2 = (g * EW.mz / cw) ** 2
    uc = 4 * g_hzz2 * (same * dot(p1, p2) * dot(p3, p4) + opposite * dot(p1, p4) * dot(p2, p3)) / prop_z
    ucbar = 4 * g_hzz2 * (same * dot(p1, p4) * dot(p2, p3) + opposite * dot(p1, p2) * dot(p3, p4)) / prop_z
    assert torch.allclose(wbf_me2_coefficients(p, (2, 4, 2, 4))[0], uc, rtol=1e-8)
    assert torch.allclose(wbf_me2_coefficients(p, (2, -4, 2, -4))[0], ucbar, rtol=1e-8)
    vud = EW.ckm[0][0]
    prop_w = (t1 - EW.mw**2) ** 2 * (t2 - EW.mw**2) ** 2
    ud_w = g**6 * EW.mw**2 * vud**4 * dot(p1, p2) * dot(p3, p4) / prop_w
    assert torch.allclose(wbf_me2_coefficients(p, (2, 1, 1, 2), exchange="charged")[0], ud_w, rtol=1e-8)


# --- independent trace calculation (Dirac representation) ------------------------------------

METRIC = torch.diag(torch.tensor([1.0, -1.0, -1.0, -1.0], dtype=torch.complex128))


def dirac_gammas() -> torch.Tensor:
    i2, z2 = torch.eye(2, dtype=torch.complex128), torch.zeros(2, 2, dtype=torch.complex128)
    matrices = ([[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]])
    pauli = [torch.tensor(m, dtype=torch.complex128) for m in matrices]
    g0 = torch.block_diag(i2, -i2)
    gs = [torch.cat([torch.cat([z2, s], 1), torch.cat([-s, z2], 1)], 0) for s in pauli]
    return torch.stack([g0] + gs)


GAM = dirac_gammas()
G5 = 1j * GAM[0] @ GAM[1] @ GAM[2] @ GAM[3]
CHIRAL_VERTEX = torch.stack([GAM @ (torch.eye(4) - G5) / 2, GAM @ (torch.eye(4) + G5) / 2])  # [chi, mu, i, j]


def levi_civita_upper() -> torch.Tensor:
    eps = torch.zeros(4, 4, 4, 4, dtype=torch.complex128)
    for perm in itertools.permutations(range(4)):
        inversions = sum(perm[i] > perm[j] for i in range(4) for j in range(i + 1, 4))
        eps[perm] = -1.0 if inversions % 2 == 0 else 1.0  # eps^{0123} = -1
    return eps


EPS = levi_civita_upper()


def slash(p: torch.Tensor) -> torch.Tensor:
    return torch.einsum("bm,mn,nij->bij", p.to(torch.complex128), METRIC, GAM)


def line_couplings(f_in: int, f_out: int) -> dict[str, tuple[float, float]]:
    """Chiral couplings (c_L, c_R) of the bosons a line exchanges (independent of the module)."""
    e = math.sqrt(4 * math.pi * EW.alpha_em)
    sw, cw = math.sqrt(EW.sin2_theta_w), math.sqrt(1 - EW.sin2_theta_w)
    up = abs(f_in) % 2 == 0
    if f_in == f_out:
        q, t3 = (2 / 3, 0.5) if up else (-1 / 3, -0.5)
        gz = e / (sw * cw)
        return {"Z": (gz * (t3 - q * EW.sin2_theta_w_eff), -gz * q * EW.sin2_theta_w_eff), "A": (e * q, e * q)}
    u, d = (abs(f_in), abs(f_out)) if up else (abs(f_out), abs(f_in))
    return {"W": (e / sw / math.sqrt(2) * EW.ckm[u // 2 - 1][(d - 1) // 2], 0.0)}


def propagator_upper(k: torch.Tensor, boson: str) -> torch.Tensor:
    """P^{mu nu}(k) without widths (spacelike), unitary gauge; photon in Feynman gauge."""
    k2 = (k[:, 0] ** 2 - (k[:, 1:] ** 2).sum(-1)).to(torch.complex128)
    g_up = METRIC.expand(len(k), 4, 4)
    if boson == "A":
        return -g_up / k2[:, None, None]
    m = EW.mz if boson == "Z" else EW.mw
    kk = torch.einsum("bm,bn->bmn", k, k).to(torch.complex128)
    return (-g_up + kk / m**2) / (k2 - m**2)[:, None, None]


def topology_tensor(p: torch.Tensor, flavours, line1, line2, f: float) -> torch.Tensor:
    """Y_{chi1 chi2, mu nu} (lower indices) with M = j1^mu Y_{mu nu} j2^nu, j = bar gamma^mu P_chi ket."""
    (i1, o1), (i2, o2) = line1, line2
    k1, k2 = p[:, i1] - p[:, o1], p[:, i2] - p[:, o2]
    c1, c2 = line_couplings(flavours[i1], flavours[o1]), line_couplings(flavours[i2], flavours[o2])
    g = math.sqrt(4 * math.pi * EW.alpha_em / EW.sin2_theta_w)
    sw, cw = math.sqrt(EW.sin2_theta_w), math.sqrt(1 - EW.sin2_theta_w)
    eps_k = torch.einsum("abrs,rt,nt,su,nu->nab", EPS, METRIC, k1.to(torch.complex128), METRIC, k2.to(torch.complex128))
    mix = {"W": 1.0, "Z": cw, "A": sw}
    out = torch.zeros(len(p), 2, 2, 4, 4, dtype=torch.complex128)
    for v1, v2 in itertools.product(c1, c2):
        vertex = -4 * (2 * EW.mw / g) * 1e-6 * f * mix[v1] * mix[v2] * eps_k  # H V1 V2: -4 v f eps term (upper)
        if v1 == v2 and v1 in "WZ":
            vertex = vertex + g * (EW.mw if v1 == "W" else EW.mz / cw) * METRIC
        x = METRIC @ propagator_upper(k1, v1) @ METRIC @ vertex @ METRIC @ propagator_upper(k2, v2) @ METRIC
        coupling = torch.tensor([[a * b for b in c2[v2]] for a in c1[v1]], dtype=torch.complex128)
        out = out + coupling[None, :, :, None, None] * x[:, None, None]
    return out


def trace_me2(p: torch.Tensor, flavours, f: float) -> torch.Tensor:
    """Spin/colour-averaged |M|^2 from Dirac traces (massless spin sums p-slash)."""
    s = [slash(p[:, i]) for i in range(4)]
    quark = flavours[0] > 0
    # (bar, ket) momenta of each line: quark ubar(out) ... u(in), antiquark vbar(in) ... v(out).
    ends = lambda i, o: (o, i) if flavours[i] > 0 else (i, o)  # noqa: E731
    topologies = []
    for o1, o2 in ((2, 3), (3, 2)):  # topology A, then B (relative fermion sign -1)
        connected = _connects(flavours[0], flavours[o1]) and _connects(flavours[1], flavours[o2])
        if connected and (flavours[0] == flavours[o1]) == (flavours[1] == flavours[o2]):
            topologies.append((o1, o2, topology_tensor(p, flavours, (0, o1), (1, o2), f)))

    def line_trace(bar: int, ket: int) -> torch.Tensor:  # Tr[pbar G^mu P_x pket G^nu P_y] -> [b, x, y, mu, nu]
        return torch.einsum("bij,xmjk,bkl,ynli->bxymn", s[bar], CHIRAL_VERTEX, s[ket], CHIRAL_VERTEX)

    total = torch.zeros(len(p), dtype=torch.float64)
    for o1, o2, y in topologies:
        l1, l2 = line_trace(*ends(0, o1)), line_trace(*ends(1, o2))
        total += torch.einsum("bxzmn,bywop,bxymo,bzwnp->b", y, y.conj(), l1, l2).real
    if len(topologies) == 2:
        (_, _, ya), (_, _, yb) = topologies
        v = [torch.einsum("bij,xmjk->bxmik", s[i], CHIRAL_VERTEX) for i in range(4)]
        if quark:  # Tr[p3 G_A1 p1 G_B1 p4 G_A2 p2 G_B2]
            chain = torch.einsum("bxmij,bynjk,bzokl,bwpli->bxyzwmnop", v[2], v[0], v[3], v[1])
            cross = torch.einsum("bxzmo,bywnp,bxyzwmnop->b", ya, yb.conj(), chain)
        else:  # Tr[p1 G_A1 p3 G_B2 p2 G_A2 p4 G_B1]
            chain = torch.einsum("bxmij,bynjk,bzokl,bwpli->bxyzwmnop", v[0], v[2], v[1], v[3])
            cross = torch.einsum("bxzmo,bwypn,bxyzwmnop->b", ya, yb.conj(), chain)
        total += -2.0 / 3.0 * cross.real  # 2 Re(M_A M_B^*) x colour 1/3 x fermion sign -1
    return total / 4


def _connects(f_in: int, f_out: int) -> bool:
    if f_in == f_out:
        return True
    if f_in * f_out < 0 or abs(f_in) % 2 == abs(f_out) % 2:
        return False
    u, d = (abs(f_in), abs(f_out)) if abs(f_in) % 2 == 0 else (abs(f_out), abs(f_in))
    return EW.ckm[u // 2 - 1][(d - 1) // 2] > 0


@pytest.mark.parametrize("flavours", FLAVOURS)
def test_matches_trace_calculation(flavours):
    """A, B, C, |M|^2(f) and the score against the independent Dirac-trace |M|^2 (no shared code)."""
    p, _ = wbf_phase_space(6, sqrt_s=1000.0, seed=8)
    m0, mp, mm = (trace_me2(p, flavours, f) for f in (0.0, 1.0, -1.0))
    a, b, c = wbf_me2_coefficients(p, flavours)
    scale = float(torch.sqrt(a * c).max())
    assert torch.allclose(a, m0, rtol=1e-8, atol=0.0)
    assert torch.allclose(c, (mp + mm) / 2 - m0, rtol=1e-7, atol=0.0)
    assert torch.allclose(b, (mp - mm) / 2, rtol=1e-7, atol=1e-9 * scale)
    # The decomposition is quadratic: at f values not used above the trace |M|^2 is A + f B + f^2 C,
    # and wbf_me2 (amplitudes M_SM + f M_f) agrees with it, also with a per-event f.
    for f in (-3.0, 0.5, 2.5):
        ref = trace_me2(p, flavours, f)
        assert torch.allclose(a + f * b + f * f * c, ref, rtol=1e-7, atol=1e-9 * scale)
        assert torch.allclose(wbf_me2(p, flavours, f), ref, rtol=1e-7, atol=1e-9 * scale)
    f = torch.tensor([-3.0, 0.5, 2.5, -3.0, 0.5, 2.5], dtype=torch.float64)
    ref = torch.stack([trace_me2(p[i : i + 1], flavours, float(f[i]))[0] for i in range(6)])
    assert torch.allclose(wbf_me2(p, flavours, f), ref, rtol=1e-7, atol=1e-9 * scale)
    # Score d log|M|^2/df at f = 0: the central difference of the trace |M|^2 (exact for a quadratic).
    h = 1e-2
    fd = (trace_me2(p, flavours, h) - trace_me2(p, flavours, -h)) / (2 * h * m0)
    assert torch.allclose(wbf_score(p, flavours), fd, rtol=1e-6, atol=1e-9 * float((scale / a).max()))


def test_batched_coefficients_match_per_flavour():
    """WBFCoefficients (all flavours of the hadronic process in one call, shared currents) against
    wbf_me2_coefficients per flavour, with per-event and per-flavour alpha_em.

    The tolerance 1e-11 (relative to the largest of |A|, |B|, |C| per event) is the rounding of the
    per-flavour code itself: its q^mu q^nu / M^2 propagator terms multiply conserved currents
    (q.J = 0 up to rounding), which leaves ~1e-12 noise for TeV-scale momenta."""
    subs = [(i1, i2, i3, i4) for i1, i2 in itertools.product((-5, -4, -3, -2, -1, 1, 2, 3, 4, 5), repeat=2)
            for i3, i4, _ in wbf_final_states(i1, i2)]
    flavours = subs[::7]  # a spread of quark/antiquark, W/Z and interfering combinations
    for sqrt_s, seed in ((1500.0, 11), (6000.0, 12)):
        p, _ = wbf_phase_space(64, sqrt_s=sqrt_s, seed=seed)
        alpha = 0.0075 + 0.0005 * torch.rand(64, len(flavours), generator=torch.Generator().manual_seed(seed))
        for exchange in ("all", "neutral", "charged"):
            allowed = [fl for fl in flavours if wbf_topologies(fl, EW, exchange)]
            batched = WBFCoefficients(allowed, EW, exchange)
            got = batched(p, alpha[:, : len(allowed)].double())
            assert got.shape == (64, len(allowed), 3)
            for g, fl in enumerate(allowed):
                ref = torch.stack(wbf_me2_coefficients(p, fl, EW, exchange=exchange, alpha_em=alpha[:, g].double()), -1)
                scale = ref.abs().amax(-1, keepdim=True)
                assert ((got[:, g] - ref).abs() <= 1e-11 * scale).all(), (fl, exchange)
        # A scalar alpha_em and the default agree with the per-flavour code as well.
        batched = WBFCoefficients(flavours[:3], EW)
        for alpha_em in (None, 0.0079):
            got = batched(p, alpha_em)
            for g, fl in enumerate(flavours[:3]):
                ref = torch.stack(wbf_me2_coefficients(p, fl, EW, alpha_em=alpha_em), -1)
                assert ((got[:, g] - ref).abs() <= 1e-11 * ref.abs().amax(-1, keepdim=True)).all()


def test_meta_device():
    """Nothing is created on the CPU behind the caller's back (the meta device fails on any mix)."""
    p = torch.zeros(8, 5, 4, device="meta")
    a, b, c = wbf_me2_coefficients(p, (2, 1, 2, 1), alpha_em=torch.full((8,), 0.0078, device="meta"))
    assert all(x.device.type == "meta" and x.shape == (8,) for x in (a, b, c))
    out = WBFCoefficients([(2, 1, 2, 1), (2, -2, 1, -1)])(p, torch.full((8, 2), 0.0078, device="meta"))
    assert out.device.type == "meta" and out.shape == (8, 2, 3)


def test_float32_matches_float64():
    p, _ = wbf_phase_space(500, seed=9)
    for flavours in [(2, 1, 2, 1), (2, -2, 1, -1)]:
        ref = wbf_me2_coefficients(p, flavours)
        low = wbf_me2_coefficients(p.float(), flavours)
        assert all(x.dtype == torch.float32 for x in low)
        # float32 loses ~E^2/p_T^2 * 6e-8 in the t-channel virtualities: 1e-4 for forward jets.
        assert torch.allclose(low[0].double(), ref[0], rtol=1e-3)
        assert torch.allclose(low[2].double(), ref[2], rtol=1e-3)
        assert ((low[1].double() - ref[1]).abs() <= 1e-3 * torch.sqrt(ref[0] * ref[2])).all()


def test_exchange_selection_and_per_event_alpha():
    p, _ = wbf_phase_space(50, seed=10)
    a_all, _, _ = wbf_me2_coefficients(p, (2, 1, 2, 1))
    a_z, _, _ = wbf_me2_coefficients(p, (2, 1, 2, 1), exchange="neutral")
    a_w, _, _ = wbf_me2_coefficients(p, (2, 1, 2, 1), exchange="charged")
    assert not torch.allclose(a_all, a_z + a_w)  # the W-Z interference is kept in 'all'
    assert (wbf_me2_coefficients(p, (2, 4, 2, 4), exchange="charged")[0] == 0).all()
    score = wbf_score(p, (2, 4, 2, 4), exchange="charged")  # A = B = 0: score 0, not NaN
    assert (score == 0).all()
    alpha = torch.linspace(0.0075, 0.0080, 50, dtype=torch.float64)
    batch = wbf_me2_coefficients(p, (2, 1, 2, 1), alpha_em=alpha)
    for i in (0, 17, 49):
        one = wbf_me2_coefficients(p[i : i + 1], (2, 1, 2, 1), alpha_em=float(alpha[i]))
        for x, y in zip(batch, one):
            assert torch.allclose(x[i : i + 1], y, rtol=1e-12)


def test_final_states():
    assert wbf_final_states(2, 2) == [(2, 2, 0.5)]
    states = wbf_final_states(2, 1)
    assert (2, 1, 1.0) in states and len(states) == 6 and all(6 not in s[:2] for s in states)
    assert wbf_final_states(2, 1, exchange="neutral") == [(2, 1, 1.0)]
    # Summing |V|^2 |V|^2 over the W final states gives Pythia's V2CKMsum(id1) * V2CKMsum(id2).
    def v2(a: int, b: int) -> float:
        up, down = (abs(a), abs(b)) if abs(a) % 2 == 0 else (abs(b), abs(a))
        return EW.ckm[up // 2 - 1][(down - 1) // 2] ** 2

    for id1, id2, ref in [(2, 1, 0.9999192789 * 0.9999803905), (-5, 3, 0.0017973657 * 0.9982710016)]:
        total = sum(v2(id1, a) * v2(id2, b) for a, b, _ in wbf_final_states(id1, id2, exchange="charged"))
        assert total == pytest.approx(ref, rel=1e-8)
    diagonal = dataclasses.replace(EW, ckm=DIAGONAL_CKM)
    assert wbf_final_states(2, 1, diagonal) == [(2, 1, 1.0)]
    assert wbf_final_states(2, 3, diagonal, exchange="charged") == [(1, 4, 1.0)]
    with pytest.raises(InputError):
        wbf_me2(wbf_phase_space(2)[0], (2, 1, 3, 2), 0.0, diagonal)


def test_bad_input():
    p, _ = wbf_phase_space(2)
    with pytest.raises(InputError):
        wbf_me2(p, (2, 1, 1, 1))  # charge violation
    with pytest.raises(InputError):
        wbf_me2(p, (2, 6, 2, 6))  # no top quarks
    with pytest.raises(InputError):
        wbf_me2(p[:, :4], (2, 1, 2, 1))
    with pytest.raises(InputError):
        wbf_me2(p, (2, -2, 2, 2))  # quark number
    assert np.isfinite(wbf_me2(p, (2, 1, 2, 1)).numpy()).all()
