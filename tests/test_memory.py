"""Peak memory of simulate and prepare does not grow with the number of events (streaming).

Each measurement runs in a fresh Python process and reports its own peak RSS (ru_maxrss).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from .conftest import ROOT, TEST_DATA

SIMULATE = """
import resource, sys, yaml
from lhcchain.simulate.run import simulate_chunk
cfg = yaml.safe_load(open({config!r}))["simulate"]
n, out = int(sys.argv[1]), sys.argv[2]
simulate_chunk("mem", {{"process": "drell_yan_ll", "n_events": n, "chunks": 1}}, 0, 5, cfg["detector"], cfg["jets"],
               out + "/c.root", out + "/c.json", batch_size=25)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""

PREPARE = """
import itertools, resource, sys, yaml
import lhcchain.prepare.readers as readers
from lhcchain.prepare.run import output_paths, prepare
cfg = yaml.safe_load(open({config!r}))["prepare"]
cfg.update(levels=["parton"], step_size=250)
n, out = int(sys.argv[1]), sys.argv[2]
orig = readers.iterate_events
readers_limited = lambda *a, **k: itertools.islice(orig(*a, **k), n // 250)
import lhcchain.prepare.run as run
run.iterate_events = readers_limited
prepare("mem", [{lhe!r}], output_paths(out), cfg, seed=1)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def peak_mb(script: str, n: int, out: Path) -> float:
    out.mkdir()
    res = subprocess.run([sys.executable, "-c", textwrap.dedent(script), str(n), str(out)], capture_output=True, text=True, check=True)
    return float(res.stdout.strip().splitlines()[-1])


def test_simulate_memory_is_flat_in_events(tmp_path: Path) -> None:
    script = SIMULATE.format(config=str(ROOT / "config" / "config.yaml"))
    small, large = peak_mb(script, 50, tmp_path / "s"), peak_mb(script, 250, tmp_path / "l")
    assert large < small * 1.10 + 20, json.dumps({"50 events": small, "250 events": large})


def test_prepare_memory_is_flat_in_events(tmp_path: Path) -> None:
    lhe = TEST_DATA / "pylhe-testfile-madgraph-2.2.1-Z-mlm.lhe.gz"
    script = PREPARE.format(config=str(ROOT / "config" / "config.yaml"), lhe=str(lhe))
    small, large = peak_mb(script, 500, tmp_path / "s"), peak_mb(script, 5000, tmp_path / "l")
    assert large < small * 1.10 + 20, json.dumps({"500 events": small, "5000 events": large})
