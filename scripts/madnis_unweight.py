"""Snakemake adapter: unweighted events of a trained MadNIS integrator (LHE, parquet), two-stage with the
amplitude surrogate when the rule has one."""
from lhcchain.config import madnis_events
from lhcchain.io import derive_seed, stage_errors
from lhcchain.madnis.run import unweight

sm = snakemake  # noqa: F821 - injected by Snakemake
with stage_errors(sm.log[0]):
    surrogate = list(sm.input.surrogate)
    unweight(sm.input.checkpoint, madnis_events(sm.params.settings, sm.wildcards.process), dict(sm.output.items()), surrogate=surrogate[0] if surrogate else None,
             device=sm.params.device, threads=sm.threads,
             seed=derive_seed(sm.params.seed, "madnis_unweight", sm.wildcards.process))
