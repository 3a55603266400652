"""Snakemake adapter: the CaloChallenge evaluation of the generated showers against the held-out reference."""
from lhcchain.io import derive_seed, stage_errors
from lhcchain.showers.evaluate import evaluate

sm = snakemake  # noqa: F821 - injected by Snakemake
with stage_errors(sm.log[0]):
    evaluate(sm.input.reference, sm.input.generated, dict(sm.output.items()), sm.params.settings, binning=sm.params.binning,
             threshold_mev=sm.params.threshold_mev, energy_model=sm.input.energy, shower_model=sm.input.shower,
             sampling=sm.params.sampling, reference_settings=sm.params.reference,
             device=sm.params.device, threads=sm.threads, seed=derive_seed(sm.params.seed, "evaluate_showers"))
