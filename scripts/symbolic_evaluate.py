"""Snakemake adapter: Fisher information and expected limits of every formula, the references and SALLY."""
from lhcchain.io import derive_seed, stage_errors
from lhcchain.symbolic.run import evaluate

sm = snakemake  # noqa: F821 - injected by Snakemake
with stage_errors(sm.log[0]):
    evaluate(sm.input.data, sm.input.front, sm.params.settings, dict(sm.output.items()), threads=sm.threads,
             seed=derive_seed(sm.params.seed, "symbolic_evaluate", sm.wildcards.folder))
