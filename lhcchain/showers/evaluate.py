"""The CaloChallenge evaluation, from the challenge's published definitions (arXiv:2410.21611, sec. 4;
``code/HighLevelFeatures.py`` and ``code/evaluate.py`` of ``CaloChallenge/homepage``).

High-level features per shower (energies in MeV, positions in mm at the voxel centres of
:mod:`.geometry`): ``E_tot / E_inc``; the energy of each layer; for each layer binned in angle the
energy-weighted centres ``<x>``, ``<y>`` (the challenge's "eta" and "phi") and widths
``sqrt(<x^2> - <x>^2)``; the sparsity of each layer, ``1 - (fraction of voxels above threshold)``;
and the spectrum of all voxel energies.

Separation power of two normalised histograms (same bins): ``S = 1/2 sum_i (h1_i - h2_i)^2 / (h1_i + h2_i)``,
0 for identical and 1 for disjoint distributions.

FPD: the Fréchet distance between Gaussians fitted to the two feature sets (means mu, covariances C),
``|mu1 - mu2|^2 + tr(C1 + C2 - 2 (C1 C2)^(1/2))``, extrapolated to infinite sample size by a straight
line in 1/N through values at several N (Kansal et al., arXiv:2211.10295). KPD: the unbiased estimator
of the squared maximum mean discrepancy with the kernel ``k(x, y) = (x.y / d + 1)^3``, median over
batches with half the interquartile range as its error. Both on the cls-high features standardised by
the reference's mean and spread.

Classifier tests: ``cls-low`` (voxels / E_inc and log10 E_inc), ``cls-low-normed`` (voxels / layer
energy, log10 of the layer energies and log10 E_inc) and ``cls-high`` (log10 E_inc, log10 layer
energies, centres and widths / 100 mm). A classifier separates reference (label 1) from generated
showers with out-of-fold probabilities (:func:`density_ratio_probabilities`); isotonic regression
fitted on one half of the showers (block means with Laplace's rule ``(k + 1) / (n + 2)``, so that
no probability is exactly 0 or 1) calibrates the other half, on which the AUC and the Jensen-Shannon
divergence ``JSD = ln 2 + 1/2 (<ln p>_ref + <ln(1 - p)>_gen)`` (in bits: divided by ln 2) are reported.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import hist
import numpy as np
import torch
from scipy.linalg import sqrtm
from scipy.optimize import isotonic_regression
from scipy.special import expit

from .. import plotting
from ..data import package_file
from ..device import select_device
from ..errors import InputError
from ..reweight.classifier import cross_fit, roc_auc
from ..io import staged_outputs, write_json
from .geometry import Geometry, load_geometry
from .io import Showers, read_showers
from .reference import incident_energies, resolve_settings, simulate
from .surrogate import Surrogate

log = logging.getLogger("lhcchain.showers")
GEANT4_MS = 1772.0  # GEANT4 time per shower of dataset 1 (CaloChallenge paper, arXiv:2410.21611, sec. 5)

CLASSIFIER_TESTS = ("cls-low", "cls-low-normed", "cls-high")
GROUPS = ("layer_energy", "etot_einc", "centre_x", "centre_y", "width_x", "width_y", "sparsity")


def high_level_features(showers: Showers, geometry: Geometry, threshold_mev: float = 0.0) -> dict[str, np.ndarray]:
    """The challenge's high-level features (module doc): ``etot_einc`` (N,), ``layer_energy`` and
    ``sparsity`` (N, layers), ``centre_x``, ``centre_y``, ``width_x``, ``width_y`` (N, angular layers), in MeV and mm."""
    v = showers.voxels.astype(np.float64)
    x, y = geometry.xy()
    b = geometry.bounds
    layer_e = geometry.layer_sums(v)
    sparsity = 1.0 - geometry.layer_sums(v > threshold_mev) / np.diff(b)
    feats: dict[str, Any] = {"etot_einc": v.sum(1) / showers.energy, "layer_energy": layer_e, "sparsity": sparsity}
    for name, coord in (("x", x), ("y", y)):
        centres, widths = [], []
        for i in geometry.alpha_layers:
            e, c = v[:, b[i]:b[i + 1]], coord[b[i]:b[i + 1]]
            norm = e.sum(1) + 1e-16
            mean = (e * c).sum(1) / norm
            centres.append(mean)
            widths.append(np.sqrt(np.clip((e * c * c).sum(1) / norm - mean**2, 0.0, None)))
        feats[f"centre_{name}"] = np.stack(centres, 1) if centres else np.zeros((len(v), 0))
        feats[f"width_{name}"] = np.stack(widths, 1) if widths else np.zeros((len(v), 0))
    return feats


def separation_power(h1: np.ndarray, h2: np.ndarray) -> float:
    """``1/2 sum (h1 - h2)^2 / (h1 + h2)`` of two histograms on the same bins, each normalised to unit sum."""
    h1, h2 = np.asarray(h1, dtype=np.float64), np.asarray(h2, dtype=np.float64)
    h1, h2 = h1 / h1.sum(), h2 / h2.sum()
    s = h1 + h2
    nz = s > 0
    return float(0.5 * np.sum((h1[nz] - h2[nz]) ** 2 / s[nz]))


def feature_bins(reference: np.ndarray, bins: int, log: bool = False) -> np.ndarray:
    """``bins`` bins over the reference's 0.1-99.9 % range (log-spaced over its positive values if ``log``)."""
    ref = reference[np.isfinite(reference)]
    if log:
        ref = ref[ref > 0]
        if ref.size == 0:
            return np.array([0.0, 1.0])
        lo, hi = np.percentile(np.log10(ref), [0.1, 99.9])
        return 10.0 ** np.linspace(lo, hi + 1e-9, bins + 1)
    lo, hi = np.percentile(ref, [0.1, 99.9]) if ref.size else (0.0, 1.0)
    return np.linspace(lo, hi + 1e-9 * max(abs(hi), 1.0), bins + 1)


def separation_powers(ref: Mapping[str, np.ndarray], gen: Mapping[str, np.ndarray], bins: int = 40) -> dict[str, Any]:
    """Separation power of every feature column (bins from the reference), and the mean per group."""
    per: dict[str, list[float]] = {}
    for group in GROUPS:
        a, b = np.atleast_2d(ref[group].T).T, np.atleast_2d(gen[group].T).T
        per[group] = []
        for j in range(a.shape[1]):
            edges = feature_bins(a[:, j], bins, log=group == "layer_energy")
            h1, _ = np.histogram(np.clip(a[:, j], edges[0], edges[-1]), edges)
            h2, _ = np.histogram(np.clip(b[:, j], edges[0], edges[-1]), edges)
            per[group].append(separation_power(h1, h2) if h1.sum() and h2.sum() else 1.0)
    return {"per_feature": per, "mean": {g: float(np.mean(v)) if v else float("nan") for g, v in per.items()}}


def voxel_spectrum_separation(ref: np.ndarray, gen: np.ndarray, threshold_mev: float, bins: int = 40) -> float:
    """Separation power of the spectra of all voxel energies above ``threshold_mev`` (log bins)."""
    a, b = ref[ref > threshold_mev].ravel(), gen[gen > threshold_mev].ravel()
    if a.size == 0 or b.size == 0:
        return 1.0
    edges = feature_bins(a, bins, log=True)
    return separation_power(np.histogram(np.clip(a, edges[0], edges[-1]), edges)[0], np.histogram(np.clip(b, edges[0], edges[-1]), edges)[0])


def frechet_distance(x: np.ndarray, y: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to the rows of ``x`` and ``y`` (module doc)."""
    mu1, mu2 = x.mean(0), y.mean(0)
    c1, c2 = np.atleast_2d(np.cov(x, rowvar=False)), np.atleast_2d(np.cov(y, rowvar=False))
    covmean = sqrtm(c1 @ c2)
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(c1 + c2 - 2.0 * covmean))


def fpd(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, n_points: int = 10, n_draws: int = 5) -> tuple[float, float]:
    """FPD extrapolated to infinite N (module doc): mean Fréchet distance at ``n_points`` sizes from
    N/5 to N (``n_draws`` subsamples each), fitted linearly in 1/N; the intercept and its standard error."""
    n_max = min(len(x), len(y))
    sizes = np.linspace(max(n_max // 5, 10), n_max, n_points).astype(int)
    vals = [np.mean([frechet_distance(x[rng.choice(len(x), n, replace=False)], y[rng.choice(len(y), n, replace=False)])
                     for _ in range(n_draws)]) for n in sizes]
    coef, cov = np.polyfit(1.0 / sizes, vals, 1, cov=True)
    return float(coef[1]), float(math.sqrt(max(cov[1, 1], 0.0)))


def mmd2_poly(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with the cubic polynomial kernel ``(x.y / d + 1)^3``."""
    d = x.shape[1]
    kxx, kyy, kxy = ((a @ b.T / d + 1.0) ** 3 for a, b in ((x, x), (y, y), (x, y)))
    m, n = len(x), len(y)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2.0 * kxy.mean())


def kpd(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, n_batches: int = 10, batch_size: int = 5000) -> tuple[float, float]:
    """KPD: median of :func:`mmd2_poly` over batches drawn with replacement, and half the interquartile range (module doc)."""
    bs = min(batch_size, len(x), len(y))
    vals = [mmd2_poly(x[rng.choice(len(x), bs)], y[rng.choice(len(y), bs)]) for _ in range(n_batches)]
    q1, med, q3 = np.percentile(vals, [25, 50, 75])
    return float(med), float(0.5 * (q3 - q1))


def classifier_features(showers: Showers, feats: Mapping[str, np.ndarray], geometry: Geometry, test: str) -> np.ndarray:
    """Inputs of the classifier test ``test`` (module doc): (N, features)."""
    log_e = np.log10(showers.energy)[:, None]
    layer_e = feats["layer_energy"]
    if test == "cls-low":
        return np.concatenate([log_e, showers.voxels / showers.energy[:, None]], 1)
    if test == "cls-low-normed":
        per_voxel = layer_e[:, geometry.voxel_layer()]
        return np.concatenate([log_e, showers.voxels / (per_voxel + 1e-16), np.log10(layer_e + 1e-8)], 1)
    if test == "cls-high":
        return np.concatenate([log_e, np.log10(layer_e + 1e-8)] + [feats[k] / 100.0 for k in ("centre_x", "centre_y", "width_x", "width_y")], 1)
    raise ValueError(f"unknown classifier test {test!r}; known: {CLASSIFIER_TESTS}")


def density_ratio_probabilities(a: np.ndarray, b: np.ndarray, settings: Mapping[str, Any], seed: int,
                                device: torch.device | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold probabilities ``p(a | x)`` for the rows of ``a`` and of ``b``: the project's one density-ratio
    classifier (:func:`lhcchain.reweight.classifier.cross_fit`), uncalibrated, since :func:`classifier_test`
    calibrates on a held-out half itself."""
    fit = cross_fit(a, b, settings=settings, seed=seed, device=device, calibrate_=False, label="shower classifier")
    p = expit(fit.logit_raw)
    return p[: len(a)], p[len(a):]


def classifier_test(ref: np.ndarray, gen: np.ndarray, settings: Mapping[str, Any], seed: int,
                    device: torch.device | None = None) -> dict[str, float]:
    """AUC and JSD (bits) of separating ``ref`` from ``gen`` on a held-out half after isotonic calibration on the
    other half; the classifier trains on ``device`` (CPU when None)."""
    pa, pb = density_ratio_probabilities(ref, gen, settings, seed, device)
    p = np.concatenate([pa, pb])
    label = np.concatenate([np.ones(len(pa)), np.zeros(len(pb))])
    half = np.random.default_rng(seed).permutation(len(p)) % 2 == 0
    order = np.argsort(p[half], kind="stable")
    y = label[half][order]
    blocks = isotonic_regression(y).blocks
    counts = np.diff(blocks)
    ones = np.add.reduceat(y, blocks[:-1])
    fitted = np.repeat((ones + 1.0) / (counts + 2.0), counts)  # block means with Laplace's rule: never exactly 0 or 1
    q = np.interp(p[~half], p[half][order], fitted)
    lab = label[~half].astype(bool)
    jsd = math.log(2.0) + 0.5 * (np.log(q[lab]).mean() + np.log(1.0 - q[~lab]).mean())
    auc, auc_err = roc_auc(lab, p[~half])
    return {"auc": auc, "auc_err": auc_err, "jsd_bits": float(jsd / math.log(2.0))}


def time_per_shower(generate: Callable[[int], Any], batch_sizes: tuple[int, ...] = (1, 100, 10000), min_seconds: float = 1.0,
                    max_showers: int = 20000) -> dict[str, float]:
    """Wall-clock milliseconds per shower of ``generate(batch)`` at each batch size (repeated for at least
    ``min_seconds`` and at most ``max_showers`` showers after one warm-up call)."""
    out = {}
    for bs in batch_sizes:
        generate(bs)
        n, start = 0, time.perf_counter()
        while True:
            generate(bs)
            n += bs
            if time.perf_counter() - start >= min_seconds or n >= max_showers:
                break
        out[f"batch{bs}"] = 1e3 * (time.perf_counter() - start) / n
    return out


def published(dataset: str = "ds1_photons") -> list[dict[str, Any]]:
    """Rows of the shipped ``published_results.csv`` for ``dataset`` (CaloChallenge 2022 result tables)."""
    with open(package_file("calochallenge/published_results.csv"), newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["dataset"] == dataset]
    text = ("dataset", "submission")
    return [{k: v if k in text else (float(v) if v else math.nan) for k, v in r.items()} for r in rows]


def histogram(values: np.ndarray, edges: np.ndarray) -> hist.Hist:
    h = hist.Hist(hist.axis.Variable(edges), storage=hist.storage.Weight())
    h.fill(np.clip(values, edges[0], edges[-1] * (1 - 1e-12) if edges[-1] > 0 else edges[-1] - 1e-12))
    return h


def feature_plots(ref: Mapping[str, np.ndarray], gen: Mapping[str, np.ndarray], ref_vox: np.ndarray, gen_vox: np.ndarray,
                  geometry: Geometry, threshold_mev: float, paths: Mapping[str, str | os.PathLike[str]], bins: int) -> None:
    """Reference and surrogate histograms of every high-level feature (three figures) and of the voxel spectrum."""
    ids = geometry.layer_ids
    alpha_ids = [ids[i] for i in geometry.alpha_layers]

    def pair(a: np.ndarray, b: np.ndarray, log: bool = False) -> dict[str, hist.Hist]:
        edges = feature_bins(a, bins, log)
        return {"reference": histogram(a, edges), "surrogate": histogram(b, edges)}

    energy = {r"$E_{tot}/E_{inc}$": pair(ref["etot_einc"], gen["etot_einc"])}
    energy.update({f"$E$ layer {lid} [MeV]": pair(ref["layer_energy"][:, i], gen["layer_energy"][:, i], True) for i, lid in enumerate(ids)})
    shape = {}
    for key, label in (("centre", "centre"), ("width", "width")):
        for c in ("x", "y"):
            for j, lid in enumerate(alpha_ids):
                shape[f"{label} {c} layer {lid} [mm]"] = pair(ref[f"{key}_{c}"][:, j], gen[f"{key}_{c}"][:, j])
    sparse = {f"sparsity layer {lid}": pair(ref["sparsity"][:, i], gen["sparsity"][:, i]) for i, lid in enumerate(ids)}
    sparse["voxel energy [MeV]"] = pair(ref_vox[ref_vox > threshold_mev], gen_vox[gen_vox > threshold_mev], True)
    plotting.panels(energy, paths["energy_plot"], "layer energies")
    plotting.panels(shape, paths["shape_plot"], "energy-weighted centres and widths")
    plotting.panels(sparse, paths["sparsity_plot"], "sparsity and voxel spectrum")


def published_plot(ours: Mapping[str, float], path: str | os.PathLike[str], dataset: str = "ds1_photons") -> None:
    """Our AUCs, FPD and time per shower beside the published CaloChallenge entries of ``dataset``."""
    rows = published(dataset)
    panels = (("auc_low", "cls-low AUC"), ("auc_high", "cls-high AUC"), ("fpd_x1e3", r"FPD $\times 10^3$"),
              ("time_cpu_batch10000_ms", "CPU ms / shower (batch 10 000)"))
    fig, axes = plotting.plt.subplots(1, len(panels), figsize=(7 * len(panels), 9), sharey=True)
    names = [r["submission"] for r in rows] + ["lhcchain (this run)"]
    y = np.arange(len(names))
    for ax, (key, label) in zip(axes, panels):
        vals = [r[key] for r in rows] + [ours.get(key, math.nan)]
        colours = ["tab:grey"] * len(rows) + ["tab:red"]
        ax.barh(y, np.nan_to_num(vals, nan=0.0), color=colours)
        ax.set_xlabel(label, fontsize=16)
        if key.startswith(("fpd", "time")):
            ax.set_xscale("log")
    axes[0].set_yticks(y, names, fontsize=12)
    fig.suptitle(f"CaloChallenge 2022 {dataset} (published, each on its own hardware; ours against the GFLASH reference)", fontsize=16)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plotting.plt.close(fig)


def reference_time_per_shower(reference_settings: Mapping[str, Any], geometry: Geometry, n: int, seed: int) -> float:
    """Milliseconds per shower of the reference simulation for ``n`` showers with the dataset's energies."""
    s = resolve_settings(reference_settings, geometry)
    rng = np.random.default_rng(seed)
    energies = incident_energies(n, s, rng)
    start = time.perf_counter()
    simulate(energies, geometry, s, rng)
    return 1e3 * (time.perf_counter() - start) / n


def evaluate(reference: str | os.PathLike[str], generated: str | os.PathLike[str], outputs: Mapping[str, str | os.PathLike[str]],
             settings: Mapping[str, Any], *, binning: str, threshold_mev: float, energy_model: str | os.PathLike[str],
             shower_model: str | os.PathLike[str], sampling: Mapping[str, Any], reference_settings: Mapping[str, Any],
             device: str = "auto", threads: int = 1, seed: int = 0) -> dict[str, Any]:
    """The CaloChallenge evaluation of ``generated`` against the held-out ``reference`` (module doc): writes
    ``outputs['metrics']`` and the figures ``energy_plot``, ``shape_plot``, ``sparsity_plot``, ``published_plot``.
    ``settings``: ``bins``, ``max_showers``, ``classifier`` (settings of the density-ratio classifier),
    ``timing_batch_sizes``, ``reference_timing_showers``."""
    geometry = load_geometry(binning)
    n_max = settings.get("max_showers")
    ref, gen = read_showers(reference, geometry, n_max), read_showers(generated, geometry, n_max)
    if len(ref) < 10 or len(gen) < 10:
        raise InputError(f"{reference}, {generated}: need at least 10 showers each, got {len(ref)} and {len(gen)}")
    rng = np.random.default_rng(seed)
    f_ref, f_gen = high_level_features(ref, geometry, threshold_mev), high_level_features(gen, geometry, threshold_mev)
    bins = int(settings["bins"])
    sep = separation_powers(f_ref, f_gen, bins)
    sep["mean"]["voxel_spectrum"] = voxel_spectrum_separation(ref.voxels, gen.voxels, threshold_mev, bins)
    high_ref, high_gen = (classifier_features(s, f, geometry, "cls-high") for s, f in ((ref, f_ref), (gen, f_gen)))
    mu, sd = high_ref.mean(0), np.where(high_ref.std(0) > 0, high_ref.std(0), 1.0)
    z_ref, z_gen = (high_ref - mu) / sd, (high_gen - mu) / sd
    fpd_val, fpd_err = fpd(z_ref, z_gen, rng)
    kpd_val, kpd_err = kpd(z_ref, z_gen, rng)
    dev = select_device(device, threads)
    cls = {}
    for test in CLASSIFIER_TESTS:
        a = classifier_features(ref, f_ref, geometry, test)
        b = classifier_features(gen, f_gen, geometry, test)
        result = cls[test.replace("-", "_")] = classifier_test(a, b, settings["classifier"], seed, dev)
        log.info("%s: AUC %.4f +- %.4f, JSD %.4f bits", test, result["auc"], result["auc_err"], result["jsd_bits"])
    model = Surrogate(energy_model, shower_model, torch.device("cpu"), sampling["solver"], int(sampling["steps"]))
    energies = ref.energy
    batch_sizes = tuple(int(b) for b in settings["timing_batch_sizes"])
    times = time_per_shower(lambda n: model.sample(np.resize(energies, n)), batch_sizes)
    ref_ms = reference_time_per_shower(reference_settings, geometry, int(settings["reference_timing_showers"]), seed)
    largest = f"batch{max(batch_sizes)}"
    metrics = {
        "n_reference": len(ref), "n_generated": len(gen),
        "classifier": cls,
        "fpd_x1e3": 1e3 * fpd_val, "fpd_x1e3_err": 1e3 * fpd_err, "kpd_x1e3": 1e3 * kpd_val, "kpd_x1e3_err": 1e3 * kpd_err,
        "separation_power_mean": sep["mean"], "separation_power": sep["per_feature"],
        "time_per_shower_ms": times, "reference_time_per_shower_ms": ref_ms,
        "speedup_vs_reference": ref_ms / times[largest], "speedup_vs_geant4": GEANT4_MS / times[largest],
        "timing_device": "cpu", "timing_threads": torch.get_num_threads(),
    }
    ours = {"auc_low": cls["cls_low"]["auc"], "auc_high": cls["cls_high"]["auc"], "fpd_x1e3": metrics["fpd_x1e3"],
            "time_cpu_batch10000_ms": times.get("batch10000", math.nan)}
    keys = ("metrics", "energy_plot", "shape_plot", "sparsity_plot", "published_plot")
    with staged_outputs(*(outputs[k] for k in keys)) as staged:
        tmp = dict(zip(keys, staged))
        write_json(tmp["metrics"], metrics)
        feature_plots(f_ref, f_gen, ref.voxels, gen.voxels, geometry, threshold_mev, tmp, bins)
        published_plot(ours, tmp["published_plot"])
    return metrics
