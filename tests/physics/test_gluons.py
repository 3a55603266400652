"""Tests of the spinor helpers and the gg -> (n-2) g tree matrix elements (Berends-Giele)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from lhcchain.errors import InputError

from lhcchain.physics.gluons import (
    _structure_constants,
    ddm_colour_matrix,
    ddm_orderings,
    gluon_amplitudes,
    gluon_matrix_element,
    helicity_configurations,
    parke_taylor,
)
from lhcchain.physics.spinors import angle, minkowski_dot, polarisation_vectors, spinor_products, spinors

ALPHA_S = 0.118
G2 = 4.0 * math.pi * ALPHA_S
SQRT_S = 1000.0  # GeV
METRIC = torch.tensor([1.0, -1.0, -1.0, -1.0], dtype=torch.float64)


def rambo(batch: int, n_out: int, energy: float, generator: torch.Generator) -> torch.Tensor:
    """Massless RAMBO: ``n_out`` momenta (batch, n_out, 4) in the frame where they sum to (energy, 0, 0, 0)."""
    shape = (batch, n_out)
    cos = 2.0 * torch.rand(shape, generator=generator, dtype=torch.float64) - 1.0
    phi = 2.0 * math.pi * torch.rand(shape, generator=generator, dtype=torch.float64)
    u = torch.rand(shape + (2,), generator=generator, dtype=torch.float64)
    q0 = -torch.log(u[..., 0] * u[..., 1])
    sin = torch.sqrt(1.0 - cos**2)
    q = torch.stack([q0, q0 * sin * torch.cos(phi), q0 * sin * torch.sin(phi), q0 * cos], -1)
    total = q.sum(1)
    mass = torch.sqrt(total[:, 0] ** 2 - (total[:, 1:] ** 2).sum(-1))
    b = -total[:, 1:] / mass[:, None]
    gamma = total[:, 0] / mass
    x = energy / mass
    a = 1.0 / (1.0 + gamma)
    bq = (b[:, None] * q[..., 1:]).sum(-1)
    e = x[:, None] * (gamma[:, None] * q[..., 0] + bq)
    p = x[:, None, None] * (q[..., 1:] + b[:, None] * q[..., :1] + a[:, None, None] * bq[..., None] * b[:, None])
    return torch.cat([e[..., None], p], -1)


def events(batch: int, n: int, seed: int, min_fraction: float = 0.0) -> torch.Tensor:
    """Physical gg -> (n-2) g points (batch, n, 4) in float64: beams along +-z, then RAMBO final states.

    With ``min_fraction`` every ``|s_ij|`` exceeds ``min_fraction * s`` (well-separated points).
    """
    generator = torch.Generator().manual_seed(seed)
    kept: list[torch.Tensor] = []
    while sum(len(x) for x in kept) < batch:
        final = rambo(4 * batch, n - 2, SQRT_S, generator)
        beam = torch.zeros(4 * batch, 2, 4, dtype=torch.float64)
        beam[:, :, 0] = SQRT_S / 2
        beam[:, 0, 3], beam[:, 1, 3] = SQRT_S / 2, -SQRT_S / 2
        p = torch.cat([beam, final], 1)
        s = invariants(p).abs() + torch.eye(n, dtype=torch.float64) * SQRT_S**2
        kept.append(p[s.amin((1, 2)) > min_fraction * SQRT_S**2])
    return torch.cat(kept)[:batch]


def invariants(p: torch.Tensor) -> torch.Tensor:
    """``s_ij = 2 p_i.p_j`` (batch, n, n)."""
    return 2.0 * torch.einsum("bim,bjm->bij", p * METRIC.to(p.dtype), p)


def outgoing(p: torch.Tensor) -> torch.Tensor:
    """All-outgoing momenta: the two incoming ones crossed, ``k = -p``."""
    return torch.cat([-p[:, :2], p[:, 2:]], 1)


def lorentz(generator: torch.Generator) -> torch.Tensor:
    """A random proper orthochronous Lorentz matrix: a rotation followed by a boost with |beta| < 0.9."""
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=generator, dtype=torch.float64))
    rotation = q * torch.sign(torch.diagonal(r))
    if torch.det(rotation) < 0:
        rotation = -rotation
    direction = torch.randn(3, generator=generator, dtype=torch.float64)
    beta = 0.9 * torch.rand((), generator=generator, dtype=torch.float64) * direction / direction.norm()
    gamma = 1.0 / torch.sqrt(1.0 - beta @ beta)
    boost = torch.eye(4, dtype=torch.float64)
    boost[0, 0] = gamma
    boost[0, 1:] = boost[1:, 0] = gamma * beta
    boost[1:, 1:] += (gamma - 1.0) * torch.outer(beta, beta) / (beta @ beta)
    turn = torch.eye(4, dtype=torch.float64)
    turn[1:, 1:] = rotation
    return boost @ turn


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(((a - b).abs() / b.abs()).max())


@pytest.mark.parametrize("n", [4, 5, 6, 7, 8])
def test_generated_points_conserve_momentum_and_are_massless(n: int) -> None:
    p = events(200, n, seed=n)
    assert torch.allclose(p[:, :2].sum(1), p[:, 2:].sum(1), rtol=0.0, atol=1e-9 * SQRT_S)
    assert float(minkowski_dot(p, p).abs().max()) < 1e-9 * SQRT_S**2
    assert bool((p[:, :, 0] > 0).all())


def test_spinor_identities_for_both_energy_signs() -> None:
    k = outgoing(events(50, 6, seed=1))  # two negative-energy legs, legs along +-z included
    lam, lamt = spinors(k)
    bispinor = lam[..., :, None] * lamt[..., None, :]
    k0, k1, k2, k3 = k.unbind(-1)
    expected = torch.stack(
        [torch.stack([k0 + k3, torch.complex(k1, -k2)], -1), torch.stack([torch.complex(k1, k2), k0 - k3], -1)], -2
    )
    assert float((bispinor - expected).abs().max()) < 1e-10 * SQRT_S
    ang, sq = spinor_products(k)
    assert float((ang * sq.transpose(1, 2) - invariants(k)).abs().max()) < 1e-9 * SQRT_S**2
    assert float((ang.abs() ** 2 - invariants(k).abs()).abs().max()) < 1e-9 * SQRT_S**2
    assert float((ang + ang.transpose(1, 2)).abs().max()) < 1e-12 * SQRT_S

    q = events(50, 6, seed=2)[:, 2:].roll(1, dims=1).repeat(1, 2, 1)[:, :6]
    plus, minus = polarisation_vectors(k, q)
    kc, qc = k.to(plus.dtype), q.to(plus.dtype)
    for eps in (plus, minus):
        assert float(minkowski_dot(eps, kc).abs().max()) < 1e-12 * SQRT_S
        assert float(minkowski_dot(eps, qc).abs().max()) < 1e-12 * SQRT_S
        assert float(minkowski_dot(eps, eps).abs().max()) < 1e-12
    assert float((minkowski_dot(plus, minus) + 1.0).abs().max()) < 1e-12
    assert float((minus - plus.conj()).abs().max()) < 1e-12


def test_four_gluons_match_the_closed_form() -> None:
    p = events(500, 4, seed=3)
    s, t, u = invariants(p)[:, 0, 1], -invariants(p)[:, 0, 2], -invariants(p)[:, 0, 3]
    closed = 4.5 * G2**2 * (3.0 - t * u / s**2 - s * u / t**2 - s * t / u**2)
    assert rel(gluon_matrix_element(p, ALPHA_S), closed) < 1e-10
    assert rel(gluon_matrix_element(p, ALPHA_S, colour="leading"), closed) < 1e-10


@pytest.mark.parametrize("n", [5, 6, 7])
def test_mhv_amplitudes_equal_parke_taylor(n: int) -> None:
    k = outgoing(events(40, n, seed=10 + n, min_fraction=0.01))
    orderings = [tuple(range(n)), (0, 2, 4, 1, 3, *range(5, n)), (3, 0, n - 1, *range(4, n - 1), 2, 1)]
    amplitudes = gluon_amplitudes(k, orderings)
    configurations = helicity_configurations(n)
    for a, b in itertools.combinations(range(n), 2):
        helicity = torch.ones(n, dtype=torch.long)
        helicity[[a, b]] = -1
        index = int((configurations == helicity).all(1).nonzero())
        for column, ordering in enumerate(orderings):
            expected = parke_taylor(k, (a, b), ordering)
            assert rel(amplitudes[:, index, column], expected) < 1e-9, (a, b, ordering)


@pytest.mark.parametrize("n", [4, 5, 6])
def test_vanishing_helicity_configurations(n: int) -> None:
    k = outgoing(events(20, n, seed=20 + n, min_fraction=0.01))
    amplitudes = gluon_amplitudes(k, [tuple(range(n))])[..., 0]
    minus = (helicity_configurations(n) < 0).sum(1)
    vanishing = (minus <= 1) | (minus >= n - 1)
    scale = amplitudes.abs().amax(1, keepdim=True)
    assert float((amplitudes[:, vanishing].abs() / scale).max()) < 1e-12
    assert float((amplitudes[:, ~vanishing].abs() / scale).min()) > 0.0


@pytest.mark.parametrize("n", [4, 5, 6])
def test_amplitudes_do_not_depend_on_the_reference_momenta(n: int) -> None:
    k = outgoing(events(20, n, seed=30 + n, min_fraction=0.01))
    orderings = [tuple(range(n)), tuple(reversed(range(n))), (1, 3, 0, 2, *range(4, n))]
    default = gluon_amplitudes(k, orderings)
    generator = torch.Generator().manual_seed(n)
    for _ in range(2):
        reference = rambo(20, n, SQRT_S, generator)
        other = gluon_amplitudes(k, orderings, reference=reference)
        scale = default.abs().amax((1, 2), keepdim=True)
        assert float(((other - default).abs() / scale).max()) < 1e-10


@pytest.mark.parametrize("n", [4, 5, 6, 7])
def test_lorentz_invariance(n: int) -> None:
    p = events(50 if n < 7 else 10, n, seed=40 + n, min_fraction=0.01)
    m2 = gluon_matrix_element(p, ALPHA_S)
    generator = torch.Generator().manual_seed(n)
    for _ in range(3):
        transformed = p @ lorentz(generator).T
        assert rel(gluon_matrix_element(transformed, ALPHA_S), m2) < 1e-9


@pytest.mark.parametrize("n", [4, 5, 6, 7])
def test_bose_symmetry(n: int) -> None:
    p = events(50 if n < 7 else 10, n, seed=50 + n, min_fraction=0.01)
    m2 = gluon_matrix_element(p, ALPHA_S)
    for final in itertools.islice(itertools.permutations(range(2, n)), 1, 4):
        assert rel(gluon_matrix_element(p[:, [0, 1, *final]], ALPHA_S), m2) < 1e-10
        assert rel(gluon_matrix_element(p[:, [1, 0, *final]], ALPHA_S), m2) < 1e-10


def test_five_gluons_equal_the_mhv_sum() -> None:
    """Every non-vanishing 5-gluon tree amplitude is MHV or anti-MHV: |A|^2 = s_ab^4 / prod |s_(i,i+1)|."""
    p = events(300, 5, seed=60)
    s = invariants(outgoing(p))
    helicity_sum = 2.0 * sum(s[:, a, b] ** 4 for a, b in itertools.combinations(range(5), 2))
    ordering_sum = sum(
        1.0 / math.prod(s[:, o[i], o[(i + 1) % 5]] for i in range(5)).abs()
        for o in ((0, *sigma) for sigma in itertools.permutations(range(1, 5)))
    )
    expected = G2**3 * 3**3 * 8 * helicity_sum * ordering_sum / 256.0
    assert rel(gluon_matrix_element(p, ALPHA_S), expected) < 1e-10
    assert rel(gluon_matrix_element(p, ALPHA_S, colour="leading"), expected) < 1e-10


@pytest.mark.parametrize("n", [4, 5, 6, 7])
def test_full_colour_equals_the_direct_ddm_sum(n: int) -> None:
    """The BCJ-reduced colour sum equals the adjoint-basis sum over all (n-2)! recursed amplitudes."""
    p = events(30 if n < 7 else 8, n, seed=70 + n, min_fraction=0.01)
    amplitudes = gluon_amplitudes(outgoing(p), ddm_orderings(n))
    colour = torch.as_tensor(ddm_colour_matrix(n)).to(amplitudes.dtype)
    summed = torch.einsum("bhp,pq,bhq->b", amplitudes, colour, amplitudes.conj()).real
    direct = G2 ** (n - 2) * summed / 256.0
    assert rel(gluon_matrix_element(p, ALPHA_S), direct) < 1e-9


def test_subleading_colour_is_small_but_present_for_six_gluons() -> None:
    p = events(50, 6, seed=80, min_fraction=0.01)
    ratio = gluon_matrix_element(p, ALPHA_S) / gluon_matrix_element(p, ALPHA_S, colour="leading")
    assert float((ratio - 1.0).abs().max()) < 0.25
    assert float((ratio - 1.0).abs().mean()) > 1e-4


@pytest.mark.parametrize("n", [4, 5, 6, 7])
def test_ddm_colour_matrix_normalisation(n: int) -> None:
    colour = ddm_colour_matrix(n)
    assert colour.shape == (math.factorial(n - 2),) * 2
    np.testing.assert_allclose(colour, colour.T, atol=1e-9)
    # diagonal: Tr over the adjoint of (F..F)(F..F)^dagger = (sum_a F^a F^a = 2N)^(n-2) (N^2 - 1)
    np.testing.assert_allclose(np.diag(colour), 6.0 ** (n - 2) * 8.0, rtol=1e-12)
    assert np.linalg.eigvalsh(colour).min() > -1e-9


@pytest.mark.parametrize("n", [4, 5])
def test_float32_agrees_with_float64(n: int) -> None:
    p = events(200, n, seed=90 + n, min_fraction=0.01)
    m2_64 = gluon_matrix_element(p, ALPHA_S)
    m2_32 = gluon_matrix_element(p.float(), ALPHA_S)
    assert m2_32.dtype == torch.float32
    assert rel(m2_32.double(), m2_64) < 1e-4
    assert gluon_amplitudes(outgoing(p).float(), [tuple(range(n))]).dtype == torch.complex64


def test_alpha_s_tensor_and_bad_input() -> None:
    p = events(10, 5, seed=100)
    alpha = torch.full((10,), ALPHA_S, dtype=torch.float64)
    assert rel(gluon_matrix_element(p, alpha), gluon_matrix_element(p, ALPHA_S)) < 1e-14
    with pytest.raises(InputError, match="shape"):
        gluon_matrix_element(p[:, :, :3], ALPHA_S)
    with pytest.raises(InputError, match="colour"):
        gluon_matrix_element(p, ALPHA_S, colour="exact")
    with pytest.raises(InputError, match="n <= 7"):
        gluon_matrix_element(events(2, 8, seed=101), ALPHA_S)
    with pytest.raises(InputError, match="permutation"):
        gluon_amplitudes(outgoing(p), [(0, 1, 2, 3, 3)])


@pytest.mark.parametrize("colour", ["full", "leading"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_meta_device(colour: str, dtype: torch.dtype) -> None:
    """Nothing is created on the CPU behind the caller's back (the meta device fails on any mix)."""
    p = torch.zeros(8, 5, 4, dtype=dtype, device="meta")
    out = gluon_matrix_element(p, 0.118, colour=colour)
    assert out.device.type == "meta" and out.shape == (8,) and out.dtype == dtype
    assert helicity_configurations(5, device="meta").device.type == "meta"


@pytest.mark.parametrize("n", [4, 5, 6])
def test_ddm_colour_matrix_equals_the_explicit_colour_tensor(n: int) -> None:
    """The first-row contraction with relabelled columns equals the Gram matrix of the explicit 8^n
    colour tensors ``(F^a2 ... F^a(n-1))_{a1 an}`` of every DDM ordering."""
    f_real = math.sqrt(2.0) * np.transpose(_structure_constants(), (1, 0, 2))
    chain = f_real
    for _ in range(n - 3):
        chain = np.matmul(chain[..., None, :, :], f_real)
    rows = []
    for sigma in ddm_orderings(n):
        middle = sigma[1:-1]
        rows.append(np.transpose(chain, [middle.index(leg) for leg in range(1, n - 1)] + [n - 2, n - 1]).ravel())
    rows_arr = np.array(rows)
    np.testing.assert_allclose(ddm_colour_matrix(n), np.einsum("ik,jk->ij", rows_arr, rows_arr), rtol=1e-12, atol=1e-9)


def catani_seymour_split(p: torch.Tensor, ij: int, k: int, y: float, z: float, phi: float) -> torch.Tensor:
    """Final-state gluon ``ij`` of ``p`` (batch, n, 4) split into two, with final-state spectator ``k``
    (Catani-Seymour final-final kinematics): ``p_i = z p_ij + (1-z) y p_k + k_T``,
    ``p_j = (1-z) p_ij + z y p_k - k_T``, ``p_k -> (1-y) p_k``, ``k_T^2 = -2 z(1-z) y p_ij.p_k`` at azimuth
    ``phi``. Momentum stays conserved and every leg massless, exactly; ``s_ij = 2 y p_ij.p_k``.
    Returns (batch, n+1, 4) with ``p_i`` in place of ``p_ij`` and ``p_j`` last."""
    pij, pk = p[:, ij], p[:, k]
    dot = minkowski_dot(pij, pk)
    basis: list[torch.Tensor] = []  # two unit space-like vectors orthogonal to p_ij and p_k
    for guess in ((0.0, 0.3, 0.5, 0.7), (0.0, -0.6, 0.2, 0.4)):
        v = torch.tensor(guess, dtype=p.dtype).expand_as(pij)
        v = v - (minkowski_dot(v, pk) / dot)[:, None] * pij - (minkowski_dot(v, pij) / dot)[:, None] * pk
        for e in basis:
            v = v + minkowski_dot(v, e)[:, None] * e  # e.e = -1
        basis.append(v / torch.sqrt(-minkowski_dot(v, v))[:, None])
    kt = torch.sqrt(2.0 * z * (1.0 - z) * y * dot)[:, None] * (math.cos(phi) * basis[0] + math.sin(phi) * basis[1])
    out = p.clone()
    out[:, ij] = z * pij + (1.0 - z) * y * pk + kt
    out[:, k] = (1.0 - y) * pk
    pj = (1.0 - z) * pij + z * y * pk - kt
    return torch.cat([out, pj[:, None]], 1)


@pytest.mark.parametrize("n", [5, 6, 7])
def test_collinear_limit_against_the_lower_multiplicity(n: int) -> None:
    """Two final-state gluons at ``y = s_ij / (2 p_ij.p_k) = 1e-7``: the azimuthally averaged (4 azimuths cancel the
    spin correlations, ~cos 2 phi) full-colour ``|M_n|^2`` equals ``(2 g^2 / s_ij) P_gg(z) |M_(n-1)|^2``,
    ``P_gg = 2 C_A [z/(1-z) + (1-z)/z + z(1-z)]``."""
    p = events(6, n - 1, seed=110 + n, min_fraction=0.02)
    lower = gluon_matrix_element(p, ALPHA_S)
    y, z = 1e-7, 0.3
    split = [catani_seymour_split(p, 2, 3, y, z, 0.4 + q * math.pi / 2) for q in range(4)]
    for q in split:
        assert float(minkowski_dot(q, q).abs().max()) < 1e-9 * SQRT_S**2
        assert torch.allclose(q[:, :2].sum(1), q[:, 2:].sum(1), rtol=0.0, atol=1e-9 * SQRT_S)
    higher = sum(gluon_matrix_element(q, ALPHA_S) for q in split) / 4
    s_ij = invariants(split[0])[:, 2, n - 1]
    p_gg = 2 * 3 * (z / (1 - z) + (1 - z) / z + z * (1 - z))
    assert rel(higher, 2 * G2 / s_ij * p_gg * lower) < 1e-4  # measured: 5e-6 (n = 5), 1e-5 (6), 7e-6 (7)
    if n >= 6:  # a single azimuth differs by 2-3 % (spin correlations): the averaging is what is checked
        assert rel(gluon_matrix_element(split[0], ALPHA_S), higher) > 5e-3


@pytest.mark.parametrize("n", [5, 6, 7])
def test_soft_limit_of_ordered_amplitudes(n: int) -> None:
    """A soft final-state gluon s of helicity + between legs a, b of an ordering: ``A_n -> <ab>/(<as><sb>) A_(n-1)``
    for every helicity of the other legs (eikonal factor; energy fraction about 1e-6)."""
    p = events(5, n - 1, seed=120 + n, min_fraction=0.02)
    lam_soft = 1e-6  # soft: 1 - z = y = lam_soft, so p_s = O(lam_soft), between legs 2 and 3
    q = catani_seymour_split(p, 2, 3, lam_soft, 1.0 - lam_soft, 0.7)
    assert float(q[:, -1, 0].max()) < 1e-5 * SQRT_S
    k_low, k_high = outgoing(p), outgoing(q)
    s_leg, a, b = n - 1, 2, 3
    low_order = tuple(range(n - 1))
    high_order = (0, 1, 2, s_leg, *range(3, n - 1))
    low = gluon_amplitudes(k_low, [low_order])[..., 0]
    high = gluon_amplitudes(k_high, [high_order])[..., 0]
    plus = helicity_configurations(n)[:, s_leg] > 0  # soft leg '+': the others in the (n-1) order
    lam, _ = spinors(k_high)
    eikonal = angle(lam[:, a], lam[:, b]) / (angle(lam[:, a], lam[:, s_leg]) * angle(lam[:, s_leg], lam[:, b]))
    expected = eikonal[:, None] * low
    scale = expected.abs().amax(1, keepdim=True)
    assert float(((high[:, plus] - expected).abs() / scale).max()) < 1e-4
