"""Benchmark of stage prepare: events/s from ROOT to parquet, against a plain uproot read, in one run.

Simulates one chunk (``n_events``) and lists it ``repeat`` times as input, so that the per-event
cost dominates the fixed one (figures, fits). Times (a) reading the branches prepare needs with
uproot alone and (b) prepare: its event loop (read, select at three levels, features, parquet) and
its wall time including the figures and fits.
Prints one JSON line. Usage: python bench/prepare.py [n_events] [repeat]
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import uproot
import yaml

from lhcchain.prepare.readers import _nano_branches
from lhcchain.prepare.run import output_paths, prepare
from lhcchain.simulate.run import simulate_chunk

ROOT = Path(__file__).resolve().parents[1]


def main(n_events: int = 2000, repeat: int = 5) -> dict:
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    sim, prep = cfg["simulate"], cfg["prepare"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "c.root"
        simulate_chunk("bench", {"process": "drell_yan_ll", "n_events": n_events, "chunks": 1}, 0, 2, sim["detector"], sim["jets"],
                       root, Path(tmp) / "c.json", batch_size=sim["batch_size"])
        req, opt = _nano_branches(prep["levels"])
        t0 = time.perf_counter()
        n_read = sum(len(a) for _ in range(repeat) for a in uproot.open(root)["Events"].iterate(req + opt, step_size=prep["step_size"]))
        read_rate = n_read / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        metrics = prepare("bench", [root] * repeat, output_paths(Path(tmp) / "out"), prep, seed=1)
        wall_rate = metrics["n_read"] / (time.perf_counter() - t0)
    out = {
        "bench": "prepare",
        "n_events": n_events * repeat,
        "uproot_read_events_per_s": round(read_rate, 1),
        "prepare_events_per_s": round(metrics["events_per_s"], 1),
        "speedup_over_read": round(metrics["events_per_s"] / read_rate, 4),
        "prepare_wall_events_per_s": round(wall_rate, 1),
    }
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
