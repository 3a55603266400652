"""Benchmark of the MadNIS stage: MadNIS against VEGAS and flat sampling on pp -> gamma*/Z/Z' -> mu mu.

Runs :func:`lhcchain.madnis.run.integrate` once with the default config's process and settings
(``processes.drell_yan_zprime``, ``madnis.training``, ``madnis.evaluation``, ``madnis.reference``):
MadNIS training, VEGAS trained with the same number of integrand calls, flat sampling, each then
evaluated on the same number of points, and Pythia 8's cross-section of the same process.

Prints ONE JSON line: per method the cross-section and error (pb), relative standard deviation of
the weights, unweighting efficiency (both with their spread over ``madnis.evaluation.replicas`` further
evaluations), integrand calls and wall time (s); the MadNIS/VEGAS and MadNIS/flat ratios; the pulls
between methods; and MadNIS / Pythia 8.

Usage: ``python bench/madnis.py [--process NAME] [--steps N] [--calls N] [--threads T] [--device D]``.
Default (1000 steps, 200 000 evaluation calls): about 3 minutes on one CPU core.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

import yaml

# This file is called madnis.py: drop its folder from the path so that ``import madnis`` (inside
# lhcchain.madnis) finds the library, not this script.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from lhcchain.config import madnis_settings, process_spec  # noqa: E402
from lhcchain.madnis.run import METHODS, integrate  # noqa: E402

CONFIG = Path(__file__).resolve().parents[1] / "config" / "config.yaml"
FIGURES = ("cross_section_pb", "error_pb", "rel_stddev", "rel_stddev_spread", "unweighting_efficiency",
           "unweighting_efficiency_spread", "unweighting_efficiency_truncated", "overweight_fraction", "n_calls", "wall_time_s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--process", default="drell_yan_zprime", help="a key of the config's processes")
    ap.add_argument("--steps", type=int, default=None, help="MadNIS training steps (default: the config's)")
    ap.add_argument("--calls", type=int, default=None, help="evaluation calls per method (default: the config's)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr)
    config = yaml.safe_load(CONFIG.read_text())
    settings = madnis_settings(config, args.process)
    if args.steps is not None:
        settings["steps"] = args.steps
    evaluation = dict(config["madnis"]["evaluation"])
    if args.calls is not None:
        evaluation["n_calls"] = args.calls
    with tempfile.TemporaryDirectory() as tmp:
        outputs = {key: str(Path(tmp) / name) for key, name in
                   (("checkpoint", "integrator.pt"), ("metrics", "metrics.json"), ("weights", "weights.png"),
                    ("channels", "channels.png"))}
        metrics = integrate(process_spec(config, args.process), settings, evaluation, config["madnis"]["reference"],
                            outputs, device=args.device, threads=args.threads, seed=args.seed)
    out = {
        "process": args.process,
        "methods": {m: {k: metrics["methods"][m][k] for k in FIGURES} for m in METHODS},
        "ratios": metrics["ratios"],
        "pulls": metrics["pulls"],
        "pythia": metrics.get("pythia"),
        "train_steps": metrics["methods"]["madnis"]["train_steps"],
        "eval_calls": evaluation["n_calls"],
        "threads": args.threads,
        "device": args.device,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
