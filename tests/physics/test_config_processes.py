"""Every process in config/config.yaml is reachable by name and gives finite weights."""

from __future__ import annotations

import pytest
import torch
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from lhcchain.config import process_spec
from lhcchain.physics.processes import build_process
from lhcchain.errors import InputError

from ..conftest import ROOT

CONFIG = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


@pytest.mark.parametrize("name", sorted(CONFIG["processes"]))
def test_configured_process_integrates(name: str, single_thread: None) -> None:
    process = build_process(process_spec(CONFIG, name), device="cpu")
    torch.manual_seed(0)
    total = 0.0
    for c in range(len(process.channels)):
        r = torch.rand(256, process.n_random, dtype=torch.float64)
        weight, momenta = process.integrand(r, c)
        assert torch.isfinite(weight).all() and (weight >= 0).all()
        assert momenta.shape[0] == 256
        total += float(weight.sum())
    assert total > 0


def test_zprime_from_config_sets_mass_and_width() -> None:
    dy = build_process(process_spec(CONFIG, "drell_yan_zprime"), device="cpu")
    zp = CONFIG["processes"]["drell_yan_zprime"]["options"]["zprime"]
    assert dy.zprime.mass == zp["mass"] and dy.zprime.width == zp["width"]


def test_unknown_process_key_names_it() -> None:
    with pytest.raises(InputError, match="no process 'ttbar'"):
        process_spec(CONFIG, "ttbar")


def test_schema_rejects_unknown_process_name() -> None:
    bad = {**CONFIG, "processes": {"x": {"process": "ttbar"}}}
    with pytest.raises(WorkflowError, match="ttbar"):  # snakemake wraps jsonschema's ValidationError
        validate(bad, str(ROOT / "config" / "schema.yaml"))
