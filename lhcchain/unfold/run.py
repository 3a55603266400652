"""The ``unfold`` stage's steps: one per method (``ibu``, ``omnifold``, ``cinn``, ``icinn``) and ``evaluate``.

Every step reads the simulation's and the pseudo-data's prepared splits and metadata (:mod:`.data`).
The simulation's ``heldout_split`` (default ``test``) is kept out of every training: it gives the
cINN's posterior calibration and the closure tests (its reco level unfolded and compared with its own
particle level, for ``ibu``, ``cinn`` and, with ``omnifold.closure``, ``omnifold``). Unbinned methods write ``{method}.parquet`` (the
observables of the unfolded particle-level events, their ``weight`` and the bootstrap ``group``:
the pseudo-data event of a cINN draw, the simulated event of an OmniFold weight); every method writes
``{method}.json`` (iterations, wall time, ``time_per_10k_events_s`` per 10 000 pseudo-data events
unfolded, closure where done). ``evaluate`` writes ``metrics.json`` and ``observables.png``
(:mod:`.evaluate`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from ..device import select_device
from ..errors import InputError
from ..generate.evaluate import read_json
from ..io import derive_seed, staged_outputs, write_json
from ..prepare.selection import feature_unit
from ..reweight.classifier import two_sample_auc
from . import evaluate as ev
from .cinn import Acceptance, ConditionalUnfolder, calibration, icinn, train_model, unfold_events
from .data import Events, UnfoldingInput, load_input
from .ibu import edges_for, run_ibu, unfold_observable
from .omnifold import omnifold

log = logging.getLogger("lhcchain.unfold")
Paths = Sequence[str | os.PathLike[str]]


def load(sim: Paths, data: Paths, sim_meta: str | os.PathLike[str], data_meta: str | os.PathLike[str],
         s: Mapping[str, Any]) -> tuple[UnfoldingInput, Events, Events]:
    """The input, the simulation without its held-out split, and the held-out split (module doc)."""
    inp = load_input(sim, data, sim_meta, data_meta, s)
    held = inp.sim.split == s["heldout_split"]
    train, test = inp.sim.subset(~held), inp.sim.subset(held)
    for part, what in ((train, "training"), (test, f"held-out ({s['heldout_split']})")):
        if not part.pairs.any():
            raise InputError(f"sample {inp.sim.name!r}: no (particle, reco) pair in its {what} splits of {[str(p) for p in sim]}")
    log.info("unfold: simulation %s %s (training) %s (held out), pseudo-data %s %s", inp.sim.name, train.counts(), test.counts(),
             inp.data.name, inp.data.counts())
    return UnfoldingInput(train, inp.data), train, test


def write_events(path: str | os.PathLike[str], observables: Sequence[str], x: np.ndarray, w: np.ndarray, group: np.ndarray,
                 note: str) -> None:
    """Unfolded particle-level events: observables, ``weight``, bootstrap ``group``."""
    cols = {o: x[:, j] for j, o in enumerate(observables)}
    table = pa.table({**cols, "weight": w, "group": np.asarray(group, np.int64)})
    pq.write_table(table.replace_schema_metadata({"lhcchain": note}), path, compression="zstd")


def read_events(path: str | os.PathLike[str], observables: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x, weight, group)`` of :func:`write_events`."""
    try:
        t = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise InputError(f"{path}: not a readable parquet file: {exc}") from exc
    missing = [c for c in [*observables, "weight", "group"] if c not in t.column_names]
    if missing:
        raise InputError(f"{path}: lacks columns {missing}; rerun the unfolding step that wrote it")
    x = np.column_stack([t.column(o).to_numpy() for o in observables])
    return x, t.column("weight").to_numpy(), t.column("group").to_numpy()


def closure(held: Events, unfolded: np.ndarray, weights: np.ndarray, edges: Sequence[np.ndarray]) -> dict[str, dict[str, float]]:
    """Per observable, :func:`.evaluate.compare` of an unfolding of ``held``'s reco level with its particle level."""
    pp = held.pass_particle
    out = {}
    for j, name in enumerate(held.observables):
        t = ev.normalised(held.particle[pp, j], held.weight[pp], edges[j])
        u = ev.normalised(unfolded[:, j], weights, edges[j])
        out[name] = ev.compare(*u, *t)
    return out


def _timing(summary: dict[str, Any], t0: float, n_data: int) -> dict[str, Any]:
    wall = time.perf_counter() - t0
    summary.update(wall_s=wall, time_per_10k_events_s=1e4 * wall / max(n_data, 1), n_data_reco=n_data)
    return summary


def run_ibu_step(sim: Paths, data: Paths, sim_meta: str, data_meta: str, outputs: Mapping[str, str], settings: Mapping[str, Any]) -> dict:
    """IBU of every observable (:mod:`.ibu`) and its closure on the held-out split; writes ``summary``."""
    s = dict(settings)
    inp, train, held = load(sim, data, sim_meta, data_meta, s)
    t0 = time.perf_counter()
    res = run_ibu(inp, s)
    edges = edges_for(train, int(s["bins"]))
    clos = {}
    pp = held.pass_particle
    for j, name in enumerate(train.observables):
        c = unfold_observable(held.reco[held.pass_reco, j], held.weight[held.pass_reco], train, j, edges[j], s["ts_stopping"], s["max_iter"])
        u = np.asarray(c["unfolded"])
        t = ev.normalised(held.particle[pp, j], held.weight[pp], edges[j])
        clos[name] = ev.compare(u / u.sum(), np.hypot(c["stat_err"], c["sys_err"]) / u.sum(), *t)
    summary = _timing({"method": "ibu", "observables": res, "iterations": {k: v["iterations"] for k, v in res.items()},
                       "stopping_rule": f"first iteration with reduced chi2 between successive iterations < {s['ts_stopping']} "
                                        f"(pyunfold ts='chi2'), at most {s['max_iter']}",
                       "closure": clos, "counts": {"sim": train.counts(), "data": inp.data.counts()}}, t0, len(inp.data_reco))
    with staged_outputs(outputs["summary"]) as (tmp,):
        write_json(tmp, summary)
    return summary


def run_omnifold_step(sim: Paths, data: Paths, sim_meta: str, data_meta: str, outputs: Mapping[str, str], settings: Mapping[str, Any], *,
                      device: str = "auto", threads: int = 1, seed: int = 0) -> dict:
    """OmniFold (:mod:`.omnifold`) of the pseudo-data, and with ``closure`` of the held-out split's reco level;
    writes ``events`` and ``summary``."""
    s = dict(settings)
    dev = select_device(device, threads)
    inp, train, held = load(sim, data, sim_meta, data_meta, s)
    t0 = time.perf_counter()
    res = omnifold(train, inp.data_reco, inp.data_reco_weight, s, seed, dev)
    summary = _timing({"method": "omnifold", "iterations": res["iterations"], "history": res["history"], "ensemble": int(s["ensemble"]),
                       "device": str(dev), "counts": {"sim": train.counts(), "data": inp.data.counts()}}, t0, len(inp.data_reco))
    if s["closure"]:
        pr = held.pass_reco
        clos = omnifold(train, held.reco[pr], held.weight[pr], s, derive_seed(seed, "closure"), dev)
        summary["closure"] = closure(held, clos["events"], clos["weights"], edges_for(train, int(s["bins"])))
    with staged_outputs(outputs["events"], outputs["summary"]) as (tmp_ev, tmp_s):
        write_events(tmp_ev, train.observables, res["events"], res["weights"], np.flatnonzero(train.pass_particle),
                     "omnifold: simulated particle-level events weighted g * nu")
        write_json(tmp_s, summary)
    return summary


def run_cinn_step(sim: Paths, data: Paths, sim_meta: str, data_meta: str, outputs: Mapping[str, str], settings: Mapping[str, Any], *,
                  device: str = "auto", threads: int = 1, seed: int = 0) -> dict:
    """Single-pass cINN (:mod:`.cinn`): train, unfold the pseudo-data, calibrate and close on the held-out
    split; writes ``model``, ``events``, ``summary`` and ``calibration_plot``."""
    s = dict(settings)
    dev = select_device(device, threads)
    inp, train, held = load(sim, data, sim_meta, data_meta, s)
    t0 = time.perf_counter()
    model, info = train_model(train, s, derive_seed(seed, "train"), dev)
    acc = Acceptance.fit(train, s["classifier"], derive_seed(seed, "acceptance"), dev)
    res = unfold_events(model, acc, inp.data_reco, inp.data_reco_weight, s, derive_seed(seed, "unfold"))
    t_unfold = time.perf_counter() - t0
    pairs = np.flatnonzero(held.pairs)[: int(s["calibration_events"])]
    cal = calibration(model, held.particle[pairs], held.reco[pairs], int(s["calibration_draws"]), derive_seed(seed, "calibration"),
                      train.observables)
    held_reco = held.reco[held.pass_reco]
    clos_res = unfold_events(model, acc, held_reco, held.weight[held.pass_reco], s, derive_seed(seed, "closure"))
    clos = closure(held, clos_res["events"], clos_res["weights"], edges_for(train, int(s["bins"])))
    summary = {"method": "cinn", "family": model.s["family"], "training": info, "calibration": cal, "closure": clos, "iterations": 1,
               "draws": int(s["draws"]), "sample_seconds": res["sample_seconds"], "n_efficiency_floored": res["n_efficiency_floored"],
               "fake_fraction_data": res["fake_fraction_data"], "device": str(dev),
               "counts": {"sim": train.counts(), "heldout": held.counts(), "data": inp.data.counts()}}
    _timing(summary, t0, len(inp.data_reco))
    summary["wall_s"], summary["time_per_10k_events_s"] = t_unfold, 1e4 * t_unfold / max(len(inp.data_reco), 1)
    log.info("cinn: coverage 68 %% %s, 95 %% %s", cal["coverage_68"], cal["coverage_95"])
    with staged_outputs(outputs["model"], outputs["events"], outputs["summary"], outputs["calibration_plot"]) as tmp:
        torch.save({**model.state(), "observables": train.observables}, tmp[0])
        write_events(tmp[1], train.observables, res["events"], res["weights"], res["event_index"],
                     "cinn: draws per pseudo-data event, weight = g * P(true | reco) / efficiency / draws")
        write_json(tmp[2], summary)
        ev.calibration_figure(cal, tmp[3], f"cINN posterior calibration: {len(pairs)} held-out {train.name} pairs, {s['calibration_draws']} draws")
    return summary


def run_icinn_step(sim: Paths, data: Paths, sim_meta: str, data_meta: str, cinn_model: str, cinn_events: str, outputs: Mapping[str, str],
                   settings: Mapping[str, Any], *, device: str = "auto", threads: int = 1, seed: int = 0) -> dict:
    """Iterative cINN (:func:`.cinn.icinn`) starting from the single-pass network and its unfolding; writes ``events`` and ``summary``."""
    s = dict(settings)
    dev = select_device(device, threads)
    inp, train, _ = load(sim, data, sim_meta, data_meta, s)
    try:
        state = torch.load(cinn_model, map_location=dev, weights_only=False)
    except Exception as exc:
        raise InputError(f"{cinn_model}: not a readable cINN checkpoint: {exc}") from exc
    if state.get("format") != "lhcchain.unfold.cinn/1" or state.get("observables") != train.observables:
        raise InputError(f"{cinn_model}: a cINN of observables {state.get('observables')} (format {state.get('format')!r}); "
                         f"expected {train.observables}: rerun the cinn step")
    model = ConditionalUnfolder.from_state(state, dev)
    x, w, group = read_events(cinn_events, train.observables)
    if len(w) != int(s["draws"]) * len(inp.data_reco):
        raise InputError(f"{cinn_events}: {len(w)} draws, expected {s['draws']} per pseudo-data event ({len(inp.data_reco)}): rerun the cinn step")
    t0 = time.perf_counter()
    acc = Acceptance.fit(train, s["classifier"], derive_seed(seed, "acceptance"), dev)
    res = icinn(train, acc, inp.data_reco, inp.data_reco_weight, s, seed, dev, first=(model, {"events": x, "weights": w, "event_index": group}))
    summary = _timing({"method": "icinn", "iterations": res["iterations"], "history": res["history"], "trainings": res["trainings"],
                       "prior_removed": bool(res["history"] and res["history"][-1]["prior_removed"]), "device": str(dev)},
                      t0, len(inp.data_reco))
    with staged_outputs(outputs["events"], outputs["summary"]) as (tmp_ev, tmp_s):
        write_events(tmp_ev, train.observables, res["events"], res["weights"], res["event_index"],
                     "icinn: draws per pseudo-data event after the prior-removal iterations")
        write_json(tmp_s, summary)
    return summary


def evaluate(sim: Paths, data: Paths, sim_meta: str, data_meta: str, results: Mapping[str, Mapping[str, str]],
             outputs: Mapping[str, str], settings: Mapping[str, Any], *, device: str = "auto", threads: int = 1, seed: int = 0) -> dict:
    """Compare every method's unfolding with the pseudo-data truth (:mod:`.evaluate`); ``results``: method ->
    ``{summary, events}`` paths (no events for ``ibu``). Writes ``metrics`` and ``figure``."""
    s = dict(settings)
    dev = select_device(device, threads)
    inp, train, _ = load(sim, data, sim_meta, data_meta, s)
    obs = train.observables
    edges = edges_for(train, int(s["bins"]))
    rng = np.random.default_rng(seed)
    truth = [ev.normalised(inp.truth[:, j], inp.truth_weight, edges[j]) for j in range(len(obs))]
    pp = train.pass_particle
    prior = [ev.normalised(train.particle[pp, j], train.weight[pp], edges[j]) for j in range(len(obs))]
    hists: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    metrics: dict[str, Any] = {"sim": train.name, "data": inp.data.name, "observables": obs, "bins": {o: len(e) - 1 for o, e in zip(obs, edges)},
                               "prior": {o: ev.compare(*prior[j], *truth[j]) for j, o in enumerate(obs)}, "methods": {}}
    for m, paths in results.items():
        summ = read_json(paths["summary"])
        entry: dict[str, Any] = {k: summ.get(k) for k in ("iterations", "wall_s", "time_per_10k_events_s", "closure")}
        if m == "ibu":
            hs = []
            for j, o in enumerate(obs):
                r = summ["observables"][o]
                if not np.allclose(r["edges"], edges[j]):
                    raise InputError(f"{paths['summary']}: IBU bins of {o} differ from the evaluation's; rerun the ibu step")
                u = np.asarray(r["unfolded"])
                hs.append((u / u.sum(), np.hypot(r["stat_err"], r["sys_err"]) / u.sum()))
        else:
            x, w, group = read_events(paths["events"], obs)
            hs = [ev.bootstrap_hist(x[:, j], w, edges[j], group, int(s["bootstrap"]), rng) for j in range(len(obs))]
            # one draw per pseudo-data event (its weight times the event's draws): no duplicated conditions in the test
            inverse = np.unique(group, return_inverse=True)[1]
            first = np.r_[True, group[1:] != group[:-1]]
            mult = np.bincount(inverse)[inverse[first]]
            auc = two_sample_auc(inp.truth, x[first], inp.truth_weight, w[first] * mult, settings=s["classifier"],
                                 seed=derive_seed(seed, "auc", m), device=dev, label=f"{m} vs truth")
            entry["joint_auc"], entry["joint_auc_err"] = auc["auc"], auc["auc_err"]
            log.info("unfold evaluate %s: joint AUC vs truth %.4f +- %.4f", m, auc["auc"], auc["auc_err"])
        if m == "cinn":
            entry["coverage_68"], entry["coverage_95"] = summ["calibration"]["coverage_68"], summ["calibration"]["coverage_95"]
        if m == "icinn":
            entry["prior_removed"], entry["auc_history"] = summ["prior_removed"], [h["auc"] for h in summ["history"]]
        hists[m] = hs
        entry["per_observable"] = {o: ev.compare(*hs[j], *truth[j]) for j, o in enumerate(obs)}
        metrics["methods"][m] = entry
    if "ibu" in hists:
        ibu = metrics["methods"]["ibu"]["per_observable"]
        for m, entry in metrics["methods"].items():
            if m != "ibu":
                entry["observables_beating_ibu"] = sum(entry["per_observable"][o]["triangular_discriminator_x1e3"]
                                                       < ibu[o]["triangular_discriminator_x1e3"] for o in obs)
    units = {o: feature_unit(f"particle_{o}") for o in obs}
    labels = {o: f"{o} [{u}]" if u else o for o, u in units.items()}
    per_method = {m: e["per_observable"] for m, e in metrics["methods"].items()}
    with staged_outputs(outputs["metrics"], outputs["figure"]) as (tmp_m, tmp_f):
        write_json(tmp_m, metrics)
        ev.figure(obs, labels, edges, truth, prior, hists, per_method, tmp_f,
                  f"unfolding {inp.data.name} (reco) with {train.name}: unit-normalised particle level")
    return metrics


def output_paths(outdir: str | os.PathLike[str]) -> dict[str, dict[str, Path]]:
    """The stage's outputs per step (as the Snakemake rules declare them)."""
    d = Path(outdir)
    return {"ibu": {"summary": d / "ibu.json"},
            "omnifold": {"events": d / "omnifold.parquet", "summary": d / "omnifold.json"},
            "cinn": {"model": d / "cinn.pt", "events": d / "cinn.parquet", "summary": d / "cinn.json", "calibration_plot": d / "cinn_calibration.png"},
            "icinn": {"events": d / "icinn.parquet", "summary": d / "icinn.json"},
            "evaluate": {"metrics": d / "metrics.json", "figure": d / "observables.png"}}
