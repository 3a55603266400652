"""Snakemake adapter: closure of one reweight pair (chi2/ndf per feature, a fresh classifier's AUC)."""
from lhcchain.io import derive_seed, stage_errors
from lhcchain.reweight.run import evaluate

sm = snakemake  # noqa: F821 - injected by Snakemake
with stage_errors(sm.log[0]):
    evaluate(sm.wildcards.name, list(sm.input.source), list(sm.input.target), sm.input.weights, sm.input.summary, sm.input.model,
             dict(sm.output.items()), sm.params.settings, device=sm.params.device, threads=sm.threads,
             seed=derive_seed(sm.params.seed, "reweight_evaluate", sm.wildcards.name))
