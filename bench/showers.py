"""Benchmark of stage showers: the surrogate's CaloChallenge scores and its speed against the reference
simulation and GEANT4, in one run.

Reads the trained surrogate (``results/showers/{energy,shower}/model.pt``), the generated showers and
the held-out reference file of the default config (run ``snakemake --cores all results/showers/metrics.json``
first) and runs :func:`lhcchain.showers.evaluate.evaluate` on them: the classifier AUCs, FPD, and
the time per shower at batch sizes 1, 100 and 10 000 on ``--threads`` CPU threads, with the reference
simulation timed in the same run.

Prints ONE JSON line: the AUCs, FPD x 10^3, time per shower (ms) per batch size, the reference time
per shower, and the speedups against the reference and against GEANT4's published 1772 ms.
Usage: ``python bench/showers.py [--results DIR] [--threads T] [--max-showers N]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

import torch
import yaml

from lhcchain.showers import data_files, reference_settings
from lhcchain.showers.evaluate import evaluate

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    sh = cfg["showers"]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default=str(ROOT), help="project folder holding results/showers/")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for generation and the classifiers")
    ap.add_argument("--max-showers", type=int, default=None, help="cap on the showers read from each file")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr)
    base = Path(args.results)
    res = base / "results" / "showers"
    needed = [res / "energy" / "model.pt", res / "shower" / "model.pt", res / "generated.h5", base / data_files(cfg)["test"]]
    missing = [str(p) for p in needed if not p.is_file()]
    if missing:
        sys.exit(f"bench/showers.py: missing {missing}; run snakemake --cores all results/showers/metrics.json first")
    torch.set_num_threads(args.threads)
    settings = {**sh["evaluation"], "max_showers": args.max_showers}
    with tempfile.TemporaryDirectory() as tmp:
        outputs = {k: Path(tmp) / f"{k}{'.json' if k == 'metrics' else '.png'}"
                   for k in ("metrics", "energy_plot", "shape_plot", "sparsity_plot", "published_plot")}
        m = evaluate(needed[3], needed[2], outputs, settings, binning=sh["binning"], threshold_mev=sh["threshold_mev"],
                     energy_model=needed[0], shower_model=needed[1], sampling=sh["sampling"],
                     reference_settings=reference_settings(cfg), device="cpu",
                     threads=args.threads, seed=1)
    print(json.dumps({
        "n_showers": m["n_reference"], "threads": args.threads,
        "auc_cls_low": m["classifier"]["cls_low"]["auc"], "auc_cls_low_normed": m["classifier"]["cls_low_normed"]["auc"],
        "auc_cls_high": m["classifier"]["cls_high"]["auc"], "fpd_x1e3": m["fpd_x1e3"],
        "time_per_shower_ms": m["time_per_shower_ms"], "reference_time_per_shower_ms": m["reference_time_per_shower_ms"],
        "speedup_vs_reference": m["speedup_vs_reference"], "speedup_vs_geant4": m["speedup_vs_geant4"],
    }))


if __name__ == "__main__":
    main()
