"""Snakemake adapter: generate one surrogate shower per incident energy of the held-out file."""
from lhcchain.io import derive_seed, stage_errors, write_json
from lhcchain.showers.surrogate import sample

sm = snakemake  # noqa: F821 - injected by Snakemake
with stage_errors(sm.log[0]):
    summary = sample(sm.input.energy, sm.input.shower, sm.input.energies, sm.output.showers, sm.params.settings,
                     device=sm.params.device, threads=sm.threads, seed=derive_seed(sm.params.seed, "sample_showers"))
    write_json(sm.output.summary, summary)
