"""Snakemake adapter: accuracy, pulls and speed of the amplitude surrogate on its test set."""
from lhcchain.amplitudes.evaluate import evaluate
from lhcchain.physics.processes import build_process
from lhcchain.io import stage_errors

sm = snakemake  # noqa: F821 - injected by Snakemake
with stage_errors(sm.log[0]):
    spec = sm.params.process
    process = build_process(spec, device=sm.params.device, threads=sm.threads) if spec else None
    evaluate(sm.input.data, sm.input.model, dict(sm.output.items()), process=process, device=sm.params.device, threads=sm.threads)
