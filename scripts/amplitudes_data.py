"""Snakemake adapter: exact |M|^2 on phase-space points of a configured process, to HDF5."""
from lhcchain.amplitudes.data import make_dataset
from lhcchain.physics.processes import build_process
from lhcchain.io import derive_seed, stage_errors, write_json

sm = snakemake  # noqa: F821 - injected by Snakemake
with stage_errors(sm.log[0]):
    data = sm.params.data
    process = build_process(sm.params.process, device=sm.params.device, threads=sm.threads)
    summary = make_dataset(process, data["n_points"], sm.output.data, sampling=data["sampling"], split=data["split"],
                           seed=derive_seed(sm.params.seed, "amplitudes", sm.wildcards.process),
                           integrator=sm.input.integrator[0] if sm.input.integrator else None)
    write_json(sm.output.summary, summary)
