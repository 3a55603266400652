"""Snakemake adapter: amplitudes computed elsewhere (four-momenta + |M|^2), to the stage's HDF5 layout."""
from lhcchain.amplitudes.data import import_dataset
from lhcchain.io import derive_seed, stage_errors, write_json

sm = snakemake  # noqa: F821 - injected by Snakemake
with stage_errors(sm.log[0]):
    ext = sm.params.external
    keys = {k: ext[k] for k in ("momenta_key", "amplitudes_key", "identical") if k in ext}
    summary = import_dataset(sm.input.source, sm.output.data, split=sm.params.split,
                             seed=derive_seed(sm.params.seed, "amplitudes", sm.wildcards.process), **keys)
    write_json(sm.output.summary, summary)
