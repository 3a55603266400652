"""Snakemake adapter: OmniFold of the pseudo-data with the reweight classifier."""
from lhcchain.io import derive_seed, stage_errors
from lhcchain.unfold.run import run_omnifold_step

sm = snakemake  # noqa: F821 - injected by Snakemake
with stage_errors(sm.log[0]):
    run_omnifold_step(list(sm.input.sim), list(sm.input.data), sm.input.sim_meta, sm.input.data_meta, dict(sm.output.items()),
                      sm.params.settings, device=sm.params.device, threads=sm.threads, seed=derive_seed(sm.params.seed, "unfold_omnifold"))
