"""Snakemake adapter: sample events from a trained generator into parquet and ROOT, with the generation speed."""
from lhcchain.generate.sample import sample
from lhcchain.io import derive_seed, stage_errors

sm = snakemake  # noqa: F821 - injected by Snakemake
with stage_errors(sm.log[0]):
    sample(sm.input.model, dict(sm.output.items()), sm.params.settings, device=sm.params.device, threads=sm.threads,
           seed=derive_seed(sm.params.seed, "sample_generator", sm.wildcards.model))
