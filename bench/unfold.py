"""Benchmark of stage unfold: every method on the same pseudo-data, compared with its truth, in one run.

Runs IBU, OmniFold, the cINN and the IcINN with the settings of ``config/config.yaml`` (``unfold``;
laid over by ``--configfile`` files, as Snakemake does) on the prepared simulation and pseudo-data in
``--data`` (default ``results/data``: run ``snakemake --cores all results/data/zjets/metrics.json
results/data/zjets_alt_tune/metrics.json`` first), then the evaluation (:func:`lhcchain.unfold.run.evaluate`).
``--results DIR`` reads a finished stage's ``DIR/metrics.json`` and summaries instead of running.

Prints ONE JSON line: per method the triangular discriminator (x 10^3) per observable, the number of
observables on which it beats IBU, its joint-space AUC against the truth, and its wall time per 10 000
unfolded pseudo-data events; the cINN's posterior coverage per observable.
Usage: ``python bench/unfold.py [--data DIR] [--configfile FILE ...] [--results DIR] [--threads T] [--device D]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from lhcchain.io import derive_seed
from lhcchain.unfold import run
from lhcchain.unfold.settings import unfold_methods, unfold_settings

ROOT = Path(__file__).resolve().parents[1]


def merged(base: dict, extra: Mapping) -> dict:
    """``base`` with ``extra`` laid over it key by key (nested mappings merged), as Snakemake's --configfile."""
    out = dict(base)
    for k, v in extra.items():
        out[k] = merged(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
    return out


def run_all(cfg: dict, data: Path, out: Path, threads: int, device: str) -> dict[str, Any]:
    """Every configured method and the evaluation into ``out``; returns the evaluation's metrics."""
    u = cfg["unfold"]
    inputs = ([str(data / u["sim"] / f"{s}.parquet") for s in ("train", "val", "test")],
              [str(data / u["data"] / f"{s}.parquet") for s in ("train", "val", "test")],
              str(data / u["sim"] / "metadata.json"), str(data / u["data"] / "metadata.json"))
    paths = run.output_paths(out)
    kw = {"device": device, "threads": threads}
    methods = unfold_methods(cfg)
    if "ibu" in methods:
        run.run_ibu_step(*inputs, paths["ibu"], unfold_settings(cfg, "ibu"))
    if "omnifold" in methods:
        run.run_omnifold_step(*inputs, paths["omnifold"], unfold_settings(cfg, "omnifold"), seed=derive_seed(cfg["seed"], "unfold_omnifold"), **kw)
    if "cinn" in methods or "icinn" in methods:
        run.run_cinn_step(*inputs, paths["cinn"], unfold_settings(cfg, "cinn"), seed=derive_seed(cfg["seed"], "unfold_cinn"), **kw)
    if "icinn" in methods:
        run.run_icinn_step(*inputs, str(paths["cinn"]["model"]), str(paths["cinn"]["events"]), paths["icinn"], unfold_settings(cfg, "icinn"),
                           seed=derive_seed(cfg["seed"], "unfold_icinn"), **kw)
    results = {m: {k: str(v) for k, v in paths[m].items()} for m in methods}
    return run.evaluate(*inputs, results, paths["evaluate"], unfold_settings(cfg, "evaluate"), seed=derive_seed(cfg["seed"], "unfold_evaluate"),
                        **kw)


def summary_line(metrics: Mapping[str, Any], cinn: Mapping[str, Any] | None) -> dict[str, Any]:
    """The benchmark's JSON line from the evaluation's metrics and the cINN's summary."""
    line: dict[str, Any] = {"sim": metrics["sim"], "data": metrics["data"], "methods": {}}
    for m, e in metrics["methods"].items():
        line["methods"][m] = {
            "triangular_discriminator_x1e3": {o: v["triangular_discriminator_x1e3"] for o, v in e["per_observable"].items()},
            "chi2_ndf": {o: v["chi2_ndf"] for o, v in e["per_observable"].items()},
            "observables_beating_ibu": e.get("observables_beating_ibu"),
            "joint_auc": e.get("joint_auc"), "joint_auc_err": e.get("joint_auc_err"),
            "iterations": e.get("iterations"), "time_per_10k_events_s": e.get("time_per_10k_events_s"),
        }
    if cinn:
        line["cinn_coverage_68"], line["cinn_coverage_95"] = cinn["calibration"]["coverage_68"], cinn["calibration"]["coverage_95"]
    line["prior_triangular_discriminator_x1e3"] = {o: v["triangular_discriminator_x1e3"] for o, v in metrics["prior"].items()}
    return line


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT / "results" / "data"), help="folder of prepared samples")
    ap.add_argument("--configfile", nargs="*", default=[], help="config files laid over config/config.yaml")
    ap.add_argument("--results", help="a finished stage's results/unfold folder: read instead of running")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr)
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    for f in args.configfile:
        cfg = merged(cfg, yaml.safe_load(Path(f).read_text()))
    with tempfile.TemporaryDirectory(prefix="bench-unfold-") as tmp:
        out = Path(args.results or tmp)
        metrics = json.loads((out / "metrics.json").read_text()) if args.results else run_all(cfg, Path(args.data), out, args.threads, args.device)
        cinn = json.loads((out / "cinn.json").read_text()) if (out / "cinn.json").exists() else None
    print(json.dumps(summary_line(metrics, cinn)))


if __name__ == "__main__":
    main()
