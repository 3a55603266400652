"""Snakemake adapter: the parametrised classifier and the DCTR fit of one simulation parameter."""
from pathlib import Path

from lhcchain.io import derive_seed, stage_errors
from lhcchain.reweight.tune import tune

sm = snakemake  # noqa: F821 - injected by Snakemake
with stage_errors(sm.log[0]):
    scan = {name: [p for p in sm.input.scan if Path(p).parent.name == name] for name in sm.params.settings["scan"]}
    tune(list(sm.input.reference), list(sm.input.normalisation), scan, list(sm.input.data), dict(sm.output.items()), sm.params.settings,
         device=sm.params.device, threads=sm.threads, seed=derive_seed(sm.params.seed, "reweight_tune"))
