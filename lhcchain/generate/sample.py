"""Sampling a trained generator: events in the ``prepare`` schema (parquet and ROOT) and their speed.

Settings (``generate.sampling``; the default config's section fills what is missing): ``n_events`` (total; ``null`` means ``factor``
times the training events), ``factor``, ``solver`` and ``steps`` (the CFM's ODE solver), ``batch_size``
(events per network call), ``bayes_samples`` (weight draws of a Bayesian network: each draw
generates an equal share of the events, tagged by ``generator_member``), ``delta_r_min`` (jet-jet).

Multiplicities are generated in their training proportions (weighted). Each generated event gets a
leading-lepton flavour from the training frequencies of its multiplicity and a uniform azimuth.
Leptons are ordered by pt (l1 leading) and jets by pt, as ``prepare`` orders them. The selection is
enforced by rejection and resampling: jet-jet ``Delta R > delta_r_min``, jet-lepton ``Delta R >
jet_lepton_dr_min``, ``|eta|`` below the lepton and jet limits, lepton pt above its threshold, m_ll in
the window (keys of the prepare selection stored in the checkpoint; jet pt thresholds hold by
construction of the transform).

Outputs: parquet with prepare's base columns (``file_index`` 0, ``entry`` = ``event`` = running index,
``run`` 0, ``weight`` 1) and ``{level}_*`` kinematic columns (leptons, jets, dilepton and dijet
observables; no jet substructure or MET), plus ``generator_member``; the same columns as a flat
TTree ``Events`` in ROOT; a JSON summary with the generation speed (network, inverse transform and
selection; writing excluded).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
import uproot

from ..config import resolve_settings
from ..device import select_device
from ..errors import InputError
from ..io import Progress, staged_outputs, write_json
from .data import Transform, delta_r_min, lepton_mass, to_columns, wrap_phi
from .models import EventModel
from .train import load_model

log = logging.getLogger("lhcchain.generate")

MAX_TRIES = 200  # batches per (multiplicity, member) before giving up on a too-low acceptance


def resolve_sampling(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``settings`` laid over the default config's ``generate.sampling`` (:func:`lhcchain.config.resolve_settings`);
    InputError on unknown keys or bad values."""
    out = resolve_settings(settings, "generate.sampling")
    for key in ("batch_size", "bayes_samples", "steps"):
        if int(out[key]) < 1:
            raise InputError(f"generate.sampling: {key} must be >= 1, got {out[key]}")
    return out


def canonical_leptons(x: np.ndarray, pdg: np.ndarray, phi1: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Swap the leptons of events whose l2 is harder than l1, re-expressing every dphi relative to the new l1."""
    swap = x[:, 2] > x[:, 0]
    if not swap.any():
        return x, pdg, phi1
    x, phi1 = x.copy(), phi1.copy()
    d2 = x[swap, 4].copy()
    phi1[swap] = wrap_phi(phi1[swap] + d2)
    x[swap, 0], x[swap, 2] = x[swap, 2], x[swap, 0].copy()
    x[swap, 1], x[swap, 3] = x[swap, 3], x[swap, 1].copy()
    x[swap, 4] = -d2
    jets = np.arange(7, x.shape[1], 4)  # jet dphi columns
    x[np.ix_(swap, jets)] = wrap_phi(x[np.ix_(swap, jets)] - d2[:, None])
    return x, np.where(swap, -pdg, pdg), phi1


def acceptance(x: np.ndarray, n_jets: np.ndarray, pdg: np.ndarray, selection: Mapping[str, Any], dr_jj: float) -> np.ndarray:
    """Events of the representation that pass the selection enforced at generation (module doc)."""
    ok = np.isfinite(np.where(np.isnan(x), 0.0, x)).all(1)
    if selection.get("lepton_pt_min") is not None:
        ok &= np.minimum(x[:, 0], x[:, 2]) > selection["lepton_pt_min"]
    jj, jl = delta_r_min(x, n_jets)
    ok &= jj > dr_jj
    if selection.get("jet_lepton_dr_min") is not None:
        ok &= jl > float(selection["jet_lepton_dr_min"])
    if selection.get("lepton_eta_max") is not None:
        ok &= (np.abs(x[:, 1]) < selection["lepton_eta_max"]) & (np.abs(x[:, 3]) < selection["lepton_eta_max"])
    if selection.get("jet_eta_max") is not None:
        eta_j = x[:, 6::4]
        ok &= np.where(np.isnan(eta_j), 0.0, np.abs(eta_j)).max(1, initial=0.0) < selection["jet_eta_max"]
    if selection.get("mll_min") is not None or selection.get("mll_max") is not None:
        mll = dilepton_mass(x, pdg)
        ok &= (mll >= (selection.get("mll_min") or -np.inf)) & (mll <= (selection.get("mll_max") or np.inf))
    return ok


def dilepton_mass(x: np.ndarray, pdg: np.ndarray) -> np.ndarray:
    """m_ll (GeV) of events in the representation, lepton masses from the flavour."""
    m = lepton_mass(pdg)
    pt1, eta1, pt2, eta2, dphi = (x[:, i] for i in range(5))
    e1, e2 = np.sqrt((pt1 * np.cosh(eta1)) ** 2 + m**2), np.sqrt((pt2 * np.cosh(eta2)) ** 2 + m**2)
    p1p2 = pt1 * pt2 * (np.cos(dphi) + np.sinh(eta1) * np.sinh(eta2))
    return np.sqrt(np.maximum(2 * m**2 + 2 * (e1 * e2 - p1p2), 0.0))


@torch.no_grad()
def generate(model: EventModel, ckpt: Mapping[str, Any], counts: Mapping[int, int], settings: Mapping[str, Any],
             device: torch.device, rng: np.random.Generator) -> Iterator[dict[str, np.ndarray]]:
    """Accepted events in batches of one multiplicity: ``x`` (representation), ``n_jets``, ``pdg``, ``phi``,
    ``member``, the ``multiplicity`` and the number ``tried`` of events drawn. ``counts``: events per multiplicity."""
    transform = Transform.from_state(ckpt["transform"])
    model.set_solver(settings["solver"], settings["steps"])
    members = int(settings["bayes_samples"]) if model.bayesian else 1
    model.set_bayes_mode("fixed" if model.bayesian else "mean")
    mult = list(ckpt["multiplicities"])
    selection = ckpt.get("selection", {})
    bs = int(settings["batch_size"])
    for member in range(members):
        if model.bayesian:
            model.resample_weights()
        for j, m in enumerate(mult):
            codes = np.array(list(ckpt["flavours"][m]), dtype=np.int32)
            probs = np.array(list(ckpt["flavours"][m].values()))
            target = counts[m] // members + (1 if member < counts[m] % members else 0)
            done, eff = 0, 1.0
            for _ in range(MAX_TRIES):
                if done >= target:
                    break
                n_try = min(bs, max(16, math.ceil((target - done) / max(eff, 1e-3) * 1.05)))
                k = torch.full((n_try,), j, dtype=torch.long, device=device)
                z = model.sample(k).double().cpu().numpy()[:, : 5 + 4 * m]
                x = transform.inverse(z)
                pdg = rng.choice(codes, size=n_try, p=probs / probs.sum())
                phi = rng.uniform(-np.pi, np.pi, n_try)
                x, pdg, phi = canonical_leptons(x, pdg, phi)
                n_j = np.full(n_try, m)
                ok = np.flatnonzero(acceptance(x, n_j, pdg, selection, float(settings["delta_r_min"])))[: target - done]
                eff = max(ok.size / n_try, 1e-3) if done == 0 else 0.5 * eff + 0.5 * max(ok.size / n_try, 1e-3)
                done += ok.size
                yield {"x": x[ok], "n_jets": n_j[ok], "pdg": pdg[ok], "phi": phi[ok], "member": np.full(ok.size, member),
                       "multiplicity": m, "tried": n_try}
            if done < target:
                raise InputError(f"generate: acceptance too low for {m} jets ({done} of {target} events after {MAX_TRIES} batches); "
                                 "the model does not describe the selected phase space")
    model.set_bayes_mode("local")


def event_columns(batch: Mapping[str, np.ndarray], level: str, max_jets: int, start: int) -> dict[str, np.ndarray]:
    """Prepare-schema columns of a generated batch (module doc), entries numbered from ``start``."""
    n = len(batch["n_jets"])
    entry = np.arange(start, start + n, dtype=np.int64)
    base = {"file_index": np.zeros(n, np.int16), "entry": entry, "run": np.zeros(n, np.int64), "event": entry,
            "weight": np.ones(n)}
    cols = to_columns(batch["x"], batch["n_jets"], batch["pdg"], batch["phi"], level, max_jets)
    return {**base, **cols, "generator_member": batch["member"].astype(np.int16)}


def sample(checkpoint: str | os.PathLike[str], outputs: Mapping[str, str | os.PathLike[str]], settings: Mapping[str, Any], *,
           device: str = "auto", threads: int = 1, seed: int = 0) -> dict[str, Any]:
    """Generate events from ``checkpoint`` into ``outputs['parquet']``, ``outputs['root']`` and the summary
    ``outputs['summary']`` (module doc). Returns the summary."""
    settings = resolve_sampling(settings)
    dev = select_device(device, threads)
    model, ckpt = load_model(checkpoint, dev)
    level, max_jets = ckpt["level"], int(ckpt["max_jets"])
    n_train = sum(ckpt["n_train"].values())
    total = int(settings["n_events"]) if settings["n_events"] is not None else int(round(float(settings["factor"]) * n_train))
    if total < 1:
        raise InputError(f"generate.sampling: n_events must be >= 1, got {total}")
    counts = {m: int(round(total * f)) for m, f in ckpt["fractions"].items()}
    torch.manual_seed(int(seed))
    rng = np.random.default_rng(int(seed))
    progress = Progress(f"sample_generator {ckpt['settings']['family']}", total=sum(counts.values()))
    gen_time, tried, written = 0.0, dict.fromkeys(counts, 0), dict.fromkeys(counts, 0)
    keys = ("parquet", "root", "summary")
    with staged_outputs(*(outputs[k] for k in keys)) as (pq_tmp, root_tmp, summary_tmp):
        writer: pq.ParquetWriter | None = None
        with uproot.recreate(root_tmp) as root:
            batches = generate(model, ckpt, counts, settings, dev, rng)
            while True:
                t0 = time.perf_counter()
                batch = next(batches, None)  # samples come back to the CPU, so GPU work is included
                gen_time += time.perf_counter() - t0
                if batch is None:
                    break
                m = batch["multiplicity"]
                tried[m] += batch["tried"]
                if not len(batch["n_jets"]):
                    continue
                cols = event_columns(batch, level, max_jets, sum(written.values()))
                written[m] += len(batch["n_jets"])
                table = pa.table(cols)
                if writer is None:
                    meta = {"lhcchain": f"generated by {ckpt['settings']['family']} from {ckpt['train_data']}; units in metadata.json of the training data"}
                    writer = pq.ParquetWriter(pq_tmp, table.schema.with_metadata(meta), compression="zstd")
                    root.mktree("Events", {k: v.dtype for k, v in cols.items()})
                writer.write_table(table)
                root["Events"].extend(cols)
                progress.update(len(batch["n_jets"]))
        if writer is not None:
            writer.close()
        progress.done()
        n_out = sum(written.values())
        summary = {
            "family": ckpt["settings"]["family"], "bayesian": model.bayesian, "level": level,
            "members": int(settings["bayes_samples"]) if model.bayesian else 1,
            "n_events": n_out, "n_events_per_multiplicity": written, "n_train": n_train,
            "acceptance": {m: written[m] / max(tried[m], 1) for m in counts},
            "generation_time_s": gen_time, "events_per_s": n_out / max(gen_time, 1e-12),
            "events_per_s_per_thread": n_out / max(gen_time, 1e-12) / (torch.get_num_threads() if dev.type == "cpu" else 1),
            "threads": torch.get_num_threads(), "device": str(dev), "settings": settings, "seed": int(seed),
        }
        write_json(summary_tmp, summary)
    log.info("sample_generator: %d events at %.0f events/s (%s, %d threads); acceptance %s", n_out, summary["events_per_s"],
             dev, torch.get_num_threads(), {m: round(a, 3) for m, a in summary["acceptance"].items()})
    return summary


def output_paths(outdir: str | os.PathLike[str]) -> dict[str, Path]:
    """The sampling outputs in ``outdir`` (as the Snakemake rule declares them)."""
    d = Path(outdir)
    return {"parquet": d / "events.parquet", "root": d / "events.root", "summary": d / "sample.json"}
