"""Snakemake adapter: symbolic regression of the score, the Pareto front with refitted constants."""
from lhcchain.io import derive_seed, stage_errors
from lhcchain.symbolic.run import regress

sm = snakemake  # noqa: F821 - injected by Snakemake
with stage_errors(sm.log[0]):
    regress(sm.input.data, sm.params.settings, dict(sm.output.items()),
            seed=derive_seed(sm.params.seed, "symbolic_regression", sm.wildcards.folder))
