"""Settings of the ``unfold`` stage's steps from the config (no heavy imports: the Snakefile uses it)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from ..errors import InputError

METHODS = ("ibu", "omnifold", "cinn", "icinn")
COMMON = ("sim", "data", "observables", "heldout_split", "bins")


def unfold_settings(config: Mapping[str, Any], step: str) -> dict[str, Any]:
    """The ``unfold`` keys shared by every step with the step's own section laid over them; ``icinn``
    also gets the ``cinn`` section (its network, draws, acceptance classifier), ``evaluate`` the methods list."""
    u = config["unfold"]
    if step not in (*METHODS, "evaluate"):
        raise InputError(f"unfold: unknown step {step!r}; steps: {[*METHODS, 'evaluate']}")
    s = {k: copy.deepcopy(u[k]) for k in COMMON}
    if step == "icinn":
        s.update(copy.deepcopy(u["cinn"]))
    s.update(copy.deepcopy(u[step]))
    if step == "evaluate":
        s["methods"] = list(u["methods"])
    return s


def unfold_inputs(config: Mapping[str, Any], role: str) -> list[str]:
    """The prepared parquet splits of the simulation (``role='sim'``) or the pseudo-data (``'data'``)."""
    name = config["unfold"][role]
    if name not in config["samples"] and name not in config["datasets"]:
        raise InputError(f"config: unfold.{role} {name!r} is neither a sample nor a dataset; "
                         f"prepared: {sorted([*config['samples'], *config['datasets']])}")
    return [f"results/data/{config['unfold'][role]}/{split}.parquet" for split in ("train", "val", "test")]


def unfold_methods(config: Mapping[str, Any]) -> list[str]:
    """The configured methods, checked against :data:`METHODS`."""
    bad = [m for m in config["unfold"]["methods"] if m not in METHODS]
    if bad:
        raise InputError(f"config: unfold.methods has unknown method(s) {bad}; known: {list(METHODS)}")
    return list(config["unfold"]["methods"])
