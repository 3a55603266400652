"""Snakemake adapter: iterative cINN (prior removal) starting from the cinn step's network and unfolding."""
from lhcchain.io import derive_seed, stage_errors
from lhcchain.unfold.run import run_icinn_step

sm = snakemake  # noqa: F821 - injected by Snakemake
with stage_errors(sm.log[0]):
    run_icinn_step(list(sm.input.sim), list(sm.input.data), sm.input.sim_meta, sm.input.data_meta, sm.input.cinn_model, sm.input.cinn_events,
                   dict(sm.output.items()), sm.params.settings, device=sm.params.device, threads=sm.threads,
                   seed=derive_seed(sm.params.seed, "unfold_icinn"))
