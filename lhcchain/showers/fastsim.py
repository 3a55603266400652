"""Showers as the fast simulation of electrons in the chain: Z -> ee at reco level with reference and
surrogate showers (issue #13, item 5).

Each particle-level electron of a prepared sample (``particle_l{1,2}_{pt,eta,phi,pdgId}``, events with
``particle_pass`` and two electrons) enters the calorimeter of the showers' binning with its energy
``E = pT cosh(eta)`` as incident energy, at normal incidence (the dataset-1 geometry is one eta slice at
|eta| ~ 0.2; its depth in X0 is used at every eta). Its shower is drawn twice, from the reference
simulation (:func:`lhcchain.showers.reference.simulate`) and from the trained surrogate
(:class:`lhcchain.showers.surrogate.Surrogate`), and its reconstructed energy is the sum of the visible
voxel energies divided by the reference's sampling fraction (one calibration constant for both, so that
differences are the surrogate's). The direction stays the particle-level one, so with massless
electrons ``m_ee(reco) = m_ee(particle) sqrt(r_1 r_2)``, with ``r = E_reco / E`` each electron's response.

Compared: the m_ee peak (a Voigt fit with the Lorentzian half-width fixed to Gamma_Z / 2,
:func:`lhcchain.stats.fit_peak`; the error of the width ratio from resampling the events), and the electron energy response (mean of r) and resolution (standard
deviation of r) in bins of E. The surrogate learnt ``p(shower | E_inc)`` on the incident energies of its
training file: electrons outside that range are extrapolations, counted and flagged in the metrics; with
``powers_of_two`` training energies every other energy is an interpolation between trained values.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import hist
import numpy as np
import torch

from .. import plotting
from ..device import select_device
from ..errors import InputError
from ..io import Progress, read_parquet_columns, staged_outputs, write_json
from ..stats import Z_HALF_WIDTH, fit_peak
from .geometry import load_geometry
from .io import in_chunks, read_incident_energies
from .reference import medium, resolve_settings, simulate
from .surrogate import Surrogate

log = logging.getLogger("lhcchain.showers")

ELECTRON = 11
LEPTONS = ("l1", "l2")
COLUMNS = ["particle_pass", "particle_mll"] + [f"particle_{lep}_{k}" for lep in LEPTONS for k in ("pt", "eta", "pdgId")]
SOURCES = ("reference", "surrogate")


def electron_pairs(paths: Sequence[str | os.PathLike[str]]) -> tuple[np.ndarray, np.ndarray]:
    """Energies (N, 2) in GeV of the two particle-level electrons and the particle-level m_ee (N,) in GeV
    of the selected events with two electrons in the prepared files ``paths``."""
    energies, masses = [], []
    for path in paths:
        t = read_parquet_columns(path, COLUMNS, "a prepared sample with particle-level leptons")
        c = {k: t.column(k).to_numpy(zero_copy_only=False) for k in COLUMNS}
        ee = c["particle_pass"].astype(bool) & (np.abs(c["particle_l1_pdgId"]) == ELECTRON) & (np.abs(c["particle_l2_pdgId"]) == ELECTRON)
        e = np.stack([c[f"particle_{lep}_pt"] * np.cosh(c[f"particle_{lep}_eta"]) for lep in LEPTONS], 1).astype(np.float64)
        ok = ee & np.all(np.isfinite(e) & (e > 0), 1) & np.isfinite(c["particle_mll"])
        energies.append(e[ok])
        masses.append(c["particle_mll"][ok].astype(np.float64))
    e, m = np.concatenate(energies), np.concatenate(masses)
    if len(e) == 0:
        raise InputError(f"{', '.join(map(str, paths))}: no selected particle-level event with two electrons")
    return e, m


def peak(mass: np.ndarray, edges: np.ndarray) -> dict[str, float]:
    """Voigt fit of the m_ee histogram (module doc); ``{'error': ...}`` where the fit fails (too few events)."""
    counts = np.histogram(mass, edges)[0].astype(np.float64)
    if counts.sum() < 20:
        return {"error": f"{int(counts.sum())} events in the fit range; need at least 20"}
    try:
        return fit_peak(counts, edges, gamma=Z_HALF_WIDTH)
    except RuntimeError as exc:
        return {"error": str(exc)}


def bootstrap_ratio_error(mass: Mapping[str, np.ndarray], edges: np.ndarray, n: int, rng: np.random.Generator) -> float:
    """Spread of the fitted width ratio surrogate / reference over ``n`` resamplings of the events (the two
    masses of an event are drawn together, so their correlation through the shared event is kept)."""
    ratios = []
    for _ in range(n):
        idx = rng.integers(0, len(mass["reference"]), len(mass["reference"]))
        a, b = peak(mass["surrogate"][idx], edges), peak(mass["reference"][idx], edges)
        if "sigma" in a and "sigma" in b:
            ratios.append(a["sigma"] / b["sigma"])
    return float(np.std(ratios, ddof=1)) if len(ratios) > 1 else float("nan")


def response_table(e_true: np.ndarray, response: np.ndarray, edges: np.ndarray) -> dict[str, list[float]]:
    """Mean response and resolution (standard deviation of the response) with their errors per energy bin (GeV)."""
    out: dict[str, list[float]] = {"response": [], "response_err": [], "resolution": [], "resolution_err": [], "n_electrons": []}
    idx = np.digitize(e_true, edges) - 1
    for i in range(len(edges) - 1):
        r = response[idx == i]
        n = len(r)
        sd = float(r.std(ddof=1)) if n > 1 else float("nan")
        out["response"].append(float(r.mean()) if n else float("nan"))
        out["response_err"].append(sd / np.sqrt(n) if n > 1 else float("nan"))
        out["resolution"].append(sd)
        out["resolution_err"].append(sd / np.sqrt(2 * (n - 1)) if n > 1 else float("nan"))
        out["n_electrons"].append(n)
    return out


def compare(events: Sequence[str | os.PathLike[str]], energy_model: str | os.PathLike[str], shower_model: str | os.PathLike[str],
            training_file: str | os.PathLike[str], outputs: Mapping[str, str | os.PathLike[str]], settings: Mapping[str, Any], *,
            binning: str, reference_settings: Mapping[str, Any], sampling: Mapping[str, Any], device: str = "cpu",
            threads: int = 1, seed: int = 0) -> dict[str, Any]:
    """Shower every electron of the Z -> ee events in ``events`` with the reference and with the surrogate, and
    write ``outputs['metrics']``, ``outputs['mass_plot']`` and ``outputs['response_plot']`` (module doc).
    ``settings``: ``mll_min``, ``mll_max`` (GeV) and ``bins`` of the m_ee fit, ``energy_bins`` (GeV edges),
    ``bootstrap`` (resamplings for the error of the width ratio)."""
    geometry = load_geometry(binning)
    ref_settings = resolve_settings(reference_settings, geometry)
    f_samp = medium(ref_settings).sampling_fraction
    e_true, m_true = electron_pairs(events)
    e_mev = 1e3 * e_true.reshape(-1)
    e_train = read_incident_energies(training_file)
    lo_mev, hi_mev = float(e_train.min()), float(e_train.max())
    outside = (e_mev < lo_mev) | (e_mev > hi_mev)
    if outside.any():
        log.warning("fastsim: %d of %d electrons (%.1f %%) lie outside the surrogate's training energies %.0f-%.0f MeV: "
                    "extrapolated", outside.sum(), len(e_mev), 100 * outside.mean(), lo_mev, hi_mev)
    rng = np.random.default_rng(seed)
    dev = select_device(device, threads)
    torch.manual_seed(int(seed))
    model = Surrogate(energy_model, shower_model, dev, sampling["solver"], int(sampling["steps"]))
    visible = {"reference": (lambda e: simulate(e, geometry, ref_settings, rng).sum(1, dtype=np.float64), int(ref_settings["chunk"])),
               "surrogate": (lambda e: model.sample(e).sum(1, dtype=np.float64), int(sampling["batch_size"]))}
    vis, seconds = {}, {}
    for source, (energy_sum, size) in visible.items():
        progress = Progress(f"fastsim {source} showers", len(e_mev), "electrons")
        start = time.perf_counter()
        vis[source] = in_chunks(energy_sum, e_mev, size, progress)
        seconds[source] = time.perf_counter() - start
        progress.done()
    lo, hi = float(settings["mll_min"]), float(settings["mll_max"])
    edges = np.linspace(lo, hi, int(settings["bins"]) + 1)
    e_edges = np.asarray(settings["energy_bins"], dtype=np.float64)
    response = {s: (vis[s] / f_samp / e_mev).reshape(-1, 2) for s in SOURCES}
    mass = {"particle": m_true, **{s: m_true * np.sqrt(response[s].prod(1)) for s in SOURCES}}
    peaks = {k: peak(m, edges) for k, m in mass.items()}
    metrics: dict[str, Any] = {
        "n_events": len(m_true), "n_electrons": len(e_mev), "sampling_fraction": f_samp,
        "training_energy_range_gev": [lo_mev / 1e3, hi_mev / 1e3],
        "n_electrons_outside_training": int(outside.sum()), "fraction_outside_training": float(outside.mean()),
        "extrapolated": bool(outside.any()),
        "mee_peak": peaks,
        "time_per_electron_ms": {s: 1e3 * seconds[s] / len(e_mev) for s in SOURCES},
        "energy_bins_gev": e_edges.tolist(),
        "response": {s: response_table(e_true.reshape(-1), response[s].reshape(-1), e_edges) for s in SOURCES},
        "mean_response": {s: float(response[s].mean()) for s in SOURCES},
    }
    if all("sigma" in peaks[s] for s in SOURCES):
        a, b = peaks["surrogate"], peaks["reference"]
        metrics["mee_sigma_surrogate_over_reference"] = a["sigma"] / b["sigma"]
        metrics["mee_sigma_surrogate_over_reference_err"] = bootstrap_ratio_error(mass, edges, int(settings["bootstrap"]), rng)
        metrics["mee_mean_shift_gev"] = a["mean"] - b["mean"]
    log.info("fastsim: %d Z -> ee events; m_ee sigma reference %s, surrogate %s GeV", len(m_true),
             peaks["reference"].get("sigma"), peaks["surrogate"].get("sigma"))
    with staged_outputs(outputs["metrics"], outputs["mass_plot"], outputs["response_plot"]) as (tmp_m, tmp_mass, tmp_resp):
        write_json(tmp_m, metrics)
        plotting.overlay({k: hist.Hist(hist.axis.Regular(len(edges) - 1, lo, hi)).fill(v) for k, v in mass.items()}, tmp_mass,
                         r"$m_{ee}$ [GeV]", title="Z -> ee, electron energy from showers")
        response_plot(metrics, tmp_resp)
    return metrics


def response_plot(metrics: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Electron response and resolution against E for the reference and surrogate showers."""
    plt = plotting.plt
    edges = np.asarray(metrics["energy_bins_gev"])
    centres = np.sqrt(edges[1:] * edges[:-1])
    fig, axes = plt.subplots(1, 2, figsize=(14, 6))
    for s in SOURCES:
        t = metrics["response"][s]
        for ax, key in zip(axes, ("response", "resolution")):
            ax.errorbar(centres, t[key], yerr=t[f"{key}_err"], xerr=[centres - edges[:-1], edges[1:] - centres], fmt="o", label=s)
    for ax, label in zip(axes, (r"$\langle E_{reco} / E \rangle$", r"$\sigma(E_{reco} / E)$")):
        ax.set_xscale("log")
        ax.set_xlabel("electron E [GeV]")
        ax.set_ylabel(label)
        ax.legend(fontsize=14)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
