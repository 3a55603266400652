"""Snakemake adapter: the parametrised classifier and the DCTR fit of one simulation parameter."""
from lhcchain.config import tune_scan_inputs
from lhcchain.io import derive_seed, stage_errors
from lhcchain.reweight.tune import tune

sm = snakemake  # noqa: F821 - injected by Snakemake
with stage_errors(sm.log[0]):
    scan = tune_scan_inputs(sm.config)
    tune(list(sm.input.reference), list(sm.input.normalisation), scan, list(sm.input.data), dict(sm.output.items()), sm.params.settings,
         device=sm.params.device, threads=sm.threads, seed=derive_seed(sm.params.seed, "reweight_tune"))
