"""Snakemake adapter: generated vs held-out truth events (ratios, classifier AUC, Z peak, speed)."""
from lhcchain.generate.evaluate import evaluate
from lhcchain.io import derive_seed, stage_errors

sm = snakemake  # noqa: F821 - injected by Snakemake
with stage_errors(sm.log[0]):
    evaluate(sm.input.events, sm.input.truth, sm.input.model, sm.input.summary, dict(sm.output.items()), sm.params.settings,
             sim_metrics=sm.input.sim[0] if sm.input.sim else None, device=sm.params.device, threads=sm.threads,
             seed=derive_seed(sm.params.seed, "evaluate_generator", sm.wildcards.model))
