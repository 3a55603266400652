"""Reference-simulation settings of the default config, read from config/config.yaml."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from lhcchain import showers

from ..conftest import ROOT


@pytest.fixture(scope="session")
def reference_settings() -> dict[str, Any]:
    """``showers.reference`` of the default config with the stage's ``threshold_mev``."""
    return showers.reference_settings(yaml.safe_load((ROOT / "config" / "config.yaml").read_text()))
