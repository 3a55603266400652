"""lhcchain.costs: per-stage costs from Snakemake benchmark files and log (known inputs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lhcchain.costs import job_spans, markdown_table, read_benchmarks, stage_costs
from lhcchain.errors import InputError

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"

# Two jobs in the format Snakemake 9 writes (trimmed input lines), the second starting while the first runs.
LOG = """\
Select jobs to execute...
Execute 2 jobs...

[Tue Dec  8 00:25:47 2026]
localrule simulate:
    input: lhcchain/simulate/run.py
    output: results/sim/nominal/chunk2.root
    jobid: 4
    benchmark: benchmarks/simulate/nominal/chunk2.tsv
    wildcards: sample=nominal, chunk=2
Shell command: None

[Tue Dec  8 00:26:00 2026]
localrule madnis_integrate:
    input: lhcchain/madnis/run.py
    jobid: 87
    benchmark: benchmarks/madnis/gg_3g/integrate.tsv
Shell command: None
2026-12-08 00:26:39,624 lhcchain.simulate.run INFO: chunk 2 of nominal: 6000 events
[Tue Dec  8 00:26:39 2026]
Finished jobid: 4 (Rule: simulate)
1 of 3 steps (33%) done

[Tue Dec  8 00:28:30 2026]
Finished jobid: 87 (Rule: madnis_integrate)
2 of 3 steps (67%) done

[Tue Dec  8 00:28:31 2026]
localrule all:
    input: results/madnis/gg_3g/metrics.json
    jobid: 0
Shell command: None
[Tue Dec  8 00:28:31 2026]
Finished jobid: 0 (Rule: all)
3 of 3 steps (100%) done
"""


def write(path: Path, rows: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + "".join(r + "\n" for r in rows))


@pytest.fixture
def bench(tmp_path: Path) -> Path:
    root = tmp_path / "benchmarks"
    write(root / "simulate/nominal/chunk0.tsv", ["60.0\t0:01:00\t300.0\t0\t0\t0\t0\t0\t90\t55.0"])
    # a job run twice: its last row counts
    write(root / "simulate/nominal/chunk1.tsv", ["999.0\t0:16:39\t9999.0\t0\t0\t0\t0\t0\t90\t999.0",
                                                 "120.0\t0:02:00\t500.0\t0\t0\t0\t0\t0\t90\t110.0"])
    write(root / "madnis/gg_3g/integrate.tsv", ["30.0\t0:00:30\t2048.0\t0\t0\t0\t0\t0\t90\tNA"])
    return root


def test_sums_per_stage(bench: Path) -> None:
    costs = stage_costs(read_benchmarks(bench))
    sim, mad = costs["stages"]["simulate"], costs["stages"]["madnis"]
    assert sim["jobs"] == 2 and sim["job_wall_min"] == pytest.approx(3.0) and sim["cpu_min"] == pytest.approx(165 / 60)
    assert sim["max_rss_gb"] == pytest.approx(500 / 1024)
    assert mad["cpu_min"] == 0.0 and mad["max_rss_gb"] == pytest.approx(2.0)
    assert costs["total"]["jobs"] == 3 and costs["total"]["job_wall_min"] == pytest.approx(3.5)
    assert costs["total"]["max_rss_gb"] == pytest.approx(2.0)
    assert "run_wall_min" not in costs["total"]


def test_spans_from_the_log() -> None:
    spans, (first, last) = job_spans(LOG.splitlines())
    assert set(spans) == {"simulate", "madnis"}  # `all` has no benchmark
    assert (spans["simulate"][1] - spans["simulate"][0]).total_seconds() == 52
    assert (spans["madnis"][1] - spans["madnis"][0]).total_seconds() == 150
    assert (last - first).total_seconds() == 164


def test_table_with_log_orders_stages_by_start(bench: Path) -> None:
    costs = stage_costs(read_benchmarks(bench), LOG.splitlines())
    assert list(costs["stages"]) == ["simulate", "madnis"]
    assert costs["total"]["run_wall_min"] == pytest.approx(164 / 60)
    table = markdown_table(costs).splitlines()
    assert table[2].startswith("| simulate | 2 | 3.0 | 2.8 | 0.9 | 0.49 |")
    assert table[-1] == "| **total** | 3 | 3.5 | 2.8 | **2.7** (the run) | 2.00 |"


def test_bad_input_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no Snakemake benchmark files"):
        read_benchmarks(tmp_path)
    bad = tmp_path / "simulate" / "x.tsv"
    bad.parent.mkdir()
    bad.write_text("a\tb\n1\t2\n")
    with pytest.raises(InputError, match=r"x\.tsv: not a Snakemake benchmark file"):
        read_benchmarks(tmp_path)
    with pytest.raises(InputError, match="no time stamps"):
        job_spans(["rule x:"])
