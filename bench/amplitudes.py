"""Benchmark of the amplitude surrogates: gg -> ggg and gg -> gggg, surrogate vs exact |M|^2, one run.

For each process it samples flat points passing the cuts (:func:`lhcchain.amplitudes.data.make_dataset`),
trains a surrogate for a short wall-clock budget (:func:`lhcchain.amplitudes.train.train`), and
evaluates it on the test points (:func:`lhcchain.amplitudes.evaluate.evaluate`): accuracy
(median/p99 of ``|Delta|``), pull mean/std, and evaluations per second of the surrogate and of the
exact physics-core ``|M|^2`` on the same points in the same run, with their ratio.

Prints ONE JSON line: ``{"gg_3g": {...}, "gg_4g": {...}, "settings": {...}, "threads": T, "device": ...}``.

Usage: ``python bench/amplitudes.py [--minutes M] [--points N3 N4] [--threads T] [--device D] [--long]``.
Default: ~1 minute of training per process, under ~3 minutes in all on 2 CPU cores; ``--long``
uses the recommended default configuration (500k gg_3g points, 10 minutes of training).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import torch

from lhcchain.amplitudes.data import make_dataset
from lhcchain.amplitudes.evaluate import evaluate
from lhcchain.amplitudes.train import resolve_settings, train
from lhcchain.config import default_section
from lhcchain.device import select_device
from lhcchain.physics.processes import get_process

SETTINGS = {"epochs": 10_000, "patience": 10_000}  # the rest: the default config's amplitudes.model and .training


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=1.0, help="training budget per process")
    ap.add_argument("--points", type=int, nargs=2, default=[100_000, 20_000], metavar=("N3", "N4"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--n-timing", type=int, default=5_000)
    ap.add_argument("--long", action="store_true", help="recommended default config: 500k/100k points, 10 minutes each")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    if args.long:
        args.minutes, args.points = 10.0, [500_000, 100_000]
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr)
    device = select_device(args.device, args.threads)
    out: dict = {"threads": torch.get_num_threads(), "device": str(device), "minutes_per_process": args.minutes}
    settings = resolve_settings({**SETTINGS, "max_minutes": args.minutes})
    out["settings"] = settings
    split = default_section("amplitudes.data")["split"]
    with tempfile.TemporaryDirectory() as tmp:
        for name, n in zip(("gg_3g", "gg_4g"), args.points):
            proc = get_process(name, device=device)
            folder = Path(tmp) / name
            t0 = time.perf_counter()
            data = make_dataset(proc, n, folder / "data.h5", sampling="flat", split=split, seed=1)
            t1 = time.perf_counter()
            summary = train(folder / "data.h5", folder / "model.pt", settings, device=args.device, threads=args.threads,
                            log_every=60.0)
            outputs = {"metrics": folder / "metrics.json", "accuracy": folder / "accuracy.png", "pulls": folder / "pulls.png"}
            m = evaluate(folder / "data.h5", folder / "model.pt", outputs, process=proc, device=args.device,
                         threads=args.threads, n_timing=args.n_timing)
            out[name] = {
                "n_points": n,
                "data_s": round(t1 - t0, 2),
                "epochs": summary["epochs_run"],
                "train_time_s": round(summary["train_time_s"], 1),
                "median_abs_delta": m["median_abs_delta"],
                "p99_abs_delta": m["p99_abs_delta"],
                "pull_tot_mean": m["pull_tot_mean"],
                "pull_tot_std": m["pull_tot_std"],
                "exact_evals_per_s": m["exact_evals_per_s"],
                "surrogate_evals_per_s": m["surrogate_evals_per_s"],
                "speedup": m["speedup"],
                "exact_evals_per_s_in_data": data["exact_evals_per_s"],
            }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
