"""Config helpers shared by the Snakefile and the tests (no Snakemake import here).

``prepare_settings`` resolves the settings ``prepare`` uses for one sample or dataset: the
``prepare`` section with the entry's own ``levels`` and ``selection`` keys laid over it.
``check_renamed`` stops on a config key that was renamed (``RENAMED``; the scheme is docs/naming.md).
``resolve_settings`` lays a settings section over the same section of the default config
(:func:`default_config`) and rejects unknown keys. The default config is the one place a default is
written: no module keeps its own defaults (tests/test_config.py checks both). The workflow passes every
key of a section (the config names them all), so these defaults only fill what a library caller
(bench scripts, tests, notebooks) leaves out.
``script_sources`` lists the code a rule runs (its script and, transitively, every lhcchain module the
script imports, with the package data those modules read), which each rule declares as input so that a
code change reruns exactly the rules that run it.
"""

from __future__ import annotations

import ast
import copy
import functools
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from .errors import InputError

PACKAGE = Path(__file__).resolve().parent
DEFAULT_CONFIG = PACKAGE.parent / "config" / "config.yaml"
"""The default config, found relative to the package: the repository is the workflow and lhcchain is used
from a clone (an editable install or ``PYTHONPATH``), so the file is always beside the package. A copy as
package data would be a second file to keep identical; an installed wheel without the clone gets an
InputError that says so."""
SCRIPTS = PACKAGE.parent / "scripts"
"""The rules' scripts (thin adapters, ``scripts/<name>.py``), beside the package like the default config."""
DATA = PACKAGE / "data"
DATA_SUFFIXES = (".xml", ".csv")
"""Package data (:mod:`lhcchain.data`): the files under :data:`DATA` with these suffixes (each folder's README.md
documents them)."""
RENAMED = {"ecm": "sqrt_s", "m_ll_min": "mll_min", "m_ll_max": "mll_max"}
"""Config keys that were renamed (old -> new): an old key is an error that names the new one."""


def check_renamed(settings: Any, where: str = "config") -> None:
    """Raise :class:`InputError` at the first key of :data:`RENAMED` anywhere in ``settings``
    (nested mappings and lists), naming its path below ``where`` and the new key."""
    if isinstance(settings, Mapping):
        for key, value in settings.items():
            if key in RENAMED:
                raise InputError(f"{where}: key {key!r} was renamed to {RENAMED[key]!r} (docs/naming.md)")
            check_renamed(value, f"{where}.{key}")
    elif isinstance(settings, list | tuple):
        for i, value in enumerate(settings):
            check_renamed(value, f"{where}[{i}]")


@functools.cache
def _load_default_config() -> dict[str, Any]:
    if not DEFAULT_CONFIG.is_file():
        raise InputError(f"default config {DEFAULT_CONFIG} not found: lhcchain takes its default settings from the "
                         "repository's config/config.yaml beside the package; use lhcchain from a clone of the repository")
    try:
        config = yaml.safe_load(DEFAULT_CONFIG.read_text())
    except yaml.YAMLError as exc:
        raise InputError(f"default config {DEFAULT_CONFIG}: not valid YAML ({exc})") from exc
    if not isinstance(config, Mapping):
        raise InputError(f"default config {DEFAULT_CONFIG}: expected a mapping at the top level")
    return config


def default_config() -> dict[str, Any]:
    """A copy of the default config, ``config/config.yaml`` of the repository (:data:`DEFAULT_CONFIG`)."""
    return copy.deepcopy(_load_default_config())


def default_section(*sections: str) -> dict[str, Any]:
    """The sections (dotted paths, e.g. ``madnis.training``) of the default config, merged in order (a later
    section's keys replace an earlier one's); InputError naming a path that is not a mapping there."""
    out: dict[str, Any] = {}
    for path in sections:
        node: Any = _load_default_config()
        for part in path.split("."):
            if not isinstance(node, Mapping) or part not in node:
                raise InputError(f"default config {DEFAULT_CONFIG}: no section {path!r}")
            node = node[part]
        if not isinstance(node, Mapping):
            raise InputError(f"default config {DEFAULT_CONFIG}: {path!r} is not a section (a mapping)")
        out.update(copy.deepcopy(dict(node)))
    return out


def resolve_settings(settings: Mapping[str, Any] | None, sections: str | Sequence[str], where: str | None = None) -> dict[str, Any]:
    """``settings`` laid over the default config's ``sections`` (one dotted path, or several merged in order,
    :func:`default_section`), nested mappings merged key by key; the result is a copy.

    Raises :class:`InputError` naming ``where`` (default: the section path) for a renamed key, an unknown
    key (listing the valid ones) or a mapping given as a plain value.
    """
    sections = (sections,) if isinstance(sections, str) else tuple(sections)
    return _lay_over(settings, default_section(*sections), where or "/".join(sections))


def _lay_over(settings: Mapping[str, Any] | None, defaults: Mapping[str, Any], where: str) -> dict[str, Any]:
    settings = {} if settings is None else settings
    check_renamed(settings, where)
    unknown = sorted(set(settings) - set(defaults))
    if unknown:
        raise InputError(f"{where}: unknown key(s) {unknown}; valid: {sorted(defaults)}")
    out = copy.deepcopy(dict(defaults))
    for key, value in settings.items():
        if isinstance(defaults[key], Mapping):
            if not isinstance(value, Mapping):
                raise InputError(f"{where}.{key}: expected a mapping of {sorted(defaults[key])}, got {value!r}")
            out[key] = _lay_over(value, defaults[key], f"{where}.{key}")
        else:
            out[key] = copy.deepcopy(value)
    return out


@functools.cache
def imported_modules(path: Path) -> frozenset[str]:
    """Absolute names of the modules a Python file imports anywhere (also inside functions), relative
    imports resolved against its package (lhcchain files: their folder under the repository), plus
    ``module.name`` for each ``from module import name`` and for each attribute read from an imported name
    (``from .. import physics`` then ``physics.get_process``), which :func:`lhcchain_files` resolves through a
    package's lazy attributes (:func:`lazy_table`)."""
    path = Path(path).resolve()
    package = path.relative_to(PACKAGE.parent).parent.parts if path.is_relative_to(PACKAGE.parent) else ()
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    bound: dict[str, str] = {}  # local name -> the module (or module attribute) it refers to
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
            bound.update((a.asname, a.name) if a.asname else (a.name.split(".")[0],) * 2 for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ".".join([*package[: len(package) - node.level + 1], *([node.module] if node.module else [])]) \
                if node.level else (node.module or "")
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
            bound.update((alias.asname or alias.name, f"{base}.{alias.name}") for alias in node.names)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            chain = [node.attr]
            while isinstance(node := node.value, ast.Attribute):
                chain.append(node.attr)
            if isinstance(node, ast.Name) and node.id in bound:
                names.add(".".join([bound[node.id], *reversed(chain)]))
    return frozenset(names)


@functools.cache
def lazy_table(init: Path) -> dict[str, str]:
    """Attribute -> submodule (relative to the package) of the ``lazy_attributes`` table in a package's
    ``__init__.py`` (a dict literal, or a module-level name assigned one); empty without a table."""
    if not init.is_file():
        return {}
    tree = ast.parse(init.read_text())
    assigned = {t.id: node.value for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
                if isinstance(t, ast.Name)}
    table: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "lazy_attributes":
            for arg in node.args:
                arg = assigned.get(arg.id) if isinstance(arg, ast.Name) else arg
                if isinstance(arg, ast.Dict):
                    table.update({k.value: v.value for k, v in zip(arg.keys, arg.values)
                                  if isinstance(k, ast.Constant) and isinstance(v, ast.Constant)})
    return table


def lhcchain_files(module: str) -> list[Path]:
    """The files that importing the lhcchain module ``module`` runs: it and its packages' ``__init__.py``;
    for ``package.name`` with ``name`` a lazy attribute of the package (:func:`lazy_table`), also the
    submodule that reading it imports."""
    parts = module.split(".")
    if parts[0] != "lhcchain":
        return []
    files: list[Path] = []
    for i in range(1, len(parts) + 1):
        base = PACKAGE.parent.joinpath(*parts[:i])
        found = [f for f in (base.with_suffix(".py"), base / "__init__.py") if f.is_file()]
        if not found:  # an attribute of the module parts[:i - 1]: lazy ones load a submodule
            lazy = lazy_table(base.parent / "__init__.py").get(parts[i - 1])
            return list(dict.fromkeys(files + (lhcchain_files(".".join([*parts[: i - 1], lazy])) if lazy else [])))
        files.extend(found)
    return files


def package_data_files() -> list[Path]:
    """Every package data file (:data:`DATA_SUFFIXES` under :data:`DATA`), sorted."""
    return sorted(p for p in DATA.rglob("*") if p.is_file() and p.suffix in DATA_SUFFIXES)


def script_sources(script: str | Path) -> list[str]:
    """The code a rule runs, sorted: its script (a name under :data:`SCRIPTS`, e.g. ``showers_reference``, or a
    path) and, transitively, every lhcchain module it imports (:func:`imported_modules`: at the top, inside
    functions and through ``lazy_attributes`` tables), with their packages' ``__init__.py``; when that reaches
    :mod:`lhcchain.data`, also the data files it serves (:func:`package_data_files`). Modules that the
    script does not reach (another rule's) are not listed, so editing them does not rerun the rule."""
    start = SCRIPTS / f"{script}.py" if isinstance(script, str) else Path(script).resolve()
    if not start.is_file():
        raise InputError(f"script_sources: no script {start}")
    todo, seen = [start], set[Path]()
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            todo.extend(f for m in imported_modules(path) for f in lhcchain_files(m) if f not in seen)
    if DATA / "__init__.py" in seen:
        seen.update(package_data_files())
    return sorted(str(f) for f in seen)


def entry(config: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """The sample or dataset ``name``."""
    if name in config["samples"]:
        return config["samples"][name]
    if name in config["datasets"]:
        return config["datasets"][name]
    raise InputError(f"config: {name!r} is neither under 'samples' nor under 'datasets'")


def prepare_settings(config: Mapping[str, Any], name: str) -> dict[str, Any]:
    """``prepare`` section for ``name`` with its ``levels``/``selection``/``format`` overrides (and a flat
    ntuple's ``tree`` and ``branches``) applied."""
    settings = copy.deepcopy(dict(config["prepare"]))
    own = entry(config, name)
    if "levels" in own:
        settings["levels"] = list(own["levels"])
    for key in ("format", "tree", "branches"):  # tree and branches: a flat ntuple's map (lhcchain.prepare.flat)
        if key in own:
            settings[key] = copy.deepcopy(own[key])
    settings["selection"] = {**settings["selection"], **own.get("selection", {})}
    return settings


def process_spec(config: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """The entry ``processes.<name>`` of the config."""
    if name not in config.get("processes", {}):
        raise InputError(f"config: no process {name!r} under 'processes'; defined: {sorted(config.get('processes', {}))}")
    return config["processes"][name]


def amplitude_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """Training settings of the amplitude surrogate: the ``model`` and ``training`` sections merged."""
    amp = config["amplitudes"]
    return {**amp["model"], **amp["training"]}


def amplitude_integrator(config: Mapping[str, Any], process: str) -> list[str]:
    """The MadNIS integrator that ``amplitudes.data.sampling: integrator`` draws ``process``'s points from,
    ``results/madnis/{process}/integrator.pt`` (rule madnis_integrate), else none. The DAG stays acyclic:
    madnis_integrate -> amplitude_data -> train_amplitude -> madnis_unweight."""
    return [f"results/madnis/{process}/integrator.pt"] if config["amplitudes"]["data"]["sampling"] == "integrator" else []


def madnis_events(events: Mapping[str, Any], process: str) -> dict[str, Any]:
    """``madnis.events`` for ``process`` (a key of ``processes``): ``flow_float32`` becomes whether
    the process is in its list."""
    out = dict(events)
    out["flow_float32"] = process in events.get("flow_float32", [])
    return out


def gpu_request(config: Mapping[str, Any]) -> int:
    """GPUs a network rule asks for: none when the config pins ``device: cpu``, else one."""
    return 0 if config.get("device", "auto") == "cpu" else 1


def constraint(names: Any) -> str:
    """Regex matching exactly the given wildcard values (matches nothing for an empty collection)."""
    return "|".join(re.escape(str(n)) for n in names) or "(?!)"


def chunk_files(config: Mapping[str, Any], sample: str, ext: str) -> list[str]:
    """Paths of every chunk output ``results/sim/{sample}/chunk{i}.{ext}`` of a simulated sample."""
    return [f"results/sim/{sample}/chunk{i}.{ext}" for i in range(int(config["samples"][sample]["chunks"]))]


def prepare_inputs(config: Mapping[str, Any], name: str) -> list[str]:
    """Event files ``prepare`` reads for ``name``: simulated chunks of a sample, or a dataset's files."""
    if name in config["samples"]:
        return chunk_files(config, name, "root")
    return list(entry(config, name)["files"])


def generate_settings(config: Mapping[str, Any], name: str) -> dict[str, Any]:
    """Settings of generator ``name``: ``generate.model`` and ``generate.training`` with ``generate.models.<name>``
    laid over them."""
    gen = config["generate"]
    if name not in gen["models"]:
        raise InputError(f"config: no generator {name!r} under 'generate.models'; defined: {sorted(gen['models'])}")
    return {**gen["model"], **gen["training"], **gen["models"][name]}


def madnis_settings(config: Mapping[str, Any], process: str) -> dict[str, Any]:
    """MadNIS training settings of ``process``: ``madnis.training`` with ``madnis.overrides.<process>``
    laid over it (nested sections merged key by key)."""
    mad = config["madnis"]
    settings = copy.deepcopy(dict(mad["training"]))
    for key, value in mad["overrides"].get(process, {}).items():
        settings[key] = {**settings.get(key, {}), **value} if isinstance(value, Mapping) else value
    return settings


def madnis_surrogate(config: Mapping[str, Any], process: str) -> list[str]:
    """The amplitude surrogate the MadNIS stage unweights with: ``results/amplitudes/{process}/model.pt``
    when ``amplitudes.processes`` lists ``process``, else none."""
    return [f"results/amplitudes/{process}/model.pt"] if process in config["amplitudes"]["processes"] else []


GENERATED = "generate:"  # prefix of a reweight sample that is a generator's events (generate:<model>)


def generated_model(sample: str) -> str | None:
    """The generator whose events the reweight sample ``sample`` names (``generate:<model>``, :data:`GENERATED`),
    else None (a prepared sample or dataset)."""
    return sample[len(GENERATED):] if sample.startswith(GENERATED) else None


def refine_pairs(config: Mapping[str, Any]) -> list[str]:
    """Reweight pairs whose source is a generator's events (:func:`generated_model`): rule ``reweight_refine``
    writes their refined events."""
    return [name for name, pair in config["reweight"]["pairs"].items() if generated_model(pair["source"]) is not None]


def _reweight_pair(config: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    pairs = config["reweight"]["pairs"]
    if name not in pairs:
        raise InputError(f"config: no reweight pair {name!r} under 'reweight.pairs'; defined: {sorted(pairs)}")
    pair = pairs[name]
    for role in ("source", "target"):
        sample = pair[role]
        if (model := generated_model(sample)) is not None:
            if model not in config["generate"]["models"]:
                raise InputError(f"config: reweight.pairs.{name}: {role} {sample!r} names no model under 'generate.models'; "
                                 f"defined: {sorted(config['generate']['models'])}")
        elif sample not in config["samples"] and sample not in config["datasets"]:
            raise InputError(f"config: reweight.pairs.{name}: {role} {sample!r} is neither a sample nor a dataset nor "
                             f"'{GENERATED}<model>'; prepared: {sorted([*config['samples'], *config['datasets']])}")
    return pair


def reweight_settings(config: Mapping[str, Any], name: str) -> dict[str, Any]:
    """Settings of reweight pair ``name``: the ``reweight`` section (without ``pairs``) with the pair's
    keys laid over it (``classifier`` merged key by key)."""
    rw = config["reweight"]
    pair = _reweight_pair(config, name)
    settings = {k: copy.deepcopy(v) for k, v in rw.items() if k not in ("pairs", "tune")}
    settings.update({k: v for k, v in pair.items() if k != "classifier"})
    settings["classifier"] = {**rw["classifier"], **pair.get("classifier", {})}
    return settings


def reweight_inputs(config: Mapping[str, Any], name: str, role: str) -> list[str]:
    """Event files of the ``role`` (source or target) sample of pair ``name``: the prepared splits
    (``splits`` of the pair, else of ``reweight``), or a generator's ``events.parquet`` (``generate:<model>``)."""
    pair = _reweight_pair(config, name)
    model = generated_model(pair[role])
    if model is not None:
        return [f"results/generate/{model}/events.parquet"]
    return [f"results/data/{pair[role]}/{split}.parquet" for split in pair.get("splits", config["reweight"]["splits"])]


TUNE_ROLES = ("reference", "normalisation", "scan", "data")


def tune_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """Settings of the reweight tune fit: ``reweight.tune`` with ``splits`` of ``reweight`` and its ``classifier``
    laid over ``reweight.classifier``. InputError for an unknown sample, a scan sample whose ``settings`` do not
    set ``parameter`` to its scan value, a pair named ``tune``, or no reference events left for training."""
    rw = config["reweight"]
    tune = copy.deepcopy(dict(rw["tune"]))
    if "tune" in rw["pairs"]:
        raise InputError("config: reweight.pairs.tune: the name 'tune' is the tune fit's folder (results/reweight/tune/); rename the pair")
    known = [*config["samples"], *config["datasets"]]
    for role, name in [("reference", tune["reference"]), ("data", tune["data"]), *(("scan", n) for n in tune["scan"])]:
        if name not in known:
            raise InputError(f"config: reweight.tune.{role}: {name!r} is neither a sample nor a dataset; prepared: {sorted(known)}")
    for name, value in tune["scan"].items():
        if name not in config["samples"]:
            continue
        lines = [line.split("=", 1) for line in config["samples"][name].get("settings", []) if "=" in line]
        set_to = {k.strip(): v.strip() for k, v in lines}.get(tune["parameter"])
        if set_to is None or abs(float(set_to) - float(value)) > 1e-12 * max(1.0, abs(float(value))):
            raise InputError(f"config: reweight.tune.scan.{name} = {value}, but samples.{name}.settings set {tune['parameter']} to {set_to}")
    if [s for s in rw["splits"] if s != tune["normalisation_split"]] == []:
        raise InputError(f"config: reweight.tune.normalisation_split {tune['normalisation_split']!r} is the only one of reweight.splits "
                         f"{rw['splits']}: no reference events are left to train on")
    tune["splits"] = list(rw["splits"])
    tune["classifier"] = {**rw["classifier"], **tune.get("classifier", {})}
    return tune


def tune_inputs(config: Mapping[str, Any], role: str) -> list[str]:
    """Prepared files of one role (:data:`TUNE_ROLES`) of the tune fit: the reference's ``splits`` but the
    ``normalisation_split`` (reference), that split (normalisation), every scan sample's and the data's ``splits``."""
    tune = tune_settings(config)
    splits = tune["splits"]
    if role == "reference":
        return [f"results/data/{tune['reference']}/{s}.parquet" for s in splits if s != tune["normalisation_split"]]
    if role == "normalisation":
        return [f"results/data/{tune['reference']}/{tune['normalisation_split']}.parquet"]
    if role == "scan":
        return [p for paths in tune_scan_inputs(config).values() for p in paths]
    if role == "data":
        return [f"results/data/{tune['data']}/{s}.parquet" for s in splits]
    raise ValueError(f"tune_inputs: role {role!r} is not one of {TUNE_ROLES}")


def tune_scan_inputs(config: Mapping[str, Any]) -> dict[str, list[str]]:
    """Prepared files of the tune fit's scan samples, by sample (``splits`` of each); :func:`tune_inputs`'s
    ``scan`` role is their concatenation."""
    tune = tune_settings(config)
    return {name: [f"results/data/{name}/{s}.parquet" for s in tune["splits"]] for name in tune["scan"]}
