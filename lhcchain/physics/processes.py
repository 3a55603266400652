"""The processes of the physics core, reachable by name through :func:`get_process`.

=============  ===========================================================================================
name           process
=============  ===========================================================================================
``drell_yan``  ``p p -> gamma*/Z/Z' -> mu- mu+`` (:class:`DrellYan`)
``wbf_higgs``  ``p p -> j j H`` by weak-boson fusion with the CP-odd ``O_WWt`` (:class:`WBFHiggs`)
``gg_3g``      ``g g -> g g g`` at fixed ``sqrt(s_hat) = 1 TeV`` (:class:`MultiGluon`)
``gg_4g``      ``g g -> g g g g`` at fixed ``sqrt(s_hat) = 1 TeV`` (:class:`MultiGluon`)
``gg_5g``      ``g g -> g g g g g`` at fixed ``sqrt(s_hat) = 1 TeV`` (:class:`MultiGluon`, exact colour)
=============  ===========================================================================================

Every process takes ``dtype`` (torch.float64 or torch.float32) and ``device`` and follows
:mod:`lhcchain.physics.process`: integrand weights and cross-sections in pb, momenta in GeV.

Matching Pythia 8.317 (the defaults do): the same PDF file (``PDF:pSet = LHAGrid1:<pdf.path>``),
the electroweak scheme of :class:`~lhcchain.physics.electroweak.ElectroweakParameters`, Pythia's
default running ``alpha_em`` (``SigmaProcess:alphaEMorder = 1``, :func:`alpha_em_pythia`) at Pythia's
renormalisation scale, and Pythia's factorisation scales:

* Drell-Yan (``WeakSingleBoson:ffbar2gmZ``, a 2 -> 1 process): ``muF^2 = muR^2 = s_hat``
  (``SigmaProcess:factorScale1 = renormScale1 = 1``).
* WBF (``HiggsSM:ff2Hff(t:WW)``/``(t:ZZ)``): ``muF^2 = sqrt(mT_V3^2 mT_V4^2)``
  (``factorScale3VV = 2``) and ``muR^2 = (mT_V3^2 mT_V4^2 mT_H^2)^(1/3)`` (``renormScale3VV = 3``),
  ``mT_Vi^2 = M_V^2 + pT_i^2`` with the jets' transverse momenta, ``mT_H^2 = M_H^2 + pT_H^2``;
  ``M_V = M_W`` for groups of subprocesses with W exchange only, ``M_Z`` for Z/photon exchange
  only, and ``M_W`` for groups where both interfere (``exchange='all'``, no Pythia counterpart).
"""

from __future__ import annotations

import functools
import inspect
import itertools
import math
import os
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

from ..config import check_renamed
from ..device import select_device
from ..errors import InputError
from .drell_yan import drell_yan_me2_flavours
from .electroweak import ElectroweakParameters, ZPrimeParameters, alpha_em_pythia
from .pdf import GridPDF, load_pdf
from .phasespace import (
    BreitWigner,
    Channel,
    HadronicMapping,
    LuminosityMapping,
    PowerLaw,
    Rambo,
    TChannel2to3,
    TPropagator,
    TwoBody,
)
from .kinematics import azimuth, delta_phi, minkowski_square, pair_mass, pseudorapidity, rapidity, transverse_momentum
from .process import Process, Subprocess, SubprocessGroup
from .wbf import WBFCoefficients, wbf_final_states, wbf_me2_coefficients, wbf_topologies

__all__ = [
    "DEFAULT_PDF",
    "DrellYan",
    "WBFHiggs",
    "MultiGluon",
    "PROCESSES",
    "process_names",
    "get_process",
]

#: Default PDF set: NNPDF3.1 LO (alpha_s(M_Z) = 0.118), shipped with Pythia 8 in its pdfdata folder.
DEFAULT_PDF = "NNPDF31_lo_as_0118"

#: PDG ids of the light quarks and antiquarks in the initial states (electroweak.QUARKS lists the
#: quark flavours 1..5 only).
QUARKS_AND_ANTIQUARKS = (-5, -4, -3, -2, -1, 1, 2, 3, 4, 5)

AlphaEM = str | float


@functools.lru_cache(maxsize=8)
def _cached_pdf(source: str) -> GridPDF:
    return load_pdf(source)


def _resolve_pdf(pdf: str | os.PathLike[str] | GridPDF) -> GridPDF:
    return pdf if isinstance(pdf, GridPDF) else _cached_pdf(os.fspath(pdf))


def _check_alpha_em(alpha_em: AlphaEM, name: str) -> AlphaEM:
    if isinstance(alpha_em, str):
        if alpha_em not in ("running", "fixed"):
            raise InputError(f"process {name!r}: alpha_em must be 'running', 'fixed' or a number, got {alpha_em!r}")
        return alpha_em
    if not float(alpha_em) > 0:
        raise InputError(f"process {name!r}: alpha_em must be positive, got {alpha_em}")
    return float(alpha_em)


def _alpha_em(alpha_em: AlphaEM, q2: Tensor, ew: ElectroweakParameters) -> float | Tensor:
    """``alpha_em`` per event: Pythia's running value at ``q2``, ``ew.alpha_em`` or the given number."""
    if alpha_em == "running":
        return alpha_em_pythia(q2, alpha_mz=ew.alpha_em)
    return ew.alpha_em if alpha_em == "fixed" else float(alpha_em)


def _cut_value(value: float | None) -> float | None:
    """The cut value as a float, or None (no cut) for None or +-inf."""
    return None if value is None or math.isinf(value) else float(value)


def _common(name: str, dtype: torch.dtype, device: str | torch.device) -> tuple[torch.dtype, torch.device]:
    if dtype not in (torch.float32, torch.float64):
        raise InputError(f"process {name!r}: dtype must be torch.float32 or torch.float64, got {dtype}")
    return dtype, torch.device(device)


# ----------------------------------------------------------------------------- Drell-Yan


class DrellYan(Process):
    """``p p -> gamma*/Z/Z' -> mu- mu+`` at ``sqrt_s`` (GeV, default 13000) with ``m_ll`` in
    ``[mll_min, mll_max]`` (GeV, default [60, 500]).

    Subprocesses ``q qbar`` and ``qbar q`` for the five light flavours (final state ``(13, -13)``,
    momenta ``[parton 1, parton 2, mu-, mu+]``), ``|M|^2`` from
    :func:`~lhcchain.physics.drell_yan.drell_yan_me2_flavours` (the closed form; the helicity-amplitude
    :func:`~lhcchain.physics.drell_yan.drell_yan_me2` is its test oracle). ``zprime``: True for the default
    :class:`ZPrimeParameters` (M = 400 GeV, Gamma = 0.5 GeV), a :class:`ZPrimeParameters`, or
    False/None for the Standard Model. Lepton cuts (both leptons): ``lepton_pt_min`` (GeV) and
    ``lepton_eta_max``; None disables a cut. ``alpha_em``: ``'running'`` (Pythia's default
    running at ``s_hat``), ``'fixed'`` (``ew.alpha_em``, Pythia's ``alphaEMorder = -1``) or a number.
    ``muF^2 = s_hat``.

    Channels (``s_hat`` = ``tau s`` sampled by the luminosity mapping, the lepton angles flat):
    ``photon`` (``1/s_hat``, i.e. 1/tau), ``Z`` (Breit-Wigner at M_Z) and, with a Z', ``Zprime``
    (Breit-Wigner at its mass); priors ``1/s_hat^2``, ``1/|D_Z(s_hat)|^2``, ``1/|D_Z'(s_hat)|^2``
    (the propagators, width scheme of ``ew.running_width``).
    """

    def __init__(
        self,
        *,
        sqrt_s: float = 13000.0,
        pdf: str | os.PathLike[str] | GridPDF = DEFAULT_PDF,
        mll_min: float = 60.0,
        mll_max: float = 500.0,
        zprime: bool | ZPrimeParameters | None = True,
        lepton_pt_min: float | None = None,
        lepton_eta_max: float | None = None,
        ew: ElectroweakParameters | None = None,
        alpha_em: AlphaEM = "running",
        dtype: torch.dtype = torch.float64,
        device: str | torch.device = "cpu",
    ) -> None:
        self.name = "drell_yan"
        self.dtype, self.device = _common(self.name, dtype, device)
        self.hadronic = True
        self.sqrt_s = float(sqrt_s)
        self.n_out = 2
        if not 0 < mll_min < mll_max <= self.sqrt_s:
            raise InputError(f"drell_yan needs 0 < mll_min < mll_max <= sqrt_s, got {mll_min}, {mll_max}, {sqrt_s}")
        self.mll_min, self.mll_max = float(mll_min), float(mll_max)
        self.ew = ew or ElectroweakParameters()
        if zprime is True:
            zprime = ZPrimeParameters()
        self.zprime = zprime or None
        self.lepton_pt_min = _cut_value(lepton_pt_min)
        self.lepton_eta_max = _cut_value(lepton_eta_max)
        self.alpha_em = _check_alpha_em(alpha_em, self.name)
        self.pdf = _resolve_pdf(pdf)

        lepton = (13, -13)
        self.subprocesses = tuple(
            Subprocess((q, -q), lepton) for q in QUARKS_AND_ANTIQUARKS if q > 0
        ) + tuple(Subprocess((-q, q), lepton) for q in QUARKS_AND_ANTIQUARKS if q > 0)
        groups: dict[int, list[int]] = {}
        for k, sub in enumerate(self.subprocesses):
            # |M|^2 depends on the beam-1 flavour only through up/down type and quark/antiquark.
            rep = int(math.copysign(2 if abs(sub.initial[0]) % 2 == 0 else 1, sub.initial[0]))
            groups.setdefault(rep, []).append(k)
        self.groups = tuple(
            SubprocessGroup(Subprocess((rep, -rep), lepton), tuple(m), (1.0,) * len(m)) for rep, m in groups.items()
        )

        e_beam = self.sqrt_s / 2
        s_range = (self.mll_min**2, self.mll_max**2)
        ew_ = self.ew

        def s_hat(p: Tensor) -> Tensor:
            return minkowski_square(p[:, 2] + p[:, 3])

        def propagator2(mass: float, width: float) -> Callable[[Tensor], Tensor]:
            def prior(p: Tensor) -> Tensor:
                s = s_hat(p)
                gamma = s * width / mass if ew_.running_width else mass * width
                return 1.0 / ((s - mass**2) ** 2 + gamma**2)

            return prior

        def channel(name: str, mapping, prior) -> Channel:
            lum = LuminosityMapping(e_beam, e_beam, *s_range, mapping=mapping)
            return Channel(name, HadronicMapping(TwoBody((0.0, 0.0)), lum), prior)

        channels = [
            channel("photon", PowerLaw(1.0, s_range[0]), lambda p: 1.0 / s_hat(p) ** 2),
            channel("Z", BreitWigner(ew_.mz, ew_.gamma_z), propagator2(ew_.mz, ew_.gamma_z)),
        ]
        if self.zprime is not None:
            zp = self.zprime
            channels.append(channel("Zprime", BreitWigner(zp.mass, zp.width), propagator2(zp.mass, zp.width)))
        self.channels = tuple(channels)
        self._finish()

    def factorisation_scales2(self, momenta: Tensor) -> Tensor:
        return minkowski_square(momenta[:, 0] + momenta[:, 1]).unsqueeze(-1)

    def _alpha(self, momenta: Tensor) -> float | Tensor:
        return _alpha_em(self.alpha_em, minkowski_square(momenta[:, 0] + momenta[:, 1]), self.ew)

    def group_matrix_elements(self, momenta: Tensor) -> Tensor:
        alpha = self._alpha(momenta)
        flavours = [g.representative.initial[0] for g in self.groups]
        return drell_yan_me2_flavours(momenta, flavours, self.ew, self.zprime, alpha_em=alpha)

    def subprocess_matrix_element(self, momenta: Tensor, index: int) -> Tensor:
        flavour = self.subprocesses[index].initial[0]
        return drell_yan_me2_flavours(momenta, [flavour], self.ew, self.zprime, alpha_em=self._alpha(momenta))[:, 0]

    def cuts(self, momenta: Tensor) -> Tensor:
        leptons = momenta[:, 2:4]
        m_ll = pair_mass(momenta[:, 2], momenta[:, 3])
        ok = (m_ll >= self.mll_min) & (m_ll <= self.mll_max)
        if self.lepton_pt_min is not None:
            ok = ok & (transverse_momentum(leptons) > self.lepton_pt_min).all(-1)
        if self.lepton_eta_max is not None:
            ok = ok & (pseudorapidity(leptons).abs() < self.lepton_eta_max).all(-1)
        return ok


# ----------------------------------------------------------------------------- WBF


class WBFHiggs(Process):
    """``p p -> q q' H`` by W/Z fusion (t-channel only) with ``f_WWt / Lambda^2 = f_wwt`` (TeV^-2).

    Subprocesses: every quark/antiquark pair ``(id1, id2)`` of the five light flavours and the final
    states of :func:`~lhcchain.physics.wbf.wbf_final_states` (symmetry factor 1/2 for identical
    quarks); momenta ``[q1, q2, j1, j2, H]`` with ``j1``, ``j2`` the outgoing quarks in the order
    the subprocess lists them. ``exchange``: ``'all'`` (W and Z/photon fusion with their
    interference), ``'charged'`` (W only, Pythia's ``t:WW``) or ``'neutral'`` (Z/photon only,
    Pythia's ``t:ZZ``). ``|M|^2 = A + f B + f^2 C`` from
    :func:`~lhcchain.physics.wbf.wbf_me2_coefficients`; :meth:`coefficients` and :meth:`score` give
    the PDF-weighted ``A, B, C`` and the score ``B/A`` (TeV^2) at hadron level.

    Cuts on both jets (the outgoing quarks): ``jet_pt_min`` (GeV, default 20), ``jet_eta_max``
    (default 5), optional ``m_jj_min`` (GeV), ``delta_y_min`` (``|y_j1 - y_j2|``) and
    ``opposite_hemispheres`` (``y_j1 y_j2 < 0``); None disables a cut. Without cuts the SM
    cross-section is finite (massive t-channel propagators), ``C`` is not (photon exchange).

    Channels: ``WW_A``, ``WW_B`` (W exchange), ``ZZ_A``, ``ZZ_B`` (Z exchange), as present for
    ``exchange``: :class:`TChannel2to3` with ``t1 = (p_a - p_j1)^2``, ``t2 = (p_b - p_j2)^2`` (A) or
    ``t1 = (p_a - p_j2)^2``, ``t2 = (p_b - p_j1)^2`` (B), both drawn ~ ``1/(M_V^2 - t)^t_power``
    (default 2, the squared propagator), the mass^2 of H plus the jet on beam 2's line ~ ``1/s^s_power``
    (default 1; 0 = flat), ``s_hat`` ~ 1/tau above ``(M_H + 2 jet_pt_min)^2`` (a bound, since
    ``sqrt(s_hat) >= sum of transverse masses``); priors ``1/((t1 - M_V^2)^2 (t2 - M_V^2)^2)``.
    Defaults: ``sqrt_s = 13000`` GeV, ``f_wwt = 0``, ``exchange = 'all'``.

    CP-odd observable and sign convention: :meth:`jet_observables` gives
    ``delta_phi_jj = phi(forward jet) - phi(backward jet)`` (forward = larger rapidity). With the
    ``eps_{0123} = +1`` convention of :mod:`lhcchain.physics.wbf`, the score and the interference
    ``B`` are *anti*-correlated with ``pT_j1 pT_j2 sin(delta_phi_jj)``, i.e. positively correlated
    with ``pT_j1 pT_j2 sin(phi(backward jet) - phi(forward jet))``.
    """

    def __init__(
        self,
        *,
        sqrt_s: float = 13000.0,
        pdf: str | os.PathLike[str] | GridPDF = DEFAULT_PDF,
        f_wwt: float = 0.0,
        exchange: str = "all",
        jet_pt_min: float | None = 20.0,
        jet_eta_max: float | None = 5.0,
        m_jj_min: float | None = None,
        delta_y_min: float | None = None,
        opposite_hemispheres: bool = False,
        t_power: float = 2.0,
        s_power: float = 1.0,
        ew: ElectroweakParameters | None = None,
        alpha_em: AlphaEM = "running",
        dtype: torch.dtype = torch.float64,
        device: str | torch.device = "cpu",
    ) -> None:
        self.name = "wbf_higgs"
        self.dtype, self.device = _common(self.name, dtype, device)
        if exchange not in ("all", "charged", "neutral"):
            raise InputError(f"wbf_higgs: exchange must be 'all', 'charged' or 'neutral', got {exchange!r}")
        self.hadronic = True
        self.sqrt_s = float(sqrt_s)
        self.n_out = 3
        self.ew = ew or ElectroweakParameters()
        self.f_wwt = float(f_wwt)
        self.exchange = exchange
        self.jet_pt_min = _cut_value(jet_pt_min)
        self.jet_eta_max = _cut_value(jet_eta_max)
        self.m_jj_min = _cut_value(m_jj_min)
        self.delta_y_min = _cut_value(delta_y_min)
        self.opposite_hemispheres = bool(opposite_hemispheres)
        self.alpha_em = _check_alpha_em(alpha_em, self.name)
        self.pdf = _resolve_pdf(pdf)
        ew_ = self.ew

        subprocesses = []
        for id1, id2 in itertools.product(QUARKS_AND_ANTIQUARKS, QUARKS_AND_ANTIQUARKS):
            for id3, id4, sym in wbf_final_states(id1, id2, ew_, exchange):
                subprocesses.append(Subprocess((id1, id2), (id3, id4, 25), sym))
        self.subprocesses = tuple(subprocesses)

        # Group subprocesses whose |M|^2 agree up to a constant: same quark/antiquark and up/down
        # pattern, same topologies, proportional coupling vectors (CKM products).
        keyed: dict[tuple, list[tuple[int, float]]] = {}
        for k, sub in enumerate(self.subprocesses):
            fl = (*sub.initial, *sub.final[:2])
            tops = wbf_topologies(fl, ew_, exchange)
            norm2 = sum(t[3] ** 2 for t in tops)
            pattern = tuple((f > 0, abs(f) % 2) for f in fl)
            direction = tuple(round(t[3] / math.sqrt(norm2), 9) for t in tops)
            key = (pattern, tuple(t[:3] for t in tops), direction)
            keyed.setdefault(key, []).append((k, norm2))
        masses: list[float] = []
        groups = []
        for key, members in keyed.items():
            rep_norm2 = members[0][1]
            kinds = {t[0] for t in key[1]}
            mass = ew_.mz if kinds == {"neutral"} else ew_.mw
            if mass not in masses:
                masses.append(mass)
            groups.append(
                SubprocessGroup(
                    self.subprocesses[members[0][0]],
                    tuple(k for k, _ in members),
                    tuple(n2 / rep_norm2 for _, n2 in members),
                    masses.index(mass),
                )
            )
        self.groups = tuple(groups)
        self.scale_masses = tuple(masses)
        """Boson mass (GeV) of each factorisation/renormalisation scale column."""
        self._all_coefficients = WBFCoefficients(
            [(*g.representative.initial, *g.representative.final[:2]) for g in self.groups], ew_, exchange
        )
        self._group_scales = torch.tensor([g.scale for g in self.groups], dtype=torch.long)

        e_beam = self.sqrt_s / 2
        s_min = (ew_.mh + 2.0 * (self.jet_pt_min or 0.0)) ** 2
        if s_min >= self.sqrt_s**2:
            raise InputError(f"wbf_higgs: no phase space: (M_H + 2 jet_pt_min)^2 = {s_min} GeV^2 >= s")

        def prior(mass: float, i: int, j: int) -> Callable[[Tensor], Tensor]:
            def f(p: Tensor) -> Tensor:
                t1 = minkowski_square(p[:, 0] - p[:, 2 + i])
                t2 = minkowski_square(p[:, 1] - p[:, 2 + j])
                return 1.0 / ((t1 - mass**2) ** 2 * (t2 - mass**2) ** 2)

            return f

        bosons = []
        if exchange in ("all", "charged"):
            bosons.append(("WW", ew_.mw))
        if exchange in ("all", "neutral"):
            bosons.append(("ZZ", ew_.mz))
        channels = []
        for label, mass in bosons:
            for topo, legs in (("A", (0, 1, 2)), ("B", (1, 0, 2))):
                prop = TPropagator(mass, t_power)
                s_map = PowerLaw(s_power, ew_.mh**2) if s_power > 0 else None
                partonic = TChannel2to3((0.0, 0.0, ew_.mh), prop, prop, s_mapping=s_map, legs=legs)
                lum = LuminosityMapping(e_beam, e_beam, s_min, mapping=PowerLaw(1.0, s_min))
                mapping = HadronicMapping(partonic, lum)
                channels.append(Channel(f"{label}_{topo}", mapping, prior(mass, legs[0], legs[1])))
        self.channels = tuple(channels)
        self._finish()

    # ------------------------------------------------------------------ scales

    def _scale_inputs(self, momenta: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``pT_j1^2``, ``pT_j2^2`` of the jets and ``mT_H^2 = M_H^2 + pT_H^2`` (GeV^2)."""
        pt3 = transverse_momentum(momenta[:, 2]) ** 2
        pt4 = transverse_momentum(momenta[:, 3]) ** 2
        mth = self.ew.mh**2 + transverse_momentum(momenta[:, 4]) ** 2
        return pt3, pt4, mth

    def factorisation_scales2(self, momenta: Tensor) -> Tensor:
        pt3, pt4, _ = self._scale_inputs(momenta)
        return torch.stack([torch.sqrt((m**2 + pt3) * (m**2 + pt4)) for m in self.scale_masses], -1)

    def renormalisation_scales2(self, momenta: Tensor) -> Tensor:
        """``muR^2 = (mT_V3^2 mT_V4^2 mT_H^2)^(1/3)`` per scale column, shape ``(batch, n_scales)``."""
        pt3, pt4, mth = self._scale_inputs(momenta)
        return torch.stack([((m**2 + pt3) * (m**2 + pt4) * mth) ** (1.0 / 3.0) for m in self.scale_masses], -1)

    # ------------------------------------------------------------------ matrix elements

    def _coefficients(self, momenta: Tensor, flavours: tuple[int, ...], scale: int, mu_r2: Tensor) -> Tensor:
        alpha = _alpha_em(self.alpha_em, mu_r2[:, scale], self.ew)
        a, b, c = wbf_me2_coefficients(momenta, flavours, self.ew, exchange=self.exchange, alpha_em=alpha)
        return torch.stack([a, b, c], -1)

    def group_coefficients(self, momenta: Tensor) -> Tensor:
        """Bare ``(A, B, C)`` of each group's representative: shape ``(batch, n_groups, 3)``.

        All groups in one :class:`~lhcchain.physics.wbf.WBFCoefficients` call (spinors, currents
        and bilinears shared; ``alpha_em`` once per scale column)."""
        mu_r2 = self.renormalisation_scales2(momenta)
        if self.alpha_em == "running":
            alpha = _alpha_em(self.alpha_em, mu_r2, self.ew)[:, self._group_scales.to(momenta.device)]
        else:
            alpha = _alpha_em(self.alpha_em, mu_r2, self.ew)
        return self._all_coefficients(momenta, alpha)

    def coefficients(self, momenta: Tensor, x1: Tensor | None = None, x2: Tensor | None = None) -> Tensor:
        """PDF- and symmetry-weighted ``(A, B, C)``, shape ``(batch, 3)``: ``matrix_element = A + f B + f^2 C``
        (``x1``, ``x2`` as in :meth:`Process.matrix_element`)."""
        self._check_momenta(momenta)
        return (self.group_weights(momenta, x1, x2).unsqueeze(-1) * self.group_coefficients(momenta)).sum(1)

    def _combine(self, abc: Tensor) -> Tensor:
        f = self.f_wwt
        return abc[..., 0] + f * abc[..., 1] + f * f * abc[..., 2]

    def group_matrix_elements(self, momenta: Tensor) -> Tensor:
        return self._combine(self.group_coefficients(momenta))

    def subprocess_matrix_element(self, momenta: Tensor, index: int) -> Tensor:
        sub = self.subprocesses[index]
        scale = next(g.scale for g in self.groups if index in g.members)
        abc = self._coefficients(momenta, (*sub.initial, *sub.final[:2]), scale, self.renormalisation_scales2(momenta))
        return self._combine(abc)

    def score(self, momenta: Tensor, x1: Tensor | None = None, x2: Tensor | None = None) -> Tensor:
        """Hadron-level score ``d log(dsigma/dPhi) / d f`` at ``f = 0``: ``sum B / sum A`` (TeV^2), shape ``(batch,)``.

        (The cross-section term ``-d log(sigma)/df`` vanishes at the SM only if B integrates to
        zero, i.e. for parity-even cuts such as the defaults: B is parity-odd. Cuts that are not
        parity-even, e.g. on ``delta_phi_jj``, need that term.)
        """
        abc = self.coefficients(momenta, x1, x2)
        return abc[:, 1] / abc[:, 0]

    # ------------------------------------------------------------------ observables and cuts

    @staticmethod
    def jet_observables(momenta: Tensor) -> dict[str, Tensor]:
        """``m_jj``, ``delta_y`` (``|y_j1 - y_j2|``), ``pt1``, ``pt2``, ``delta_phi`` (``phi(forward) -
        phi(backward)`` in [-pi, pi), forward = larger rapidity) and ``cp_odd`` = ``pt1 pt2 sin(delta_phi)``."""
        j1, j2 = momenta[:, 2], momenta[:, 3]
        y1, y2 = rapidity(j1), rapidity(j2)
        phi1, phi2 = azimuth(j1), azimuth(j2)
        dphi = torch.where(y1 > y2, delta_phi(phi1, phi2), delta_phi(phi2, phi1))
        pt1, pt2 = transverse_momentum(j1), transverse_momentum(j2)
        return {
            "m_jj": pair_mass(j1, j2),
            "delta_y": (y1 - y2).abs(),
            "pt1": pt1,
            "pt2": pt2,
            "delta_phi": dphi,
            "cp_odd": pt1 * pt2 * torch.sin(dphi),
        }

    def cuts(self, momenta: Tensor) -> Tensor:
        jets = momenta[:, 2:4]
        ok = torch.ones(momenta.shape[0], dtype=torch.bool, device=momenta.device)
        if self.jet_pt_min is not None:
            ok = ok & (transverse_momentum(jets) > self.jet_pt_min).all(-1)
        if self.jet_eta_max is not None:
            ok = ok & (pseudorapidity(jets).abs() < self.jet_eta_max).all(-1)
        if self.m_jj_min is not None:
            ok = ok & (pair_mass(jets[:, 0], jets[:, 1]) > self.m_jj_min)
        y = rapidity(jets)
        if self.delta_y_min is not None:
            ok = ok & ((y[:, 0] - y[:, 1]).abs() > self.delta_y_min)
        if self.opposite_hemispheres:
            ok = ok & (y[:, 0] * y[:, 1] < 0)
        return ok


# ----------------------------------------------------------------------------- gg -> n g


class MultiGluon(Process):
    """``g g -> n_gluons g`` at a fixed partonic ``sqrt_s`` (GeV, default 1000), tree level.

    ``|M|^2`` from :func:`lhcchain.physics.gluons.gluon_matrix_element` (``colour='full'``: exact
    SU(3) colour sum, or ``'leading'``) at fixed ``alpha_s``; symmetry factor ``1/n_gluons!``.
    Cuts on every outgoing gluon: ``pt_min`` (GeV, default 20), ``eta_max`` (default 5) and
    ``delta_r_min`` (default 0.4, ``Delta R^2 = Delta eta^2 + Delta phi^2`` between all pairs).
    One channel, ``rambo`` (flat massless phase space), prior 1.
    """

    def __init__(
        self,
        n_gluons: int,
        *,
        sqrt_s: float = 1000.0,
        alpha_s: float = 0.118,
        pt_min: float | None = 20.0,
        eta_max: float | None = 5.0,
        delta_r_min: float | None = 0.4,
        colour: str = "full",
        dtype: torch.dtype = torch.float64,
        device: str | torch.device = "cpu",
    ) -> None:
        self.name = f"gg_{n_gluons}g"
        self.dtype, self.device = _common(self.name, dtype, device)
        if n_gluons < 2:
            raise InputError(f"MultiGluon needs n_gluons >= 2, got {n_gluons}")
        if colour not in ("full", "leading"):
            raise InputError(f"{self.name}: colour must be 'full' or 'leading', got {colour!r}")
        if not alpha_s > 0 or not sqrt_s > 0:
            raise InputError(f"{self.name}: alpha_s and sqrt_s must be positive, got {alpha_s}, {sqrt_s}")
        self.hadronic = False
        self.pdf = None
        self.sqrt_s = float(sqrt_s)
        self.n_out = int(n_gluons)
        self.alpha_s = float(alpha_s)
        self.colour = colour
        self.pt_min = _cut_value(pt_min)
        self.eta_max = _cut_value(eta_max)
        self.delta_r_min = _cut_value(delta_r_min)
        sub = Subprocess((21, 21), (21,) * self.n_out, 1.0 / math.factorial(self.n_out))
        self.subprocesses = (sub,)
        self.groups = (SubprocessGroup(sub, (0,), (1.0,)),)
        self.channels = (Channel("rambo", Rambo(self.n_out, self.sqrt_s), 1.0),)
        self._finish()

    def _me2(self, momenta: Tensor) -> Tensor:
        from .gluons import gluon_matrix_element  # imported on use: the module is heavy

        return gluon_matrix_element(momenta, self.alpha_s, colour=self.colour)

    def group_matrix_elements(self, momenta: Tensor) -> Tensor:
        return self._me2(momenta).unsqueeze(-1)

    def subprocess_matrix_element(self, momenta: Tensor, index: int) -> Tensor:
        return self._me2(momenta)

    def cuts(self, momenta: Tensor) -> Tensor:
        out = momenta[:, 2:]
        ok = torch.ones(momenta.shape[0], dtype=torch.bool, device=momenta.device)
        if self.pt_min is not None:
            ok = ok & (transverse_momentum(out) > self.pt_min).all(-1)
        eta = pseudorapidity(out)
        if self.eta_max is not None:
            ok = ok & (eta.abs() < self.eta_max).all(-1)
        if self.delta_r_min is not None:
            phi = azimuth(out)
            i, j = torch.triu_indices(self.n_out, self.n_out, 1, device=momenta.device)
            deta = eta[:, i] - eta[:, j]
            dr2 = torch.where(torch.isfinite(deta), deta, torch.full_like(deta, math.inf)) ** 2
            dr2 = dr2 + delta_phi(phi[:, i], phi[:, j]) ** 2
            ok = ok & (dr2 > self.delta_r_min**2).all(-1)
        return ok


# ----------------------------------------------------------------------------- registry

PROCESSES: dict[str, Callable[..., Process]] = {
    "drell_yan": DrellYan,
    "wbf_higgs": WBFHiggs,
    "gg_3g": functools.partial(MultiGluon, 3),
    "gg_4g": functools.partial(MultiGluon, 4),
    "gg_5g": functools.partial(MultiGluon, 5),
}


def process_names() -> tuple[str, ...]:
    """Names :func:`get_process` accepts."""
    return tuple(PROCESSES)


def _options(factory: Callable[..., Process]) -> list[str]:
    target = factory.func if isinstance(factory, functools.partial) else factory
    params = inspect.signature(target).parameters.values()
    return [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]


def get_process(name: str, **options) -> Process:
    """The process ``name`` (one of :func:`process_names`) built with keyword ``options``
    (those of its class, e.g. ``dtype``, ``device``, ``sqrt_s``, ``pdf``, cuts).

    Raises :class:`~lhcchain.errors.InputError` for an unknown name (listing the valid ones), a
    renamed option (naming the new one) or an unknown option (listing the process's options).
    """
    if name not in PROCESSES:
        raise InputError(f"unknown process {name!r}; valid names: {', '.join(PROCESSES)}")
    check_renamed(options, f"process {name!r}")
    factory = PROCESSES[name]
    allowed = _options(factory)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise InputError(f"process {name!r} got unknown option(s) {', '.join(unknown)}; valid: {', '.join(allowed)}")
    return factory(**options)


def build_process(spec: Mapping[str, Any], device: str = "auto", threads: int | None = None) -> Process:
    """The physics-core :class:`~lhcchain.physics.process.Process` of a ``processes.<name>`` entry.

    ``options.dtype`` is ``float32`` or ``float64`` (default); ``options.zprime`` is a bool or
    ``{mass, width, scale}`` (scale: couplings relative to the SM Z); ``device`` as in
    :func:`lhcchain.device.select_device`.
    """
    options = dict(spec.get("options", {}))
    options["dtype"] = getattr(torch, options.get("dtype", "float64"))
    if isinstance(options.get("zprime"), Mapping):
        options["zprime"] = ZPrimeParameters.sm_like(**options["zprime"])
    options["device"] = select_device(device, threads)
    return get_process(spec["process"], **options)
