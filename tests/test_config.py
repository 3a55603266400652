"""The default config is the one place a default is written (docs/naming.md): modules keep no defaults
dict of their own, :func:`lhcchain.config.resolve_settings` lays settings over the default config's
section, and the sections the workflow passes name every key, so a run's params show all its settings."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
import yaml

import lhcchain.config
from lhcchain.config import SCRIPTS, default_section, resolve_settings, script_sources
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


# Sections that are partial by design: laid over another section by a config helper (generate_settings,
# reweight_settings, madnis_settings, unfold_settings) before the workflow passes them
OVERRIDES = ("reweight.pairs", "generate.models", "madnis.overrides", "unfold.icinn")
# Tables of named entries (samples, processes, ...): their keys are names, not settings
TABLES = ("samples", "datasets", "processes", "amplitudes.external", "generate.models", "madnis.overrides", "reweight.pairs",
          "resources", "showers.reference.layer_depths_x0")


def sections(tree: Mapping, path: str = "") -> Iterator[tuple[str, Mapping]]:
    """(dotted path, mapping) of every mapping in ``tree``, itself included."""
    yield path, tree
    for key, value in tree.items():
        if isinstance(value, Mapping):
            yield from sections(value, f"{path}.{key}" if path else str(key))


def under(path: str, roots: tuple[str, ...]) -> bool:
    return any(path == r or path.startswith(r + ".") for r in roots)


CLASSIFIERS = [p for p, _ in sections(CONFIG) if p.endswith(".classifier") and not under(p, OVERRIDES)]


@pytest.mark.parametrize(("path", "like"), [*((p, "reweight.classifier") for p in CLASSIFIERS),
                                            ("showers.surrogate.shower", "showers.surrogate.energy")])
def test_config_names_every_key(path, like):
    """A section the workflow passes names every key of its kind, so that nothing of a run is filled in from
    outside its params (the classifier sections take reweight.classifier's keys with ``<<: *classifier``)."""
    assert keys(section(path)) == keys(section(like))


def literal(node: ast.expr) -> bool:
    try:
        ast.literal_eval(node)
    except ValueError:
        return False
    return True


def test_no_module_keeps_defaults_of_a_config_section():
    """No lhcchain module writes a dict literal whose keys are settings of a config section, with literal
    values of the same kind (a mapping for a sub-section, a plain value for a setting): defaults live in
    config/config.yaml only. At least 3 such keys, and half of the dict's, make a defaults dict."""
    settings = [(p, m) for p, m in sections(CONFIG) if p not in TABLES]
    found = []
    for file in sorted((ROOT / "lhcchain").rglob("*.py")):
        for node in ast.walk(ast.parse(file.read_text())):
            if not isinstance(node, ast.Dict) or None in node.keys:  # {**settings, ...}: fixed overrides, not defaults
                continue
            entries = {k.value: v for k, v in zip(node.keys, node.values) if isinstance(k, ast.Constant) and isinstance(k.value, str)}
            for path, mapping in settings:
                same = [k for k, v in entries.items()
                        if k in mapping and literal(v) and isinstance(mapping[k], Mapping) == isinstance(v, ast.Dict)]
                if len(same) >= 3 and 2 * len(same) >= len(entries):
                    found.append(f"{file.relative_to(ROOT)}:{node.lineno} repeats {path or 'the top level'}: {sorted(same)}")
                    break
    assert not found, "defaults belong in config/config.yaml (lhcchain.config.resolve_settings):\n" + "\n".join(found)


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


def rel(files: list[str]) -> set[str]:
    """Paths relative to the repository (others as given)."""
    return {str(Path(f).relative_to(ROOT)) if Path(f).is_relative_to(ROOT) else f for f in files}


LOADED = """
import json, sys
path = sys.argv[1]
namespace = {}
exec(compile(open(path).read(), path, "exec"), namespace)
for name in sys.argv[2:]:
    namespace[name]()
print(json.dumps(sorted(m.__file__ for n, m in list(sys.modules.items()) if n.split(".")[0] == "lhcchain")))
"""


def loaded(script: Path, *calls: str) -> set[str]:
    """lhcchain files in sys.modules after running ``script`` in a fresh interpreter, then its functions ``calls``."""
    out = subprocess.run([sys.executable, "-c", LOADED, str(script), *calls], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore"}, check=True)
    return {str(Path(f).resolve().relative_to(ROOT)) for f in json.loads(out.stdout.splitlines()[-1])}


@pytest.mark.parametrize("script", ["showers_fastsim", "symbolic_detector_data", "madnis_unweight", "reweight_tune"])
def test_script_sources_hold_every_module_the_script_loads(script: str, tmp_path: Path) -> None:
    """Every lhcchain module that importing a rule's script loads (sys.modules) is one of its code inputs."""
    imports = [n for n in ast.parse((SCRIPTS / f"{script}.py").read_text()).body if isinstance(n, ast.Import | ast.ImportFrom)]
    assert imports, script
    head = tmp_path / f"{script}.py"  # the script's imports only: its body needs the snakemake object
    head.write_text(ast.unparse(ast.Module(imports, [])))
    sources = rel(script_sources(script))
    assert f"scripts/{script}.py" in sources
    assert loaded(head) <= sources


def test_script_sources_follow_imports_inside_functions_and_lazy_attributes(tmp_path: Path) -> None:
    """Imports inside functions and lazy package attributes (lhcchain._lazy) are code inputs, and only the
    submodule a lazy attribute loads: the run below loads nothing that the computed list misses."""
    script = tmp_path / "probe.py"
    script.write_text(
        "import lhcchain.madnis as mad\n"
        "def lazy():\n"
        "    from lhcchain.physics import get_process  # lazy attribute: lhcchain/physics/processes.py\n"
        "    return get_process, mad.load_integrator  # lazy attribute: lhcchain/madnis/integrator.py\n"
        "def inside():\n"
        "    from lhcchain.showers.geometry import load_geometry  # reads package data\n"
        "    return load_geometry\n"
    )
    sources = rel(script_sources(script))
    assert {"lhcchain/physics/processes.py", "lhcchain/madnis/integrator.py", "lhcchain/showers/geometry.py",
            "lhcchain/data/calochallenge/binning_dataset_2.xml"} <= sources
    assert "lhcchain/madnis/run.py" not in sources  # the other lazy attributes of lhcchain.madnis are not read
    assert loaded(script) < loaded(script, "lazy", "inside") <= sources


def test_script_sources_follow_lhcchain_imports() -> None:
    """A rule's code inputs are its script plus every lhcchain module it imports, transitively: a change to
    the training loop reruns the rules that train, and a change to one rule's module only the rules that run it."""
    for script in ("amplitudes_train", "generate_train", "reweight_train", "unfold_cinn", "showers_train", "symbolic_data"):
        assert {"lhcchain/training.py", "lhcchain/nn.py"} <= rel(script_sources(script)), script
    for script in ("simulate_chunk", "prepare", "showers_reference"):
        sources = rel(script_sources(script))
        assert "lhcchain/training.py" not in sources and "lhcchain/io.py" in sources, script
    assert "lhcchain/generate/models.py" in rel(script_sources("reweight_train"))  # the classifier's MLP block
    assert {"lhcchain/physics/kinematics.py", "lhcchain/madnis/events.py"} <= rel(script_sources("symbolic_data"))
    assert not any(f.startswith("lhcchain/madnis/") for s in ("simulate_chunk", "prepare") for f in rel(script_sources(s)))
    fastsim = "lhcchain/showers/fastsim.py"
    assert fastsim in rel(script_sources("showers_fastsim"))
    for script in ("showers_reference", "showers_train", "showers_sample", "showers_evaluate"):
        assert fastsim not in rel(script_sources(script)), script  # editing the fast simulation reruns only showers_fastsim
    with pytest.raises(InputError, match="no script"):
        script_sources("showers_nonexistent")


def test_every_rule_takes_its_own_script_sources() -> None:
    """Each rule with a script declares code=script_sources("<that script>"), and no other code input."""
    rules = [block for smk in sorted((ROOT / "rules").glob("*.smk")) for block in re.split(r"(?m)^(?=rule \w+:)", smk.read_text())[1:]]
    assert len(rules) >= 30
    for block in rules:
        script = re.search(r'script:\s+"\.\./scripts/(\w+)\.py"', block)
        if script:
            assert re.findall(r"code=(.*),\n", block) == [f'script_sources("{script.group(1)}")'], block.split(":")[0]
