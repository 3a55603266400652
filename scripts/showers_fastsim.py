"""Snakemake adapter: Z -> ee with reference and surrogate showers as the electrons' calorimeter response."""
from lhcchain.io import derive_seed, stage_errors
from lhcchain.showers.fastsim import compare

sm = snakemake  # noqa: F821 - injected by Snakemake
with stage_errors(sm.log[0]):
    compare(list(sm.input.events), sm.input.energy, sm.input.shower, sm.input.training, dict(sm.output.items()), sm.params.settings,
            binning=sm.params.binning, reference_settings=sm.params.reference,
            sampling=sm.params.sampling, device=sm.params.device, threads=sm.threads, seed=derive_seed(sm.params.seed, "showers_fastsim"))
