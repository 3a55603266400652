"""envs/unfold.yaml lists every third-party package the unfold stage imports, with pyproject.toml's bounds."""

from __future__ import annotations

import ast
import re
import sys
import tomllib

import yaml

from ..conftest import ROOT

# import name -> distribution name, where they differ
DIST = {"torch": "pytorch", "sklearn": "scikit-learn", "yaml": "pyyaml"}
CONDA_ONLY = {"python", "cpuonly", "pip"}


def stage_imports() -> set[str]:
    """Top-level third-party modules imported by lhcchain/unfold and, transitively, the lhcchain modules it imports."""
    todo, seen, third = [ROOT / "lhcchain" / "unfold" / "__init__.py", *sorted((ROOT / "lhcchain" / "unfold").glob("*.py"))], set(), set()
    while todo:
        path = todo.pop()
        if path in seen or not path.exists():
            continue
        seen.add(path)
        pkg = path.parent
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [(a.name, 0) for a in node.names]
            elif isinstance(node, ast.ImportFrom):  # the module, and its names in case they are submodules
                mod = node.module or ""
                names = [(mod, node.level)] + [(f"{mod}.{a.name}" if mod else a.name, node.level) for a in node.names]
            else:
                continue
            for name, level in names:
                if level:
                    base = pkg
                    for _ in range(level - 1):
                        base = base.parent
                    target = base.joinpath(*name.split(".")) if name else base
                    todo += [target.with_suffix(".py"), target / "__init__.py"]
                elif name.split(".")[0] == "lhcchain":
                    target = ROOT.joinpath(*name.split("."))
                    todo += [target.with_suffix(".py"), target / "__init__.py"]
                elif name.split(".")[0] not in sys.stdlib_module_names and name != "__future__":
                    third.add(name.split(".")[0])
    return third


def env_packages() -> dict[str, str]:
    deps = yaml.safe_load((ROOT / "envs" / "unfold.yaml").read_text())["dependencies"]
    flat = [d for d in deps if isinstance(d, str)] + [p for d in deps if isinstance(d, dict) for p in d["pip"]]
    return {re.split(r"[<>=]", d)[0]: d for d in flat}


def test_env_covers_imports_with_pyproject_bounds():
    env = env_packages()
    imported = {DIST.get(m, m) for m in stage_imports()}
    assert imported - set(env) == set(), imported - set(env)
    bounds = {re.split(r"[<>=]", d)[0]: d for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    bounds["pytorch"] = bounds.pop("torch").replace("torch", "pytorch")
    for name, spec in env.items():
        if name not in CONDA_ONLY:
            assert bounds.get(name) == spec, (name, spec, bounds.get(name))
