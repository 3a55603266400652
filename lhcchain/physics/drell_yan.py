"""Drell-Yan ``q qbar -> gamma*/Z/Z' -> l- l+`` with full electroweak couplings.

Momenta ``(batch, 4, 4)`` ordered ``[beam-1 parton, beam-2 parton, l-, l+]``. ``flavour`` is the
PDG id of the beam-1 parton (``+-1..+-5``); the beam-2 parton is its antiparticle, so a negative
``flavour`` means ``qbar q`` (quark on beam 2). Leptons are massless charged leptons (e, mu, tau
have identical couplings). ``|M|^2`` is averaged over initial spins and colours (1/4 * 1/3).

Exchanges (coherent sum): photon ``e^2 Q_q Q_l / s``; Z with the couplings of
:mod:`lhcchain.physics.electroweak`; optionally a Z' (:class:`ZPrimeParameters`). The
s-channel denominators follow ``ew.running_width``. ``alpha_em`` overrides ``ew.alpha_em`` and
may be a per-event tensor (e.g. :func:`alpha_em_pythia` at ``sHat``); it scales the photon and
Z couplings, not the Z' ones.

Two implementations: :func:`drell_yan_me2` from helicity amplitudes (the toolkit in
:mod:`lhcchain.physics.helicity`) and :func:`drell_yan_me2_analytic` from the chiral
decomposition ``|M|^2 = 1/3 [u^2 (|A_LL|^2 + |A_RR|^2) + t^2 (|A_LR|^2 + |A_RL|^2)]`` with
``A_ij = sum_V c^q_i(V) c^l_j(V) / D_V(s)``, ``t = (p_q - p_l-)^2 = -s(1 - cos)/2``,
``u = (p_q - p_l+)^2 = -s(1 + cos)/2`` (theta: angle between quark and l- in the rest frame).
"""

from __future__ import annotations

import itertools

import torch

from ..errors import InputError
from .electroweak import (
    CHARGED_LEPTONS,
    QUARKS,
    ElectroweakParameters,
    ZPrimeParameters,
    photon_coupling,
    z_chiral_couplings,
)
from .helicity import (
    chiral_currents,
    chiral_spinors,
    complex_dtype,
    dirac_bar,
    minkowski_dot,
    propagator_denominator,
    scale_chiral,
    vector_propagator,
)

_LEPTON = CHARGED_LEPTONS[0]

Coupling = float | torch.Tensor


def _exchanges(
    flavour: int,
    ew: ElectroweakParameters,
    zprime: ZPrimeParameters | None,
    photon: bool,
    z: bool,
    alpha_em: Coupling,
) -> list[tuple[float, float, tuple[Coupling, Coupling], tuple[Coupling, Coupling]]]:
    """``(mass, width, (cq_L, cq_R), (cl_L, cl_R))`` per exchanged boson."""
    out = []
    if photon:
        eq, el = photon_coupling(flavour, ew, alpha_em), photon_coupling(_LEPTON, ew, alpha_em)
        out.append((0.0, 0.0, (eq, eq), (el, el)))
    if z:
        cq, cl = z_chiral_couplings(flavour, ew, alpha_em), z_chiral_couplings(_LEPTON, ew, alpha_em)
        out.append((ew.mz, ew.gamma_z, cq, cl))
    if zprime is not None:
        out.append((zprime.mass, zprime.width, zprime.chiral_couplings(flavour), zprime.chiral_couplings(_LEPTON)))
    return out


def _quark(flavour: int) -> int:
    """``|flavour|`` after checking it is a PDG quark id."""
    if abs(int(flavour)) not in QUARKS:
        raise InputError(f"Drell-Yan flavour must be a PDG quark id +-1..+-5, got {flavour}")
    return abs(int(flavour))


def _alpha(alpha_em: Coupling | None, ew: ElectroweakParameters, dtype: torch.dtype) -> Coupling:
    """``alpha_em`` (default ``ew.alpha_em``), a tensor cast to ``dtype``."""
    alpha = ew.alpha_em if alpha_em is None else alpha_em
    return alpha.to(dtype) if isinstance(alpha, torch.Tensor) else alpha


def _prepare(momenta: torch.Tensor, flavour: int, alpha_em: Coupling | None, ew: ElectroweakParameters):
    if momenta.ndim != 3 or momenta.shape[1:] != (4, 4):
        raise InputError(f"Drell-Yan momenta must have shape (batch, 4, 4), got {tuple(momenta.shape)}")
    fl = _quark(flavour)
    if flavour < 0:
        momenta = momenta[:, [1, 0, 2, 3]]
    return momenta, fl, _alpha(alpha_em, ew, momenta.dtype)


def drell_yan_me2(
    momenta: torch.Tensor,
    flavour: int,
    ew: ElectroweakParameters | None = None,
    zprime: ZPrimeParameters | None = None,
    *,
    photon: bool = True,
    z: bool = True,
    alpha_em: Coupling | None = None,
) -> torch.Tensor:
    """Spin- and colour-averaged ``|M|^2(q qbar -> l- l+)`` from helicity amplitudes: shape ``(batch,)``.

    ``alpha_em``: float or ``(batch,)`` tensor; default ``ew.alpha_em``.
    """
    ew = ew or ElectroweakParameters()
    p, fl, alpha = _prepare(momenta, flavour, alpha_em, ew)
    # Massless fermions: only lines of one chirality contribute, axis [L, R].
    jq = chiral_currents(dirac_bar(chiral_spinors(p[:, 1], antifermion=True)), chiral_spinors(p[:, 0]))
    jl = chiral_currents(dirac_bar(chiral_spinors(p[:, 2])), chiral_spinors(p[:, 3], antifermion=True))
    q = (p[:, 0] + p[:, 1])[:, None, :]
    amp = torch.zeros(p.shape[0], 2, 2, dtype=jq.dtype, device=p.device)
    for mass, width, cq, cl in _exchanges(fl, ew, zprime, photon, z, alpha):
        prop = vector_propagator(scale_chiral(jq, *cq), q, mass, width, ew.running_width)
        amp = amp + minkowski_dot(prop[:, :, None, :], scale_chiral(jl, *cl)[:, None, :, :])
    return (amp.abs() ** 2).sum((1, 2)) / 12.0


def drell_yan_chiral_amplitudes(
    s: torch.Tensor,
    flavour: int,
    ew: ElectroweakParameters | None = None,
    zprime: ZPrimeParameters | None = None,
    *,
    photon: bool = True,
    z: bool = True,
    alpha_em: Coupling | None = None,
) -> torch.Tensor:
    """Reduced amplitudes ``A_ij(s) = sum_V c^q_i c^l_j / D_V(s)`` (GeV^-2): shape ``(batch, 2, 2)``.

    Index ``[i, j]``: quark chirality i and l- chirality j, 0 = L, 1 = R (``flavour`` sign ignored).
    """
    ew = ew or ElectroweakParameters()
    alpha = _alpha(alpha_em, ew, s.dtype)
    out = torch.zeros(s.shape + (2, 2), dtype=complex_dtype(s.dtype), device=s.device)
    for mass, width, cq, cl in _exchanges(_quark(flavour), ew, zprime, photon, z, alpha):
        denom = propagator_denominator(s, mass, width, ew.running_width)
        for i, j in itertools.product(range(2), repeat=2):
            out[..., i, j] += cq[i] * cl[j] / denom
    return out


def drell_yan_me2_analytic(
    momenta: torch.Tensor,
    flavour: int,
    ew: ElectroweakParameters | None = None,
    zprime: ZPrimeParameters | None = None,
    *,
    photon: bool = True,
    z: bool = True,
    alpha_em: Coupling | None = None,
) -> torch.Tensor:
    """Same as :func:`drell_yan_me2` from the closed-form chiral decomposition (module docstring)."""
    ew = ew or ElectroweakParameters()
    p, fl, alpha = _prepare(momenta, flavour, alpha_em, ew)
    s = minkowski_dot(p[:, 0] + p[:, 1], p[:, 0] + p[:, 1])
    t = minkowski_dot(p[:, 0] - p[:, 2], p[:, 0] - p[:, 2])
    u = minkowski_dot(p[:, 0] - p[:, 3], p[:, 0] - p[:, 3])
    a2 = drell_yan_chiral_amplitudes(s, fl, ew, zprime, photon=photon, z=z, alpha_em=alpha).abs() ** 2
    return (u * u * (a2[:, 0, 0] + a2[:, 1, 1]) + t * t * (a2[:, 0, 1] + a2[:, 1, 0])) / 3.0


def drell_yan_me2_flavours(
    momenta: torch.Tensor,
    flavours: tuple[int, ...] | list[int],
    ew: ElectroweakParameters | None = None,
    zprime: ZPrimeParameters | None = None,
    *,
    photon: bool = True,
    z: bool = True,
    alpha_em: Coupling | None = None,
) -> torch.Tensor:
    """:func:`drell_yan_me2_analytic` for several beam-1 flavours at once: shape ``(batch, n_flavours)``.

    ``s``, ``t``, ``u`` are computed once and the reduced amplitudes once per distinct ``|flavour|``;
    a ``qbar q`` flavour (negative) exchanges the roles of ``t`` and ``u``.
    """
    ew = ew or ElectroweakParameters()
    if momenta.ndim != 3 or momenta.shape[1:] != (4, 4):
        raise InputError(f"Drell-Yan momenta must have shape (batch, 4, 4), got {tuple(momenta.shape)}")
    p = momenta
    alpha = _alpha(alpha_em, ew, p.dtype)
    s = minkowski_dot(p[:, 0] + p[:, 1], p[:, 0] + p[:, 1])
    t = minkowski_dot(p[:, 0] - p[:, 2], p[:, 0] - p[:, 2])
    u = minkowski_dot(p[:, 0] - p[:, 3], p[:, 0] - p[:, 3])
    t2, u2 = t * t, u * u
    reduced: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    out = []
    for flavour in flavours:
        fl = _quark(flavour)
        if fl not in reduced:
            a2 = drell_yan_chiral_amplitudes(s, fl, ew, zprime, photon=photon, z=z, alpha_em=alpha).abs() ** 2
            reduced[fl] = (a2[:, 0, 0] + a2[:, 1, 1], a2[:, 0, 1] + a2[:, 1, 0])
        same, opposite = reduced[fl]
        if flavour > 0:
            out.append((u2 * same + t2 * opposite) / 3.0)
        else:
            out.append((t2 * same + u2 * opposite) / 3.0)
    return torch.stack(out, -1) if out else torch.zeros(p.shape[0], 0, dtype=p.dtype, device=p.device)
