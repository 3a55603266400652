"""Snakemake adapter: train the energy or the shower network of the shower surrogate (resumes an interrupted run)."""
from lhcchain.io import derive_seed, stage_errors, write_json
from lhcchain.showers.surrogate import train

sm = snakemake  # noqa: F821 - injected by Snakemake
with stage_errors(sm.log[0]):
    summary = train(sm.wildcards.part, sm.input.data, sm.output.model, sm.params.settings, binning=sm.params.binning,
                    threshold_mev=sm.params.threshold_mev, device=sm.params.device, threads=sm.threads,
                    seed=derive_seed(sm.params.seed, "train_showers", sm.wildcards.part))
    write_json(sm.output.summary, summary)
