"""Phase-space mappings: the unit hypercube to momenta and weights, usable as MadNIS channels.

Measure. Every weight is taken with respect to the Lorentz-invariant n-body phase space (PDG)::

    dPhi_n(P; p_1..p_n) = (2 pi)^4 delta^4(P - sum_i p_i) prod_i d^3p_i / ((2 pi)^3 2 E_i),

so that for ``r`` uniform on ``[0, 1]^n_random``, ``E_r[weight * f(momenta)] = int dPhi_n f``
(units GeV^(2n-4)). Useful values: ``Phi_2 = lambda^(1/2)(s, m1^2, m2^2) / (8 pi s)`` and, for n
massless particles, ``Phi_n = (2 pi)^(4-3n) (pi/2)^(n-1) s^(n-2) / (Gamma(n) Gamma(n-1))``. Mappings
chain two-body splittings through ``dPhi_n = dPhi_(n-1)(.., q) dq^2/(2 pi) dPhi_2(q; ..)``.

Frames. A :class:`PartonicMapping` works at a given partonic ``sqrt(s_hat)`` in the partonic
centre-of-mass frame, with massless incoming partons ``p_a = sqrt(s_hat)/2 (1, 0, 0, 1)`` and
``p_b = sqrt(s_hat)/2 (1, 0, 0, -1)``. A :class:`HadronicMapping` adds the momentum fractions:
``E_r[weight * f] = int dx1 dx2 int dPhi_n(x1 P1 + x2 P2) f``, with momenta in the lab frame.

Not included in any weight: the flux ``1/(2 s_hat)``, PDFs, ``|M|^2``, identical-particle symmetry
factors and the GeV^-2 -> pb conversion; the integrand adds them.

Points a mapping cannot produce (below threshold, outside a generation cut) get weight 0 and
finite momenta, never NaN. Generation cuts (``PowerLaw.s_min``, ``TPropagator.cut``,
``LuminosityMapping.s_hat_min``) remove a region of phase space from the mapping: use them only
where the integrand vanishes anyway.

MadNIS. One :class:`Channel` per mapping; the flow lives on ``[0, 1]^n_random``, so all channels of
a process must share ``n_random`` (:func:`shared_n_random`). Every partonic 2 -> n mapping here
uses the minimal ``3n - 4`` numbers and the luminosity adds 2, so channels built from different
mappings of the same process agree.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from ..errors import InputError
from .kinematics import minkowski_dot

__all__ = [
    "PhaseSpacePoint",
    "HadronicPoint",
    "InvariantMapping",
    "FlatInvariant",
    "BreitWigner",
    "PowerLaw",
    "TPropagator",
    "massless_phase_space_volume",
    "two_body_decay",
    "t_channel_split",
    "PhaseSpaceMapping",
    "PartonicMapping",
    "Rambo",
    "TwoBody",
    "ThreeBody",
    "TChannel2to2",
    "TChannel2to3",
    "LuminosityMapping",
    "boost_to_lab",
    "HadronicMapping",
    "Channel",
    "shared_n_random",
    "channel_weights",
]


class PhaseSpacePoint(NamedTuple):
    """Output of a partonic mapping."""

    momenta: Tensor
    """``(batch, 2 + n_out, 4)``, GeV, incoming first."""
    weight: Tensor
    """``(batch,)``: phase-space weight with respect to ``dPhi_n``, GeV^(2n-4)."""


class HadronicPoint(NamedTuple):
    """Output of a :class:`HadronicMapping`."""

    momenta: Tensor
    """``(batch, 2 + n_out, 4)`` in the lab frame, GeV; the partons ``x1 P1``, ``x2 P2`` first."""
    weight: Tensor
    """``(batch,)``: weight with respect to ``dx1 dx2 dPhi_n``, GeV^(2n-4)."""
    x1: Tensor
    """``(batch,)``: momentum fraction of the parton from beam 1 (+z)."""
    x2: Tensor
    """``(batch,)``: momentum fraction of the parton from beam 2 (-z)."""
    partonic: Tensor
    """``(batch, 2 + n_out, 4)``: the same momenta in the partonic centre-of-mass frame (before the boost)."""


# ----------------------------------------------------------------------------- kinematics helpers


def _tiny(x: Tensor) -> float:
    return torch.finfo(x.dtype).tiny


def _like(value: float | Tensor, ref: Tensor) -> Tensor:
    """``value`` as a tensor with the dtype, device and shape of ``ref``."""
    return torch.as_tensor(value, dtype=ref.dtype, device=ref.device).expand_as(ref)


def _kallen(a: Tensor, b: Tensor, c: Tensor) -> Tensor:
    return (a - b - c) ** 2 - 4.0 * b * c


def _four(energy: Tensor, vec: Tensor) -> Tensor:
    return torch.cat([energy.unsqueeze(-1), vec], dim=-1)


def _boost(p: Tensor, q: Tensor, m: Tensor) -> Tensor:
    """Boost ``p`` (batch, 4), given in the rest frame of ``q`` (mass ``m``), to the frame of ``q``."""
    qv = q[..., 1:]
    energy = (q[..., 0] * p[..., 0] + (qv * p[..., 1:]).sum(-1)) / m
    vec = p[..., 1:] + qv * ((p[..., 0] + energy) / (q[..., 0] + m)).unsqueeze(-1)
    return _four(energy, vec)


def _rotate_z_to(v: Tensor, axis: Tensor) -> Tensor:
    """Rotate 3-vectors ``v`` given about the z axis so that z goes onto the unit vector ``axis``."""
    ax, ay, az = axis.unbind(-1)
    rho = torch.sqrt(ax * ax + ay * ay)
    has_rho = rho > 0
    rho_safe = torch.where(has_rho, rho, torch.ones_like(rho))
    cphi = torch.where(has_rho, ax / rho_safe, torch.ones_like(rho))
    sphi = torch.where(has_rho, ay / rho_safe, torch.zeros_like(rho))
    e1 = torch.stack([az * cphi, az * sphi, -rho], dim=-1)
    e2 = torch.stack([-sphi, cphi, torch.zeros_like(rho)], dim=-1)
    return v[..., :1] * e1 + v[..., 1:2] * e2 + v[..., 2:] * axis


def _rest_frame(q_sq: Tensor, m1_sq: Tensor, m2_sq: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """For q -> p1 p2: mass of q, |p*|, E1*, E2* in q's rest frame, and whether q is above threshold."""
    m = torch.sqrt(torch.clamp(q_sq, min=_tiny(q_sq)))
    pstar = torch.sqrt(torch.clamp(_kallen(q_sq, m1_sq, m2_sq), min=0.0)) / (2.0 * m)
    e1 = (q_sq + m1_sq - m2_sq) / (2.0 * m)
    e2 = (q_sq - m1_sq + m2_sq) / (2.0 * m)
    valid = (q_sq > 0) & (m >= torch.sqrt(m1_sq) + torch.sqrt(m2_sq))
    return m, pstar, e1, e2, valid


def _split(
    q: Tensor, m: Tensor, pstar: Tensor, e1: Tensor, e2: Tensor, cos: Tensor, phi: Tensor, axis: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """p1, p2 from q; p1 at polar angle ``cos``, azimuth ``phi`` about ``axis`` (default z) in q's rest frame."""
    sin = torch.sqrt(torch.clamp(1.0 - cos * cos, min=0.0))
    direction = torch.stack([sin * torch.cos(phi), sin * torch.sin(phi), cos], dim=-1)
    if axis is not None:
        direction = _rotate_z_to(direction, axis)
    vec = pstar.unsqueeze(-1) * direction
    return _boost(_four(e1, vec), q, m), _boost(_four(e2, -vec), q, m)


def _rest_momentum(sqrt_s: Tensor) -> Tensor:
    zero = torch.zeros_like(sqrt_s)
    return torch.stack([sqrt_s, zero, zero, zero], dim=-1)


def _incoming(sqrt_s: Tensor) -> tuple[Tensor, Tensor]:
    """Massless partons along +z and -z in the partonic centre-of-mass frame."""
    half = 0.5 * sqrt_s
    zero = torch.zeros_like(half)
    return torch.stack([half, zero, zero, half], dim=-1), torch.stack([half, zero, zero, -half], dim=-1)


# ----------------------------------------------------------------------------- 1D invariant mappings


def _power_map(r: Tensor, lo: Tensor, hi: Tensor, nu: float) -> tuple[Tensor, Tensor]:
    """Map r in [0, 1] to x in [lo, hi] (0 <= lo; lo > 0 if nu >= 1) with density ~ x^-nu; returns x, dx/dr.

    Uses ``expm1``/``log1p`` so that nu close to 1 stays accurate; nu = 1 is the log mapping.
    Where hi <= lo, x = lo and dx/dr = 0.
    """
    valid = hi > lo
    hi_s = torch.where(valid, hi, lo + 1.0)
    log_rho = torch.log(lo / hi_s)  # -inf where lo = 0 (only allowed for nu < 1)
    if nu == 1.0:
        x = hi_s * torch.exp((1.0 - r) * log_rho)
        jac = -x * log_rho
    else:
        e = 1.0 - nu
        c = -torch.expm1(e * log_rho)  # 1 - (lo/hi)^(1-nu)
        b = torch.clamp(1.0 - (1.0 - r) * c, min=_tiny(r))
        log_b = torch.log(b)
        x = hi_s * torch.exp(log_b / e)
        jac = hi_s * (c / e) * torch.exp((1.0 / e - 1.0) * log_b)
    x = torch.minimum(torch.maximum(x, lo), hi_s)
    return torch.where(valid, x, lo), torch.where(valid, jac, torch.zeros_like(jac))


class InvariantMapping(ABC):
    """Samples an invariant (s, GeV^2) in a per-event range ``[lo, hi]`` from one uniform number."""

    @abstractmethod
    def sample(self, r: Tensor, lo: Tensor, hi: Tensor) -> tuple[Tensor, Tensor]:
        """``r, lo, hi`` of shape (batch,) -> ``(s, ds/dr)``; ``ds/dr = 0`` where ``hi <= lo``."""


@dataclass(frozen=True)
class FlatInvariant(InvariantMapping):
    """Flat in s: the fallback mapping."""

    def sample(self, r: Tensor, lo: Tensor, hi: Tensor) -> tuple[Tensor, Tensor]:
        valid = hi > lo
        width = torch.where(valid, hi - lo, torch.zeros_like(lo))
        return lo + r * width, width


@dataclass(frozen=True)
class BreitWigner(InvariantMapping):
    """Density ~ 1/((s - M^2)^2 + M^2 Gamma^2) (arctan mapping); ``mass``, ``width`` in GeV, both > 0."""

    mass: float
    width: float

    def __post_init__(self) -> None:
        if not (self.mass > 0 and self.width > 0):
            raise InputError(f"BreitWigner needs mass > 0 and width > 0 (GeV), got {self.mass}, {self.width}")

    def _angle(self, s: Tensor) -> Tensor:
        return torch.atan((s - self.mass**2) / (self.mass * self.width))

    def sample(self, r: Tensor, lo: Tensor, hi: Tensor) -> tuple[Tensor, Tensor]:
        m_sq = self.mass**2
        mg = self.mass * self.width
        valid = hi > lo
        y_lo = self._angle(lo)
        y_hi = self._angle(torch.where(valid, hi, lo))
        s = m_sq + mg * torch.tan(y_lo + r * (y_hi - y_lo))
        s = torch.minimum(torch.maximum(s, lo), torch.maximum(hi, lo))
        jac = (y_hi - y_lo) * ((s - m_sq) ** 2 + mg * mg) / mg
        return s, torch.where(valid, jac, torch.zeros_like(jac))

    def inverse(self, s: Tensor, lo: Tensor, hi: Tensor) -> Tensor:
        """The ``r`` that :meth:`sample` maps to ``s`` in ``[lo, hi]`` (``hi > lo``; ``hi`` may be inf):
        the cumulative distribution of the Breit-Wigner truncated to the range."""
        y_lo = self._angle(lo)
        return (self._angle(s) - y_lo) / (self._angle(hi) - y_lo)


@dataclass(frozen=True)
class PowerLaw(InvariantMapping):
    """Density ~ 1/s^nu: a massless s-channel propagator (nu near 1), or 1/tau for the luminosity.

    ``nu = 1`` is the logarithmic mapping. ``s_min`` (GeV^2) is a generation cut: only
    ``s >= max(lo, s_min)`` is produced. ``nu >= 1`` needs ``s_min > 0`` (the integral diverges at 0).
    """

    nu: float = 1.0
    s_min: float = 0.0

    def __post_init__(self) -> None:
        if self.s_min < 0 or (self.nu >= 1.0 and self.s_min == 0):
            raise InputError(
                f"PowerLaw needs s_min >= 0 (GeV^2), and s_min > 0 when nu >= 1 (got nu={self.nu}, s_min={self.s_min})"
            )

    def sample(self, r: Tensor, lo: Tensor, hi: Tensor) -> tuple[Tensor, Tensor]:
        return _power_map(r, torch.clamp(lo, min=self.s_min), hi, self.nu)


@dataclass(frozen=True)
class TPropagator:
    """Samples a momentum transfer t (GeV^2, t <= 0) with density ~ 1/(m^2 - t)^nu.

    ``mass`` is the exchanged particle's mass (GeV); nu = 1 is the propagator-like log mapping,
    nu = 0 is flat in t (isotropic). ``cut`` (GeV^2) is a generation cut ``-t >= cut``; a massless
    exchange with ``nu >= 1`` needs ``cut > 0``.
    """

    mass: float = 0.0
    nu: float = 1.0
    cut: float = 0.0

    def __post_init__(self) -> None:
        if self.mass < 0 or self.cut < 0:
            raise InputError(f"TPropagator needs mass >= 0 and cut >= 0, got mass={self.mass}, cut={self.cut}")
        if self.nu >= 1.0 and self.mass**2 + self.cut <= 0:
            raise InputError(f"TPropagator with nu={self.nu} and mass 0 needs cut > 0 (GeV^2): divergent at t = 0")

    def sample(self, r: Tensor, t_lo: Tensor, t_hi: Tensor) -> tuple[Tensor, Tensor]:
        """``r, t_lo, t_hi`` (batch,) -> ``(t, |dt/dr|)``; 0 where the range (after the cut) is empty."""
        m_sq = self.mass**2
        x, jac = _power_map(r, torch.clamp(m_sq - t_hi, min=m_sq + self.cut), m_sq - t_lo, self.nu)
        return m_sq - x, jac


# ----------------------------------------------------------------------------- two-body building blocks


def massless_phase_space_volume(n: int, s: float | Tensor) -> float | Tensor:
    """Phi_n for n >= 2 massless particles at invariant mass^2 ``s`` (GeV^2), PDG measure."""
    return (2 * math.pi) ** (4 - 3 * n) * (math.pi / 2) ** (n - 1) * s ** (n - 2) / (
        math.factorial(n - 1) * math.factorial(n - 2)
    )


def two_body_decay(
    q: Tensor,
    m1_sq: float | Tensor,
    m2_sq: float | Tensor,
    r_cos: Tensor,
    r_phi: Tensor,
    q_sq: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Isotropic q -> p1 p2 in q's rest frame (cos theta = 2 r_cos - 1, phi = 2 pi r_phi about z).

    ``q`` (batch, 4); masses squared in GeV^2; ``q_sq`` defaults to q.q (pass the exact sampled
    value when known). Returns ``p1, p2`` (batch, 4) in q's frame and the weight for
    ``dPhi_2(q; p1, p2)``, i.e. ``lambda^(1/2)/(8 pi q^2)``, 0 below threshold.
    """
    q_sq = minkowski_dot(q, q) if q_sq is None else q_sq
    m, pstar, e1, e2, valid = _rest_frame(q_sq, _like(m1_sq, q_sq), _like(m2_sq, q_sq))
    p1, p2 = _split(q, m, pstar, e1, e2, 2.0 * r_cos - 1.0, 2.0 * math.pi * r_phi)
    weight = torch.where(valid, pstar / (4.0 * math.pi * m), torch.zeros_like(m))
    return p1, p2, weight


def t_channel_split(
    q: Tensor,
    k: Tensor,
    m1_sq: float | Tensor,
    m2_sq: float | Tensor,
    propagator: TPropagator,
    r_t: Tensor,
    r_phi: Tensor,
    q_sq: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """q -> p1 p2 parameterised by ``t = (k - p1)^2`` and the azimuth of p1 about k in q's rest frame.

    ``k`` (batch, 4) is the reference momentum (an incoming parton, or any momentum with a
    non-zero direction in q's rest frame); t is drawn with ``propagator`` over its kinematic range,
    using ``dPhi_2 = dt dphi / (32 pi^2 sqrt(q^2) |k*|)``. Returns ``p1, p2`` (batch, 4) and the
    weight for ``dPhi_2(q; p1, p2)`` (0 below threshold or where the cut empties the t range).
    """
    q_sq = minkowski_dot(q, q) if q_sq is None else q_sq
    m1_sq, m2_sq = _like(m1_sq, q_sq), _like(m2_sq, q_sq)
    m, pstar, e1, e2, valid = _rest_frame(q_sq, m1_sq, m2_sq)
    ek = minkowski_dot(q, k) / m
    k_abs = torch.sqrt(torch.clamp(ek * ek - minkowski_dot(k, k), min=0.0))
    k_vec = k[..., 1:] - q[..., 1:] * ((k[..., 0] + ek) / (q[..., 0] + m)).unsqueeze(-1)
    axis = k_vec / torch.clamp(torch.linalg.vector_norm(k_vec, dim=-1, keepdim=True), min=_tiny(k_vec))
    t0 = minkowski_dot(k, k) + m1_sq - 2.0 * ek * e1
    half = 2.0 * k_abs * pstar
    t, jac = propagator.sample(r_t, t0 - half, t0 + half)
    valid = valid & (half > 0)
    cos = torch.clamp((t - t0) / torch.where(valid, half, torch.ones_like(half)), -1.0, 1.0)
    p1, p2 = _split(q, m, pstar, e1, e2, cos, 2.0 * math.pi * r_phi, axis)
    k_safe = torch.where(valid, k_abs, torch.ones_like(k_abs))
    weight = torch.where(valid, jac / (16.0 * math.pi * m * k_safe), torch.zeros_like(jac))
    return p1, p2, weight


# ----------------------------------------------------------------------------- mappings


class PhaseSpaceMapping(ABC):
    """Maps ``r`` (batch, n_random) in [0, 1] to momenta (batch, 2 + n_out, 4) and a weight w.r.t. dPhi_n."""

    n_random: int
    n_out: int
    n_in: int = 2

    def _check(self, r: Tensor) -> None:
        if r.ndim != 2 or r.shape[1] != self.n_random or not r.is_floating_point():
            raise InputError(
                f"{type(self).__name__}.map expects a float tensor of shape (batch, {self.n_random}), "
                f"got {tuple(r.shape)} {r.dtype}"
            )

    @abstractmethod
    def map(self, r: Tensor) -> PhaseSpacePoint | HadronicPoint:
        """Momenta and weight; see the module docstring for the measure."""


class PartonicMapping(PhaseSpaceMapping):
    """A 2 -> n_out mapping in the partonic centre-of-mass frame at ``sqrt_s`` (GeV).

    ``sqrt_s`` given at construction is the default; :meth:`map` also takes a per-event value.
    """

    def __init__(self, n_out: int, n_random: int, sqrt_s: float | None) -> None:
        self.n_out = n_out
        self.n_random = n_random
        self.sqrt_s = sqrt_s

    @abstractmethod
    def _generate(self, r: Tensor, sqrt_s: Tensor) -> tuple[list[Tensor], Tensor]:
        """Outgoing momenta (process order, each (batch, 4)) and the weight."""

    def map(self, r: Tensor, sqrt_s: float | Tensor | None = None) -> PhaseSpacePoint:
        """``r`` (batch, n_random); ``sqrt_s`` (GeV) scalar or (batch,), default the constructor's."""
        self._check(r)
        sqrt_s = self.sqrt_s if sqrt_s is None else sqrt_s
        if sqrt_s is None:
            raise InputError(f"{type(self).__name__}.map needs sqrt_s: none given here or at construction")
        sqrt_s = _like(sqrt_s, r[:, 0])
        outgoing, weight = self._generate(r, sqrt_s)
        momenta = torch.stack([*_incoming(sqrt_s), *outgoing], dim=1)
        return PhaseSpacePoint(momenta, torch.where(sqrt_s > 0, weight, torch.zeros_like(weight)))


def _masses(masses: Sequence[float], n: int, name: str) -> tuple[float, ...]:
    if len(masses) != n or any(m < 0 for m in masses):
        raise InputError(f"{name} needs {n} masses >= 0 (GeV), got {list(masses)}")
    return tuple(float(m) for m in masses)


def _solve_mass_ratio(r: Tensor, k: int) -> Tensor:
    """Solve (k+1) v^k - k v^(k+1) = r for v in [0, 1] by bisection (the CDF is monotonic)."""
    lo, hi = torch.zeros_like(r), torch.ones_like(r)
    for _ in range(round(-math.log2(torch.finfo(r.dtype).eps)) + 2):
        mid = 0.5 * (lo + hi)
        below = (k + 1) * mid**k - k * mid ** (k + 1) < r
        lo = torch.where(below, mid, lo)
        hi = torch.where(below, hi, mid)
    return 0.5 * (lo + hi)


class Rambo(PartonicMapping):
    """Uniform massless n-body phase space (RAMBO, Kleiss-Stirling-Ellis) in its reduced form.

    Uses the "RAMBO on diet" construction (Plaetzer, arXiv:1308.2922): ``n_random = 3n - 4``
    instead of 4n, an invertible map with the same flat weight ``Phi_n(s)`` (see
    :func:`massless_phase_space_volume`). Random numbers: for i = 1..n-2 a triple (mass ratio,
    cos theta, phi) for the splitting ``Q_i -> p_i + Q_(i+1)``, then (cos theta, phi) for the last.
    """

    def __init__(self, n_out: int, sqrt_s: float | None = None) -> None:
        if n_out < 2:
            raise InputError(f"Rambo needs n_out >= 2, got {n_out}")
        super().__init__(n_out, 3 * n_out - 4, sqrt_s)

    def _generate(self, r: Tensor, sqrt_s: Tensor) -> tuple[list[Tensor], Tensor]:
        n = self.n_out
        q, q_sq = _rest_momentum(sqrt_s), sqrt_s * sqrt_s
        outgoing = []
        for i in range(n - 2):
            m_sq = _solve_mass_ratio(r[:, 3 * i], n - 2 - i) * q_sq
            p, q, _ = two_body_decay(q, 0.0, m_sq, r[:, 3 * i + 1], r[:, 3 * i + 2], q_sq=q_sq)
            outgoing.append(p)
            q_sq = m_sq
        p1, p2, _ = two_body_decay(q, 0.0, 0.0, r[:, -2], r[:, -1], q_sq=q_sq)
        return [*outgoing, p1, p2], massless_phase_space_volume(n, sqrt_s * sqrt_s)


class TwoBody(PartonicMapping):
    """2 -> 2 isotropic in the centre-of-mass frame; ``masses`` (m1, m2) in GeV; r = (cos theta, phi)."""

    def __init__(self, masses: Sequence[float] = (0.0, 0.0), sqrt_s: float | None = None) -> None:
        self.masses = _masses(masses, 2, "TwoBody")
        super().__init__(2, 2, sqrt_s)

    def _generate(self, r: Tensor, sqrt_s: Tensor) -> tuple[list[Tensor], Tensor]:
        m1, m2 = self.masses
        p1, p2, weight = two_body_decay(_rest_momentum(sqrt_s), m1**2, m2**2, r[:, 0], r[:, 1], q_sq=sqrt_s * sqrt_s)
        return [p1, p2], weight


class ThreeBody(PartonicMapping):
    """2 -> 3 as nested two-body decays P -> p_k + X, X -> p_i p_j with ``s_X`` drawn by ``s_mapping``.

    ``pair = (i, j)`` (0-based outgoing indices) is the s-channel pair; k is the other particle.
    r = (s_X, cos, phi of p_k in P's frame, cos, phi of p_i in X's frame); n_random = 5.
    """

    def __init__(
        self,
        masses: Sequence[float] = (0.0, 0.0, 0.0),
        pair: tuple[int, int] = (1, 2),
        s_mapping: InvariantMapping | None = None,
        sqrt_s: float | None = None,
    ) -> None:
        self.masses = _masses(masses, 3, "ThreeBody")
        if sorted(pair) not in ([0, 1], [0, 2], [1, 2]):
            raise InputError(f"ThreeBody pair must be two distinct indices in 0..2, got {pair}")
        self.pair = (int(pair[0]), int(pair[1]))
        self.spectator = 3 - sum(self.pair)
        self.s_mapping = FlatInvariant() if s_mapping is None else s_mapping
        super().__init__(3, 5, sqrt_s)

    def _generate(self, r: Tensor, sqrt_s: Tensor) -> tuple[list[Tensor], Tensor]:
        i, j, k = *self.pair, self.spectator
        mi, mj, mk = self.masses[i], self.masses[j], self.masses[k]
        s_lo = _like((mi + mj) ** 2, sqrt_s)
        s_x, jac = self.s_mapping.sample(r[:, 0], s_lo, torch.clamp(sqrt_s - mk, min=0.0) ** 2)
        p_k, q_x, w1 = two_body_decay(_rest_momentum(sqrt_s), mk**2, s_x, r[:, 1], r[:, 2], q_sq=sqrt_s * sqrt_s)
        p_i, p_j, w2 = two_body_decay(q_x, mi**2, mj**2, r[:, 3], r[:, 4], q_sq=s_x)
        out = {i: p_i, j: p_j, k: p_k}
        return [out[0], out[1], out[2]], w1 * jac / (2.0 * math.pi) * w2


class TChannel2to2(PartonicMapping):
    """2 -> 2 with ``t = (p_a - p_leg)^2`` drawn by ``propagator`` (p_a: the parton along +z).

    ``leg`` is the outgoing index attached to beam a (0: t-channel, 1: u-channel); r = (t, phi).
    The default propagator is flat in t (isotropic).
    """

    def __init__(
        self,
        masses: Sequence[float] = (0.0, 0.0),
        propagator: TPropagator | None = None,
        leg: int = 0,
        sqrt_s: float | None = None,
    ) -> None:
        self.masses = _masses(masses, 2, "TChannel2to2")
        if leg not in (0, 1):
            raise InputError(f"TChannel2to2 leg must be 0 or 1, got {leg}")
        self.leg = leg
        self.propagator = TPropagator(nu=0.0) if propagator is None else propagator
        super().__init__(2, 2, sqrt_s)

    def _generate(self, r: Tensor, sqrt_s: Tensor) -> tuple[list[Tensor], Tensor]:
        m_leg, m_other = self.masses[self.leg], self.masses[1 - self.leg]
        p_a, _ = _incoming(sqrt_s)
        p_leg, p_other, weight = t_channel_split(
            _rest_momentum(sqrt_s), p_a, m_leg**2, m_other**2, self.propagator, r[:, 0], r[:, 1], q_sq=sqrt_s * sqrt_s
        )
        return ([p_leg, p_other] if self.leg == 0 else [p_other, p_leg]), weight


class TChannel2to3(PartonicMapping):
    """2 -> 3 along a t-channel chain, e.g. the W/Z-fusion topology of q q' -> q q' H.

    With ``legs = (i, j, k)``: ``t1 = (p_a - p_i)^2`` drawn by ``t1``, the system ``X = p_j + p_k``
    with ``s_X`` drawn by ``s_mapping`` (default flat), and ``t2 = (p_b - p_j)^2`` drawn by ``t2``
    in X's rest frame; p_k (e.g. the Higgs) takes the rest. r = (s_X, t1, phi1, t2, phi2).
    """

    def __init__(
        self,
        masses: Sequence[float],
        t1: TPropagator,
        t2: TPropagator,
        s_mapping: InvariantMapping | None = None,
        legs: tuple[int, int, int] = (0, 1, 2),
        sqrt_s: float | None = None,
    ) -> None:
        self.masses = _masses(masses, 3, "TChannel2to3")
        if sorted(legs) != [0, 1, 2]:
            raise InputError(f"TChannel2to3 legs must be a permutation of (0, 1, 2), got {legs}")
        self.legs = tuple(int(x) for x in legs)
        self.t1, self.t2 = t1, t2
        self.s_mapping = FlatInvariant() if s_mapping is None else s_mapping
        super().__init__(3, 5, sqrt_s)

    def _generate(self, r: Tensor, sqrt_s: Tensor) -> tuple[list[Tensor], Tensor]:
        i, j, k = self.legs
        mi, mj, mk = (self.masses[x] for x in self.legs)
        p_a, p_b = _incoming(sqrt_s)
        s_lo = _like((mj + mk) ** 2, sqrt_s)
        s_x, jac = self.s_mapping.sample(r[:, 0], s_lo, torch.clamp(sqrt_s - mi, min=0.0) ** 2)
        p_i, q_x, w1 = t_channel_split(
            _rest_momentum(sqrt_s), p_a, mi**2, s_x, self.t1, r[:, 1], r[:, 2], q_sq=sqrt_s * sqrt_s
        )
        p_j, p_k, w2 = t_channel_split(q_x, p_b, mj**2, mk**2, self.t2, r[:, 3], r[:, 4], q_sq=s_x)
        out = {i: p_i, j: p_j, k: p_k}
        return [out[0], out[1], out[2]], w1 * jac / (2.0 * math.pi) * w2


class LuminosityMapping:
    """Parton momentum fractions from two uniform numbers via (tau, y), with ``dx1 dx2 = dtau dy``.

    Beams of energies ``e_beam1`` (+z) and ``e_beam2`` (-z) in GeV, ``s = 4 e_beam1 e_beam2``;
    ``s_hat = tau s`` in ``[s_hat_min, s_hat_max]`` (GeV^2; s_hat_min > 0 is a generation cut) is
    drawn by ``mapping`` acting on s_hat (default ``PowerLaw(1, s_hat_min)``, i.e. 1/tau; a
    :class:`BreitWigner` maps an s-channel resonance of the hard process directly). Then
    ``x1 = tau^(1 - r_y)``, ``x2 = tau^r_y``: y = ln(x1/x2)/2 is uniform on ``[ln(tau)/2, -ln(tau)/2]``.
    """

    n_random = 2

    def __init__(
        self,
        e_beam1: float,
        e_beam2: float,
        s_hat_min: float,
        s_hat_max: float | None = None,
        mapping: InvariantMapping | None = None,
    ) -> None:
        self.e_beam1, self.e_beam2 = float(e_beam1), float(e_beam2)
        self.s = 4.0 * self.e_beam1 * self.e_beam2
        self.s_hat_min = float(s_hat_min)
        self.s_hat_max = self.s if s_hat_max is None else float(s_hat_max)
        if not (self.e_beam1 > 0 and self.e_beam2 > 0 and 0 < self.s_hat_min < self.s_hat_max <= self.s):
            raise InputError(
                f"LuminosityMapping needs beam energies > 0 and 0 < s_hat_min < s_hat_max <= s = {self.s} GeV^2, "
                f"got s_hat_min={self.s_hat_min}, s_hat_max={self.s_hat_max}"
            )
        self.mapping = PowerLaw(1.0, self.s_hat_min) if mapping is None else mapping

    def map(self, r: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``r`` (batch, 2) -> ``x1, x2`` and the weight w.r.t. ``dx1 dx2`` (dimensionless), each (batch,)."""
        if r.ndim != 2 or r.shape[1] != 2 or not r.is_floating_point():
            raise InputError(f"LuminosityMapping.map expects a float tensor (batch, 2), got {tuple(r.shape)}")
        s_hat, jac = self.mapping.sample(r[:, 0], _like(self.s_hat_min, r[:, 0]), _like(self.s_hat_max, r[:, 0]))
        log_tau = torch.log(torch.clamp(s_hat / self.s, min=_tiny(r), max=1.0))
        x1 = torch.exp((1.0 - r[:, 1]) * log_tau)
        x2 = torch.exp(r[:, 1] * log_tau)
        return x1, x2, jac / self.s * (-log_tau)


def boost_to_lab(momenta: Tensor, x1: Tensor, x2: Tensor, e_beam1: float, e_beam2: float) -> Tensor:
    """Boost partonic centre-of-mass momenta (batch, n, 4) along z to the lab frame.

    Rapidity ``y = ln(x1 e_beam1 / (x2 e_beam2)) / 2``, so the partons become ``x1 P1`` and ``x2 P2``.
    """
    y = 0.5 * torch.log(x1 * e_beam1 / (x2 * e_beam2))
    ch, sh = torch.cosh(y).unsqueeze(-1), torch.sinh(y).unsqueeze(-1)
    energy, pz = momenta[..., 0], momenta[..., 3]
    return torch.stack([ch * energy + sh * pz, momenta[..., 1], momenta[..., 2], sh * energy + ch * pz], dim=-1)


class HadronicMapping(PhaseSpaceMapping):
    """A full hadronic channel: ``luminosity`` on r[:, :2], ``partonic`` on r[:, 2:], lab-frame momenta.

    ``E_r[weight * f] = int dx1 dx2 int dPhi_n(x1 P1 + x2 P2) f``: no flux, PDFs or |M|^2.
    """

    def __init__(self, partonic: PartonicMapping, luminosity: LuminosityMapping) -> None:
        self.partonic = partonic
        self.luminosity = luminosity
        self.n_out = partonic.n_out
        self.n_random = luminosity.n_random + partonic.n_random

    def map(self, r: Tensor) -> HadronicPoint:
        """``r`` (batch, n_random) -> :class:`HadronicPoint` (momenta, weight, x1, x2, partonic)."""
        self._check(r)
        lum = self.luminosity
        x1, x2, w_lum = lum.map(r[:, : lum.n_random])
        momenta, w_part = self.partonic.map(r[:, lum.n_random :], torch.sqrt(x1 * x2 * lum.s))
        lab = boost_to_lab(momenta, x1, x2, lum.e_beam1, lum.e_beam2)
        return HadronicPoint(lab, w_lum * w_part, x1, x2, momenta)


# ----------------------------------------------------------------------------- channels


@dataclass(frozen=True)
class Channel:
    """One integration channel of a process: a name, its mapping and its prior channel weight.

    ``prior_weight`` is a constant or a function ``momenta (batch, n, 4) -> (batch,)`` >= 0 that the
    process supplies (e.g. |propagators|^2 of the diagram the channel follows); it is
    un-normalised, :func:`channel_weights` normalises across a process's channels.
    """

    name: str
    mapping: PhaseSpaceMapping
    prior_weight: float | Callable[[Tensor], Tensor] = 1.0

    def prior(self, momenta: Tensor) -> Tensor:
        """Un-normalised prior weight (batch,), dtype and device of ``momenta``."""
        if callable(self.prior_weight):
            return self.prior_weight(momenta)
        return torch.full(momenta.shape[:1], float(self.prior_weight), dtype=momenta.dtype, device=momenta.device)


def shared_n_random(channels: Sequence[Channel]) -> int:
    """The common ``n_random`` of ``channels`` (the MadNIS input dimension); InputError if they differ."""
    dims = {c.name: c.mapping.n_random for c in channels}
    if not dims or len(set(dims.values())) != 1:
        raise InputError(f"channels must be non-empty and share n_random, got {dims}")
    return next(iter(dims.values()))


def channel_weights(channels: Sequence[Channel], momenta: Tensor) -> Tensor:
    """Prior channel weights alpha (batch, n_channels), rows summing to 1 (uniform where all vanish).

    This is the ``alpha`` prior that a MadNIS integrand returns.
    """
    g = torch.stack([c.prior(momenta) for c in channels], dim=-1)
    total = g.sum(-1, keepdim=True)
    has = total > 0
    normalised = g / torch.where(has, total, torch.ones_like(total))
    return torch.where(has, normalised, torch.full_like(g, 1.0 / len(channels)))
