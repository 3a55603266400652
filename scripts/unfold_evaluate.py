"""Snakemake adapter: compare every unfolding method with the pseudo-data truth."""
from lhcchain.io import derive_seed, stage_errors
from lhcchain.unfold.run import evaluate

sm = snakemake  # noqa: F821 - injected by Snakemake
with stage_errors(sm.log[0]):
    evaluate(list(sm.input.sim), list(sm.input.data), sm.input.sim_meta, sm.input.data_meta, sm.params.results, dict(sm.output.items()),
             sm.params.settings, device=sm.params.device, threads=sm.threads, seed=derive_seed(sm.params.seed, "unfold_evaluate"))
