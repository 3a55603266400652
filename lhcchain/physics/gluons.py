"""Tree-level multi-gluon amplitudes gg -> (n-2) g: Berends-Giele recursion, helicity and colour sums.

Conventions (see :mod:`lhcchain.physics` for units and shapes):

* Colour-ordered amplitudes ``A(sigma)`` are those of Dixon (hep-ph/9601359): generators normalised
  ``Tr(T^a T^b) = delta^ab``, colour-ordered Feynman rules with vertices ``(i/sqrt2)[...]`` and
  ``i g g - (i/2)(g g + g g)``, propagator ``-i g_{mu nu}/p^2`` (Feynman gauge), polarisation vectors
  of :func:`lhcchain.physics.spinors.polarisation_vectors`. With these, the MHV amplitudes are
  exactly (phase included) the Parke-Taylor form ``A(..., a^-, ..., b^-, ...) = i <ab>^4 / (<12><23>...<n1>)``
  (:func:`parke_taylor`). The full amplitude is ``g^(n-2) sum_{S_n/Z_n} Tr(T^a1 ... T^an) A(1, ..., n)``.
* Internally every leg is outgoing: momenta ``k`` with ``sum k = 0``. For the physical process
  ``g(p1) g(p2) -> g(p3) ... g(pn)`` the incoming legs are crossed, ``k1 = -p1``, ``k2 = -p2``; their spinors
  are the analytic continuation ``lambda(-p) = i lambda(p)`` of :mod:`lhcchain.physics.spinors`, and a
  crossed leg of outgoing helicity ``h`` is an incoming gluon of helicity ``-h``. ``|M|^2`` sums over
  all helicities, so the relabelling does not matter there.
* Helicity configurations are indexed ``0 .. 2^n - 1`` with leg 0 the most significant bit, bit 0 = ``+``
  and bit 1 = ``-`` (:func:`helicity_configurations`). Only configurations whose leg ``e`` (the last leg
  of the colour ordering, the one closing the recursion) is ``+`` are computed; the others follow
  exactly from parity, ``A(-h) = -A(h)^*`` (real momenta, ``eps_- = eps_+^*``).
* Berends-Giele: off-shell currents ``J(s)`` of every ordered run ``s`` of legs that the requested
  orderings need are built level by level (by run length), each level for all runs, all helicities of
  their legs (outer products over sub-currents) and all events at once. Four-vectors are stored as
  ``(v0, i v1, i v2, i v3)`` so that Minkowski products are plain sums.

Colour sums (``N = 3``): ``colour="full"`` uses the adjoint (Del Duca-Dixon-Maltoni) basis
``A_n = g^(n-2) sum_{sigma in S_(n-2)} (F^a_sigma2 ... F^a_sigma(n-1))_{a1 an} A(1, sigma, n)`` with
``(F^a)_bc = i sqrt2 f^bac`` and its exact colour matrix (``n <= 6``). ``colour="leading"`` uses
``g^(2n-4) N^(n-2) (N^2-1) sum_{sigma in S_(n-1)} |A(1, sigma)|^2``, which is exact for ``n = 4, 5`` and
drops the ``O(1/N^2)`` terms from ``n = 6`` on.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .spinors import angle, polarisation_vectors, spinors

N_COLOURS = 3
_SQRT2 = math.sqrt(2.0)
# Largest number of complex entries of one level's currents per batch chunk (bounds memory).
_CHUNK_ENTRIES = 1 << 22

Run = tuple[int, ...]


@dataclass(frozen=True)
class _Level:
    """Currents of one run length: the runs, their legs, and how each run splits into sub-runs."""

    runs: tuple[Run, ...]
    incidence: np.ndarray  # (n_runs, n): 1 where the leg is in the run
    splits3: tuple[tuple[int, np.ndarray, np.ndarray], ...]  # (len1, rows in level len1, rows in level L-len1)
    splits4: tuple[tuple[int, int, np.ndarray, np.ndarray, np.ndarray], ...]  # (len1, len2, rows x3)


@dataclass(frozen=True)
class _Plan:
    """Recursion plan for a fixed n and list of colour orderings (cached)."""

    n: int
    orderings: tuple[Run, ...]
    levels: dict[int, _Level]  # run length 2 .. n-2
    top: _Level  # the runs ordering[:-1], one per ordering
    ends: np.ndarray  # (n_orderings,) the leg closing each ordering


def _split_tables(runs: Sequence[Run], index: dict[int, dict[Run, int]]) -> tuple[tuple, tuple]:
    length = len(runs[0])
    splits3 = tuple(
        (a, np.array([index[a][r[:a]] for r in runs]), np.array([index[length - a][r[a:]] for r in runs]))
        for a in range(1, length)
    )
    splits4 = tuple(
        (
            a,
            b,
            np.array([index[a][r[:a]] for r in runs]),
            np.array([index[b][r[a : a + b]] for r in runs]),
            np.array([index[length - a - b][r[a + b :]] for r in runs]),
        )
        for a in range(1, length - 1)
        for b in range(1, length - a)
    )
    return splits3, splits4


def _incidence(runs: Sequence[Run], n: int) -> np.ndarray:
    inc = np.zeros((len(runs), n))
    for row, run in enumerate(runs):
        inc[row, list(run)] = 1.0
    return inc


@functools.lru_cache(maxsize=64)
def _plan(n: int, orderings: tuple[Run, ...]) -> _Plan:
    tops = [o[:-1] for o in orderings]
    needed: dict[int, set[Run]] = {length: set() for length in range(1, n - 1)}
    for top in tops:
        for length in range(1, n - 1):
            for start in range(n - length):
                needed[length].add(top[start : start + length])
    index: dict[int, dict[Run, int]] = {1: {(leg,): leg for leg in range(n)}}
    levels: dict[int, _Level] = {}
    for length in range(2, n - 1):
        runs = sorted(needed[length])
        index[length] = {run: row for row, run in enumerate(runs)}
        levels[length] = _Level(tuple(runs), _incidence(runs, n), *_split_tables(runs, index))
    top = _Level(tuple(tops), _incidence(tops, n), *_split_tables(tops, index))
    return _Plan(n, orderings, levels, top, np.array([o[-1] for o in orderings]))


def _check_orderings(orderings: Sequence[Sequence[int]], n: int) -> tuple[Run, ...]:
    result = tuple(tuple(int(leg) for leg in o) for o in orderings)
    for o in result:
        if sorted(o) != list(range(n)):
            raise ValueError(f"colour ordering {o} is not a permutation of the {n} legs 0..{n - 1}")
    if not result:
        raise ValueError("at least one colour ordering is needed")
    return result


def _dot(a: Tensor, b: Tensor) -> Tensor:
    """Minkowski product of twisted vectors ``(v0, i v1, i v2, i v3)``: a plain sum over the last axis."""
    return (a * b).sum(-1)


def _vertex3(j1: Tensor, j2: Tensor, p1: Tensor, p2: Tensor) -> Tensor:
    """Three-vertex sum ``(1/sqrt2)[(J1.J2)(P1-P2) + 2(P2.J1) J2 - 2(P1.J2) J1]`` for currents (runs, h, B, 4).

    ``p1, p2``: twisted momenta (runs, B, 4) of the two sub-currents; uses current conservation
    ``P.J(P) = 0``. Returns (runs, h1*h2, B, 4), helicities of ``j1`` most significant.
    """
    d12 = torch.einsum("nibm,njbm->nijb", j1, j2)
    p2j1 = _dot(p2[:, None], j1)
    p1j2 = _dot(p1[:, None], j2)
    out = d12[..., None] * ((p1 - p2) / _SQRT2)[:, None, None]
    out += (_SQRT2 * p2j1)[:, :, None, :, None] * j2[:, None]
    out -= (_SQRT2 * p1j2)[:, None, :, :, None] * j1[:, :, None]
    return out.flatten(1, 2)


def _vertex4(j1: Tensor, j2: Tensor, j3: Tensor) -> Tensor:
    """Four-vertex sum ``(J1.J3) J2 - [(J2.J3) J1 + (J1.J2) J3]/2`` for currents (runs, h, B, 4)."""
    d13 = torch.einsum("nibm,nkbm->nikb", j1, j3)
    d23 = torch.einsum("njbm,nkbm->njkb", j2, j3)
    d12 = torch.einsum("nibm,njbm->nijb", j1, j2)
    out = d13[:, :, None, :, :, None] * j2[:, None, :, None]
    out -= (0.5 * d23)[:, None, :, :, :, None] * j1[:, :, None, None]
    out -= (0.5 * d12)[:, :, :, None, :, None] * j3[:, None, None]
    return out.flatten(1, 3)


def _closed_vertex3(j1: Tensor, j2: Tensor, p1: Tensor, p2: Tensor, e: Tensor) -> Tensor:
    """``e`` contracted with :func:`_vertex3`; ``e`` (runs, B, 4). Returns (runs, h1*h2, B)."""
    d12 = torch.einsum("nibm,njbm->nijb", j1, j2)
    j1e, j2e = _dot(j1, e[:, None]), _dot(j2, e[:, None])
    out = d12 * (_dot(p1 - p2, e) / _SQRT2)[:, None, None]
    out += (_SQRT2 * _dot(p2[:, None], j1))[:, :, None] * j2e[:, None]
    out -= (_SQRT2 * _dot(p1[:, None], j2))[:, None] * j1e[:, :, None]
    return out.flatten(1, 2)


def _closed_vertex4(j1: Tensor, j2: Tensor, j3: Tensor, e: Tensor) -> Tensor:
    """``e`` contracted with :func:`_vertex4`; ``e`` (runs, B, 4). Returns (runs, h1*h2*h3, B)."""
    d13 = torch.einsum("nibm,nkbm->nikb", j1, j3)
    d23 = torch.einsum("njbm,nkbm->njkb", j2, j3)
    d12 = torch.einsum("nibm,njbm->nijb", j1, j2)
    j1e, j2e, j3e = (_dot(j, e[:, None]) for j in (j1, j2, j3))
    out = d13[:, :, None] * j2e[:, None, :, None]
    out -= (0.5 * d23)[:, None] * j1e[:, :, None, None]
    out -= (0.5 * d12)[:, :, :, None] * j3e[:, None, None]
    return out.flatten(1, 3)


def _ordered_amplitudes(k: Tensor, reference: Tensor, plan: _Plan) -> Tensor:
    """Berends-Giele amplitudes for the plan's orderings with the closing leg of each ordering ``+``.

    ``k``, ``reference``: (B, n, 4) outgoing momenta and reference momenta. Returns complex
    (n_orderings, 2^(n-1), B); the helicity index runs over the legs of ``ordering[:-1]`` in that order.
    """
    eps_plus, eps_minus = polarisation_vectors(k, reference)
    cdtype, device = eps_plus.dtype, k.device
    twist = torch.tensor([1, 1j, 1j, 1j], dtype=cdtype, device=device)
    # currents[L]: (runs, 2^L, B, 4); momenta[L]: twisted (runs, B, 4).
    currents = {1: torch.stack([eps_plus, eps_minus], 0).permute(2, 0, 1, 3) * twist}
    momenta = {1: k.transpose(0, 1).to(cdtype) * twist}

    def gather(length: int, rows: np.ndarray) -> tuple[Tensor, Tensor]:
        idx = torch.as_tensor(rows, device=device)
        return currents[length].index_select(0, idx), momenta[length].index_select(0, idx)

    def run_momenta(level: _Level) -> Tensor:
        return torch.einsum("rn,bnm->rbm", torch.as_tensor(level.incidence, dtype=k.dtype, device=device), k)

    for length, level in sorted(plan.levels.items()):
        p = run_momenta(level)
        acc = 0
        for a, rows1, rows2 in level.splits3:
            (j1, p1), (j2, p2) = gather(a, rows1), gather(length - a, rows2)
            acc = acc + _vertex3(j1, j2, p1, p2)
        for a, b, rows1, rows2, rows3 in level.splits4:
            acc = acc + _vertex4(gather(a, rows1)[0], gather(b, rows2)[0], gather(length - a - b, rows3)[0])
        currents[length] = acc / (p[..., 0] ** 2 - (p[..., 1:] ** 2).sum(-1))[:, None, :, None]
        momenta[length] = p.to(cdtype) * twist

    ends = torch.as_tensor(plan.ends, device=device)
    e = eps_plus.index_select(1, ends).transpose(0, 1) * twist
    top, n = plan.top, plan.n
    acc = 0
    for a, rows1, rows2 in top.splits3:
        (j1, p1), (j2, p2) = gather(a, rows1), gather(n - 1 - a, rows2)
        acc = acc + _closed_vertex3(j1, j2, p1, p2, e)
    for a, b, rows1, rows2, rows3 in top.splits4:
        acc = acc + _closed_vertex4(gather(a, rows1)[0], gather(b, rows2)[0], gather(n - 1 - a - b, rows3)[0], e)
    return 1j * acc


def _canonical(amplitudes: Tensor, ordering: Run, with_parity: bool) -> Tensor:
    """Reorder one ordering's amplitudes (2^(n-1), B) to canonical leg order.

    Returns (2^n, B) with the closing leg's ``-`` half filled by parity if ``with_parity``, else
    (2^(n-1), B) over the other legs in increasing order (closing leg ``+``).
    """
    n = len(ordering)
    a = amplitudes.reshape((2,) * (n - 1) + amplitudes.shape[-1:])
    if with_parity:
        a = torch.stack([a, -a.flip(tuple(range(n - 1))).conj()], n - 1)
        return a.permute([ordering.index(leg) for leg in range(n)] + [n]).flatten(0, n - 1)
    rest = sorted(ordering[:-1])
    return a.permute([ordering.index(leg) for leg in rest] + [n - 1]).flatten(0, n - 2)


def _check_momenta(momenta: Tensor, name: str) -> None:
    if momenta.ndim != 3 or momenta.shape[-1] != 4 or momenta.shape[1] < 4:
        raise ValueError(f"{name} must have shape (batch, n >= 4, 4), got {tuple(momenta.shape)}")
    if not momenta.is_floating_point():
        raise ValueError(f"{name} must be float32 or float64, got {momenta.dtype}")


def _chunks(batch: int, plan: _Plan) -> list[slice]:
    """Batch slices small enough that one level of currents has at most ``_CHUNK_ENTRIES`` entries."""
    per_event = max(
        [len(level.runs) * 2**length * 4 for length, level in plan.levels.items()]
        + [len(plan.orderings) * 2**plan.n]
    )
    step = max(1, _CHUNK_ENTRIES // per_event)
    return [slice(start, start + step) for start in range(0, batch, step)]


def default_reference(k: Tensor) -> Tensor:
    """Well-conditioned reference momenta (..., 4) for gluons of momenta ``k`` (..., 4), either energy sign.

    For each leg, the null vector ``(1, +-1, 0, 0)`` or ``(1, 0, +-1, 0)`` along the transverse axis
    where the leg's direction of motion ``sign(k0) k`` has the larger component, pointing the other
    way, so the angle to the leg is at least 90 degrees and ``|<qk>|^2 >= 2 |k0|``.
    """
    motion = k[..., 1:3] * torch.where(k[..., :1] < 0, -1.0, 1.0)
    use_y = motion[..., 1].abs() > motion[..., 0].abs()
    component = torch.where(use_y, motion[..., 1], motion[..., 0])
    sign = torch.where(component > 0, -1.0, 1.0).to(k.dtype)
    zero = torch.zeros_like(sign)
    return torch.stack([torch.ones_like(sign), torch.where(use_y, zero, sign), torch.where(use_y, sign, zero), zero], -1)


def helicity_configurations(n: int) -> Tensor:
    """All 2^n helicity configurations as an int64 tensor (2^n, n) of +-1, in the index order of the amplitudes."""
    bits = torch.tensor(list(itertools.product((0, 1), repeat=n)))
    return 1 - 2 * bits


def gluon_amplitudes(
    momenta: Tensor, orderings: Sequence[Sequence[int]], reference: Tensor | None = None
) -> Tensor:
    """Colour-ordered tree amplitudes ``A(sigma; h)`` for all-outgoing gluons, every helicity configuration.

    ``momenta``: (batch, n, 4) outgoing massless momenta in GeV with ``sum k = 0`` (crossed legs have
    negative energy). ``orderings``: colour orderings, permutations of ``0..n-1``. ``reference``:
    reference momenta (batch, n, 4) of the polarisation vectors, default :func:`default_reference`;
    amplitudes do not depend on them. Returns complex (batch, 2^n, n_orderings) in GeV^(4-n), helicity
    index as in :func:`helicity_configurations`.
    """
    _check_momenta(momenta, "momenta")
    n = momenta.shape[1]
    plan = _plan(n, _check_orderings(orderings, n))
    if reference is None:
        reference = default_reference(momenta)
    out = []
    for chunk in _chunks(momenta.shape[0], plan):
        amps = _ordered_amplitudes(momenta[chunk], reference[chunk], plan)
        out.append(torch.stack([_canonical(a, o, True) for a, o in zip(amps, plan.orderings)], -1))
    return torch.cat(out, 1).permute(1, 0, 2) if out else momenta.new_zeros((0, 2**n, len(plan.orderings)))


def parke_taylor(momenta: Tensor, negative: tuple[int, int], ordering: Sequence[int] | None = None) -> Tensor:
    """MHV amplitude ``i <ab>^4 / (<s1 s2><s2 s3>...<sn s1>)`` with legs ``a, b`` of helicity ``-``, others ``+``.

    ``momenta``: (batch, n, 4) outgoing massless momenta, ``ordering``: colour ordering ``s`` (default
    ``0..n-1``). Returns complex (batch,), equal to :func:`gluon_amplitudes` for that configuration.
    """
    n = momenta.shape[1]
    order = list(range(n)) if ordering is None else list(ordering)
    lam, _ = spinors(momenta)
    a, b = negative
    denominator = math.prod(angle(lam[:, order[i]], lam[:, order[(i + 1) % n]]) for i in range(n))
    return 1j * angle(lam[:, a], lam[:, b]) ** 4 / denominator


@functools.cache
def _structure_constants() -> np.ndarray:
    """SU(3) structure constants ``f^abc`` from the Gell-Mann matrices, ``[t^a, t^b] = i f^abc t^c``."""
    lam = np.zeros((8, 3, 3), dtype=complex)
    lam[0][0, 1] = lam[0][1, 0] = 1
    lam[1][0, 1], lam[1][1, 0] = -1j, 1j
    lam[2][0, 0], lam[2][1, 1] = 1, -1
    lam[3][0, 2] = lam[3][2, 0] = 1
    lam[4][0, 2], lam[4][2, 0] = -1j, 1j
    lam[5][1, 2] = lam[5][2, 1] = 1
    lam[6][1, 2], lam[6][2, 1] = -1j, 1j
    lam[7] = np.diag([1, 1, -2]) / math.sqrt(3)
    t = lam / 2
    comm = np.einsum("aij,bjk->abik", t, t) - np.einsum("bij,ajk->abik", t, t)
    return (-2j * np.einsum("abij,cji->abc", comm, t)).real


@functools.lru_cache(maxsize=8)
def _ddm_colour_matrix(n: int) -> np.ndarray:
    """Colour matrix ``C_{sigma tau} = sum_colours (F..F)_{a1 an} (F..F)^*_{a1 an}`` of the DDM basis.

    Rows follow :func:`_ddm_orderings`. ``(F^a)_bc = i sqrt2 f^bac``; the product of ``n-2`` of them is
    ``i^(n-2)`` times a real tensor, and the phase cancels in ``C``.
    """
    f_real = _SQRT2 * np.transpose(_structure_constants(), (1, 0, 2))  # (F^a)_bc / i
    chain = f_real  # (a_1, ..., a_m, b, c) = (F^a1 ... F^am)_bc / i^m
    for _ in range(n - 3):
        chain = np.einsum("...bd,edc->...ebc", chain, f_real)
    rows = []
    for sigma in _ddm_orderings(n):
        middle = sigma[1:-1]  # legs at chain positions 0..n-3
        axes = [middle.index(leg) for leg in range(1, n - 1)] + [n - 2, n - 1]
        rows.append(np.transpose(chain, axes).ravel())
    rows_arr = np.array(rows)
    return rows_arr @ rows_arr.T


@functools.lru_cache(maxsize=8)
def _ddm_orderings(n: int) -> tuple[Run, ...]:
    """Orderings ``(0, sigma, n-1)``, ``sigma`` in S_(n-2): the adjoint (DDM) basis."""
    return tuple((0, *sigma, n - 1) for sigma in itertools.permutations(range(1, n - 1)))


@functools.lru_cache(maxsize=8)
def _leading_orderings(n: int) -> tuple[Run, ...]:
    """Orderings ``(0, sigma)``, ``sigma`` in S_(n-1) modulo reflection (``sigma_1 < sigma_(n-1)``)."""
    return tuple((0, *sigma) for sigma in itertools.permutations(range(1, n)) if sigma[0] < sigma[-1])


def gluon_matrix_element(momenta: Tensor, alpha_s: float | Tensor, colour: str = "full") -> Tensor:
    """Spin- and colour-averaged tree ``|M|^2`` of ``g g -> (n-2) g`` (dimension GeV^(8-2n)).

    ``momenta``: (batch, n, 4) physical momenta in GeV, the two incoming gluons first, on-shell and
    momentum-conserving. ``alpha_s``: strong coupling, a float or a tensor broadcastable to (batch,).
    ``colour``: ``"full"`` (exact colour sum in the DDM basis, ``n <= 6``) or ``"leading"`` (leading
    colour, exact for ``n = 4, 5``, drops O(1/N^2) for ``n >= 6``). Averaged over the 4 initial
    helicity and 64 initial colour states, summed over final ones, no identical-particle factor.
    Returns (batch,) in the input's dtype.
    """
    _check_momenta(momenta, "momenta")
    n = momenta.shape[1]
    if colour == "full":
        if n > 6:
            raise ValueError(f"colour='full' is implemented for n <= 6 gluons, got n = {n}; use colour='leading'")
        orderings = _ddm_orderings(n)
    elif colour == "leading":
        orderings = _leading_orderings(n)
    else:
        raise ValueError(f"colour must be 'full' or 'leading', got {colour!r}")
    plan = _plan(n, orderings)
    k = torch.cat([-momenta[:, :2], momenta[:, 2:]], 1)
    reference = default_reference(k)
    sums = []
    for chunk in _chunks(k.shape[0], plan):
        amps = _ordered_amplitudes(k[chunk], reference[chunk], plan)
        if colour == "full":
            # every ordering closes with leg n-1; parity doubles its '+' half
            amps = torch.stack([_canonical(a, o, False) for a, o in zip(amps, orderings)], 0)
            c = torch.as_tensor(_ddm_colour_matrix(n), dtype=amps.real.dtype, device=k.device).to(amps.dtype)
            mixed = torch.einsum("pq,qhb->phb", c, amps)
            sums.append(2.0 * (mixed * amps.conj()).real.sum((0, 1)))
        else:
            # parity doubles each ordering's helicity sum; reflection doubles the orderings
            factor = 4.0 * N_COLOURS ** (n - 2) * (N_COLOURS**2 - 1)
            sums.append(factor * (amps.real**2 + amps.imag**2).sum((0, 1)))
    total = torch.cat(sums) if sums else momenta.new_zeros(0)
    g2 = 4.0 * math.pi * alpha_s
    return total * g2 ** (n - 2) / (4.0 * (N_COLOURS**2 - 1) ** 2)
