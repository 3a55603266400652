"""Snakemake adapter: per-sample summary (metrics.json, figures) of the simulate stage."""
from lhcchain.io import stage_errors
from lhcchain.simulate.summary import summarize

sm = snakemake  # noqa: F821 - injected by Snakemake
with stage_errors(sm.log[0]):
    summarize(sm.wildcards.sample, sm.input.stats, sm.input.roots, sm.params.detector, dict(sm.output.items()))
