"""Snakemake adapter: the parton-level formulas' constants refitted on detector-level observables."""
from lhcchain.io import derive_seed, stage_errors
from lhcchain.symbolic.run import compare_constants

sm = snakemake  # noqa: F821 - injected by Snakemake
with stage_errors(sm.log[0]):
    compare_constants(sm.input.front, sm.input.data, sm.params.settings, dict(sm.output.items()),
                      seed=derive_seed(sm.params.seed, "symbolic_constants", sm.wildcards.process))
