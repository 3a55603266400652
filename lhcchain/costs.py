"""What a workflow run cost, per stage: from Snakemake's benchmark files and, optionally, its log.

Every rule writes ``benchmarks/{stage}/...tsv`` (Snakemake's ``benchmark:``), one row per job with
its wall time ``s`` (seconds), ``cpu_time`` (seconds) and peak resident memory ``max_rss`` (MB).
The stage is the first folder below ``benchmarks``. Summed job times say what a stage costs on one
core and are independent of ``--cores``; the span (first job start to last job end in the run's log)
says how long the stage kept the run busy when stages overlap.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from .errors import InputError

_STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
_START = re.compile(r"^(?:local)?rule (\w+):$")
_JOBID = re.compile(r"^\s+jobid: (\d+)$")
_FINISHED = re.compile(r"^Finished jobid: (\d+) \(Rule: (\w+)\)$")
_BENCHMARK = re.compile(r"^\s+benchmark: benchmarks/([^/\s]+)/")


def read_benchmarks(root: str | Path) -> list[dict[str, Any]]:
    """One record per benchmark file under ``root``: ``stage``, ``job`` (the path below the stage),
    ``wall_s``, ``cpu_s`` and ``max_rss_mb`` of its last row (the last run of that job)."""
    root = Path(root)
    files = sorted(root.rglob("*.tsv"))
    if not files:
        raise InputError(f"{root}: no Snakemake benchmark files (*.tsv) found")
    records = []
    for path in files:
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
        if not rows or not {"s", "max_rss", "cpu_time"} <= set(rows[-1]):
            raise InputError(f"{path}: not a Snakemake benchmark file (needs columns s, max_rss, cpu_time)")
        row = rows[-1]
        rel = path.relative_to(root)
        records.append({"stage": rel.parts[0], "job": str(Path(*rel.parts[1:])), "wall_s": _number(row["s"], path),
                        "cpu_s": _number(row["cpu_time"], path), "max_rss_mb": _number(row["max_rss"], path)})
    return records


def _number(text: str, path: Path) -> float:
    """A benchmark cell as a float ('NA', written for jobs too short to sample, counts as 0)."""
    if text == "NA":
        return 0.0
    try:
        return float(text)
    except ValueError:
        raise InputError(f"{path}: benchmark value {text!r} is not a number") from None


def job_spans(log_lines: Iterable[str]) -> tuple[dict[str, tuple[datetime, datetime]], tuple[datetime, datetime]]:
    """Per stage, (first job start, last job end) in a Snakemake log, and the run's (first, last)
    time stamp. A job's stage comes from the ``benchmark:`` line of its start block; jobs without
    one (the ``all`` target) are left out."""
    stamp: datetime | None = None
    first = last = None
    pending_rule: str | None = None
    started: dict[str, tuple[str, datetime]] = {}
    spans: dict[str, tuple[datetime, datetime]] = {}
    block_stage: str | None = None
    block_job: str | None = None
    for line in log_lines:
        line = line.rstrip("\n")
        if m := _STAMP.match(line):
            stamp = datetime.strptime(m.group(1), "%a %b %d %H:%M:%S %Y")
            first, last = first or stamp, stamp
            continue
        if (m := _START.match(line)) and stamp is not None:
            pending_rule, block_stage, block_job = m.group(1), None, None
            continue
        if pending_rule is not None:
            if m := _JOBID.match(line):
                block_job = m.group(1)
            elif m := _BENCHMARK.match(line):
                block_stage = m.group(1)
            elif not line.startswith((" ", "\t")):  # the block's indented lines end
                if block_job is not None and block_stage is not None and stamp is not None:
                    started[block_job] = (block_stage, stamp)
                pending_rule = None
            continue
        if (m := _FINISHED.match(line)) and stamp is not None and m.group(1) in started:
            stage, begin = started.pop(m.group(1))
            old = spans.get(stage)
            spans[stage] = (min(begin, old[0]) if old else begin, max(stamp, old[1]) if old else stamp)
    if first is None or last is None:
        raise InputError("the Snakemake log holds no time stamps")
    return spans, (first, last)


def stage_costs(records: list[dict[str, Any]], log_lines: Iterable[str] | None = None) -> dict[str, Any]:
    """Per stage: ``jobs``, ``job_wall_min`` and ``cpu_min`` (sums over its jobs), ``max_rss_gb`` (the
    largest job's peak) and, with a log, ``span_min``; and ``total`` over every stage (with a log,
    ``run_wall_min`` from the first to the last time stamp)."""
    stages: dict[str, dict[str, Any]] = {}
    for rec in records:
        s = stages.setdefault(rec["stage"], {"jobs": 0, "job_wall_min": 0.0, "cpu_min": 0.0, "max_rss_gb": 0.0})
        s["jobs"] += 1
        s["job_wall_min"] += rec["wall_s"] / 60.0
        s["cpu_min"] += rec["cpu_s"] / 60.0
        s["max_rss_gb"] = max(s["max_rss_gb"], rec["max_rss_mb"] / 1024.0)
    total = {"jobs": sum(s["jobs"] for s in stages.values()),
             "job_wall_min": sum(s["job_wall_min"] for s in stages.values()),
             "cpu_min": sum(s["cpu_min"] for s in stages.values()),
             "max_rss_gb": max(s["max_rss_gb"] for s in stages.values())}
    if log_lines is not None:
        spans, (first, last) = job_spans(log_lines)
        for name, s in stages.items():
            if name in spans:
                s["span_min"] = (spans[name][1] - spans[name][0]).total_seconds() / 60.0
        total["run_wall_min"] = (last - first).total_seconds() / 60.0
        stages = dict(sorted(stages.items(), key=lambda kv: spans[kv[0]][0] if kv[0] in spans else last))
    return {"stages": stages, "total": total}


def markdown_table(costs: dict[str, Any]) -> str:
    """The per-stage costs as a Markdown table (minutes and GB; with a log, stages in the order they started)."""
    has_span = "run_wall_min" in costs["total"]
    head = "| stage | jobs | summed job wall time (min) | CPU time (min) | " + ("span in the run (min) | " if has_span else "") + "largest peak memory (GB) |"
    lines = [head, "|" + " --- |" * (6 if has_span else 5)]
    for name, s in costs["stages"].items():
        span = f" {s['span_min']:.1f} |" if has_span and "span_min" in s else (" – |" if has_span else "")
        lines.append(f"| {name} | {s['jobs']} | {s['job_wall_min']:.1f} | {s['cpu_min']:.1f} |{span} {s['max_rss_gb']:.2f} |")
    t = costs["total"]
    span = f" **{t['run_wall_min']:.1f}** (the run) |" if has_span else ""
    lines.append(f"| **total** | {t['jobs']} | {t['job_wall_min']:.1f} | {t['cpu_min']:.1f} |{span} {t['max_rss_gb']:.2f} |")
    return "\n".join(lines)
