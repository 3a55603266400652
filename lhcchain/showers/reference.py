"""Reference showers: GFLASH-style parametrised electromagnetic showers in CaloChallenge voxels.

GEANT4 cannot run here, so the reference simulation is the parametrisation of Grindhammer and Peters
(hep-ex/0001020; the same formulas and tuned constants are in Geant4's
``GFlashHomoShowerParameterisation``, ``GFlashSamplingShowerParameterisation`` and their tuning
classes ``GVFlashHomoShowerTuning``, ``GFlashSamplingShowerTuning``). Depths ``t`` are in radiation
lengths X0 of the (effective) medium, radii in Molière radii R_M, energies in GeV inside the
formulas and MeV in the files; ``y = E / E_c``.

Per shower, vectorised over showers:

1. **Longitudinal profile** ``dE/dt = E * Gamma(t; alpha, beta)`` with ``T = (alpha - 1) / beta`` the
   depth of the maximum. ``(ln T, ln alpha)`` are drawn from a correlated Gaussian:
   homogeneous medium ``<ln T> = ln(ln y - 0.858)``, ``<ln alpha> = ln(0.21 + (0.492 + 2.38/Z) ln y)``,
   ``sigma(ln T) = 1 / (-1.4 + 1.26 ln y)``, ``sigma(ln alpha) = 1 / (-0.58 + 0.86 ln y)``,
   ``rho = 0.705 - 0.023 ln y``; a sampling calorimeter shifts the means,
   ``<ln T> = ln(T_hom - 0.55 / F_S - 0.69 (1 - ehat))``, ``<ln alpha> = ln(alpha_hom - 0.476 / F_S)``, with
   ``sigma(ln T) = 1 / (-2.5 + 1.25 ln y)``, ``sigma(ln alpha) = 1 / (-0.82 + 0.79 ln y)``,
   ``rho = 0.784 - 0.023 ln y``. The energy of each layer is the integral of the profile over the
   layer's depth range (regularised incomplete gamma function); the Gaussian is truncated to
   ``alpha > 1.2`` (rare at low energy: the formulas are fits for profiles with a maximum). Energy before the first layer,
   between layers and behind the last is lost (dead material and leakage).
2. **Spots**: ``N = n1 ln(Z) E^n2`` (homogeneous 93, 0.876; sampling 10.3, 0.959), spread over the
   layers by the spot profile ``Gamma(t; alpha_s, beta_s)`` with ``T_s = T (t1 + t2 Z)``,
   ``alpha_s = alpha (a1 + a2 Z)`` (homogeneous 0.698, 0.00212, 0.639, 0.00334; sampling 0.813,
   0.0019, 0.844, 0.0026); a layer's energy is shared equally by its spots (at least one).
3. **Radial profile** at ``tau = t / T`` (t the energy-weighted mean depth of the layer):
   ``f(r) = p 2 r R_C^2 / (r^2 + R_C^2)^2 + (1 - p) 2 r R_T^2 / (r^2 + R_T^2)^2`` with
   ``R_C = 0.0251 + 0.00319 ln E + (0.1162 - 0.000381 Z) tau``,
   ``R_T = (0.659 - 0.00309 Z) (exp(-2.59 (tau - 0.645)) + exp((0.3585 + 0.0412 ln E)(tau - 0.645)))``,
   ``p = (2.632 - 0.00094 Z) exp(v - exp(v))``, ``v = (0.401 + 0.00187 Z - tau) / (1.313 - 0.0686 ln E)``;
   a sampling calorimeter adds ``-0.0203 (1 - ehat) + 0.0397 exp(-tau) / F_S`` to R_C,
   ``-0.14 (1 - ehat) - 0.495 exp(-tau) / F_S`` to R_T and
   ``(1 - ehat)(0.348 - 0.642 exp(-(tau - 1)^2) / F_S)`` to p. Spots have a uniform angle, so a
   voxel's probability is the radial CDF ``p r^2/(r^2 + R_C^2) + (1 - p) r^2/(r^2 + R_T^2)`` integrated over
   its radial bin, divided by the number of angular bins.
4. **Sampling**: the effective medium of absorber (p) and active (a) layers of thicknesses d_p, d_a
   (Grindhammer and Peters section 4): volume fractions V_i, ``1/X0 = sum V_i / X0_i``,
   ``E_c = X0 sum V_i E_c,i / X0_i``, ``1/R_M = sum V_i / R_M,i``, ``Z = sum w_i Z_i`` (mass fractions w_i),
   ``F_S = X0 / (d_a + d_p)``, ``ehat = 1 / (1 + 0.007 (Z_p - Z_a))``. The visible (active) energy is the
   deposit times the sampling fraction ``f = ehat * f_mip``, ``f_mip = d_a S_a / (d_a S_a + d_p S_p)``
   with S the minimum-ionising stopping powers; each spot's visible energy fluctuates by a Gamma
   factor of mean 1 whose shape gives the total visible energy the relative spread
   ``sampling_term / sqrt(E / GeV)`` (the calorimeter's stochastic term).
5. **Read-out**: the spots of a layer fall into its voxels by one multinomial draw with these
   probabilities (spots beyond the last radial edge are lost), and a voxel hit by n spots gets the
   visible energy ``e_spot Gamma(n k, 1 / k)``, the sum of its spots' fluctuations: the same
   distribution as drawing spot by spot, at a cost independent of the number of spots. Voxels below
   ``threshold_mev`` are set to 0.

``homogeneous: true`` uses the active material alone and no sampling corrections (f = 1, but the
same stochastic term).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import gammainc

from ..config import default_section
from ..errors import InputError
from ..io import Progress
from .geometry import Geometry, load_geometry
from .io import Showers, in_chunks, write_showers

ALPHA_MIN = 1.2  # profiles with alpha <= ALPHA_MIN (no clear maximum, depth ~ T / (alpha - 1)) are redrawn

# Grindhammer and Peters, hep-ex/0001020; Geant4 GVFlashHomoShowerTuning / GFlashSamplingShowerTuning
HOM = {"t": (-0.858,), "a": (0.21, 0.492, 2.38), "sig_t": (-1.4, 1.26), "sig_a": (-0.58, 0.86), "rho": (0.705, -0.023),
       "spot_n": (93.0, 0.876), "spot_t": (0.698, 0.00212), "spot_a": (0.639, 0.00334)}
SAM = {"t": (-0.55, -0.69), "a": (-0.476,), "sig_t": (-2.5, 1.25), "sig_a": (-0.82, 0.79), "rho": (0.784, -0.023),
       "spot_n": (10.3, 0.959), "spot_t": (0.813, 0.0019), "spot_a": (0.844, 0.0026),
       "rc": (-0.0203, 0.0397), "rt": (-0.14, -0.495), "wc": (0.348, -0.642)}
RAD = {"rc": (0.0251, 0.00319, 0.1162, -0.000381), "rt": (0.659, -0.00309, 0.645, -2.59, 0.3585, 0.0412),
       "wc": (2.632, -0.00094, 0.401, 0.00187, 1.313, -0.0686)}

MATERIAL_KEYS = ("Z", "density_g_cm3", "x0_mm", "critical_energy_mev", "moliere_radius_mm", "dedx_mip_mev_cm", "thickness_mm")
SETTING_KEYS = ("energies", "e_min_mev", "e_max_mev", "threshold_mev", "homogeneous", "sampling_term",
                "absorber", "active", "layer_depths_x0")
OPTIONAL_KEYS = ("chunk", "n_train", "n_test")  # from the default config's showers.reference when missing; the counts are read by the rules


@dataclass(frozen=True)
class Medium:
    """Effective medium of the shower formulas (module doc, item 4)."""

    Z: float
    x0_mm: float
    critical_energy_mev: float
    moliere_radius_mm: float
    f_s: float  # X0 / (d_a + d_p); inf for a homogeneous medium
    ehat: float  # e/mip; 1 for a homogeneous medium
    sampling_fraction: float
    sampling: bool


def _material(settings: Mapping[str, Any], key: str) -> dict[str, float]:
    mat = settings.get(key)
    if not isinstance(mat, Mapping) or set(MATERIAL_KEYS) - set(mat):
        raise InputError(f"showers.reference.{key}: needs the keys {list(MATERIAL_KEYS)}")
    return {k: float(mat[k]) for k in MATERIAL_KEYS}


def medium(settings: Mapping[str, Any]) -> Medium:
    """The effective medium of absorber and active layers, or the active material alone (module doc)."""
    act = _material(settings, "active")
    if settings["homogeneous"]:
        return Medium(act["Z"], act["x0_mm"], act["critical_energy_mev"], act["moliere_radius_mm"], math.inf, 1.0, 1.0, False)
    ab = _material(settings, "absorber")
    d = ab["thickness_mm"] + act["thickness_mm"]
    v = {"p": ab["thickness_mm"] / d, "a": act["thickness_mm"] / d}
    mats = {"p": ab, "a": act}
    x0 = 1.0 / sum(v[i] / mats[i]["x0_mm"] for i in v)
    ec = x0 * sum(v[i] * mats[i]["critical_energy_mev"] / mats[i]["x0_mm"] for i in v)
    rm = 1.0 / sum(v[i] / mats[i]["moliere_radius_mm"] for i in v)
    mass = {i: v[i] * mats[i]["density_g_cm3"] for i in v}
    z = sum(mass[i] * mats[i]["Z"] for i in v) / sum(mass.values())
    ehat = 1.0 / (1.0 + 0.007 * (ab["Z"] - act["Z"]))
    sa, sp = act["thickness_mm"] * act["dedx_mip_mev_cm"], ab["thickness_mm"] * ab["dedx_mip_mev_cm"]
    return Medium(z, x0, ec, rm, x0 / d, ehat, ehat * sa / (sa + sp), True)


def resolve_settings(settings: Mapping[str, Any], geometry: Geometry) -> dict[str, Any]:
    """Check the reference settings; ``layer_depths_x0`` must give [start, end] for every layer of ``geometry``."""
    unknown = set(settings) - set(SETTING_KEYS) - set(OPTIONAL_KEYS)
    missing = set(SETTING_KEYS) - set(settings)
    if unknown or missing:
        raise InputError(f"showers.reference: unknown key(s) {sorted(unknown)}, missing key(s) {sorted(missing)}")
    optional = default_section("showers.reference")
    out = {**{k: optional[k] for k in OPTIONAL_KEYS}, **settings}
    if out["energies"] not in ("powers_of_two", "log_uniform"):
        raise InputError(f"showers.reference.energies must be 'powers_of_two' or 'log_uniform', got {out['energies']!r}")
    if not 0 < float(out["e_min_mev"]) <= float(out["e_max_mev"]):
        raise InputError("showers.reference: need 0 < e_min_mev <= e_max_mev")
    depths = {int(k): v for k, v in dict(out["layer_depths_x0"]).items()}
    absent = [lid for lid in geometry.layer_ids if lid not in depths]
    if absent:
        raise InputError(f"showers.reference.layer_depths_x0: no [start, end] depth for layer(s) {absent} of binning {geometry.name!r}")
    ranges = np.array([[float(depths[lid][0]), float(depths[lid][1])] for lid in geometry.layer_ids])
    if np.any(ranges[:, 1] <= ranges[:, 0]) or np.any(ranges[:, 0] < 0):
        raise InputError("showers.reference.layer_depths_x0: every layer needs 0 <= start < end (radiation lengths)")
    out["depths"] = ranges
    return out


def incident_energies(n: int, settings: Mapping[str, Any], rng: np.random.Generator) -> np.ndarray:
    """``n`` incident energies in MeV: powers of two between ``e_min_mev`` and ``e_max_mev`` (equal numbers,
    as in CaloChallenge dataset 1), or log-uniform in that range."""
    lo, hi = float(settings["e_min_mev"]), float(settings["e_max_mev"])
    if settings["energies"] == "powers_of_two":
        powers = 2.0 ** np.arange(math.ceil(math.log2(lo) - 1e-9), math.floor(math.log2(hi) + 1e-9) + 1)
        if len(powers) == 0:
            raise InputError(f"showers.reference: no power of two between {lo} and {hi} MeV")
        return rng.permutation(np.resize(powers, n))
    return np.exp(rng.uniform(math.log(lo), math.log(hi), n))


def longitudinal(e_gev: np.ndarray, med: Medium, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per-shower depth of maximum T (X0) and shape alpha of the Gamma profile (module doc, item 1)."""
    ln_y = np.log(e_gev * 1e3 / med.critical_energy_mev)
    t_hom = ln_y + HOM["t"][0]
    a_hom = HOM["a"][0] + (HOM["a"][1] + HOM["a"][2] / med.Z) * ln_y
    par = SAM if med.sampling else HOM
    if med.sampling:
        t_mean = t_hom + par["t"][0] / med.f_s + par["t"][1] * (1.0 - med.ehat)
        a_mean = a_hom + par["a"][0] / med.f_s
    else:
        t_mean, a_mean = t_hom, a_hom
    if np.any(t_mean <= 0) or np.any(a_mean <= 1):
        raise InputError(f"showers.reference: incident energy too low for the parametrisation (y = E/E_c = {np.exp(ln_y.min()):.1f})")
    sig_t = 1.0 / (par["sig_t"][0] + par["sig_t"][1] * ln_y)
    sig_a = 1.0 / (par["sig_a"][0] + par["sig_a"][1] * ln_y)
    rho = par["rho"][0] + par["rho"][1] * ln_y
    ln_t, ln_a = np.empty(len(e_gev)), np.full(len(e_gev), -np.inf)
    redo = np.arange(len(e_gev))
    for _ in range(100):  # truncate to alpha > ALPHA_MIN by redrawing (a rising profile, finite depth)
        z1, z2 = rng.standard_normal((2, len(redo)))
        ln_t[redo] = np.log(t_mean[redo]) + sig_t[redo] * z1
        ln_a[redo] = np.log(a_mean[redo]) + sig_a[redo] * (rho[redo] * z1 + np.sqrt(1.0 - rho[redo] ** 2) * z2)
        redo = redo[ln_a[redo] <= math.log(ALPHA_MIN)]
        if redo.size == 0:
            break
    return np.exp(ln_t), np.maximum(np.exp(ln_a), ALPHA_MIN)


def gamma_fractions(alpha: np.ndarray, beta: np.ndarray, depths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fraction of a Gamma(alpha, beta) profile in each depth range (B, L), and the profile's mean depth
    inside each range (B, L), from ``int_a^b t g(t) dt = (alpha / beta) [P(alpha + 1, beta t)]_a^b``."""
    a, b = alpha[:, None], beta[:, None]
    lo, hi = depths[None, :, 0], depths[None, :, 1]
    frac = gammainc(a, b * hi) - gammainc(a, b * lo)
    first = (a / b) * (gammainc(a + 1, b * hi) - gammainc(a + 1, b * lo))
    mean = np.where(frac > 1e-12, first / np.maximum(frac, 1e-300), 0.5 * (lo + hi))
    return np.maximum(frac, 0.0), mean


def radial_parameters(e_gev: np.ndarray, tau: np.ndarray, med: Medium) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Core radius, tail radius (R_M) and core weight at ``tau = t / T`` (module doc, item 3)."""
    ln_e, z = np.log(e_gev), med.Z
    c1, c2, c3, c4 = RAD["rc"]
    r_c = c1 + c2 * ln_e + (c3 + c4 * z) * tau
    t1, t2, k2, k3, t5, t6 = RAD["rt"]
    r_t = (t1 + t2 * z) * (np.exp(k3 * (tau - k2)) + np.exp((t5 + t6 * ln_e) * (tau - k2)))
    w1, w2, w3, w4, w5, w6 = RAD["wc"]
    v = (w3 + w4 * z - tau) / (w5 + w6 * ln_e)
    p = (w1 + w2 * z) * np.exp(v - np.exp(v))
    if med.sampling:
        r_c = r_c + SAM["rc"][0] * (1 - med.ehat) + SAM["rc"][1] / med.f_s * np.exp(-tau)
        r_t = r_t + SAM["rt"][0] * (1 - med.ehat) + SAM["rt"][1] / med.f_s * np.exp(-tau)
        p = p + (1 - med.ehat) * (SAM["wc"][0] + SAM["wc"][1] / med.f_s * np.exp(-((tau - 1) ** 2)))
    return np.maximum(r_c, 1e-3), np.maximum(r_t, 1e-3), np.clip(p, 0.0, 1.0)


def simulate(energy_mev: np.ndarray, geometry: Geometry, settings: Mapping[str, Any], rng: np.random.Generator) -> np.ndarray:
    """Visible voxel energies (N, n_voxels) in MeV of showers with incident energies ``energy_mev`` (module doc).
    ``settings`` as returned by :func:`resolve_settings`."""
    med = medium(settings)
    depths = settings["depths"]
    e_gev = np.asarray(energy_mev, dtype=np.float64) / 1e3
    n, n_layers = len(e_gev), len(geometry.layers)
    t_max, alpha = longitudinal(e_gev, med, rng)
    beta = (alpha - 1.0) / t_max
    frac, mean_depth = gamma_fractions(alpha, beta, depths)
    par = SAM if med.sampling else HOM
    alpha_s = np.maximum(alpha * (par["spot_a"][0] + par["spot_a"][1] * med.Z), 1.0 + 1e-3)
    t_s = t_max * (par["spot_t"][0] + par["spot_t"][1] * med.Z)
    spot_frac, _ = gamma_fractions(alpha_s, (alpha_s - 1.0) / t_s, depths)
    n_spots_total = par["spot_n"][0] * math.log(med.Z) * e_gev ** par["spot_n"][1]
    n_spots = 1 + rng.poisson(n_spots_total[:, None] * spot_frac)  # (N, L)
    n_spots = np.where(frac > 0, n_spots, 0)
    layer_e = e_gev[:, None] * 1e3 * frac * med.sampling_fraction  # visible MeV per layer
    spot_e = np.where(n_spots > 0, layer_e / np.maximum(n_spots, 1), 0.0)
    # Gamma shape k of the per-spot fluctuation: sum_i e_i^2 / k = (a^2 / E) (sum_i e_i)^2
    rel_var = float(settings["sampling_term"]) ** 2 / e_gev
    sum_e2 = (n_spots * spot_e**2).sum(1)
    k = sum_e2 / np.maximum(rel_var * layer_e.sum(1) ** 2, 1e-300)
    r_c, r_t, p_core = radial_parameters(e_gev[:, None], mean_depth / t_max[:, None], med)
    out = np.zeros((n, geometry.n_voxels), dtype=np.float64)
    for li, layer in enumerate(geometry.layers):
        # radial CDF F(r) = p r^2/(r^2 + R_C^2) + (1 - p) r^2/(r^2 + R_T^2) at the layer's edges (mm)
        r2 = (layer.r_edges[None, :] / med.moliere_radius_mm) ** 2
        cdf = p_core[:, li, None] * r2 / (r2 + r_c[:, li, None] ** 2) + (1 - p_core[:, li, None]) * r2 / (r2 + r_t[:, li, None] ** 2)
        p_voxel = np.tile(np.diff(cdf, axis=1) / layer.n_alpha, layer.n_alpha)  # angular bin, then radial bin
        p_all = np.concatenate([p_voxel, np.clip(1.0 - cdf[:, -1:], 0.0, 1.0)], 1)  # last: beyond the outer edge
        hits = rng.multinomial(n_spots[:, li], p_all / p_all.sum(1, keepdims=True))[:, :-1]
        # the sum of n spots' Gamma(k, 1/k) factors is Gamma(n k, 1/k)
        e = rng.standard_gamma(hits * k[:, None]) / k[:, None] * spot_e[:, li, None]
        out[:, geometry.bounds[li]:geometry.bounds[li + 1]] = e
    out[out < float(settings["threshold_mev"])] = 0.0
    return out.astype(np.float32)


def make_reference(path: str | os.PathLike[str], n_showers: int, binning: str, settings: Mapping[str, Any],
                   seed: int) -> dict[str, Any]:
    """Simulate ``n_showers`` reference showers (seeded) in the voxels of ``binning`` and write them as a
    CaloChallenge file; returns a summary."""
    geometry = load_geometry(binning)
    s = resolve_settings(settings, geometry)
    if int(n_showers) < 1:
        raise InputError(f"showers.reference: number of showers must be >= 1, got {n_showers}")
    rng = np.random.default_rng(int(seed))
    energy = incident_energies(int(n_showers), s, rng)
    progress = Progress("reference showers", int(n_showers), "showers")
    showers = Showers(energy, in_chunks(lambda e: simulate(e, geometry, s, rng), energy, int(s["chunk"]), progress))
    progress.done()
    write_showers(path, showers)
    med = medium(s)
    return {"n_showers": int(n_showers), "binning": geometry.name, "n_voxels": geometry.n_voxels,
            "time_per_shower_ms": 1e3 * progress.elapsed / int(n_showers), "sampling_fraction": med.sampling_fraction,
            "medium": {"Z": med.Z, "x0_mm": med.x0_mm, "critical_energy_mev": med.critical_energy_mev,
                       "moliere_radius_mm": med.moliere_radius_mm, "f_s": med.f_s, "ehat": med.ehat},
            "mean_etot_over_einc": float((showers.voxels.sum(1) / energy).mean())}
