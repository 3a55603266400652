"""Snakemake adapter: one chunk of the simulate stage."""
from lhcchain.io import stage_errors
from lhcchain.simulate.run import simulate_chunk

sm = snakemake  # noqa: F821 - injected by Snakemake
with stage_errors(sm.log[0]):
    simulate_chunk(
        sample=sm.wildcards.sample,
        sample_cfg=sm.params.sample,
        chunk=int(sm.wildcards.chunk),
        seed=sm.params.seed,
        detector=sm.params.detector,
        jets=sm.params.jets,
        output=sm.output.root,
        summary=sm.output.stats,
        batch_size=sm.params.batch_size,
    )
