"""Snakemake adapter: score data (exact A, B, C, t = B/A and observables) of WBF events."""
from lhcchain.io import derive_seed, stage_errors
from lhcchain.symbolic.run import make_score_data

sm = snakemake  # noqa: F821 - injected by Snakemake
with stage_errors(sm.log[0]):
    events = list(sm.input.events)
    make_score_data(sm.params.process, sm.params.settings, events[0] if events else None, dict(sm.output.items()),
                    device=sm.params.device, threads=sm.threads,
                    seed=derive_seed(sm.params.seed, "symbolic_data", sm.wildcards.process))
