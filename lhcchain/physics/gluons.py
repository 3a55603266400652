"""Tree-level multi-gluon amplitudes gg -> (n-2) g: Berends-Giele recursion, helicity and colour sums.

Conventions (see :mod:`lhcchain.physics` for units and shapes; formulas number legs from 1, code from 0,
legs 0 and 1 being the incoming gluons):

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
  orderings need (shared between orderings) are built level by level (by run length), each level for
  all runs, all helicities of their legs (outer products over sub-currents) and all events at once.
  A current is stored for the helicities with its first leg ``+`` only, the rest being
  ``J(-h) = J(h)^*``. Four-vectors are stored as ``(v0, i v1, i v2, i v3)`` so that Minkowski
  products are plain sums.

Colour sums (SU(3)):

* ``colour="full"`` (default, ``n <= 7``) is exact: the adjoint (Del Duca-Dixon-Maltoni) decomposition
  ``A_n = g^(n-2) sum_{sigma in S_(n-2)} (F^a_sigma2 ... F^a_sigma(n-1))_{a1 an} A(1, sigma, n)`` with
  ``(F^a)_bc = i sqrt2 f^bac``, squared with its colour matrix (:func:`ddm_colour_matrix`). For float64
  input only the (n-3)! BCJ-basis amplitudes ``A(1, 2, tau, n)`` go through the recursion and the other
  DDM amplitudes follow from the fundamental BCJ relations, solved per event (agrees with the direct
  sum to about 1e-9 or better, near collinear limits included). That solve amplifies rounding by up to
  ~1e4 near such limits, too much for float32, whose input therefore recurses all (n-2)! DDM orderings.
* ``colour="leading"`` is ``g^(2n-4) N^(n-2) (N^2-1) sum_{sigma in S_(n-1)} |A(1, sigma)|^2``: exact for
  ``n = 4, 5``; from ``n = 6`` on it drops the ``O(1/N^2)`` terms (six gluons: about 1% on average,
  up to ~15% at some phase-space points).
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

from ..errors import InputError
from .kinematics import minkowski_dot, minkowski_square
from .spinors import angle, polarisation_vectors, spinors

N_COLOURS = 3
_SQRT2 = math.sqrt(2.0)
# Largest number of complex entries of one level's currents per batch chunk: bounds memory, and on
# the CPU keeps temporaries small enough to be reused by the allocator (larger chunks are no faster).
_CHUNK_ENTRIES = {"cpu": 1 << 20}
_CHUNK_ENTRIES_ACCELERATOR = 1 << 24

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
    """Rows of the sub-runs of every two- and three-way split of equally long ``runs`` (see :class:`_Level`)."""
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
    """(n_runs, n) matrix with 1 where a leg belongs to a run: run momenta are ``incidence @ k``."""
    inc = np.zeros((len(runs), n))
    for row, run in enumerate(runs):
        inc[row, list(run)] = 1.0
    return inc


@functools.lru_cache(maxsize=64)
def _plan(n: int, orderings: tuple[Run, ...]) -> _Plan:
    """Every run (contiguous piece of ``ordering[:-1]``) the orderings need, by length, with its splits."""
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
    """Orderings as a tuple of tuples (hashable for the plan cache), each checked to permute ``0..n-1``."""
    result = tuple(tuple(int(leg) for leg in o) for o in orderings)
    for o in result:
        if sorted(o) != list(range(n)):
            raise InputError(f"colour ordering {o} is not a permutation of the {n} legs 0..{n - 1}")
    if not result:
        raise InputError("at least one colour ordering is needed")
    return result


def _dot(a: Tensor, b: Tensor) -> Tensor:
    """Minkowski product of twisted vectors ``(v0, i v1, i v2, i v3)`` (component axis -2, batch axis -1).

    In the twisted form the product is a plain sum over components; ``a`` and ``b`` broadcast.
    """
    out = a[..., 0, :] * b[..., 0, :]
    for m in range(1, 4):
        out.addcmul_(a[..., m, :], b[..., m, :])
    return out


def _add_vertex3(out: Tensor, j1: Tensor, j2: Tensor, p1: Tensor, p2: Tensor) -> None:
    """Add the three-vertex sum ``(1/sqrt2)[(J1.J2)(P1-P2) + 2(P2.J1) J2 - 2(P1.J2) J1]`` to ``out``.

    ``j1, j2``: sub-currents (runs, h1|h2, 4, B); ``p1, p2``: their twisted momenta (runs, 4, B);
    ``out``: (runs, h1, h2, 4, B). The colour-ordered three-vertex without its ``i`` (cancelled by
    the propagator's ``-i``), using current conservation ``P.J(P) = 0``.
    """
    d12 = _dot(j1[:, :, None], j2[:, None])
    p2j1, p1j2 = _dot(p2[:, None], j1), _dot(p1[:, None], j2)
    out.addcmul_(d12[:, :, :, None], (p1 - p2)[:, None, None], value=1 / _SQRT2)
    out.addcmul_(p2j1[:, :, None, None], j2[:, None], value=_SQRT2)
    out.addcmul_(j1[:, :, None], p1j2[:, None, :, None], value=-_SQRT2)


def _add_vertex4(out: Tensor, j1: Tensor, j2: Tensor, j3: Tensor) -> None:
    """Add the four-vertex sum ``(J1.J3) J2 - [(J2.J3) J1 + (J1.J2) J3]/2`` to ``out`` (runs, h1, h2, h3, 4, B).

    The colour-ordered four-vertex ``i g_mu rho g_nu lambda - (i/2)(g_mu nu g_rho lambda + g_mu lambda g_nu rho)``
    contracted with ``J1_nu J2_rho J3_lambda``, without its ``i`` (cancelled by the propagator's ``-i``).
    """
    d13, d23 = _dot(j1[:, :, None], j3[:, None]), _dot(j2[:, :, None], j3[:, None])
    d12 = _dot(j1[:, :, None], j2[:, None])
    out.addcmul_(d13[:, :, None, :, None], j2[:, None, :, None])
    out.addcmul_(d23[:, None, :, :, None], j1[:, :, None, None], value=-0.5)
    out.addcmul_(d12[:, :, :, None, None], j3[:, None, None], value=-0.5)


def _add_closed_vertex3(out: Tensor, j1: Tensor, j2: Tensor, p1: Tensor, p2: Tensor, e: Tensor) -> None:
    """Add ``e . `` :func:`_add_vertex3` to ``out`` (runs, h1, h2, B); ``e``: twisted vectors (runs, 4, B)."""
    d12 = _dot(j1[:, :, None], j2[:, None])
    j1e, j2e = _dot(j1, e[:, None]), _dot(j2, e[:, None])
    out.addcmul_(d12, _dot(p1 - p2, e)[:, None, None], value=1 / _SQRT2)
    out.addcmul_(_dot(p2[:, None], j1)[:, :, None], j2e[:, None], value=_SQRT2)
    out.addcmul_(j1e[:, :, None], _dot(p1[:, None], j2)[:, None], value=-_SQRT2)


def _add_closed_vertex4(out: Tensor, j1: Tensor, j2: Tensor, j3: Tensor, e: Tensor) -> None:
    """Add ``e . `` :func:`_add_vertex4` to ``out`` (runs, h1, h2, h3, B)."""
    d13, d23 = _dot(j1[:, :, None], j3[:, None]), _dot(j2[:, :, None], j3[:, None])
    d12 = _dot(j1[:, :, None], j2[:, None])
    j1e, j2e, j3e = (_dot(j, e[:, None]) for j in (j1, j2, j3))
    out.addcmul_(d13[:, :, None], j2e[:, None, :, None])
    out.addcmul_(d23[:, None], j1e[:, :, None, None], value=-0.5)
    out.addcmul_(d12[:, :, :, None], j3e[:, None, None], value=-0.5)


def _ordered_amplitudes(k: Tensor, reference: Tensor, plan: _Plan) -> Tensor:
    """Berends-Giele amplitudes for the plan's orderings with the closing leg of each ordering ``+``.

    ``k``, ``reference``: (B, n, 4) outgoing momenta and reference momenta. Returns complex
    (n_orderings, 2^(n-1), B); the helicity index runs over the legs of ``ordering[:-1]`` in that order.
    Currents are kept for the helicities with the run's first leg ``+`` only: the recursion is real-linear
    and ``eps_- = eps_+^*``, so ``J(-h) = J(h)^*``.
    """
    eps_plus, _ = polarisation_vectors(k, reference)
    cdtype, device, batch, n = eps_plus.dtype, k.device, k.shape[0], plan.n
    twist = _on_device(_TWIST, cdtype, device)[:, None]
    eta = _on_device(_ETA, k.dtype, device)[:, None]  # twist^2
    legs = k.permute(1, 2, 0)  # (n, 4, B)
    # currents[L]: (runs, 2^(L-1), 4, B), first leg '+'; momenta[L]: twisted (runs, 4, B). Batch is contiguous.
    currents = {1: (eps_plus.permute(1, 2, 0)[:, None] * twist).contiguous()}
    momenta = {1: legs.to(cdtype) * twist}
    gathered: dict[tuple[int, bytes, bool], tuple[Tensor, Tensor]] = {}

    def gather(length: int, rows: np.ndarray, full: bool = False) -> tuple[Tensor, Tensor]:
        """Currents and momenta of the given rows of a level; ``full``: all 2^L helicities."""
        key = (length, rows.tobytes(), full)
        if key not in gathered:
            idx = _on_device(rows, torch.long, device)
            current = currents[length].index_select(0, idx)
            if full:  # J(-, h) = twist^2 J(+, -h)^*, and -h is the reversed index
                current = torch.cat([current, eta * current.flip(1).conj()], 1)
            gathered[key] = current, momenta[length].index_select(0, idx)
        return gathered[key]

    for length, level in sorted(plan.levels.items()):
        inc = _on_device(level.incidence, k.dtype, device)
        runs = len(level.runs)
        p = (inc @ legs.reshape(n, -1)).reshape(runs, 4, batch)
        acc = torch.zeros((runs, 2 ** (length - 1), 4, batch), dtype=cdtype, device=device)
        for a, rows1, rows2 in level.splits3:
            (j1, p1), (j2, p2) = gather(a, rows1), gather(length - a, rows2, full=True)
            _add_vertex3(acc.view(runs, 2 ** (a - 1), 2 ** (length - a), 4, batch), j1, j2, p1, p2)
        for a, b, rows1, rows2, rows3 in level.splits4:
            view = acc.view(runs, 2 ** (a - 1), 2**b, 2 ** (length - a - b), 4, batch)
            j2, j3 = gather(b, rows2, full=True)[0], gather(length - a - b, rows3, full=True)[0]
            _add_vertex4(view, gather(a, rows1)[0], j2, j3)
        acc *= (1 / minkowski_square(p.movedim(1, -1)))[:, None, None]
        currents[length] = acc
        momenta[length] = p.to(cdtype) * twist
        gathered.clear()

    e = eps_plus.index_select(1, _on_device(plan.ends, torch.long, device)).permute(1, 2, 0) * twist
    top, runs = plan.top, len(plan.top.runs)
    acc = torch.zeros((runs, 2 ** (n - 1), batch), dtype=cdtype, device=device)
    for a, rows1, rows2 in top.splits3:
        (j1, p1), (j2, p2) = gather(a, rows1, full=True), gather(n - 1 - a, rows2, full=True)
        _add_closed_vertex3(acc.view(runs, 2**a, 2 ** (n - 1 - a), batch), j1, j2, p1, p2, e)
    for a, b, rows1, rows2, rows3 in top.splits4:
        view = acc.view(runs, 2**a, 2**b, 2 ** (n - 1 - a - b), batch)
        j1, j2 = gather(a, rows1, full=True)[0], gather(b, rows2, full=True)[0]
        _add_closed_vertex4(view, j1, j2, gather(n - 1 - a - b, rows3, full=True)[0], e)
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


_TWIST = np.array([1, 1j, 1j, 1j])
_ETA = np.array([1.0, -1.0, -1.0, -1.0])
_DEVICE_ARRAYS: dict[tuple, tuple[np.ndarray, Tensor]] = {}


def _on_device(array: np.ndarray, dtype: torch.dtype, device: torch.device | str) -> Tensor:
    """``array`` as a tensor of ``dtype`` on ``device``, cached (the constant tables of the plans and
    colour matrices are copied once per dtype and device, not on every call). Do not modify it."""
    device = torch.device(device)
    key = (id(array), dtype, device)
    hit = _DEVICE_ARRAYS.get(key)
    if hit is None or hit[0] is not array:
        if len(_DEVICE_ARRAYS) > 4096:
            _DEVICE_ARRAYS.clear()
        hit = (array, torch.as_tensor(array).to(dtype=dtype, device=device))
        _DEVICE_ARRAYS[key] = hit  # holding the array keeps its id from being reused
    return hit[1]


def _check_momenta(momenta: Tensor) -> None:
    """Raise :class:`~lhcchain.errors.InputError` unless ``momenta`` is a float tensor of shape (batch, n >= 4, 4)."""
    if momenta.ndim != 3 or momenta.shape[-1] != 4 or momenta.shape[1] < 4:
        raise InputError(f"momenta must have shape (batch, n >= 4, 4), got {tuple(momenta.shape)}")
    if momenta.dtype not in (torch.float32, torch.float64):
        raise InputError(f"momenta must be float32 or float64, got {momenta.dtype}")


def _chunks(batch: int, plan: _Plan, device: torch.device) -> list[slice]:
    """Batch slices small enough that one level of currents has at most ``_CHUNK_ENTRIES`` entries."""
    per_event = max(
        [len(level.runs) * 2 ** (length - 1) * 4 for length, level in plan.levels.items()]
        + [len(plan.orderings) * 2**plan.n]
    )
    step = max(1, _CHUNK_ENTRIES.get(device.type, _CHUNK_ENTRIES_ACCELERATOR) // per_event)
    return [slice(start, start + step) for start in range(0, max(batch, 1), step)]


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
    x, y = torch.where(use_y, zero, sign), torch.where(use_y, sign, zero)
    return torch.stack([torch.ones_like(sign), x, y, zero], -1)


def helicity_configurations(n: int, device: torch.device | str | None = None) -> Tensor:
    """All 2^n helicity configurations as an int64 tensor (2^n, n) of +-1 on ``device`` (default the
    CPU), in the index order of the amplitudes."""
    bits = torch.tensor(list(itertools.product((0, 1), repeat=n)), device=device)
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
    _check_momenta(momenta)
    n = momenta.shape[1]
    plan = _plan(n, _check_orderings(orderings, n))
    if reference is None:
        reference = default_reference(momenta)
    out = []
    for chunk in _chunks(momenta.shape[0], plan, momenta.device):
        amps = _ordered_amplitudes(momenta[chunk], reference[chunk], plan)
        out.append(torch.stack([_canonical(a, o, True) for a, o in zip(amps, plan.orderings)], -1))
    return torch.cat(out, 1).permute(1, 0, 2)


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
def ddm_orderings(n: int) -> tuple[Run, ...]:
    """Orderings ``(0, sigma, n-1)``, ``sigma`` in S_(n-2) in lexicographic order: the adjoint (DDM) basis.

    The first (n-3)! of them, ``(0, 1, tau, n-1)``, form the BCJ basis.
    """
    return tuple((0, *sigma, n - 1) for sigma in itertools.permutations(range(1, n - 1)))


@functools.lru_cache(maxsize=8)
def ddm_colour_matrix(n: int) -> np.ndarray:
    """Colour matrix ``C_{sigma tau} = sum_colours (F..F)_{a1 an} (F..F)^*_{a1 an}`` of the DDM basis, SU(3).

    Rows and columns follow :func:`ddm_orderings`; ``(F^a)_bc = i sqrt2 f^bac``, so that
    ``sum_colours |M|^2 = g^(2n-4) sum_{sigma,tau} A(sigma) C_{sigma tau} A(tau)^*``. Real, (n-2)! x (n-2)!.
    Summing over colours is blind to the legs' names, so ``C_{sigma tau} = C_{1, pi}`` with ``pi`` the
    positions in ``sigma`` of ``tau``'s legs: only the first row is contracted (one einsum of the
    2(n-2) structure constants per column, about 5 s for n = 7), never the 8^n colour tensor.
    """
    if not 4 <= n <= 7:
        raise InputError(f"the DDM colour matrix is implemented for 4 <= n <= 7 gluons, got n = {n}")
    f_real = _SQRT2 * np.transpose(_structure_constants(), (1, 0, 2))  # (F^a)_bc / i; the i^m phases cancel
    m = n - 2
    left = ["x", *"ABCDEFGHIJ"[: m - 1], "y"]  # colour indices along the chain of sigma = 1
    right = ["x", *"KLMNOPQRST"[: m - 1], "y"]  # and along tau's chain
    legs = "abcdefghij"[:m]  # the adjoint index of each middle leg
    perms = list(itertools.permutations(range(m)))
    path = None
    row = np.empty(len(perms))
    for column, tau in enumerate(perms):
        terms = [legs[p] + left[p] + left[p + 1] for p in range(m)]
        terms += [legs[tau[p]] + right[p] + right[p + 1] for p in range(m)]
        equation = ",".join(terms) + "->"
        if path is None:
            path = np.einsum_path(equation, *[f_real] * (2 * m), optimize="optimal")[0]
        row[column] = np.einsum(equation, *[f_real] * (2 * m), optimize=path)
    position = {p: i for i, p in enumerate(perms)}
    colour = np.empty((len(perms), len(perms)))
    for i, sigma in enumerate(perms):
        where = {leg: pos for pos, leg in enumerate(sigma)}
        for j, tau in enumerate(perms):
            colour[i, j] = row[position[tuple(where[leg] for leg in tau)]]
    return colour


@functools.lru_cache(maxsize=8)
def _bcj_relations(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Fundamental BCJ relations closed on the DDM orderings, as ``(moving, left)``.

    Relation ``r`` moves the middle leg ``x_r`` (any but leg 1) through the other middle legs, kept in
    an order ``alpha``: ``sum_slots (k_x . X) A(0, alpha with x in the slot, n-1) = 0`` with ``X`` the sum of
    the momenta left of ``x`` (leg 0 included); the slot between ``n-1`` and ``0`` has ``k_x . X = -k_x^2 = 0``.
    ``moving``: (n_rel,) legs ``x_r``; ``left``: (n_rel, n_ddm, n) with 1 where leg ``l`` is in ``X``.
    There are (n-2)! - (n-3)! relations, as many as non-basis DDM orderings.
    """
    orderings = ddm_orderings(n)
    column = {o: c for c, o in enumerate(orderings)}
    middle = range(1, n - 1)
    moving, rows = [], []
    for x in middle:
        if x == 1:
            continue
        for alpha in itertools.permutations([leg for leg in middle if leg != x]):
            row = np.zeros((len(orderings), n))
            for slot in range(len(alpha) + 1):
                row[column[(0, *alpha[:slot], x, *alpha[slot:], n - 1)], [0, *alpha[:slot]]] = 1.0
            moving.append(x)
            rows.append(row)
    return np.array(moving), np.array(rows)


def _bcj_colour_matrix(k: Tensor) -> Tensor:
    """Per-event colour matrix ``K^T C K`` (B, nb, nb) of the BCJ basis, for float64 momenta ``k`` (B, n, 4).

    ``A_DDM = K A_BCJ`` with ``K`` from solving the fundamental BCJ relations (a square system per event).
    """
    n = k.shape[1]
    moving, left = _bcj_relations(n)
    dots = minkowski_dot(k[:, :, None, :], k[:, None, :, :])
    left_t = _on_device(left, k.dtype, k.device)
    relations = torch.einsum("rcl,brl->brc", left_t, dots[:, _on_device(moving, torch.long, k.device)])
    nb = math.factorial(n - 3)
    k_other = torch.linalg.solve(relations[:, :, nb:], -relations[:, :, :nb])
    eye = torch.eye(nb, dtype=k.dtype, device=k.device).expand(k.shape[0], nb, nb)
    kmat = torch.cat([eye, k_other], 1)
    colour = _on_device(ddm_colour_matrix(n), k.dtype, k.device)
    return torch.einsum("bpi,pq,bqj->bij", kmat, colour, kmat)


@functools.lru_cache(maxsize=8)
def _leading_orderings(n: int) -> tuple[Run, ...]:
    """Orderings ``(0, sigma)``, ``sigma`` in S_(n-1) modulo reflection (``sigma_1 < sigma_(n-1)``)."""
    return tuple((0, *sigma) for sigma in itertools.permutations(range(1, n)) if sigma[0] < sigma[-1])


def gluon_matrix_element(momenta: Tensor, alpha_s: float | Tensor, colour: str = "full") -> Tensor:
    """Spin- and colour-averaged tree ``|M|^2`` of ``g g -> (n-2) g`` (dimension GeV^(8-2n)).

    ``momenta``: (batch, n, 4) physical momenta in GeV, the two incoming gluons first, on-shell and
    momentum-conserving. ``alpha_s``: strong coupling, a float or a tensor broadcastable to (batch,).
    ``colour``: ``"full"`` (exact SU(3) colour sum in the DDM basis, ``n <= 7``; float64 input recurses
    only the (n-3)! BCJ-basis orderings, see the module docstring) or ``"leading"``
    (``N^(n-2)(N^2-1) sum_{S_(n-1)} |A|^2``, exact for ``n = 4, 5``, drops O(1/N^2) for ``n >= 6``,
    any ``n``). Averaged over the 4 initial helicity and 64 initial colour states, summed over final
    ones, no identical-particle factor. Returns (batch,) in the input's dtype.
    """
    _check_momenta(momenta)
    n = momenta.shape[1]
    use_bcj = colour == "full" and momenta.dtype == torch.float64
    if colour == "full":
        if n > 7:
            raise InputError(f"colour='full' is implemented for n <= 7 gluons, got n = {n}; use colour='leading'")
        orderings = ddm_orderings(n)[: math.factorial(n - 3)] if use_bcj else ddm_orderings(n)
    elif colour == "leading":
        orderings = _leading_orderings(n)
    else:
        raise InputError(f"colour must be 'full' or 'leading', got {colour!r}")
    plan = _plan(n, orderings)
    k = torch.cat([-momenta[:, :2], momenta[:, 2:]], 1)
    reference = default_reference(k)
    sums = []
    for chunk in _chunks(k.shape[0], plan, k.device):
        amps = _ordered_amplitudes(k[chunk], reference[chunk], plan)
        if colour == "full":
            # every ordering closes with leg n-1; parity doubles its '+' half
            amps = torch.stack([_canonical(a, o, False) for a, o in zip(amps, orderings)], 0)
            if use_bcj:  # per-event matrix: contract it with the helicity-summed Gram matrix
                per_event = amps.permute(2, 0, 1)  # (B, orderings, helicities)
                gram = torch.bmm(per_event.conj(), per_event.transpose(1, 2)).real
                sums.append(2.0 * (_bcj_colour_matrix(k[chunk]) * gram).sum((1, 2)))
            else:
                colour_matrix = _on_device(ddm_colour_matrix(n), amps.dtype, k.device)
                mixed = torch.einsum("pq,qhb->phb", colour_matrix, amps)
                sums.append(2.0 * (mixed * amps.conj()).real.sum((0, 1)))
        else:
            # parity doubles each ordering's helicity sum; reflection doubles the orderings
            factor = 4.0 * N_COLOURS ** (n - 2) * (N_COLOURS**2 - 1)
            sums.append(factor * (amps.real**2 + amps.imag**2).sum((0, 1)))
    total = torch.cat(sums)
    g2 = 4.0 * math.pi * alpha_s
    return total * g2 ** (n - 2) / (4.0 * (N_COLOURS**2 - 1) ** 2)
