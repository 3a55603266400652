"""Snakemake adapter: train the cINN on the pairs, unfold the pseudo-data, calibrate and close on held-out pairs."""
from lhcchain.io import derive_seed, stage_errors
from lhcchain.unfold.run import run_cinn_step

sm = snakemake  # noqa: F821 - injected by Snakemake
with stage_errors(sm.log[0]):
    run_cinn_step(list(sm.input.sim), list(sm.input.data), sm.input.sim_meta, sm.input.data_meta, dict(sm.output.items()),
                  sm.params.settings, device=sm.params.device, threads=sm.threads, seed=derive_seed(sm.params.seed, "unfold_cinn"))
