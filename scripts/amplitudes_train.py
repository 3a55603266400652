"""Snakemake adapter: train the amplitude surrogate (resumes from an interrupted run)."""
from lhcchain.amplitudes.train import train
from lhcchain.io import derive_seed, stage_errors, write_json

sm = snakemake  # noqa: F821 - injected by Snakemake
with stage_errors(sm.log[0]):
    summary = train(sm.input.data, sm.output.model, sm.params.settings, device=sm.params.device, threads=sm.threads,
                    seed=derive_seed(sm.params.seed, "train_amplitude", sm.wildcards.process))
    write_json(sm.output.summary, summary)
