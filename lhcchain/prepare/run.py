"""The ``prepare`` stage: event files -> selected, per-event features at every level -> parquet splits.

Rows are events that pass the selection at any requested level; ``{level}_pass`` says which.
Features of one event at parton, particle and reco level sit in the same row, so unfolding gets
(truth, reco) pairs. The train/val/test split is a hash of (seed, file index, entry), so it does
not depend on the step size or on how many files are read.
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import hist
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .. import plotting
from ..errors import InputError
from ..io import Progress, require_outputs, staged_outputs, write_json
from ..stats import Z_HALF_WIDTH, Z_MASS, core_width, fit_peak
from .flat import flat_map, iterate_flat
from .readers import detect_format, iterate_events
from .selection import CutFlow, feature_unit, select_level

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
OUTPUTS = ("train", "val", "test", "metadata", "cutflow", "metrics", "mll_plot", "jets_plot", "cutflow_plot")


def split_of(seed: int, file_index: int, entry: np.ndarray, fractions: Sequence[float]) -> np.ndarray:
    """Split index (0 train, 1 val, 2 test) per event from a splitmix64 hash of (seed, file, entry)."""
    with np.errstate(over="ignore"):
        x = (np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)) ^ (np.uint64(file_index) << np.uint64(40)) ^ entry.astype(np.uint64)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    u = (x >> np.uint64(11)).astype(np.float64) / 2.0**53
    edges = np.cumsum(fractions)[:-1] / np.sum(fractions)
    return np.searchsorted(edges, u, side="right")


class _Histograms:
    """Streaming histograms for the stage's figures and peak fits."""

    def __init__(self, levels: Sequence[str], max_jets: int) -> None:
        w = hist.storage.Weight()
        self.mll = {lv: hist.Hist(hist.axis.Regular(120, 60, 120, name="mll"), storage=w) for lv in levels}
        self.peak = {lv: hist.Hist(hist.axis.Regular(80, 81, 101, name="mll"), storage=w) for lv in levels}
        self.j1pt = {lv: hist.Hist(hist.axis.Regular(50, 0, 250, name="pt"), storage=w) for lv in levels}
        self.njets = {lv: hist.Hist(hist.axis.Integer(0, max_jets + 3, name="n"), storage=w) for lv in levels}
        self.residual = hist.Hist(hist.axis.Regular(400, -20, 20, name="dm"), storage=w)

    def fill(self, cols: Mapping[str, np.ndarray], levels: Sequence[str], weight: np.ndarray) -> None:
        for lv in levels:
            ok = cols[f"{lv}_pass"]
            self.mll[lv].fill(cols[f"{lv}_mll"][ok], weight=weight[ok])
            self.peak[lv].fill(cols[f"{lv}_mll"][ok], weight=weight[ok])
            self.j1pt[lv].fill(cols[f"{lv}_j1_pt"][ok], weight=weight[ok])
            self.njets[lv].fill(cols[f"{lv}_n_jets"][ok], weight=weight[ok])
        if "reco" in levels and "particle" in levels:
            both = cols["reco_pass"] & cols["particle_pass"]
            self.residual.fill((cols["reco_mll"] - cols["particle_mll"])[both], weight=weight[both])


def prepare(
    sample: str,
    inputs: Sequence[str | os.PathLike[str]],
    outputs: Mapping[str, str | os.PathLike[str]],
    cfg: Mapping[str, Any],
    seed: int,
) -> dict[str, Any]:
    """Run the selection over ``inputs`` and write every entry of :data:`OUTPUTS` to ``outputs``.

    ``cfg`` is the config's ``prepare`` section (``levels``, ``step_size``, ``max_jets``, ``max_photons``, ``split``,
    ``selection``, optional ``format``; with ``format: flat`` also ``tree`` and ``branches``, see
    :mod:`lhcchain.prepare.flat`). Returns the metrics written to ``outputs['metrics']``.
    """
    require_outputs(outputs, OUTPUTS, "prepare")
    levels = list(cfg["levels"])
    sel, max_jets, max_photons = cfg["selection"], int(cfg["max_jets"]), int(cfg["max_photons"])
    fractions = [float(cfg["split"][s]) for s in SPLITS]
    files = [Path(p) for p in inputs]
    for p in files:
        if not p.is_file():
            raise InputError(f"input file {p} does not exist (sample {sample!r})")
    fmt_cfg = cfg.get("format", "auto")
    if fmt_cfg != "flat" and ("tree" in cfg or "branches" in cfg):
        raise InputError(f"sample {sample!r}: 'tree' and 'branches' describe a flat ntuple; set format: flat (format is {fmt_cfg!r})")
    fmap = flat_map(cfg, sample) if fmt_cfg == "flat" else None
    formats = [detect_format(p) if fmt_cfg == "auto" else fmt_cfg for p in files]
    step = int(cfg["step_size"])

    cutflow = CutFlow(levels, sel)
    hists = _Histograms(levels, max_jets)
    writers: dict[str, pq.ParquetWriter] = {}
    n_split = dict.fromkeys(SPLITS, 0)
    n_read = 0
    columns: list[str] = []
    progress = Progress(f"prepare {sample}")

    order = list(OUTPUTS)
    with staged_outputs(*(outputs[k] for k in order)) as staged:
        tmp = dict(zip(order, staged))
        try:
            for fi, (path, fmt) in enumerate(zip(files, formats)):
                log.info("reading %s (%s)", path, fmt)
                batches = iterate_flat(path, fmap, levels, step) if fmap else iterate_events(path, levels, step, fmt)
                for batch in batches:
                    n = len(batch)
                    n_read += n
                    cols: dict[str, np.ndarray] = {}
                    for lv in levels:
                        masks, feats = select_level(batch.levels[lv], sel, max_jets, lv, max_photons)
                        cutflow.add(lv, masks, batch.weight)
                        cutflow.add_isolation(lv, batch.levels[lv]["leptons"])
                        cutflow.add_photons(lv, batch.levels[lv]["photons"], n)
                        cols.update(feats)
                    keep = np.logical_or.reduce([cols[f"{lv}_pass"] for lv in levels])
                    hists.fill(cols, levels, batch.weight)
                    base = {"file_index": np.full(n, fi, np.int16), "entry": batch.entry, "run": batch.run,
                            "event": batch.event, "weight": batch.weight}
                    split = split_of(seed, fi, batch.entry, fractions)
                    table_cols = {**base, **cols}
                    columns = list(table_cols)
                    for si, name in enumerate(SPLITS):
                        m = keep & (split == si)
                        table = pa.table({k: v[m] for k, v in table_cols.items()})
                        if name not in writers:
                            schema = table.schema.with_metadata({"lhcchain": f"sample={sample}; units in metadata.json"})
                            writers[name] = pq.ParquetWriter(tmp[name], schema, compression="zstd")
                        writers[name].write_table(table)
                        n_split[name] += int(m.sum())
                    progress.update(n)
        finally:
            for w in writers.values():
                w.close()
        progress.done()
        n_kept = sum(n_split.values())
        if n_kept == 0:
            raise InputError(f"selection keeps no events in sample {sample!r} ({n_read} read from {[str(p) for p in files]}); "
                             + cutflow.empty_report())

        iso = cutflow.isolation_report().get("reco")
        if iso and iso["without_isolation"]:  # expected at particle and parton level, worth a word at reco level
            log.warning("reco level: %d of %d leptons have no isolation in the input; lepton_iso_max is not applied to them",
                        iso["without_isolation"], iso["leptons"])
        for lv, c in cutflow.photon_report().items():
            if c["events_without_photon_collection"]:
                log.info("%s level: %d of %d events come from inputs without photons; their n_photons is 0",
                         lv, c["events_without_photon_collection"], n_read)
        rows = cutflow.rows()
        with open(tmp["cutflow"], "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        write_json(tmp["metadata"], {
            "sample": sample,
            "levels": levels,
            "features": {c: feature_unit(c) for c in columns},
            "selection": dict(sel),
            "max_jets": max_jets,
            "max_photons": max_photons,
            "split": dict(zip(SPLITS, fractions)),
            "seed": seed,
            "sources": [{"path": str(p), "format": f} for p, f in zip(files, formats)],
            **({"tree": cfg["tree"], "branches": cfg["branches"]} if fmap else {}),
            "lepton_isolation": cutflow.isolation_report(),
            "photons": cutflow.photon_report(),
            "counts": {"read": n_read, "kept": n_kept, **n_split},
        })
        metrics = _metrics(sample, levels, cutflow, hists, n_read, n_kept, n_split, progress)
        write_json(tmp["metrics"], metrics)
        _figures(hists, levels, cutflow, tmp, sample)
    return metrics


def _metrics(sample: str, levels: list[str], cutflow: CutFlow, hists: _Histograms, n_read: int, n_kept: int,
             n_split: dict[str, int], progress: Progress) -> dict[str, Any]:
    m: dict[str, Any] = {
        "sample": sample, "n_read": n_read, "n_kept": n_kept, "n_split": n_split,
        "events_per_s": progress.rate, "wall_s": progress.elapsed,
        "selection_efficiency": {lv: float(cutflow.counts[lv][-1] / max(cutflow.counts[lv][0], 1)) for lv in levels},
    }
    peaks = {}
    for lv in levels:
        h = hists.peak[lv]
        sumw, sumw2 = h.values().sum(), h.variances().sum()
        if sumw2 > 0 and sumw**2 / sumw2 >= 50:  # effective number of entries, for weighted events
            try:
                peaks[lv] = fit_peak(h.values(), h.axes[0].edges, h.variances(), gamma=Z_HALF_WIDTH)
                peaks[lv]["shift_from_mz_gev"] = peaks[lv]["mean"] - Z_MASS
            except RuntimeError as exc:  # fit did not converge: report, do not fail the stage
                peaks[lv] = {"error": str(exc)}
    m["mll_peak"] = peaks
    r = hists.residual
    if r.values().sum() > 0:
        m["reco_mll_resolution"] = {"core_width_gev": core_width(r.values(), r.axes[0].edges), "n_events": float(r.values().sum())}
    return m


def _figures(hists: _Histograms, levels: list[str], cutflow: CutFlow, tmp: Mapping[str, Path], sample: str) -> None:
    plotting.overlay({lv: hists.mll[lv] for lv in levels}, tmp["mll_plot"], r"$m_{\ell\ell}$ [GeV]", title=sample)
    plotting.overlay({f"{lv} leading jet": hists.j1pt[lv] for lv in levels}, tmp["jets_plot"], r"$p_T^{j_1}$ [GeV]", title=sample, logy=True)
    plotting.bars(cutflow.cuts, {lv: list(cutflow.counts[lv]) for lv in levels}, tmp["cutflow_plot"], "events", title=f"{sample} cut-flow")


def output_paths(outdir: str | os.PathLike[str]) -> dict[str, Path]:
    """The stage's output files in ``outdir`` (as the Snakemake rule declares them)."""
    d = Path(outdir)
    names = {"train": "train.parquet", "val": "val.parquet", "test": "test.parquet", "metadata": "metadata.json",
             "cutflow": "cutflow.csv", "metrics": "metrics.json", "mll_plot": "mll.png", "jets_plot": "jet_pt.png",
             "cutflow_plot": "cutflow.png"}
    return {k: d / v for k, v in names.items()}
