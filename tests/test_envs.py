"""The per-stage conda environments (envs/<stage>.yaml) agree with pyproject.toml and with the code.

For each stage, every third-party module that its scripts import (following lhcchain's own imports
transitively, including imports inside functions and lazily imported submodules) must come from a
package the environment lists, and every package the environment lists must be a dependency in
pyproject.toml with the same version bounds.
"""

from __future__ import annotations

import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
import yaml

from lhcchain.config import imported_modules, script_sources

from .conftest import ROOT

ENVS = sorted(p.stem for p in (ROOT / "envs").glob("*.yaml"))
CONDA_TO_PIP = {"pytorch": "torch"}  # conda-forge names that differ from the PyPI distribution
NOT_PACKAGES = {"python", "pip"}


def canonical(name: str) -> str:
    """PEP 503 normalised distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def split_requirement(req: str) -> tuple[str, str]:
    """('name', 'specifier') of a requirement string such as 'pythia8mc>=8.312,<8.318'."""
    m = re.match(r"\s*([A-Za-z0-9_.\-]+)\s*(.*)$", req)
    assert m, req
    return canonical(CONDA_TO_PIP.get(m.group(1), m.group(1))), m.group(2).replace(" ", "")


def pyproject_requirements() -> dict[str, str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return dict(split_requirement(d) for d in deps)


def env_requirements(stage: str) -> dict[str, str]:
    env = yaml.safe_load((ROOT / "envs" / f"{stage}.yaml").read_text())
    reqs: dict[str, str] = {}
    for dep in env["dependencies"]:
        for item in dep["pip"] if isinstance(dep, dict) else [dep]:
            name, spec = split_requirement(item)
            if name not in NOT_PACKAGES:
                reqs[name] = spec
    return reqs


def third_party_imports(stage: str) -> set[str]:
    """Top-level third-party modules imported by the code the stage's rules run (their script_sources)."""
    scripts = [p.stem for p in (ROOT / "scripts").glob("*.py") if p.stem == stage or p.stem.startswith(f"{stage}_")]
    assert scripts, f"no scripts for stage {stage}"
    files = {Path(f) for script in scripts for f in script_sources(script) if f.endswith(".py")}
    tops = {module.split(".")[0] for path in files for module in imported_modules(path)}
    return {top for top in tops if top and top != "lhcchain" and top not in sys.stdlib_module_names and top != "__future__"}


@pytest.mark.parametrize("stage", ENVS)
def test_env_matches_pyproject(stage: str) -> None:
    project = pyproject_requirements()
    for name, spec in env_requirements(stage).items():
        assert name in project, f"envs/{stage}.yaml lists {name}, which pyproject.toml does not depend on"
        assert spec == project[name], f"envs/{stage}.yaml: {name}{spec}, pyproject.toml: {name}{project[name]}"


@pytest.mark.parametrize("stage", ENVS)
def test_env_provides_every_import(stage: str) -> None:
    dists = packages_distributions()
    listed = set(env_requirements(stage))
    missing = {}
    for module in third_party_imports(stage):
        providers = {canonical(d) for d in dists.get(module, [module])}
        if not providers & listed:
            missing[module] = sorted(providers)
    assert not missing, f"envs/{stage}.yaml lacks the packages of these imports: {missing}"


def test_import_scan_sees_lazy_and_nested_imports() -> None:
    """The scan is not vacuous: it follows lhcchain's own imports (lazy ones included) to torch and madnis."""
    found = third_party_imports("madnis")
    assert {"torch", "madnis", "numpy", "matplotlib", "pylhe"} <= found
    assert "fastjet" in third_party_imports("simulate") and "uproot" in third_party_imports("prepare")
