"""Snakemake adapter: train MadNIS on one process and compare it with VEGAS and flat sampling."""
from lhcchain.io import derive_seed, stage_errors
from lhcchain.madnis.run import integrate

sm = snakemake  # noqa: F821 - injected by Snakemake
with stage_errors(sm.log[0]):
    integrate(sm.params.process, sm.params.settings, sm.params.evaluation, sm.params.reference, dict(sm.output.items()),
              device=sm.params.device, threads=sm.threads,
              seed=derive_seed(sm.params.seed, "madnis_integrate", sm.wildcards.process))
