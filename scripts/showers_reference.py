"""Snakemake adapter: simulate GFLASH-style reference showers into a CaloChallenge HDF5 file."""
from lhcchain.io import derive_seed, stage_errors, write_json
from lhcchain.showers.reference import make_reference

sm = snakemake  # noqa: F821 - injected by Snakemake
with stage_errors(sm.log[0]):
    summary = make_reference(sm.output.showers, sm.params.n, sm.params.binning, sm.params.settings,
                             seed=derive_seed(sm.params.seed, "shower_reference", sm.wildcards.split))
    write_json(sm.output.summary, summary)
