"""What a workflow run cost per stage, from its Snakemake benchmark files (and log).

Prints one JSON line: per stage the jobs, the summed job wall time and CPU time (minutes), the largest
peak memory (GB) and, with ``--log``, the stage's span in the run; and the totals, with the run's wall
time. ``--markdown`` prints the README's table instead.
Usage: python bench/chain.py [--benchmarks benchmarks] [--log snakemake.log] [--markdown]
(Snakemake keeps each run's log in .snakemake/log/.)
"""

from __future__ import annotations

import argparse
import json

from lhcchain.costs import markdown_table, read_benchmarks, stage_costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmarks", default="benchmarks", help="the run's benchmark folder")
    parser.add_argument("--log", help="the run's Snakemake log (for spans and the run's wall time)")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args()
    records = read_benchmarks(args.benchmarks)
    if args.log:
        with open(args.log) as handle:
            costs = stage_costs(records, handle)
    else:
        costs = stage_costs(records)
    print(markdown_table(costs) if args.markdown else json.dumps(costs))


if __name__ == "__main__":
    main()
