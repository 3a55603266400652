"""Snakemake adapter: binned IBU of every unfolding observable with pyunfold."""
from lhcchain.io import stage_errors
from lhcchain.unfold.run import run_ibu_step

sm = snakemake  # noqa: F821 - injected by Snakemake
with stage_errors(sm.log[0]):
    run_ibu_step(list(sm.input.sim), list(sm.input.data), sm.input.sim_meta, sm.input.data_meta, dict(sm.output.items()), sm.params.settings)
