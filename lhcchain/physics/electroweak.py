"""Electroweak parameters, fermion couplings and a Z' parameter set.

Scheme (a deliberate choice, made to reproduce Pythia 8.3's internal processes):

* Independent inputs ``alpha_em`` (at the scale of the process; default the value at M_Z),
  ``sin2_theta_w``, ``M_Z``, ``M_W`` and widths. ``G_F`` is stored but not used by the matrix
  elements. The tree-level relation ``M_W = M_Z cos(theta_W)`` is *not* imposed
  (80.385 vs 79.95 GeV), exactly as in Pythia.
* Gauge couplings: ``e = sqrt(4 pi alpha_em)``, ``g = e / sin(theta_W)``, ``cos^2 = 1 - sin^2``,
  all with ``sin2_theta_w`` (Pythia ``StandardModel:sin2thetaW``).
* The vector couplings of fermions to the Z use the effective angle ``sin2_theta_w_eff``
  (Pythia ``StandardModel:sin2thetaWbar``): vertex ``i (g/cos) gamma^mu (T3 P_L - Q s2eff)``.
* Photon vertex ``i e Q gamma^mu``; W vertex ``i (g/sqrt 2) V_CKM gamma^mu P_L``;
  ``H W W``: ``i g M_W g^{mu nu}``; ``H Z Z``: ``i (g M_Z / cos) g^{mu nu}``.
  These signs follow from ``D_mu = d_mu - i g T^a W^a_mu - i g' Y B_mu`` with
  ``W^3 = cos Z + sin A``.
* Widths: ``running_width=True`` (default, as Pythia's ``Sigma1ffbar2gmZ``) gives the
  s-channel denominator ``q^2 - M^2 + i q^2 Gamma / M`` for timelike ``q^2`` and no width for
  spacelike ``q^2`` (Pythia's t-channel W/Z propagators in ``Sigma3ff2HfftWW/ZZ`` have none);
  ``running_width=False`` gives the fixed-width ``q^2 - M^2 + i M Gamma`` everywhere.

Defaults are Pythia 8.317's: the Z and W widths are the values Pythia recomputes at
initialisation from its own couplings (the particle table's 2.4952 and 2.085 GeV are
overwritten), the CKM moduli are ``StandardModel:Vxy``.

Matching Pythia (``WeakSingleBoson:ffbar2gmZ``, ``HiggsSM:ff2Hff(t:WW)``/``(t:ZZ)``): use the
defaults and either set ``SigmaProcess:alphaEMorder = -1`` in Pythia (alpha_em fixed at
``StandardModel:alphaEMmZ``), or keep Pythia's running default and pass
``alpha_em=alpha_em_pythia(Q2)`` per event with ``Q2 = sHat`` for ``ffbar2gmZ`` and
``Q2 = (mT_V3^2 mT_V4^2 mT_H^2)^(1/3)``, ``mT_Vi^2 = M_V^2 + pT_i^2`` for the fusion processes
(``SigmaProcess:renormScale3VV = 3``; M_V = M_W or M_Z per process).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..errors import InputError

#: Pythia 8.3 default CKM moduli ``|V_ij|``, rows u, c, t and columns d, s, b.
PYTHIA_CKM: tuple[tuple[float, float, float], ...] = (
    (0.97383, 0.2272, 0.00396),
    (0.2271, 0.97296, 0.04221),
    (0.00814, 0.04161, 0.9991),
)
#: Unit CKM matrix (no flavour change between generations).
DIAGONAL_CKM: tuple[tuple[float, float, float], ...] = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))

QUARKS = (1, 2, 3, 4, 5)
CHARGED_LEPTONS = (11, 13, 15)


@dataclass(frozen=True)
class ElectroweakParameters:
    """Standard-Model electroweak inputs; see the module docstring for the scheme.

    Masses and widths in GeV (``gamma_h`` is stored for completeness, the matrix elements use an
    on-shell Higgs); ``alpha_em`` is the default coupling of the hard process (at M_Z);
    ``g_fermi`` in GeV^-2; ``running_width`` selects the propagator width scheme; ``ckm`` holds
    ``|V_ij|`` with rows u, c, t and columns d, s, b (:data:`PYTHIA_CKM` or :data:`DIAGONAL_CKM`).
    Defaults reproduce Pythia 8.317 (``StandardModel:*`` and the resonance widths it computes).
    """

    mz: float = 91.1876
    gamma_z: float = 2.5041895850769285
    mw: float = 80.385
    gamma_w: float = 2.0922939256110316
    mh: float = 125.0
    gamma_h: float = 0.004083428388965407
    sin2_theta_w: float = 0.2312
    sin2_theta_w_eff: float = 0.2315
    alpha_em: float = 0.00781751
    g_fermi: float = 1.16637e-5
    running_width: bool = True
    ckm: tuple[tuple[float, float, float], ...] = PYTHIA_CKM

    @property
    def cos2_theta_w(self) -> float:
        return 1.0 - self.sin2_theta_w

    @property
    def sin_theta_w(self) -> float:
        return math.sqrt(self.sin2_theta_w)

    @property
    def cos_theta_w(self) -> float:
        return math.sqrt(self.cos2_theta_w)


def electric_coupling(alpha_em: float | torch.Tensor) -> float | torch.Tensor:
    """``e = sqrt(4 pi alpha_em)`` (float or tensor)."""
    return (4.0 * math.pi * alpha_em) ** 0.5


def weak_coupling(alpha_em: float | torch.Tensor, ew: ElectroweakParameters) -> float | torch.Tensor:
    """SU(2) coupling ``g = e / sin(theta_W)``."""
    return electric_coupling(alpha_em) / ew.sin_theta_w


def _check_fermion(pdg: int) -> int:
    a = abs(int(pdg))
    if not (1 <= a <= 6 or 11 <= a <= 16):
        raise InputError(f"PDG id {pdg} is not a quark (1..6) or lepton (11..16)")
    return a


def charge(pdg: int) -> float:
    """Electric charge of the fermion ``|pdg|`` in units of the positron charge (particle, not antiparticle)."""
    a = _check_fermion(pdg)
    if a <= 6:
        return -1.0 / 3.0 if a % 2 else 2.0 / 3.0
    return -1.0 if a % 2 else 0.0


def isospin(pdg: int) -> float:
    """Third component of weak isospin of the left-handed fermion ``|pdg|``."""
    a = _check_fermion(pdg)
    return -0.5 if a % 2 else 0.5


def z_chiral_couplings(pdg: int, ew: ElectroweakParameters, alpha_em: float | torch.Tensor | None = None):
    """Z couplings ``(c_L, c_R)`` with vertex ``i gamma^mu (c_L P_L + c_R P_R)``.

    ``c_L = (g/cos)(T3 - Q s2eff)``, ``c_R = -(g/cos) Q s2eff``; the same for the antifermion line.
    """
    gz = weak_coupling(ew.alpha_em if alpha_em is None else alpha_em, ew) / ew.cos_theta_w
    q, t3 = charge(pdg), isospin(pdg)
    return gz * (t3 - q * ew.sin2_theta_w_eff), -gz * q * ew.sin2_theta_w_eff


def photon_coupling(pdg: int, ew: ElectroweakParameters, alpha_em: float | torch.Tensor | None = None):
    """Photon coupling ``e Q`` (vertex ``i e Q gamma^mu``; left = right)."""
    return electric_coupling(ew.alpha_em if alpha_em is None else alpha_em) * charge(pdg)


def _generation(a: int) -> int:
    return (a - 1) // 2 if a <= 6 else (a - 11) // 2


def ckm_modulus(pdg_a: int, pdg_b: int, ew: ElectroweakParameters) -> float:
    """``|V|`` connecting fermions ``|pdg_a|`` and ``|pdg_b|`` by a W (either order); 0 if none.

    Leptons: 1 within a generation (no lepton mixing), 0 otherwise.
    """
    a, b = _check_fermion(pdg_a), _check_fermion(pdg_b)
    if (a <= 6) != (b <= 6) or a % 2 == b % 2:
        return 0.0
    up, down = (a, b) if a % 2 == 0 else (b, a)
    if up > 6:
        return 1.0 if _generation(up) == _generation(down) else 0.0
    return float(ew.ckm[_generation(up)][_generation(down)])


def w_coupling(pdg_a: int, pdg_b: int, ew: ElectroweakParameters, alpha_em: float | torch.Tensor | None = None):
    """Left-handed W coupling ``(g / sqrt 2) |V|`` (vertex ``i g/sqrt2 |V| gamma^mu P_L``)."""
    g = weak_coupling(ew.alpha_em if alpha_em is None else alpha_em, ew)
    return g * ckm_modulus(pdg_a, pdg_b, ew) / math.sqrt(2.0)


# Pythia 8.3 AlphaEM, first-order running (SigmaProcess:alphaEMorder = 1).
_PYTHIA_MZ = 91.188
_PYTHIA_Q2STEP = (0.26e-6, 0.011, 0.25, 3.5, 90.0)
_PYTHIA_BRUN = (0.1061, 0.2122, 0.460, 0.700, 0.725)


def alpha_em_pythia(q2: torch.Tensor, alpha_mz: float | None = None, alpha_0: float = 0.00729735) -> torch.Tensor:
    """Running ``alpha_em(Q^2)`` exactly as Pythia 8.3's ``AlphaEM`` with order 1 (``q2`` in GeV^2).

    Piecewise one-loop running with effective thresholds, normalised to ``alpha_mz`` (default
    ``ElectroweakParameters().alpha_em``, Pythia's ``StandardModel:alphaEMmZ``) at
    ``Q = 91.188`` GeV (Pythia's hard-coded normalisation mass) and to ``alpha_0`` at ``Q -> 0``.
    Hard processes evaluate it at their renormalisation scale (``sHat`` for ``ffbar2gmZ``).
    """
    if alpha_mz is None:
        alpha_mz = ElectroweakParameters.alpha_em
    b = list(_PYTHIA_BRUN)
    step = [0.0] * 5
    step[4] = alpha_mz / (1.0 + alpha_mz * b[4] * math.log(_PYTHIA_MZ**2 / _PYTHIA_Q2STEP[4]))
    step[3] = step[4] / (1.0 - step[4] * b[3] * math.log(_PYTHIA_Q2STEP[3] / _PYTHIA_Q2STEP[4]))
    step[0] = alpha_0
    step[1] = step[0] / (1.0 - step[0] * b[0] * math.log(_PYTHIA_Q2STEP[1] / _PYTHIA_Q2STEP[0]))
    step[2] = step[1] / (1.0 - step[1] * b[1] * math.log(_PYTHIA_Q2STEP[2] / _PYTHIA_Q2STEP[1]))
    b[2] = (1.0 / step[3] - 1.0 / step[2]) / math.log(_PYTHIA_Q2STEP[2] / _PYTHIA_Q2STEP[3])
    out = torch.full_like(q2, alpha_0)
    for i in range(5):
        q2_i = _PYTHIA_Q2STEP[i]
        run = step[i] / (1.0 - b[i] * step[i] * torch.log(torch.clamp(q2, min=q2_i) / q2_i))
        out = torch.where(q2 > q2_i, run, out)
    return out


def _sm_like_zprime_couplings(scale: float, ew: ElectroweakParameters) -> dict[str, float]:
    gz = weak_coupling(ew.alpha_em, ew) / ew.cos_theta_w
    out = {}
    for name, pdg in (("u", 2), ("d", 1), ("l", 11)):
        t3, q = isospin(pdg), charge(pdg)
        out[f"v_{name}"] = scale * gz * (0.5 * t3 - q * ew.sin2_theta_w_eff)
        out[f"a_{name}"] = scale * gz * 0.5 * t3
    return out


#: Default Z' coupling scale relative to the SM Z couplings. With it the Z' partial widths to
#: the SM fermions (top and neutrinos included, tree level) sum to 0.44 GeV at 400 GeV, close to the
#: default width.
ZPRIME_DEFAULT_SCALE = 0.2
_ZP = _sm_like_zprime_couplings(ZPRIME_DEFAULT_SCALE, ElectroweakParameters())


@dataclass(frozen=True)
class ZPrimeParameters:
    """A Z' boson with vertex ``i gamma^mu (v_f - a_f gamma5)`` to fermion f (dimensionless v, a).

    Couplings are generation-universal: ``u`` for up-type quarks, ``d`` for down-type quarks and
    ``l`` for charged leptons. The defaults are the SM Z couplings
    ``v = (g/cos)(T3/2 - Q s2eff)``, ``a = (g/cos) T3/2`` (at alpha_em(M_Z)) scaled by
    ``ZPRIME_DEFAULT_SCALE = 0.2``; mass 400 GeV, width 0.5 GeV (a free input, not computed).
    Its propagator uses the same width scheme as the Z (``ElectroweakParameters.running_width``).
    """

    mass: float = 400.0
    width: float = 0.5
    v_u: float = _ZP["v_u"]
    a_u: float = _ZP["a_u"]
    v_d: float = _ZP["v_d"]
    a_d: float = _ZP["a_d"]
    v_l: float = _ZP["v_l"]
    a_l: float = _ZP["a_l"]

    @classmethod
    def sm_like(
        cls,
        scale: float = ZPRIME_DEFAULT_SCALE,
        mass: float = 400.0,
        width: float = 0.5,
        ew: ElectroweakParameters | None = None,
    ) -> ZPrimeParameters:
        """Z' whose couplings are ``scale`` times the SM Z couplings of ``ew``."""
        return cls(mass=mass, width=width, **_sm_like_zprime_couplings(scale, ew or ElectroweakParameters()))

    def chiral_couplings(self, pdg: int) -> tuple[float, float]:
        """``(c_L, c_R) = (v + a, v - a)`` for fermion ``|pdg|`` (quarks 1..5, charged leptons)."""
        a = _check_fermion(pdg)
        if a <= 6:
            v, ax = (self.v_d, self.a_d) if a % 2 else (self.v_u, self.a_u)
        elif a % 2:
            v, ax = self.v_l, self.a_l
        else:
            raise InputError(f"ZPrimeParameters has no neutrino couplings (PDG id {pdg})")
        return v + ax, v - ax
