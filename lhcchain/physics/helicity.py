"""A small batched helicity-amplitude toolkit (HELAS-like) in torch.

Conventions:

* Chiral (Weyl) representation, ``psi = (psi_L, psi_R)``:
  ``gamma^mu = [[0, sigma^mu], [sigmabar^mu, 0]]`` with ``sigma = (1, sigma_vec)``,
  ``sigmabar = (1, -sigma_vec)``; ``gamma5 = diag(-1, -1, 1, 1)``, ``P_{L,R} = (1 -+ gamma5)/2``.
* Helicity spinors (``helicity`` = +1 or -1, twice the helicity) with HELAS phases:
  ``u(p, l) = (sqrt(E - l|p|) chi_l, sqrt(E + l|p|) chi_l)``,
  ``v(p, l) = (-l sqrt(E + l|p|) chi_-l, l sqrt(E - l|p|) chi_-l)``,
  ``chi_+ = (cos(th/2), e^{i phi} sin(th/2))``, ``chi_- = (-e^{-i phi} sin(th/2), cos(th/2))``,
  computed without cancellations (a particle along -z gets ``chi_+ = (0, 1)``).
* Levi-Civita: ``eps_{0123} = +1`` (so ``eps^{0123} = -1``); with ``gamma5 = i g^0 g^1 g^2 g^3``
  this gives ``tr(gamma5 g^mu g^nu g^rho g^sigma) = 4 i eps^{mu nu rho sigma}``.
* Vertices and propagators are returned *without* their factors of ``i``: every diagram of a
  given process has the same number of vertices and propagators, so the dropped phase is common.

Spinors have shape ``(..., 4)`` complex; four-vectors ``(..., 4)`` with an upper index.
"""

from __future__ import annotations

import functools

import torch

from .kinematics import complex_dtype, minkowski_dot  # noqa: F401 (re-exported)


def lower_index(v: torch.Tensor) -> torch.Tensor:
    """``v_mu = g_{mu nu} v^nu``."""
    return torch.cat([v[..., :1], -v[..., 1:]], dim=-1)


def gamma_matrices(dtype: torch.dtype = torch.complex128, device: torch.device | str | None = None) -> torch.Tensor:
    """``gamma^mu`` for mu = 0..3 stacked with ``gamma5`` as index 4: shape ``(5, 4, 4)``."""
    cd = complex_dtype(dtype)
    one = torch.eye(2, dtype=cd, device=device)
    zero = torch.zeros(2, 2, dtype=cd, device=device)
    pauli = torch.tensor([[[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]], dtype=cd, device=device)
    sig = [one] + [pauli[i] for i in range(3)]
    sigbar = [one] + [-pauli[i] for i in range(3)]
    gam = [torch.cat([torch.cat([zero, s], 1), torch.cat([sb, zero], 1)], 0) for s, sb in zip(sig, sigbar)]
    g5 = torch.diag(torch.tensor([-1, -1, 1, 1], dtype=cd, device=device))
    return torch.stack(gam + [g5])


def _parity(perm: tuple[int, ...]) -> int:
    inversions = sum(perm[i] > perm[j] for i in range(len(perm)) for j in range(i + 1, len(perm)))
    return -1 if inversions % 2 else 1


_LEVI_CIVITA_VALUES = tuple(
    _parity((mu, nu, rho, sig)) if len({mu, nu, rho, sig}) == 4 else 0
    for mu in range(4)
    for nu in range(4)
    for rho in range(4)
    for sig in range(4)
)


@functools.lru_cache(maxsize=32)
def levi_civita(dtype: torch.dtype = torch.float64, device: torch.device | str | None = None) -> torch.Tensor:
    """``eps_{mu nu rho sigma}`` (indices down, ``eps_{0123} = +1``): shape ``(4, 4, 4, 4)``, cached
    per dtype and device (do not modify it in place)."""
    return torch.tensor(_LEVI_CIVITA_VALUES, dtype=dtype, device=device).reshape(4, 4, 4, 4)


def epsilon_two_form(c: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """``E_{mu nu} = eps_{mu nu rho sigma} c^rho d^sigma`` (indices down): shape ``(..., 4, 4)``."""
    dtype = torch.promote_types(c.dtype, d.dtype)
    eps = levi_civita(dtype, c.device)
    c, d = torch.broadcast_tensors(c.to(dtype), d.to(dtype))
    # (c^rho d^sigma) contracted with eps over (rho, sigma): one matmul with eps as (16, 16).
    cd = (c[..., :, None] * d[..., None, :]).flatten(-2)
    return (cd @ eps.reshape(16, 16).T).unflatten(-1, (4, 4))


def epsilon_contract(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """``eps_{mu nu rho sigma} a^mu b^nu c^rho d^sigma`` = det of the rows ``(a, b, c, d)``.

    Broadcasts over leading axes; accepts real or complex inputs.
    """
    form = epsilon_two_form(c, d)
    dtype = torch.promote_types(torch.promote_types(a.dtype, b.dtype), form.dtype)
    return torch.einsum("...m,...mn,...n->...", a.to(dtype), form.to(dtype), b.to(dtype))


def _two_component(p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Helicity two-spinors ``chi_+, chi_-`` of the direction of ``p``: shapes ``(..., 2)`` complex."""
    px, py, pz = p[..., 1], p[..., 2], p[..., 3]
    pt2 = px * px + py * py
    pp = torch.sqrt(pt2 + pz * pz)
    # |p| + pz and |p| - pz without cancellation.
    one = torch.ones_like(pp)
    safe_pp = torch.where(pp > 0, pp, one)
    plus = torch.where(pz >= 0, pp + pz, pt2 / torch.where(pp - pz > 0, pp - pz, one))
    minus = torch.where(pz <= 0, pp - pz, pt2 / torch.where(pp + pz > 0, pp + pz, one))
    cos_half = torch.where(pp > 0, torch.sqrt(plus / (2 * safe_pp)), one)
    sin_half = torch.where(pp > 0, torch.sqrt(minus / (2 * safe_pp)), 0 * pp)
    pt = torch.sqrt(pt2)
    safe_pt = torch.where(pt > 0, pt, one)
    phase = torch.complex(torch.where(pt > 0, px / safe_pt, one), py / safe_pt)  # e^{i phi}, 1 on the z axis
    c, s = cos_half.to(phase.dtype), sin_half.to(phase.dtype)
    chi_plus = torch.stack([c, phase * s], dim=-1)
    chi_minus = torch.stack([-phase.conj() * s, c], dim=-1)
    return chi_plus, chi_minus


def _omegas(p: torch.Tensor, mass: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``sqrt(E + |p|)`` and ``sqrt(E - |p|)`` (the latter as ``m / sqrt(E + |p|)``, exactly 0 if massless)."""
    pp = torch.sqrt((p[..., 1:] ** 2).sum(-1))
    w_plus = torch.sqrt(p[..., 0] + pp)
    w_minus = mass / w_plus if mass else torch.zeros_like(w_plus)
    return w_plus, w_minus


def helicity_spinors(p: torch.Tensor, mass: float = 0.0, antifermion: bool = False) -> torch.Tensor:
    """``u(p, l)`` (or ``v(p, l)`` if ``antifermion``) for ``l = +1, -1``: shape ``(..., 2, 4)``.

    ``mass`` in GeV must be the mass of ``p``; 0 gives exactly massless spinors.
    """
    chi_p, chi_m = _two_component(p)
    w_plus, w_minus = (w.to(chi_p.dtype)[..., None] for w in _omegas(p, mass))
    if antifermion:
        plus = torch.cat([-w_plus * chi_m, w_minus * chi_m], dim=-1)
        minus = torch.cat([w_minus * chi_p, -w_plus * chi_p], dim=-1)
    else:
        plus = torch.cat([w_minus * chi_p, w_plus * chi_p], dim=-1)
        minus = torch.cat([w_plus * chi_m, w_minus * chi_m], dim=-1)
    return torch.stack([plus, minus], dim=-2)


def spinor_u(p: torch.Tensor, helicity: int, mass: float = 0.0) -> torch.Tensor:
    """Dirac spinor ``u(p, helicity)`` for a fermion of mass ``mass`` (GeV): shape ``(..., 4)``."""
    return helicity_spinors(p, mass)[..., _helicity_index(helicity), :]


def spinor_v(p: torch.Tensor, helicity: int, mass: float = 0.0) -> torch.Tensor:
    """Dirac spinor ``v(p, helicity)`` for an antifermion of mass ``mass`` (GeV): shape ``(..., 4)``."""
    return helicity_spinors(p, mass, antifermion=True)[..., _helicity_index(helicity), :]


def _helicity_index(helicity: int) -> int:
    if helicity not in (1, -1):
        raise ValueError(f"helicity must be +1 or -1, got {helicity}")
    return 0 if helicity == 1 else 1


def chiral_spinors(p: torch.Tensor, antifermion: bool = False) -> torch.Tensor:
    """Massless spinors of definite chirality, axis ``[L, R]``: shape ``(..., 2, 4)``.

    Fermion: ``u_L = u(p, -1)``, ``u_R = u(p, +1)``; antifermion: ``v_L = v(p, +1)``,
    ``v_R = v(p, -1)`` (:func:`helicity_spinors` phases). For massless lines only currents
    with both ends of one chirality are non-zero, so helicity sums reduce to sums over line
    chiralities.
    """
    chi_p, chi_m = _two_component(p)
    w = _omegas(p, 0.0)[0].to(chi_p.dtype)[..., None]
    w = -w if antifermion else w
    zero = torch.zeros_like(chi_p)
    left = torch.cat([w * chi_m, zero], dim=-1)
    right = torch.cat([zero, w * chi_p], dim=-1)
    return torch.stack([left, right], dim=-2)


def dirac_bar(psi: torch.Tensor) -> torch.Tensor:
    """``psi^dagger gamma^0`` as a row spinor (chiral representation: ``(psi_R^*, psi_L^*)``)."""
    return torch.cat([psi[..., 2:].conj(), psi[..., :2].conj()], dim=-1)


# Rows: sigma^mu in the basis (b0 x0, b0 x1, b1 x0, b1 x1) of the products of two-spinor components.
_SIGMA_ROWS = ((1, 0, 0, 1), (0, 1, 1, 0), (0, -1j, 1j, 0), (1, 0, 0, -1))


def _sandwich(b: torch.Tensor, x: torch.Tensor, sign: float) -> torch.Tensor:
    """``b sigma^mu x`` (sign=+1) or ``b sigmabar^mu x`` (sign=-1) for two-spinors: shape ``(..., 4)``."""
    products = (b[..., :, None] * x[..., None, :]).flatten(-2)
    return products @ _sigma_rows_t(products.dtype, products.device, sign)


@functools.lru_cache(maxsize=32)
def _sigma_rows_t(dtype: torch.dtype, device: torch.device, sign: float) -> torch.Tensor:
    """Transposed :data:`_SIGMA_ROWS` (spatial rows times ``sign``), cached per dtype and device."""
    rows = torch.tensor(_SIGMA_ROWS, dtype=dtype, device=device)
    rows[1:] *= sign
    return rows.T.contiguous()


def fermion_current(
    bar: torch.Tensor,
    psi: torch.Tensor,
    c_left: float | torch.Tensor = 1.0,
    c_right: float | torch.Tensor = 1.0,
) -> torch.Tensor:
    """``J^mu = bar gamma^mu (c_L P_L + c_R P_R) psi`` (upper index), ``bar`` from :func:`dirac_bar`.

    Couplings may be floats or tensors broadcastable to the output without its last axis; a
    float 0 skips that chirality.
    """
    out = 0.0
    if not (isinstance(c_left, float) and c_left == 0.0):
        cl = c_left[..., None] if isinstance(c_left, torch.Tensor) else c_left
        out = out + cl * _sandwich(bar[..., 2:], psi[..., :2], -1.0)
    if not (isinstance(c_right, float) and c_right == 0.0):
        cr = c_right[..., None] if isinstance(c_right, torch.Tensor) else c_right
        out = out + cr * _sandwich(bar[..., :2], psi[..., 2:], 1.0)
    if isinstance(out, float):
        return torch.zeros(torch.broadcast_shapes(bar.shape, psi.shape), dtype=bar.dtype, device=bar.device)
    return out


def chiral_currents(bar: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
    """Massless-line currents ``[bar_L gamma^mu P_L psi_L, bar_R gamma^mu P_R psi_R]``: ``(..., 2, 4)``.

    ``bar`` and ``psi`` have a chirality axis ``[L, R]`` before the spinor axis (``bar`` from
    :func:`dirac_bar` of :func:`chiral_spinors`); couplings are applied by the caller.
    """
    left = _sandwich(bar[..., 0, 2:], psi[..., 0, :2], -1.0)
    right = _sandwich(bar[..., 1, :2], psi[..., 1, 2:], 1.0)
    return torch.stack([left, right], dim=-2)


def scale_chiral(
    current: torch.Tensor, c_left: float | torch.Tensor, c_right: float | torch.Tensor
) -> torch.Tensor:
    """Multiply the ``[L, R]`` axis (second to last) of ``current`` by ``(c_L, c_R)``.

    Couplings are floats or ``(batch,)`` tensors (batch = first axis of ``current``).
    """
    real = current.real.dtype
    if isinstance(c_left, torch.Tensor) or isinstance(c_right, torch.Tensor):
        cl, cr = (torch.as_tensor(c, dtype=real, device=current.device) for c in (c_left, c_right))
        c = torch.stack(torch.broadcast_tensors(cl, cr), -1)
        c = c.reshape(c.shape[:-1] + (1,) * (current.ndim - 3) + (2, 1))
    else:
        c = _chiral_column(float(c_left), float(c_right), real, current.device)
    return current * c


@functools.lru_cache(maxsize=256)
def _chiral_column(c_left: float, c_right: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``[[c_L], [c_R]]`` as a tensor, cached per value, dtype and device."""
    return torch.tensor([c_left, c_right], dtype=dtype, device=device)[:, None]


def propagator_denominator(
    q2: torch.Tensor, mass: float, width: float = 0.0, running_width: bool = True
) -> torch.Tensor:
    """``q^2 - M^2 + i M Gamma`` (fixed width) or ``q^2 - M^2 + i q^2 Gamma/M theta(q^2)`` (running).

    Complex tensor of the complex dtype matching ``q2``.
    """
    if running_width and mass > 0:
        im = torch.clamp(q2, min=0.0) * (width / mass)
    else:
        im = torch.full_like(q2, mass * width)
    return torch.complex(q2 - mass * mass, im)


def vector_propagator(
    current: torch.Tensor,
    q: torch.Tensor,
    mass: float,
    width: float = 0.0,
    running_width: bool = True,
) -> torch.Tensor:
    """Off-shell vector current ``P^{mu nu}(q) J_nu`` (upper index, without the factor i).

    Massive (unitary gauge): ``P = (-g^{mu nu} + q^mu q^nu / M^2) / D(q^2)`` with ``D`` from
    :func:`propagator_denominator`; massless (``mass=0``, Feynman gauge): ``-g^{mu nu} / q^2``.
    ``current`` ``(..., 4)`` complex, ``q`` ``(..., 4)`` real and broadcastable to it.
    """
    q2 = minkowski_dot(q, q)
    denom = propagator_denominator(q2, mass, width, running_width)
    qc = q.to(current.dtype)
    out = -current
    if mass > 0:
        out = out + qc * (minkowski_dot(qc, current) / (mass * mass))[..., None]
    return out / denom[..., None]
