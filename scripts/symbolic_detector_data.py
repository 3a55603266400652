"""Snakemake adapter: score data at detector level (parton-level A, B, C, t joined with prepared showered events)."""
from lhcchain.io import derive_seed, stage_errors
from lhcchain.symbolic.run import make_detector_score_data

sm = snakemake  # noqa: F821 - injected by Snakemake
with stage_errors(sm.log[0]):
    make_detector_score_data(sm.params.process, sm.params.settings, sm.input.events, list(sm.input.prepared),
                             dict(sm.output.items()), device=sm.params.device, threads=sm.threads,
                             seed=derive_seed(sm.params.seed, "symbolic_detector_data", sm.wildcards.process))
