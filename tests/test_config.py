"""The default config is the one source of a run's settings: it names every key of the settings that
:func:`lhcchain.config.resolve_settings` lays over a module's defaults, so those defaults serve
library callers only (docs/naming.md)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml

import lhcchain.config
from lhcchain.config import default_section, resolve_settings, stage_sources
from lhcchain.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def keys(tree: Mapping) -> set[str]:
    """Dotted paths of every leaf of ``tree``."""
    return {f"{k}.{sub}" if isinstance(v, Mapping) else k
            for k, v in tree.items() for sub in (keys(v) if isinstance(v, Mapping) else [None])}


def section(path: str) -> Mapping:
    node = CONFIG
    for part in path.split("."):
        node = node[part]
    return node


# Sections the workflow passes whole and the section whose keys they must all name (the library fills a
# missing key from the default config, which a run's params would not show)
COMPLETE: list[tuple[str, str]] = [
    ("generate.evaluation.classifier", "reweight.classifier"),
]


@pytest.mark.parametrize(("path", "like"), COMPLETE, ids=[p for p, _ in COMPLETE])
def test_config_names_every_key(path, like):
    assert keys(section(path)) == keys(section(like))


def test_resolve_settings_names_the_section_of_a_renamed_key():
    with pytest.raises(InputError, match="generate.sampling: key 'ecm' was renamed to 'sqrt_s'"):
        resolve_settings({"ecm": 1.0}, "generate.sampling")


def test_default_section_reads_the_default_config(monkeypatch, tmp_path):
    assert default_section("madnis.training") == CONFIG["madnis"]["training"]
    merged = default_section("amplitudes.model", "amplitudes.training")
    assert merged == {**CONFIG["amplitudes"]["model"], **CONFIG["amplitudes"]["training"]}
    merged["boosting"]["mode"] = "loss"  # a copy: the cached config stays as it is
    assert default_section("amplitudes.training")["boosting"]["mode"] == CONFIG["amplitudes"]["training"]["boosting"]["mode"]
    with pytest.raises(InputError, match="no section 'madnis.trainin'"):
        default_section("madnis.trainin")
    with pytest.raises(InputError, match="'seed' is not a section"):
        default_section("seed")
    missing = tmp_path / "config" / "config.yaml"
    monkeypatch.setattr(lhcchain.config, "DEFAULT_CONFIG", missing)
    lhcchain.config._load_default_config.cache_clear()
    try:
        with pytest.raises(InputError, match=f"default config {missing} not found"):
            default_section("madnis.training")
    finally:
        monkeypatch.undo()
        lhcchain.config._load_default_config.cache_clear()


def test_resolve_settings_lays_over_the_config_section():
    section = CONFIG["madnis"]["training"]
    assert resolve_settings(None, "madnis.training") == section
    s = resolve_settings({"steps": 7, "flow": {"layers": 5}}, "madnis.training")
    assert s == {**section, "steps": 7, "flow": {**section["flow"], "layers": 5}}  # nested sections merge key by key
    with pytest.raises(InputError, match=r"madnis.training.flow: unknown key\(s\) \['depth'\]"):
        resolve_settings({"flow": {"depth": 3}}, "madnis.training")
    with pytest.raises(InputError, match="madnis.training.flow: expected a mapping"):
        resolve_settings({"flow": 3}, "madnis.training")
    with pytest.raises(InputError, match=r"here: unknown key\(s\) \['stepz'\]"):
        resolve_settings({"stepz": 3}, "madnis.training", "here")


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
