"""Snakemake adapter: train an event generator on prepared events (resumes from an interrupted run)."""
from lhcchain.generate.data import dataset_info
from lhcchain.generate.train import train
from lhcchain.io import derive_seed, stage_errors, write_json

sm = snakemake  # noqa: F821 - injected by Snakemake
with stage_errors(sm.log[0]):
    info = dataset_info(sm.input.metadata)
    summary = train(sm.input.train, sm.input.val, sm.output.model, sm.params.settings, level=sm.params.level,
                    multiplicities=sm.params.multiplicities, selection=info["selection"], max_jets=info["max_jets"],
                    device=sm.params.device, threads=sm.threads, seed=derive_seed(sm.params.seed, "train_generator", sm.wildcards.model))
    write_json(sm.output.summary, summary)
