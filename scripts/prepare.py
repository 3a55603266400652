"""Snakemake adapter: the prepare stage for one sample or dataset."""
from lhcchain.io import stage_errors
from lhcchain.prepare.run import prepare

sm = snakemake  # noqa: F821 - injected by Snakemake
with stage_errors(sm.log[0]):
    prepare(sm.wildcards.name, list(sm.input.events), dict(sm.output.items()), sm.params.settings, sm.params.seed)
