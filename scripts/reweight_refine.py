"""Snakemake adapter: a generator's events with the weights that move them onto the pair's target (refined events)."""
from lhcchain.io import stage_errors
from lhcchain.reweight.run import refine

sm = snakemake  # noqa: F821 - injected by Snakemake
with stage_errors(sm.log[0]):
    refine(sm.wildcards.name, list(sm.input.source), sm.input.weights, dict(sm.output.items()), sm.params.settings)
