"""Snakemake adapter: cross-fit the classifier of one reweight pair and write its checked weights."""
from lhcchain.io import derive_seed, stage_errors
from lhcchain.reweight.run import train

sm = snakemake  # noqa: F821 - injected by Snakemake
with stage_errors(sm.log[0]):
    train(sm.wildcards.name, list(sm.input.source), list(sm.input.target), dict(sm.output.items()), sm.params.settings,
          device=sm.params.device, threads=sm.threads, seed=derive_seed(sm.params.seed, "reweight_train", sm.wildcards.name))
