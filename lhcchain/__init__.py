"""lhcchain: the LHC simulation-to-inference chain with machine-learned surrogates.

All science lives in this package; the Snakemake workflow (``workflow/``, ``rules/``,
``scripts/``) only wires it together. Units are GeV and radians unless stated otherwise.
"""

__version__ = "0.1.0"
