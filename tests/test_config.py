"""The default config is the one source of a run's settings: it names every key of the settings that
:func:`lhcchain.config.resolve_settings` lays over a module's defaults, so those defaults serve
library callers only (docs/naming.md)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml

from lhcchain.amplitudes.train import DEFAULTS as AMPLITUDES
from lhcchain.config import amplitude_settings, resolve_settings, stage_sources
from lhcchain.errors import InputError
from lhcchain.generate.evaluate import EVALUATION_DEFAULTS
from lhcchain.generate.sample import SAMPLING_DEFAULTS
from lhcchain.generate.train import DEFAULTS as GENERATE
from lhcchain.madnis.integrator import DEFAULTS as MADNIS

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
# Model keys of one generator family that another family's entry leaves to generate.train.DEFAULTS
GENERATE_ARCHITECTURE = {"family", "network", "hidden", "layers", "heads", "bayesian", "kl_weight", "prior_std",
                         "transforms", "bins", "components"}


def keys(tree: Mapping) -> set[str]:
    """Dotted paths of every leaf of ``tree``."""
    return {f"{k}.{sub}" if isinstance(v, Mapping) else k
            for k, v in tree.items() for sub in (keys(v) if isinstance(v, Mapping) else [None])}


@pytest.mark.parametrize(("section", "defaults"), [
    (CONFIG["madnis"]["training"], MADNIS),
    (amplitude_settings(CONFIG), AMPLITUDES),
    (CONFIG["generate"]["training"], {k: v for k, v in GENERATE.items() if k not in GENERATE_ARCHITECTURE}),
    (CONFIG["generate"]["sampling"], SAMPLING_DEFAULTS),
    (CONFIG["generate"]["evaluation"], EVALUATION_DEFAULTS),
], ids=["madnis.training", "amplitudes", "generate.training", "generate.sampling", "generate.evaluation"])
def test_config_names_every_key(section, defaults):
    assert keys(section) == keys(defaults)


def test_resolve_settings_names_the_section_of_a_renamed_key():
    with pytest.raises(InputError, match="generate.sampling: key 'ecm' was renamed to 'sqrt_s'"):
        resolve_settings({"ecm": 1.0}, SAMPLING_DEFAULTS, "generate.sampling")


def test_stage_sources_follow_lhcchain_imports():
    """A rule's code inputs are its packages plus every lhcchain module they import, transitively:
    a change to the training loop reruns the stages that train, and only those."""
    def rel(*packages: str) -> set[str]:
        return {str(Path(f).relative_to(ROOT)) for f in stage_sources(*packages)}

    for stage in ("amplitudes", "generate", "reweight", "unfold", "showers", "symbolic"):
        assert {"lhcchain/training.py", "lhcchain/nn.py"} <= rel(stage), stage
    for stage in ("simulate", "prepare"):
        assert "lhcchain/training.py" not in rel(stage) and "lhcchain/io.py" in rel(stage)
    assert "lhcchain/generate/models.py" in rel("reweight")  # the classifier's MLP block
    assert {"lhcchain/physics/kinematics.py", "lhcchain/madnis/events.py"} <= rel("symbolic")
    assert not any(f.startswith("lhcchain/madnis/") for f in rel("simulate", "prepare"))
