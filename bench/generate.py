"""Benchmark of stage generate: generation speed against simulation speed, and classifier AUCs, in one run.

Trains the config's first generator (``generate.models``, with a ``--minutes`` training budget) on a
prepared dataset (``results/data/<generate.data>/`` by default: run ``snakemake --cores all
results/data/<name>/metrics.json`` first), samples it, and evaluates it against the held-out test split
(:func:`lhcchain.generate.evaluate.evaluate`). In the same run it times Pythia 8 alone and the full
simulate chain (Pythia + FastJet + fast detector + ROOT writing) for the training sample's process,
as ``bench/simulate.py`` does. Generation runs on ``--threads`` threads (default 1, so that its rate is
per core like Pythia's).

Prints ONE JSON line: events/s of generation (per thread), Pythia and the simulate chain, their
ratios, the classifier AUC per multiplicity and the Z peak shift and width ratio.
Usage: ``python bench/generate.py [--data DIR] [--minutes M] [--sim-events N] [--threads T] [--device D]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

from lhcchain.config import default_config, generate_settings
from lhcchain.generate.data import dataset_info
from lhcchain.generate.evaluate import evaluate
from lhcchain.generate.evaluate import output_paths as evaluation_paths
from lhcchain.generate.sample import output_paths, sample
from lhcchain.generate.train import train
from lhcchain.simulate.pythia import GeneratorConfig, generate
from lhcchain.simulate.run import simulate_chunk

ROOT = Path(__file__).resolve().parents[1]


def simulation_rates(cfg: dict, process: str, n_events: int) -> dict:
    """Events/s of Pythia alone and of the full simulate chain for ``process`` (one core each)."""
    sim = cfg["simulate"]
    t0 = time.perf_counter()
    n_gen = sum(len(b) for b in generate(GeneratorConfig(process, n_events, seed=1), batch_size=sim["batch_size"]))
    pythia = n_gen / (time.perf_counter() - t0)
    with tempfile.TemporaryDirectory() as tmp:
        stats = simulate_chunk("bench", {"process": process, "n_events": n_events, "chunks": 1}, 0, 1, sim["detector"], sim["jets"],
                               Path(tmp) / "c.root", Path(tmp) / "c.json", batch_size=sim["batch_size"])
    return {"pythia_events_per_s": pythia, "simulate_events_per_s_per_core": stats["events_per_s"]}


def main() -> None:
    cfg = default_config()
    gen_cfg = cfg["generate"]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT / "results" / "data" / gen_cfg["data"]), help="prepared dataset folder")
    ap.add_argument("--minutes", type=float, default=3.0, help="training budget")
    ap.add_argument("--sim-events", type=int, default=500, help="events for the Pythia and simulate timings")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for training and generation")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr)
    data = Path(args.data)
    if not (data / "metadata.json").is_file():
        sys.exit(f"bench/generate.py: no prepared dataset at {data}; run snakemake --cores all {data}/metrics.json first")
    name = next(iter(gen_cfg["models"]))
    settings = {**generate_settings(cfg, name), "max_minutes": args.minutes}
    process = cfg["samples"].get(gen_cfg["data"], {}).get("process", "drell_yan_ll")
    info = dataset_info(data / "metadata.json")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        summary = train(data / "train.parquet", data / "val.parquet", out / "model.pt", settings, level=gen_cfg["level"],
                        multiplicities=gen_cfg["multiplicities"], selection=info["selection"], max_jets=info["max_jets"],
                        device=args.device, threads=args.threads, seed=1, log_every=60.0)
        smp = sample(out / "model.pt", output_paths(out), gen_cfg["sampling"], device=args.device, threads=args.threads, seed=2)
        m = evaluate(out / "events.parquet", data / "test.parquet", out / "model.pt", out / "sample.json",
                     evaluation_paths(out, gen_cfg["multiplicities"]), gen_cfg["evaluation"], device=args.device,
                     threads=args.threads, seed=3)
    sim = simulation_rates(cfg, process, args.sim_events)
    rate = smp["events_per_s_per_thread"]
    result = {
        "bench": "generate",
        "model": name,
        "family": settings["family"],
        "bayesian": smp["bayesian"],
        "data": str(data),
        "n_train": smp["n_train"],
        "train_time_s": round(summary["train_time_s"], 1),
        "n_generated": smp["n_events"],
        "device": smp["device"],
        "threads": smp["threads"],
        "generation_events_per_s_per_thread": round(rate, 1),
        "simulate_process": process,
        "pythia_events_per_s": round(sim["pythia_events_per_s"], 2),
        "simulate_events_per_s_per_core": round(sim["simulate_events_per_s_per_core"], 2),
        "speedup_over_pythia": round(rate / sim["pythia_events_per_s"], 1),
        "speedup_over_simulate": round(rate / sim["simulate_events_per_s_per_core"], 1),
        "classifier_auc": {k: (round(v["classifier_auc"], 3) if v["classifier_auc"] is not None else None)
                           for k, v in m["multiplicities"].items()},
        "classifier_auc_err": {k: (round(v["classifier_auc_err"], 3) if v["classifier_auc_err"] is not None else None)
                               for k, v in m["multiplicities"].items()},
        "z_peak_shift_gev": m["z_peak"].get("mean_shift_gev"),
        "z_fwhm_ratio": m["z_peak"].get("fwhm_ratio"),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
