"""Weak-boson-fusion Higgs production ``q q' -> q q' H`` with a CP-odd dimension-6 operator.

Momenta ``(batch, 5, 4)`` ordered ``[q1, q2, q1', q2', H]`` (beam-1 parton first); flavours
``(id1, id2, id3, id4)``, PDG ids of quarks or antiquarks ``+-1..+-5`` (massless; no top).
Only t-channel diagrams are included (as in Pythia's ``HiggsSM:ff2Hff(t:WW)``/``(t:ZZ)``):
topology A joins fermion lines ``1 -> 3`` and ``2 -> 4``, topology B ``1 -> 4`` and ``2 -> 3``
(relative fermion sign -1, colour interference factor 1/3); a line exchanges Z (and photon, see
below) if it keeps its flavour, a W if it changes it (``|V_CKM|`` from ``ew.ckm``). Both
topologies and their interference are kept whenever the flavours allow them (``u d -> u d H``:
Z fusion in A, W fusion in B; ``u u -> u u H``: Z fusion in both). s-channel
(Higgs-strahlung-like) diagrams of ``q qbar`` initial states are not included. Spacelike
propagators carry no width with ``ew.running_width=True``. Final-state symmetry factors are not
included (:func:`wbf_final_states` lists them).

Operator (the normalisation of Butter, Plehn, Soybelman, Brehmer, "Back to the formula -- LHC
edition"): ``L = L_SM + (f_WWt / Lambda^2) O_WWt`` with
``O_WWt = -(Phi^+ Phi) Wtilde^k_{mu nu} W^{k mu nu}``, ``Wtilde^{mu nu} = eps^{mu nu rho sigma}
W_{rho sigma} / 2``, ``eps_{0123} = +1``. (In the HISZ normalisation of Hagiwara et al.,
PRD 48 (1993) 2182, ``O_WWt = Phi^+ What Wtildehat Phi = -(g^2/4)(Phi^+ Phi) W Wtilde``, so
``f_HISZ = (4/g^2) f`` here.) With ``Phi^+ Phi -> v h``, ``v = 2 M_W / g`` and
``W^3 = cos Z + sin A`` the Feynman rules (all momenta incoming, ``k1`` on the boson with index mu) are
``H V1^mu(k1) V2^nu(k2): -4 i v (f_WWt/Lambda^2) N eps^{mu nu rho sigma} k1_rho k2_sigma``
with ``N = 1`` for ``W+ W-``, ``cos^2`` for ``ZZ``, ``sin cos`` for ``Z gamma``, ``sin^2`` for
``gamma gamma``. The vacuum expectation value is taken as ``v = 2 M_W / g`` (with ``g = e / sin``,
``sin^2 = ew.sin2_theta_w``) for every vertex, Z fusion included; since ``M_W != M_Z cos`` in this
scheme (80.385 vs 79.95 GeV), ``B/A`` of Z fusion differs by ``M_Z cos / M_W = 0.9947`` from a
scheme that takes ``v = 2 M_Z cos / g``. All four are included: a neutral line couples to the operator through
``cos J_Z + sin J_gamma`` (Z and photon propagators), so WBF gets ZZ, Z-gamma and gamma-gamma
fusion at order f. The SM vertices are ``i g M_W g^{mu nu}`` and ``i g M_Z/cos g^{mu nu}``.

``|M|^2(f) = A + f B + f^2 C`` exactly, ``f = f_WWt / Lambda^2`` in TeV^-2; the score at the
SM is ``t = B / A`` (TeV^2). The sign of B is tied to ``eps_{0123} = +1``: with it the score
anticorrelates with ``p_T1 p_T2 sin(Delta phi_jj)``, ``Delta phi_jj = phi(forward jet) -
phi(backward jet)`` (forward = larger rapidity); the opposite convention flips B, i.e. f. The photon propagators make C grow like ``1/p_T^2`` of a jet (gamma-gamma and Z-gamma
fusion), so integrals of C need jet p_T cuts; A and B are finite.

Differences from Pythia 8.3 (``Sigma3ff2HfftZZ/WW``), which the SM part otherwise reproduces:
Pythia uses the quark-quark kinematic products also for antiquark lines (exact here; for
``q qbar`` the exact result is lower by up to ~10% at ``sqrt(s) = 300`` GeV, 2-3% at 500 GeV and
< 0.5% above 1 TeV), keeps only topology A (no W-Z or t-u interference, no 1/2 for identical
quarks) and gives the Higgs a Breit-Wigner mass truncated at +-50 widths (0.6% below an on-shell
Higgs).
"""

from __future__ import annotations

import itertools
import math
from typing import Literal

import torch

from ..errors import InputError
from .electroweak import (
    QUARKS,
    ElectroweakParameters,
    charge,
    ckm_modulus,
    photon_coupling,
    w_coupling,
    weak_coupling,
    z_chiral_couplings,
)
from .helicity import (
    chiral_currents,
    chiral_spinors,
    complex_dtype,
    dirac_bar,
    epsilon_two_form,
    minkowski_dot,
    scale_chiral,
    vector_propagator,
)

#: ``f_WWt / Lambda^2`` is given in TeV^-2; this converts it to GeV^-2.
TEV2_TO_GEV2 = 1.0e-6

Exchange = Literal["all", "neutral", "charged"]
Flavours = tuple[int, int, int, int]


def _signed_charge(pdg: int) -> float:
    return charge(pdg) if pdg > 0 else -charge(pdg)


def _line(pdg_in: int, pdg_out: int, ew: ElectroweakParameters) -> tuple[str, float] | None:
    """``('neutral', 1)`` (same flavour), ``('charged', |V|)`` (W transition with ``|V| > 0``) or None."""
    if pdg_in == pdg_out:
        return "neutral", 1.0
    v = ckm_modulus(pdg_in, pdg_out, ew) if pdg_in * pdg_out > 0 else 0.0
    return ("charged", v) if v > 0 else None


def wbf_topologies(
    flavours: Flavours, ew: ElectroweakParameters, exchange: Exchange = "all"
) -> list[tuple[str, int, int, float]]:
    """The t-channel topologies of ``flavours`` allowed by ``exchange``: ``(kind, out1, out2, coupling)``.

    Topology A has ``(out1, out2) = (2, 3)`` (lines ``1 -> 3``, ``2 -> 4``), B ``(3, 2)``. A line
    keeps its flavour (``'neutral'``, Z/photon exchange, coupling factor 1) or changes it by a W
    (``'charged'``, factor ``|V_CKM|``); both lines of a topology must be of the same kind.
    ``coupling`` is the product of the two lines' factors.
    """
    out = []
    for o1, o2 in ((2, 3), (3, 2)):
        l1, l2 = _line(flavours[0], flavours[o1], ew), _line(flavours[1], flavours[o2], ew)
        if l1 is not None and l2 is not None and l1[0] == l2[0] and exchange in ("all", l1[0]):
            out.append((l1[0], o1, o2, l1[1] * l2[1]))
    return out


def _topologies(flavours: Flavours, ew: ElectroweakParameters, exchange: Exchange) -> list[tuple[str, int, int]]:
    """``(kind, out1, out2)`` of :func:`wbf_topologies`."""
    return [t[:3] for t in wbf_topologies(flavours, ew, exchange)]


def _check(momenta: torch.Tensor, flavours: Flavours, exchange: str, ew: ElectroweakParameters) -> Flavours:
    if momenta.ndim != 3 or momenta.shape[1:] != (5, 4):
        raise InputError(f"WBF momenta must have shape (batch, 5, 4), got {tuple(momenta.shape)}")
    fl = tuple(int(f) for f in flavours)
    if len(fl) != 4 or any(abs(f) not in QUARKS for f in fl):
        raise InputError(f"WBF flavours must be four PDG quark ids +-1..+-5, got {flavours}")
    if exchange not in ("all", "neutral", "charged"):
        raise InputError(f"WBF exchange must be 'all', 'neutral' or 'charged', got {exchange!r}")
    q = [_signed_charge(f) for f in fl]
    quarks = [1 if f > 0 else -1 for f in fl]
    if abs(q[0] + q[1] - q[2] - q[3]) > 1e-9 or quarks[0] + quarks[1] != quarks[2] + quarks[3]:
        raise InputError(f"WBF flavours {fl} violate charge or quark-number conservation")
    if not _topologies(fl, ew, "all"):
        raise InputError(f"no t-channel W/Z diagram connects WBF flavours {fl}")
    return fl  # type: ignore[return-value]


def _per_event(x: float | torch.Tensor, ndim: int) -> float | torch.Tensor:
    """Reshape a ``(batch,)`` tensor to ``(batch, 1, ..., 1)`` with ``ndim`` axes; floats pass through."""
    return x.reshape(x.shape + (1,) * (ndim - x.ndim)) if isinstance(x, torch.Tensor) else x


def _amplitudes(
    momenta: torch.Tensor,
    flavours: Flavours,
    ew: ElectroweakParameters,
    exchange: Exchange,
    alpha_em: float | torch.Tensor | None,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per allowed topology: (SM amplitude, EFT amplitude per unit f in TeV^-2), each
    ``(batch, 2, 2)`` over the chiralities ``[L, R]`` of the lines of particles 1 and 2;
    topology B carries its fermion sign -1."""
    p = momenta
    alpha_em = ew.alpha_em if alpha_em is None else alpha_em
    if isinstance(alpha_em, torch.Tensor):
        alpha_em = alpha_em.to(p.dtype)
    spin = [chiral_spinors(p[:, i], antifermion=flavours[i] < 0) for i in range(4)]
    g = weak_coupling(alpha_em, ew)
    sw, cw = ew.sin_theta_w, ew.cos_theta_w
    eft_coupling = _per_event(-4.0 * (2.0 * ew.mw / g) * TEV2_TO_GEV2, 3)  # -4 v f, v = 2 M_W / g
    out = []
    for kind, o1, o2 in _topologies(flavours, ew, exchange):
        sm_cur, eft_cur, ks = [], [], []
        for i, o in ((0, o1), (1, o2)):
            # Quark line ubar(out) ... u(in); antiquark line vbar(in) ... v(out).
            bar, ket = (spin[o], spin[i]) if flavours[i] > 0 else (spin[i], spin[o])
            j = chiral_currents(dirac_bar(bar), ket)
            k = p[:, i] - p[:, o]
            kb = k[:, None, :]
            if kind == "neutral":
                jz = scale_chiral(j, *z_chiral_couplings(flavours[i], ew, alpha_em))
                jz = vector_propagator(jz, kb, ew.mz, ew.gamma_z, ew.running_width)
                eq = photon_coupling(flavours[i], ew, alpha_em)
                ja = vector_propagator(scale_chiral(j, eq, eq), kb, 0.0)
                sm_cur.append(jz)
                eft_cur.append(cw * jz + sw * ja)
            else:
                gw = w_coupling(flavours[i], flavours[o], ew, alpha_em)
                jw = vector_propagator(scale_chiral(j, gw, 0.0 * gw), kb, ew.mw, ew.gamma_w, ew.running_width)
                sm_cur.append(jw)
                eft_cur.append(jw)
            ks.append(k)
        g_hvv = _per_event(g * (ew.mz / cw if kind == "neutral" else ew.mw), 3)
        sm = g_hvv * minkowski_dot(sm_cur[0][:, :, None, :], sm_cur[1][:, None, :, :])
        # eps_{mu nu rho sigma} J1^mu J2^nu k1^rho k2^sigma for every pair of line chiralities.
        form = epsilon_two_form(ks[0], ks[1]).to(eft_cur[0].dtype)
        eft = eft_coupling * torch.einsum("bxm,bmn,byn->bxy", eft_cur[0], form, eft_cur[1])
        sign = 1.0 if o1 == 2 else -1.0
        out.append((sign * sm, sign * eft))
    return out


def _colour_spin_sum(x: list[torch.Tensor], y: list[torch.Tensor]) -> torch.Tensor:
    """``Re sum_hel sum_colour x y^*`` averaged over initial spins and colours (topologies A, B).

    Topologies A and B interfere (colour factor 1/3 relative) only when both lines have the
    same chirality, i.e. on the diagonal of the ``[L, R] x [L, R]`` chirality axes.
    """
    total = sum((xa * ya.conj()).real.sum((1, 2)) for xa, ya in zip(x, y))
    if len(x) == 2:
        cross = x[0] * y[1].conj() + x[1] * y[0].conj()
        total = total + cross.diagonal(dim1=1, dim2=2).real.sum(-1) / 3.0
    return total / 4.0


def wbf_me2_coefficients(
    momenta: torch.Tensor,
    flavours: Flavours,
    ew: ElectroweakParameters | None = None,
    *,
    exchange: Exchange = "all",
    alpha_em: float | torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(A, B, C)`` with ``|M|^2(f) = A + f B + f^2 C``, f in TeV^-2: each shape ``(batch,)``.

    Units: ``A`` in GeV^-2 (``|M|^2`` of a 2 -> 3 process), ``B`` in GeV^-2 TeV^2 and ``C`` in
    GeV^-2 TeV^4, so that ``f B`` and ``f^2 C`` are in GeV^-2.

    ``exchange``: ``'neutral'`` keeps Z/photon-exchange topologies only (Pythia ``t:ZZ``),
    ``'charged'`` W-exchange only (``t:WW``), ``'all'`` both with their interference.
    ``alpha_em``: float or ``(batch,)`` tensor; default ``ew.alpha_em``. Flavours that no
    t-channel diagram connects raise :class:`InputError`; flavours allowed only by the other
    exchange give zeros.
    """
    ew = ew or ElectroweakParameters()
    amps = _amplitudes(momenta, _check(momenta, flavours, exchange, ew), ew, exchange, alpha_em)
    if not amps:
        zero = torch.zeros(momenta.shape[0], dtype=momenta.dtype, device=momenta.device)
        return zero, zero.clone(), zero.clone()
    sm = [a[0] for a in amps]
    eft = [a[1] for a in amps]
    return _colour_spin_sum(sm, sm), 2.0 * _colour_spin_sum(sm, eft), _colour_spin_sum(eft, eft)


class WBFCoefficients:
    """``(A, B, C)`` of :func:`wbf_me2_coefficients` for many flavour combinations at once.

    Built once for a list of flavour tuples (``exchange`` and ``ew`` as there); calling it on
    momenta ``(batch, 5, 4)`` returns ``(batch, n_flavours, 3)``. The spinors, the currents of every
    line (quark and antiquark, both topologies), their propagated Z/photon/W currents and the SM
    (``J1.J2``) and EFT (``eps J1 J2 k1 k2``) bilinears are computed once per call and shared;
    each flavour combination then only applies its constant couplings (tables cached per dtype and
    device). All couplings are proportional to ``e = sqrt(4 pi alpha_em)`` (the EFT vertex to
    ``1/g``), so the SM amplitudes scale as ``e^3`` and the EFT ones as ``e``: ``alpha_em`` (float,
    ``(batch,)`` or ``(batch, n_flavours)`` tensor, default ``ew.alpha_em``) enters only there.
    Agrees with :func:`wbf_me2_coefficients` per flavour combination to rounding.
    """

    _NEUTRAL_EFT = (("Z", "Z"), ("Z", "A"), ("A", "Z"), ("A", "A"))

    def __init__(self, flavours: list[Flavours], ew: ElectroweakParameters | None = None, exchange: Exchange = "all"):
        ew = ew or ElectroweakParameters()
        self.ew, self.exchange = ew, exchange
        dummy = torch.zeros(1, 5, 4)
        self.flavours = [_check(dummy, fl, exchange, ew) for fl in flavours]
        sw, cw = ew.sin_theta_w, ew.cos_theta_w
        # Bilinear keys: ("sm" | "eft", o1, s1, s2, V1, V2) with o1 the topology, s the line's
        # quark (+1) / antiquark (-1) sign; key 0 is an all-zero slot for absent topologies.
        self._keys: list[tuple | None] = [None]
        index: dict[tuple, int] = {}

        def slot(key: tuple) -> int:
            if key not in index:
                index[key] = len(self._keys)
                self._keys.append(key)
            return index[key]

        n = len(self.flavours)
        sm_idx = [[0, 0] for _ in range(n)]
        sm_coef = [[[[0.0] * 2 for _ in range(2)] for _ in range(2)] for _ in range(n)]
        eft_idx = [[[0] * 4 for _ in range(2)] for _ in range(n)]
        eft_coef = [[[[[0.0] * 2 for _ in range(2)] for _ in range(4)] for _ in range(2)] for _ in range(n)]
        eft_const = -8.0 * ew.mw * sw * TEV2_TO_GEV2  # -4 v f / e with v = 2 M_W / g, g = e / sw
        for g, fl in enumerate(self.flavours):
            for kind, o1, o2, _ in wbf_topologies(fl, ew, exchange):
                t = 0 if o1 == 2 else 1
                sign = 1.0 if t == 0 else -1.0
                s1, s2 = (1 if fl[0] > 0 else -1), (1 if fl[1] > 0 else -1)
                lines = ((fl[0], fl[o1]), (fl[1], fl[o2]))
                if kind == "neutral":
                    # Couplings at e = 1: Z (c_L, c_R), photon Q.
                    cz = [z_chiral_couplings(a, ew, 1.0 / (4.0 * math.pi)) for a, _ in lines]
                    qa = [photon_coupling(a, ew, 1.0 / (4.0 * math.pi)) for a, _ in lines]
                    ghvv = (1.0 / sw) * ew.mz / cw
                    sm_idx[g][t] = slot(("sm", o1, s1, s2, "Z", "Z"))
                    sm_coef[g][t] = [[sign * ghvv * cz[0][x] * cz[1][y] for y in range(2)] for x in range(2)]
                    eft_line = [{"Z": (cw * cz[k][0], cw * cz[k][1]), "A": (sw * qa[k], sw * qa[k])} for k in range(2)]
                    for m, (v1, v2) in enumerate(self._NEUTRAL_EFT):
                        eft_idx[g][t][m] = slot(("eft", o1, s1, s2, v1, v2))
                        eft_coef[g][t][m] = [
                            [sign * eft_const * eft_line[0][v1][x] * eft_line[1][v2][y] for y in range(2)]
                            for x in range(2)
                        ]
                else:
                    cwl = [(w_coupling(a, b, ew, 1.0 / (4.0 * math.pi)), 0.0) for a, b in lines]
                    ghvv = (1.0 / sw) * ew.mw
                    sm_idx[g][t] = slot(("sm", o1, s1, s2, "W", "W"))
                    sm_coef[g][t] = [[sign * ghvv * cwl[0][x] * cwl[1][y] for y in range(2)] for x in range(2)]
                    eft_idx[g][t][0] = slot(("eft", o1, s1, s2, "W", "W"))
                    eft_coef[g][t][0] = [[sign * eft_const * cwl[0][x] * cwl[1][y] for y in range(2)] for x in range(2)]
        # Dense coefficient matrices (chirality pair xy, group * 2 + topology, bilinear key).
        n_keys = len(self._keys)
        sm_mat = [[[0.0] * n_keys for _ in range(2 * n)] for _ in range(4)]
        eft_mat = [[[0.0] * n_keys for _ in range(2 * n)] for _ in range(4)]
        for g in range(n):
            for t in range(2):
                for x in range(2):
                    for y in range(2):
                        sm_mat[2 * x + y][2 * g + t][sm_idx[g][t]] += sm_coef[g][t][x][y]
                        for m in range(4):
                            eft_mat[2 * x + y][2 * g + t][eft_idx[g][t][m]] += eft_coef[g][t][m][x][y]
        self._tables_py = (sm_mat, eft_mat)
        self._tables: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def _constant_tables(self, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        key = (dtype, device)
        if key not in self._tables:
            self._tables[key] = tuple(torch.tensor(t, dtype=dtype, device=device) for t in self._tables_py)
        return self._tables[key]

    def _bilinears(self, p: torch.Tensor) -> torch.Tensor:
        """Every bilinear of :attr:`_keys`, stacked: ``(n_keys, batch, 2, 2)`` complex."""
        ew = self.ew
        spinors = {
            (i, s): chiral_spinors(p[:, i], antifermion=s < 0) for i in range(4) for s in (1, -1)
        }
        currents: dict[tuple, torch.Tensor] = {}
        propagated: dict[tuple, torch.Tensor] = {}
        forms: dict[int, torch.Tensor] = {}

        def current(i: int, o: int, s: int, boson: str) -> torch.Tensor:
            key = (i, o, s, boson)
            if key not in propagated:
                if (i, o, s) not in currents:
                    # Quark line ubar(out) ... u(in); antiquark line vbar(in) ... v(out).
                    bar, ket = (spinors[o, s], spinors[i, s]) if s > 0 else (spinors[i, s], spinors[o, s])
                    currents[i, o, s] = chiral_currents(dirac_bar(bar), ket)
                kb = (p[:, i] - p[:, o])[:, None, :]
                j = currents[i, o, s]
                if boson == "Z":
                    propagated[key] = vector_propagator(j, kb, ew.mz, ew.gamma_z, ew.running_width)
                elif boson == "A":
                    propagated[key] = vector_propagator(j, kb, 0.0)
                else:
                    propagated[key] = vector_propagator(j, kb, ew.mw, ew.gamma_w, ew.running_width)
            return propagated[key]

        out = []
        for key in self._keys[1:]:
            what, o1, s1, s2, v1, v2 = key
            o2 = 5 - o1
            j1, j2 = current(0, o1, s1, v1), current(1, o2, s2, v2)
            if what == "sm":
                out.append(minkowski_dot(j1[:, :, None, :], j2[:, None, :, :]))
            else:
                if o1 not in forms:
                    forms[o1] = epsilon_two_form(p[:, 0] - p[:, o1], p[:, 1] - p[:, o2]).to(j1.dtype)
                out.append(torch.einsum("bxm,bmn,byn->bxy", j1, forms[o1], j2))
        cd = complex_dtype(p.dtype)
        zero = torch.zeros((1, p.shape[0], 2, 2), dtype=cd, device=p.device)
        return torch.cat([zero] + [b[None] for b in out]) if out else zero

    def __call__(self, momenta: torch.Tensor, alpha_em: float | torch.Tensor | None = None) -> torch.Tensor:
        if momenta.ndim != 3 or momenta.shape[1:] != (5, 4):
            raise InputError(f"WBF momenta must have shape (batch, 5, 4), got {tuple(momenta.shape)}")
        p = momenta
        batch, n = p.shape[0], len(self.flavours)
        sm_mat, eft_mat = self._constant_tables(p.dtype, p.device)
        # Bilinears as real pairs, laid out (xy, key, batch * [re, im]) for one batched matmul.
        bil = torch.view_as_real(self._bilinears(p))  # (K, batch, 2, 2, 2)
        bil = bil.permute(2, 3, 0, 1, 4).reshape(4, bil.shape[0], 2 * batch)
        shape = (4, n, 2, batch, 2)  # (xy, group, topology, batch, re/im)

        sm, eft = torch.bmm(sm_mat, bil).reshape(shape), torch.bmm(eft_mat, bil).reshape(shape)
        alpha = self.ew.alpha_em if alpha_em is None else alpha_em
        if isinstance(alpha, torch.Tensor):
            alpha = alpha.to(p.dtype)
            if alpha.ndim == 1:
                alpha = alpha[:, None]
            e = torch.sqrt(4.0 * math.pi * alpha).T[None, :, None, :, None]  # (1, n or 1, 1, batch, 1)
        else:
            e = math.sqrt(4.0 * math.pi * alpha)
        sm = sm * e**3
        eft = eft * e

        def colour_spin_sum(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            # Re sum x y^* over chiralities and topologies, plus the A-B interference (colour 1/3)
            # on equal line chiralities (xy = LL, RR); averaged over initial spins and colours.
            # (Sums over leading axes one at a time: fast, contiguous slices.)
            total = (x * y).sum(0).sum(1).sum(-1)
            dx, dy = x[::3], y[::3]  # ([LL, RR], group, topology, batch, re/im)
            cross = (dx[:, :, 0] * dy[:, :, 1] + dx[:, :, 1] * dy[:, :, 0]).sum(0).sum(-1)
            return (total + cross / 3.0) / 4.0

        out = torch.stack([colour_spin_sum(sm, sm), 2.0 * colour_spin_sum(sm, eft), colour_spin_sum(eft, eft)], -1)
        return out.transpose(0, 1)


def wbf_me2(
    momenta: torch.Tensor,
    flavours: Flavours,
    f_wwt: float | torch.Tensor = 0.0,
    ew: ElectroweakParameters | None = None,
    *,
    exchange: Exchange = "all",
    alpha_em: float | torch.Tensor | None = None,
) -> torch.Tensor:
    """``|M|^2`` at ``f_wwt`` (``f_WWt/Lambda^2`` in TeV^-2; float or ``(batch,)``), from the
    amplitudes ``M_SM + f M_f`` directly: shape ``(batch,)``."""
    ew = ew or ElectroweakParameters()
    amps = _amplitudes(momenta, _check(momenta, flavours, exchange, ew), ew, exchange, alpha_em)
    if not amps:
        return torch.zeros(momenta.shape[0], dtype=momenta.dtype, device=momenta.device)
    f = _per_event(f_wwt, 3)
    total = [sm + f * eft for sm, eft in amps]
    return _colour_spin_sum(total, total)


def wbf_score(
    momenta: torch.Tensor,
    flavours: Flavours,
    ew: ElectroweakParameters | None = None,
    *,
    exchange: Exchange = "all",
    alpha_em: float | torch.Tensor | None = None,
) -> torch.Tensor:
    """Score ``t = d log|M|^2 / df`` at ``f = 0``, i.e. ``B / A`` in TeV^2: shape ``(batch,)``.

    Where ``A = 0`` (flavours allowed only by the exchange that ``exchange`` leaves out, so that
    ``A = B = 0``) the score is 0, not NaN: such a subprocess does not contribute.
    """
    a, b, _ = wbf_me2_coefficients(momenta, flavours, ew, exchange=exchange, alpha_em=alpha_em)
    nonzero = a != 0
    return torch.where(nonzero, b, torch.zeros_like(b)) / torch.where(nonzero, a, torch.ones_like(a))


def wbf_final_states(
    id1: int, id2: int, ew: ElectroweakParameters | None = None, exchange: Exchange = "all"
) -> list[tuple[int, int, float]]:
    """Distinct final states ``(id3, id4, symmetry_factor)`` of ``id1 id2 -> id3 id4 H``.

    Each unordered pair appears once (integrate it over the full phase space); the factor is 1/2
    for identical outgoing quarks. Top quarks are excluded, so summing the W channels gives
    Pythia's ``V2CKMsum(id1) * V2CKMsum(id2)``.
    """
    ew = ew or ElectroweakParameters()
    for f in (id1, id2):
        if abs(int(f)) not in QUARKS:
            raise InputError(f"WBF flavours must be PDG quark ids +-1..+-5, got {f}")

    def partners(f: int) -> list[int]:
        cands = (2, 4) if abs(f) % 2 else (1, 3, 5)
        return [c if f > 0 else -c for c in cands if ckm_modulus(f, c, ew) > 0]

    seen: dict[tuple[int, int], tuple[int, int, float]] = {}
    candidates = []
    if exchange in ("all", "neutral"):
        candidates.append((id1, id2))
    if exchange in ("all", "charged"):
        total = _signed_charge(id1) + _signed_charge(id2)
        pairs = itertools.product(partners(id1), partners(id2))
        candidates += [(a, b) for a, b in pairs if abs(_signed_charge(a) + _signed_charge(b) - total) < 1e-9]
    for a, b in candidates:
        seen.setdefault(tuple(sorted((a, b))), (a, b, 0.5 if a == b else 1.0))
    return list(seen.values())
