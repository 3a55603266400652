"""Benchmark of stage simulate: events/s per core, and where the time goes, measured in one run.

Prints one JSON line: Pythia 8 alone (generation and reading the event record), the full chunk
(Pythia + particle level + FastJet + fast detector + ROOT writing), and their ratio.
Usage: python bench/simulate.py [n_events]
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import yaml

from lhcchain.simulate.pythia import GeneratorConfig, generate
from lhcchain.simulate.run import simulate_chunk

ROOT = Path(__file__).resolve().parents[1]


def main(n_events: int = 1000) -> dict:
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    sim = cfg["simulate"]
    t0 = time.perf_counter()
    n_gen = sum(len(b) for b in generate(GeneratorConfig("drell_yan_ll", n_events, seed=1), batch_size=sim["batch_size"]))
    pythia_rate = n_gen / (time.perf_counter() - t0)
    with tempfile.TemporaryDirectory() as tmp:
        stats = simulate_chunk("bench", {"process": "drell_yan_ll", "n_events": n_events, "chunks": 1}, 0, 1, sim["detector"],
                               sim["jets"], Path(tmp) / "c.root", Path(tmp) / "c.json", batch_size=sim["batch_size"])
    out = {
        "bench": "simulate",
        "process": "drell_yan_ll",
        "n_events": n_events,
        "pythia_events_per_s": round(pythia_rate, 2),
        "simulate_events_per_s_per_core": round(stats["events_per_s"], 2),
        "speedup_over_pythia": round(stats["events_per_s"] / pythia_rate, 3),
    }
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
