"""Errors raised for bad input.

Every error names the offending file, branch or key and what was expected, so a failing
Snakemake rule prints one line a physicist can act on.
"""


class InputError(RuntimeError):
    """Bad input: a missing or corrupt file, a missing branch or key, an empty selection."""
