"""Evaluation of generated events against a held-out truth sample: metrics.json and figures.

Per multiplicity n (events with exactly n jets):

* Histograms of p_T and eta of both leptons, p_T, eta and m of every jet, m_ll and (n >= 2) the
  Delta R of the two leading jets, with ``bins`` regular bins over the truth's 0.1-99.9 % quantile
  range. The generated histogram is normalised to the truth's event count. Ratio generated / truth
  with bands: truth statistics, generated statistics and, for Bayesian networks, the per-bin standard
  deviation over the weight draws (``generator_member``; each draw's histogram normalised alike).
  Metrics per observable, over the bins holding more than ``min_count`` truth events: the largest
  ``|ratio - 1|``, the fraction of those bins within 10 %, the largest pull ``|ratio - 1| / sigma``
  (sigma: truth and generated statistics in quadrature) and the median relative Bayesian spread.
  Per multiplicity, the largest ``|ratio - 1|`` over all observables is set against its statistical
  floor: the median, over ``FLOOR_TOYS`` Poisson toys of both histograms drawn from the truth's
  shape (a perfect generator), of the same maximum (observables treated as independent).
* Classifier two-sample test (:func:`lhcchain.reweight.classifier.two_sample_auc`, the project's one
  classifier) of truth against an equal number of generated events (skipped below
  ``MIN_CLASSIFIER_EVENTS`` truth events) on the checkpoint's standardised
  representation plus m_ll, p_T,ll and all jet-jet Delta R: AUC with its error (bootstrap and repeated
  fold assignments), and the distribution of ``w = D / (1 - D)`` over generated events (quantiles and the fraction outside [0.5, 2]).
* Mean log-likelihood per event of the truth events under the model (standardised space; CFM by the
  divergence integral; Bayesian networks at their mean weights), on at most ``log_likelihood_events``
  events.

Over all multiplicities: the Z peak, a Voigt fit (:func:`lhcchain.stats.fit_peak`, Lorentzian width
free) of m_ll in [81, 101] GeV for truth and generated; peak position difference (GeV) and ratio of
the full widths at half maximum (their errors from Poisson replicas of the histograms). Generation
speed from the sampling summary, and its ratio to the ``simulate`` stage's events/s per core when
that stage's ``metrics.json`` is given.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import hist
import numpy as np
import pyarrow.parquet as pq
import torch

from .. import plotting
from ..config import resolve_settings
from ..device import select_device
from ..errors import InputError
from ..io import require_outputs, staged_outputs, write_json
from ..reweight.classifier import resolve_classifier, two_sample_auc
from ..stats import fit_peak
from .data import Events, Transform, build_events, load_events, read_columns, to_columns
from .sample import resolve_sampling
from .train import load_model, tensors

log = logging.getLogger("lhcchain.generate")

PEAK_RANGE = (81.0, 101.0)
MIN_CLASSIFIER_EVENTS = 20  # per class and multiplicity
FLOOR_TOYS = 500  # Poisson toys for the statistical floor of the largest |ratio - 1|
LABELS = {"pt": r"$p_{T,%s}$ [GeV]", "eta": r"$\eta_{%s}$", "mass": r"$m_{%s}$ [GeV]"}
plt = plotting.plt


def resolve_evaluation(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``settings`` laid over the default config's ``generate.evaluation`` (``classifier`` merged key by key)."""
    out = resolve_settings(settings, "generate.evaluation")
    out["classifier"] = resolve_classifier(out["classifier"], "generate.evaluation.classifier")
    return out


def observables(cols: Mapping[str, np.ndarray], level: str, n_jets: int) -> dict[str, np.ndarray]:
    """Observable name -> values (GeV, rad) for events with ``n_jets`` jets (module doc)."""
    out = {f"{o}_{f}": cols[f"{level}_{o}_{f}"] for o in ("l1", "l2") for f in ("pt", "eta")}
    for k in range(1, n_jets + 1):
        out.update({f"j{k}_{f}": cols[f"{level}_j{k}_{f}"] for f in ("pt", "eta", "mass")})
    out["mll"] = cols[f"{level}_mll"]
    if n_jets >= 2:
        out["drjj"] = cols[f"{level}_drjj"]
    return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}


def label(name: str) -> str:
    if name == "mll":
        return r"$m_{\ell\ell}$ [GeV]"
    if name == "drjj":
        return r"$\Delta R_{j_1 j_2}$"
    obj, feat = name.split("_")
    sub = {"l1": r"\ell_1", "l2": r"\ell_2"}.get(obj, f"j_{obj[1:]}")
    return LABELS[feat] % sub


def edges_for(name: str, truth: np.ndarray, bins: int) -> np.ndarray:
    """Regular bin edges over the truth's 0.1-99.9 % range (symmetric for eta; +-0.5 around a constant)."""
    lo, hi = np.quantile(truth, [0.001, 0.999])
    if name.endswith("_eta"):
        hi = max(abs(lo), abs(hi))
        lo = -hi
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, bins + 1)


def perfect_generator_max_dev(truth_counts: np.ndarray, n_gen: int, checked: np.ndarray, rng: np.random.Generator,
                              toys: int = FLOOR_TOYS) -> np.ndarray:
    """Per toy, the largest |ratio - 1| over the ``checked`` bins when truth (its event count) and
    generated (``n_gen`` events, normalised to the truth's count) are both Poisson draws from the
    truth histogram's shape; (toys,), zeros when no bin is checked."""
    if not checked.any():
        return np.zeros(toys)
    n_t = truth_counts.sum()
    p = truth_counts[checked] / n_t
    t = rng.poisson(n_t * p, size=(toys, p.size))
    g = rng.poisson(n_gen * p, size=(toys, p.size))
    with np.errstate(divide="ignore", invalid="ignore"):
        dev = np.abs(g * (n_t / n_gen) / t - 1)
    return np.nan_to_num(dev, nan=np.inf, posinf=np.inf).max(1)


def compare(truth: np.ndarray, gen: np.ndarray, members: np.ndarray, edges: np.ndarray, min_count: float,
            rng: np.random.Generator) -> dict[str, Any]:
    """Histograms, ratio, bands and metrics of one observable (module doc); ``toy_max_dev`` holds
    :func:`perfect_generator_max_dev` for the checked bins."""
    ax = hist.axis.Variable(edges)
    ht = hist.Hist(ax).fill(truth).values()
    hg = hist.Hist(ax).fill(gen).values()
    n_t, n_g = len(truth), max(len(gen), 1)
    scale = n_t / n_g
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = hg * scale / ht
        rel_t, rel_g = 1 / np.sqrt(ht), 1 / np.sqrt(hg)
        ids = np.unique(members)
        if len(ids) > 1:
            per = np.stack([hist.Hist(ax).fill(gen[members == i]).values() * n_t / max((members == i).sum(), 1) for i in ids])
            rel_b = per.std(0, ddof=1) / (hg * scale)
        else:
            rel_b = np.zeros_like(ratio)
        pull = np.abs(ratio - 1) / (ratio * np.sqrt(rel_t**2 + rel_g**2))
    good = ht > min_count
    dev = np.abs(ratio - 1)
    metrics = {
        "bins_checked": int(good.sum()),
        "max_abs_dev": float(dev[good].max()) if good.any() else None,
        "within_10pct": float((dev[good] <= 0.1).mean()) if good.any() else None,
        "max_pull": float(pull[good].max()) if good.any() else None,
        "median_bayes_rel_spread": float(np.median(rel_b[good])) if good.any() else None,
    }
    return {"edges": edges, "truth": ht, "gen": hg * scale, "ratio": ratio, "rel_t": rel_t, "rel_g": rel_g, "rel_b": rel_b,
            "metrics": metrics, "toy_max_dev": perfect_generator_max_dev(ht, len(gen), good, rng)}


def classifier_features(events: Events, transform: Transform, level: str, n_jets: int, cols: Mapping[str, np.ndarray]) -> np.ndarray:
    """Standardised representation of ``n_jets``-jet events plus m_ll, p_T,ll and all jet-jet Delta R."""
    z = transform.forward(events.x[:, : 5 + 4 * n_jets], events.source)
    extra = [cols[f"{level}_mll"], np.log(np.asarray(cols[f"{level}_ptll"], dtype=np.float64) + 1.0)]
    x = events.x
    for a in range(n_jets):
        for b in range(a + 1, n_jets):
            ia, ib = 5 + 4 * a, 5 + 4 * b
            dphi = (x[:, ia + 2] - x[:, ib + 2] + np.pi) % (2 * np.pi) - np.pi
            extra.append(np.hypot(x[:, ia + 1] - x[:, ib + 1], dphi))
    return np.column_stack([z, *extra])


def fwhm(peak: Mapping[str, float]) -> float:
    """Full width at half maximum (GeV) of a Voigt profile (Olivero & Longbothum 1977, 0.02 % accuracy)."""
    f_l, f_g = 2 * peak["gamma"], 2 * np.sqrt(2 * np.log(2)) * peak["sigma"]
    return float(0.5346 * f_l + np.sqrt(0.2166 * f_l**2 + f_g**2))


def z_peak(truth: np.ndarray, gen: np.ndarray, seed: int = 0, replicas: int = 20) -> dict[str, Any]:
    """Voigt fits of the m_ll peak of truth and generated events and their differences (module doc);
    the FWHM error is the spread over ``replicas`` Poisson fluctuations of the histogram."""
    out: dict[str, Any] = {}
    ax = hist.axis.Regular(80, *PEAK_RANGE)
    rng = np.random.default_rng(seed)
    for name, values in (("truth", truth), ("generated", gen)):
        h = hist.Hist(ax).fill(values).values()
        try:
            p = fit_peak(h, ax.edges)
        except RuntimeError as exc:  # no convergence: report, do not fail the stage
            out[name] = {"error": str(exc)}
            continue
        widths = []
        for _ in range(replicas):
            try:
                widths.append(fwhm(fit_peak(rng.poisson(h).astype(float), ax.edges)))
            except RuntimeError:
                continue
        out[name] = {**p, "fwhm": fwhm(p), "fwhm_err": float(np.std(widths, ddof=1)) if len(widths) > 1 else None}
    if "fwhm" in out["truth"] and "fwhm" in out["generated"]:
        out["mean_shift_gev"] = out["generated"]["mean"] - out["truth"]["mean"]
        out["fwhm_ratio"] = out["generated"]["fwhm"] / out["truth"]["fwhm"]
    return out


def _ratio_figure(panels: Mapping[str, Mapping[str, Any]], path: Path, title: str, bayesian: bool) -> None:
    with plt.rc_context({"xtick.minor.visible": False, "ytick.minor.visible": False}):  # halves the drawing time
        _draw_ratios(panels, path, title, bayesian)


def _draw_ratios(panels: Mapping[str, Mapping[str, Any]], path: Path, title: str, bayesian: bool) -> None:
    fig, axes = plotting.ratio_grid(len(panels), 4, (5, 5.5), hspace=0.3)
    for i, ((top, bottom), (name, c)) in enumerate(zip(axes, panels.items())):
        e = c["edges"]
        top.stairs(c["truth"], e, color="black", label="truth")
        top.stairs(c["gen"], e, color="tab:blue", label="generated")
        band = c["gen"] * np.nan_to_num(np.sqrt(c["rel_g"] ** 2 + c["rel_b"] ** 2), posinf=0.0)
        top.stairs(c["gen"] + band, e, baseline=c["gen"] - band, fill=True, color="tab:blue", alpha=0.3)
        top.set_ylabel("events", fontsize=12)
        top.tick_params(labelbottom=False, labelsize=10)
        rt = np.nan_to_num(c["rel_t"], posinf=0.0)
        bottom.stairs(1 + rt, e, baseline=1 - rt, fill=True, color="grey", alpha=0.4, label="truth stat.")
        with np.errstate(invalid="ignore"):  # empty bins: 0 * inf
            rg = np.nan_to_num(c["ratio"] * c["rel_g"], nan=0.0, posinf=0.0)
            rb = np.nan_to_num(c["ratio"] * c["rel_b"], nan=0.0, posinf=0.0)
        ratio = np.nan_to_num(c["ratio"], nan=1.0, posinf=1.0)
        if bayesian:
            bottom.stairs(ratio + np.hypot(rg, rb), e, baseline=ratio - np.hypot(rg, rb), fill=True, color="tab:orange",
                          alpha=0.5, label="stat. + Bayesian")
        bottom.stairs(ratio + rg, e, baseline=ratio - rg, fill=True, color="tab:blue", alpha=0.5, label="gen. stat.")
        bottom.stairs(ratio, e, color="tab:blue")
        bottom.axhline(1.0, color="black", lw=0.8)
        bottom.set_ylim(0.7, 1.3)
        bottom.set_xlabel(label(name), fontsize=12)
        bottom.set_ylabel("gen. / truth", fontsize=10)
        bottom.tick_params(labelsize=10)
        if i == 0:
            top.legend(fontsize=10)
            bottom.legend(fontsize=7, ncol=3, loc="upper left")
    fig.suptitle(title, fontsize=16, y=0.92)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _classifier_figure(results: Mapping[int, Mapping[str, Any]], path: Path, title: str) -> None:
    fig, axes = plt.subplots(1, max(len(results), 1), figsize=(7 * max(len(results), 1), 6))
    for ax, (m, res) in zip(np.atleast_1d(axes), results.items()):
        edges = np.linspace(-1.5, 1.5, 61)
        for key, lab in (("weights_source", "generated"), ("weights_target", "truth")):
            ax.hist(np.clip(np.log10(res[key]), edges[0], edges[-1]), bins=edges, histtype="step", density=True, label=lab)
        ax.set_yscale("log")
        ax.set_xlabel(r"$\log_{10} w$, $w = D/(1-D)$")
        ax.set_ylabel("normalised")
        ax.set_title(f"{m} jets: AUC = {res['auc']:.3f} $\\pm$ {res['auc_err']:.3f}", fontsize=14)
        ax.legend(fontsize=12)
    fig.suptitle(title, fontsize=16)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _peak_figure(truth: np.ndarray, gen: np.ndarray, peak: Mapping[str, Any], path: Path, title: str) -> None:
    ax = hist.axis.Regular(80, *PEAK_RANGE, name="mll")
    hs = {}
    for name, values in (("truth", truth), ("generated", gen)):
        p = peak.get(name, {})
        lab = f"{name}: mean {p['mean']:.2f} GeV, FWHM {p['fwhm']:.2f} GeV" if "fwhm" in p else name
        hs[lab] = hist.Hist(ax).fill(values)
    plotting.overlay(hs, path, r"$m_{\ell\ell}$ [GeV]", title=title)


def read_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A JSON file of an earlier rule; InputError naming it when unreadable."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable JSON file: {exc}") from exc


def evaluate(generated: str | os.PathLike[str], truth: str | os.PathLike[str], checkpoint: str | os.PathLike[str],
             sample_summary: str | os.PathLike[str], outputs: Mapping[str, str | os.PathLike[str]], settings: Mapping[str, Any], *,
             sim_metrics: str | os.PathLike[str] | None = None, device: str = "auto", threads: int = 1, seed: int = 0) -> dict[str, Any]:
    """Compare ``generated`` (from :func:`.sample.sample`, with its JSON ``sample_summary``) with held-out
    ``truth`` (prepared parquet) and write ``outputs``: ``metrics``, ``classifier_plot``, ``mll_plot`` and
    ``hist_{n}j`` per multiplicity (module doc). ``sim_metrics``: the simulate stage's metrics.json of the
    training sample, for the speed ratio. Returns the metrics."""
    s = resolve_evaluation(settings)
    summary = read_json(sample_summary)
    sim = read_json(sim_metrics) if sim_metrics else {}
    dev = select_device(device, threads)
    model, ckpt = load_model(checkpoint, dev)
    level, mult, max_jets = ckpt["level"], list(ckpt["multiplicities"]), int(ckpt["max_jets"])
    transform = Transform.from_state(ckpt["transform"])
    keys = ["metrics", "classifier_plot", "mll_plot", *(f"hist_{m}j" for m in mult)]
    require_outputs(outputs, keys, "evaluate")
    tru = load_events(truth, level, mult, max_jets, ckpt.get("selection"))
    gen_cols = read_columns(generated, level, max_jets)
    gen = build_events(gen_cols, level, mult, str(generated))
    names = pq.read_schema(generated).names
    member = (pq.read_table(generated, columns=["generator_member"]).column(0).to_numpy().astype(np.int64)
              if "generator_member" in names else np.zeros(len(gen_cols[f"{level}_n_jets"]), np.int64))
    if len(member) != len(gen):
        raise InputError(f"{generated}: {len(member) - len(gen)} rows fail the selection or have other jet counts; "
                         "expected the output of sample_generator")
    rng = np.random.default_rng(seed)
    t_cols = to_columns(tru.x, tru.n_jets, tru.pdg, tru.phi, level, max_jets)
    g_cols = to_columns(gen.x, gen.n_jets, gen.pdg, gen.phi, level, max_jets)
    metrics: dict[str, Any] = {"level": level, "family": ckpt["settings"]["family"], "bayesian": model.bayesian,
                               "n_truth": {m: int((tru.n_jets == m).sum()) for m in mult},
                               "n_generated": {m: int((gen.n_jets == m).sum()) for m in mult}, "multiplicities": {}}
    clf: dict[int, dict[str, Any]] = {}
    all_panels: dict[int, dict[str, dict[str, Any]]] = {}
    sampling = resolve_sampling(summary.get("settings", {}))  # the solver the events were generated with
    model.set_solver(sampling["solver"], int(sampling["steps"]))
    for m in mult:
        st, sg = tru.n_jets == m, gen.n_jets == m
        if not st.any():
            raise InputError(f"{truth}: no events with {m} jets pass level {level!r}; the truth sample cannot test the generator")
        if not sg.any():
            raise InputError(f"{generated}: no generated events with {m} jets")
        t_m, g_m = ({k: v[sel] for k, v in c.items()} for c, sel in ((t_cols, st), (g_cols, sg)))
        obs_t, obs_g = observables(t_m, level, m), observables(g_m, level, m)
        panels = {k: compare(obs_t[k], obs_g[k], member[sg], edges_for(k, obs_t[k], int(s["bins"])), float(s["min_count"]), rng)
                  for k in obs_t}
        all_panels[m] = panels
        devs = [p["metrics"]["max_abs_dev"] for p in panels.values() if p["metrics"]["max_abs_dev"] is not None]
        toys = np.max([p["toy_max_dev"] for p in panels.values()], axis=0)
        entry: dict[str, Any] = {"observables": {k: p["metrics"] for k, p in panels.items()},
                                 "max_abs_dev_all_observables": max(devs) if devs else None,
                                 "max_abs_dev_perfect_generator": {"median": float(np.median(toys)),
                                                                   "68%": float(np.quantile(toys, 0.68))} if devs else None,
                                 "classifier_auc": None, "classifier_auc_err": None}
        n = int(min(st.sum(), sg.sum()))
        if n >= MIN_CLASSIFIER_EVENTS:  # truth against as many generated events
            pick = rng.choice(int(sg.sum()), size=n, replace=False)
            a = classifier_features(tru.subset(st), transform, level, m, t_m)
            b = classifier_features(gen.subset(sg).subset(pick), transform, level, m, {k: v[pick] for k, v in g_m.items()})
            res = two_sample_auc(a, b, settings=s["classifier"], seed=seed + m, device=dev, label=f"{m} jets")
            clf[m] = res
            w = res["weights_source"]
            entry.update({
                "classifier_auc": res["auc"], "classifier_auc_err": res["auc_err"],
                "weights_generated": {"quantiles": dict(zip(("1%", "16%", "50%", "84%", "99%"), np.quantile(w, [0.01, 0.16, 0.5, 0.84, 0.99]).tolist())),
                                      "std_log10": float(np.std(np.log10(w))), "fraction_outside_0.5_2": float(((w < 0.5) | (w > 2)).mean())},
            })
        else:
            log.warning("evaluate_generator: %d jets: only %d truth events, no classifier test (needs %d)", m, n, MIN_CLASSIFIER_EVENTS)
        entry["log_likelihood"] = _log_likelihood(model, tru.subset(st), transform, mult, int(s["log_likelihood_events"]), dev, rng)
        metrics["multiplicities"][m] = entry
        log.info("evaluate_generator: %d jets: AUC %s +- %s, max |ratio - 1| %s (perfect generator: %s), log-likelihood %.3f", m,
                 entry["classifier_auc"], entry["classifier_auc_err"], entry["max_abs_dev_all_observables"],
                 entry["max_abs_dev_perfect_generator"], entry["log_likelihood"])
    peak = z_peak(t_cols[f"{level}_mll"], g_cols[f"{level}_mll"], seed)
    metrics["z_peak"] = peak
    rate = float(summary.get("events_per_s_per_thread", float("nan")))
    metrics["speed"] = {"generation_events_per_s": summary.get("events_per_s"), "generation_events_per_s_per_thread": rate,
                        "device": summary.get("device"), "threads": summary.get("threads")}
    if sim.get("events_per_s_per_core"):
        sim_rate = float(sim["events_per_s_per_core"])
        metrics["speed"]["simulate_events_per_s_per_core"] = sim_rate
        metrics["speed"]["speedup_over_simulate_per_core"] = rate / sim_rate
    aucs = [e["classifier_auc"] for e in metrics["multiplicities"].values() if e["classifier_auc"] is not None]
    metrics["worst_auc"] = max(aucs) if aucs else None
    with staged_outputs(*(outputs[k] for k in keys)) as staged:
        tmp = dict(zip(keys, staged))
        for m, panels in all_panels.items():
            _ratio_figure(panels, tmp[f"hist_{m}j"], f"{metrics['family']}: Z + {m} jets ({level} level)", model.bayesian)
        _classifier_figure(clf, tmp["classifier_plot"], f"{metrics['family']}: classifier truth vs generated")
        _peak_figure(t_cols[f"{level}_mll"], g_cols[f"{level}_mll"], peak, tmp["mll_plot"], f"{metrics['family']}: Z peak")
        write_json(tmp["metrics"], metrics)
    return metrics


@torch.no_grad()
def _log_likelihood(model: torch.nn.Module, events: Events, transform: Transform, mult: Sequence[int], limit: int,
                    device: torch.device, rng: np.random.Generator) -> float:
    """Mean log-density per event of (at most ``limit``) ``events`` in the standardised space (nats)."""
    if len(events) > limit:
        events = events.subset(np.sort(rng.choice(len(events), size=limit, replace=False)))
    x, k, _ = tensors(events, transform, mult, device)
    model.set_bayes_mode("mean")
    torch.manual_seed(int(rng.integers(1 << 31)))
    lp = torch.cat([model.log_prob(x[i:i + 4096], k[i:i + 4096]) for i in range(0, len(k), 4096)])
    return float(lp.mean())


def output_paths(outdir: str | os.PathLike[str], multiplicities: Sequence[int]) -> dict[str, Path]:
    """The evaluation outputs in ``outdir`` (as the Snakemake rule declares them)."""
    d = Path(outdir)
    return {"metrics": d / "metrics.json", "classifier_plot": d / "classifier.png", "mll_plot": d / "mll.png",
            **{f"hist_{m}j": d / f"hist_{m}j.png" for m in multiplicities}}
