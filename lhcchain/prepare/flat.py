"""Flat ntuples read through a branch map (dataset ``format: flat``).

Analysis ntuples, ATLAS Open Data style trees (``lep_pt``, ``jet_pt``, ...) and older trees with one
branch per object and component (``px1``, ``pt2``) carry no naming convention a reader could detect,
so the dataset names its ``tree`` and a ``branches`` map::

    branches:
      unit: GeV                  # or MeV: momenta, energies and masses are divided by 1000
      weight: mcWeight           # one branch or a list whose product is the event weight (default 1)
      run: Run                   # optional run and event numbers (default 0 and the entry number)
      event: Event
      reco:                      # the level the objects below fill: parton, particle or reco
        muons: {px: [px1, px2], py: [py1, py2], pz: [pz1, pz2], E: [E1, E2], charge: [Q1, Q2]}
        jets: {pt: jet_pt, eta: jet_eta, phi: jet_phi, E: jet_E, count: jet_n}
        photons: {pt: photon_pt, eta: photon_eta, phi: photon_phi, count: photon_n}
        met: {pt: met_et, phi: met_phi}

Objects per level: ``muons``, ``electrons``, ``leptons`` (mixed flavours: ``pdgId``, whose sign is
taken from ``charge`` where both are given, so an unsigned flavour branch works), ``jets``, ``photons``
and ``met``. A level's leptons are its muons, electrons and leptons together; a level without a
``photons`` map has no photon collection (its ``n_photons`` is 0, and the metadata says so).

Layouts: a component is either one variable-length (jagged) branch, or a list of scalar branches,
one per object slot (numbered). ``count`` names a branch with the number of objects per event: for
jagged branches it must equal their lengths (a check of the map); for numbered branches (and
fixed-size array branches) the first ``count`` slots are the objects. Without ``count`` every slot is
an object.

Four-vectors: one of (``pt``, ``phi``) or (``px``, ``py``), one of ``eta`` or ``pz``, one of ``mass``
or ``E``, in any combination; muons and electrons without ``mass`` or ``E`` take the PDG mass, photons
mass 0.
``vector`` converts them to the canonical (pt, eta, phi, mass). Muons and electrons need ``charge`` or
``pdgId`` (the selection pairs opposite-sign leptons), ``leptons`` need ``pdgId``. Leptons may give
``iso`` (relative isolation; where absent the selection's ``lepton_iso_max`` is not applied), jets any
of ``nConstituents``, ``girth``, ``tau21``. ``met`` is (``pt``, ``phi``) or (``px``, ``py``), one
scalar branch each.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import vector

from ..errors import InputError
from .readers import ELECTRON_MASS, JET_EXTRAS, LEVELS, MUON_MASS, Batch, _guarded, _open_tree, _p4, _sorted

vector.register_awkward()

UNITS = {"GeV": 1.0, "MeV": 1e-3}
KINEMATICS = ("pt", "eta", "phi", "mass", "E", "px", "py", "pz")
SCALED = ("pt", "mass", "E", "px", "py", "pz")  # components in the map's energy unit
LEPTON_EXTRAS = ("charge", "pdgId", "iso")
EXTRAS = {"muons": LEPTON_EXTRAS, "electrons": LEPTON_EXTRAS, "leptons": LEPTON_EXTRAS, "jets": JET_EXTRAS, "photons": (), "met": ()}
LEPTON_OBJECTS = {"muons": (13, MUON_MASS), "electrons": (11, ELECTRON_MASS), "leptons": (0, None)}
# objects of known mass (GeV), which may give neither mass nor E
KNOWN_MASS = {k: m for k, (_, m) in LEPTON_OBJECTS.items() if m is not None} | {"photons": 0.0}
# vector's coordinate axes: each needs exactly one of its alternatives (temporal optional where a mass is known)
AXES = {"azimuthal": (("pt", "phi"), ("px", "py")), "longitudinal": (("eta",), ("pz",)), "temporal": (("mass",), ("E",))}


@dataclass(frozen=True)
class ObjectMap:
    """Branches of one object collection at one level."""

    where: str  # e.g. branches.reco.muons
    kind: str
    components: dict[str, str | tuple[str, ...]]
    count: str | None = None

    @property
    def numbered(self) -> bool:
        return isinstance(next(iter(self.components.values())), tuple)

    def branches(self) -> dict[str, str]:
        """Branch -> the map entry naming it (e.g. ``branches.reco.muons.px``)."""
        names = {b: f"{self.where}.{k}" for k, v in self.components.items() for b in ((v,) if isinstance(v, str) else v)}
        return names | ({self.count: f"{self.where}.count"} if self.count else {})


@dataclass(frozen=True)
class FlatMap:
    """A dataset's tree and branch map, validated: see the module docstring."""

    tree: str
    objects: dict[str, dict[str, ObjectMap]]  # level -> object kind -> map
    weight: tuple[str, ...] = ()
    run: str | None = None
    event: str | None = None
    scale: float = 1.0

    def branches(self, levels: Sequence[str]) -> dict[str, str]:
        """Every branch the map reads for ``levels`` -> the first map entry naming it."""
        names = {b: "branches.weight" for b in self.weight}
        names |= {b: f"branches.{k}" for k, b in (("run", self.run), ("event", self.event)) if b}
        for lv in levels:
            for om in self.objects[lv].values():
                names |= {b: entry for b, entry in om.branches().items() if b not in names}
        return names


def flat_map(cfg: Mapping[str, Any], name: str) -> FlatMap:
    """The :class:`FlatMap` of ``prepare`` settings ``cfg`` (keys ``tree``, ``branches``, ``levels``) of dataset ``name``."""
    where = f"dataset {name!r}"
    if not isinstance(cfg.get("tree"), str) or not isinstance(cfg.get("branches"), Mapping):
        raise InputError(f"{where}: format flat needs 'tree' (the TTree's name) and a 'branches' map")
    br = dict(cfg["branches"])
    unit = br.pop("unit", "GeV")
    if unit not in UNITS:
        raise InputError(f"{where}: branches.unit is {unit!r}; expected one of {list(UNITS)}")
    weight = br.pop("weight", ())
    weight = (weight,) if isinstance(weight, str) else tuple(weight)
    run, event = br.pop("run", None), br.pop("event", None)
    unknown = [k for k in br if k not in LEVELS]
    if unknown:
        raise InputError(f"{where}: branches has keys {unknown}; expected unit, weight, run, event and levels {list(LEVELS)}")
    objects = {lv: {kind: _object_map(where, f"branches.{lv}.{kind}", kind, spec) for kind, spec in objs.items()}
               for lv, objs in br.items()}
    unmapped = [lv for lv in cfg["levels"] if lv not in objects]
    if unmapped:
        raise InputError(f"{where}: levels {unmapped} are requested but branches maps only {list(objects)}; "
                         "set the dataset's levels or add a map per level")
    for lv in cfg["levels"]:
        if not any(k in objects[lv] for k in (*LEPTON_OBJECTS, "jets")):
            raise InputError(f"{where}: branches.{lv} maps no leptons or jets; expected some of {[*LEPTON_OBJECTS, 'jets', 'met']}")
    return FlatMap(cfg["tree"], objects, weight, run, event, UNITS[unit])


def _object_map(dataset: str, entry: str, kind: str, spec: Any) -> ObjectMap:
    where = f"{dataset}: {entry}"
    if kind not in EXTRAS:
        raise InputError(f"{where}: unknown object; expected one of {list(EXTRAS)}")
    if not isinstance(spec, Mapping):
        raise InputError(f"{where}: expected a map of components to branches, got {spec!r}")
    spec = dict(spec)
    count = spec.pop("count", None)
    allowed = (*KINEMATICS, *EXTRAS[kind])
    bad = [k for k in spec if k not in allowed]
    if bad:
        raise InputError(f"{where}: unknown components {bad}; expected some of {list(allowed)}" + (" and count" if kind != "met" else ""))
    jagged = all(isinstance(v, str) for v in spec.values())
    numbered = all(isinstance(v, (list, tuple)) and v and all(isinstance(b, str) for b in v) for v in spec.values())
    if not (jagged or numbered) or not spec:
        raise InputError(f"{where}: every component must be one branch name (jagged layout) or every one a list of "
                         f"branch names (numbered layout), got {spec}")
    if numbered and len({len(v) for v in spec.values()}) > 1:
        raise InputError(f"{where}: numbered components list different numbers of branches: "
                         + ", ".join(f"{k}: {len(v)}" for k, v in spec.items()))
    if kind == "met":
        if count is not None or numbered or set(spec) not in ({"pt", "phi"}, {"px", "py"}):
            raise InputError(f"{where}: expected (pt, phi) or (px, py), one scalar branch each, got {spec}")
    else:
        _check_four_vector(where, kind, set(spec))
        if kind in LEPTON_OBJECTS and not ({"charge", "pdgId"} & set(spec) if kind != "leptons" else "pdgId" in spec):
            need = "pdgId (and charge where pdgId is unsigned)" if kind == "leptons" else "charge or pdgId"
            raise InputError(f"{where}: needs {need}; the selection pairs opposite-sign same-flavour leptons")
    if count is not None and not isinstance(count, str):
        raise InputError(f"{where}: count must be one branch name, got {count!r}")
    comps = {k: v if isinstance(v, str) else tuple(v) for k, v in spec.items()}
    return ObjectMap(entry, kind, comps, count)


def _check_four_vector(where: str, kind: str, given: set[str]) -> None:
    """Exactly one alternative per coordinate axis; the temporal one may be absent for muons, electrons and photons."""
    for axis, options in AXES.items():
        used = given & {c for opt in options for c in opt}
        if any(set(opt) == used for opt in options) or (not used and axis == "temporal" and kind in KNOWN_MASS):
            continue
        alts = " or ".join("(" + ", ".join(o) + ")" for o in options)
        raise InputError(f"{where}: components {sorted(given & set(KINEMATICS))} define no four-vector: "
                         f"the {axis} part needs exactly one of {alts}; e.g. (pt, eta, phi, mass or E) or (px, py, pz, E)")


# --------------------------------------------------------------------------- reading

def iterate_flat(path: str | os.PathLike[str], fmap: FlatMap, levels: Sequence[str], step_size: int) -> Iterator[Batch]:
    """Stream the flat tree of ``path`` in steps of ``step_size`` events as canonical :class:`Batch` es."""
    p = Path(path)
    tree, present = _open_tree(p, fmap.tree, "flat")
    names = fmap.branches(levels)
    missing = [b for b in names if b not in present]
    if missing:
        hints = "; ".join(f"{b!r} ({names[b]}; close matches: {difflib.get_close_matches(b, present, n=3) or 'none'})"
                          for b in missing[:5])
        raise InputError(f"file {p}: tree {fmap.tree!r} lacks {len(missing)} branch(es) named in the branches map: {hints}")
    start = 0
    for a in _guarded(tree.iterate(list(names), step_size=step_size, library="ak"), f"file {p}: reading tree {fmap.tree!r}"):
        n = len(a)
        entry = np.arange(start, start + n, dtype=np.int64)
        step = _Step(a, f"file {p}", start)
        start += n
        lv = {level: _level(step, fmap.objects[level], fmap.scale) for level in levels}
        weight = np.ones(n)
        for b in fmap.weight:
            weight = weight * step.scalar(b, "branches.weight").astype(np.float64)
        run = step.scalar(fmap.run, "branches.run").astype(np.int64) if fmap.run else np.zeros(n, np.int64)
        event = step.scalar(fmap.event, "branches.event").astype(np.int64) if fmap.event else entry
        yield Batch(lv, weight, entry, run, event)


@dataclass(frozen=True)
class _Step:
    """One step's arrays, with what messages name: the file and the step's first entry."""

    a: ak.Array
    where: str
    start: int

    def scalar(self, branch: str, entry: str) -> np.ndarray:
        """Branch ``branch`` (named by map entry ``entry``) as one value per event."""
        x = self.a[branch]
        if x.ndim != 1:
            raise InputError(f"{self.where}: {entry} is branch {branch!r} with several values per event ({x.type}); "
                             "expected one (numbered-layout components, met, weight, run and event are scalar branches)")
        return ak.to_numpy(x)


def _components(step: _Step, om: ObjectMap) -> dict[str, ak.Array]:
    """One object's components as (events x objects) arrays, with ``count`` applied or checked."""
    if om.numbered:
        cols = {k: ak.from_regular(np.stack([step.scalar(b, f"{om.where}.{k}") for b in v], axis=1)) for k, v in om.components.items()}
        fixed = True
    else:
        cols = {}
        for k, b in om.components.items():
            x = step.a[b]
            if x.ndim != 2:
                raise InputError(f"{step.where}: {om.where}.{k} is branch {b!r} with one value per event ({x.type}); the "
                                 "jagged layout needs a variable-length branch; for one branch per object slot list them, "
                                 f"e.g. {k}: [{b}, ...]")
            cols[k] = x
        fixed = all(isinstance(x.type.content, ak.types.RegularType) for x in cols.values())
        cols = {k: ak.from_regular(x) for k, x in cols.items()}
        lengths = {k: ak.to_numpy(ak.num(x)) for k, x in cols.items()}
        first = next(iter(lengths))
        for k, num in lengths.items():
            bad = np.flatnonzero(num != lengths[first])
            if bad.size:
                raise InputError(f"{step.where}: {om.where}: branches {om.components[first]!r} and {om.components[k]!r} "
                                 f"differ in length in entry {step.start + bad[0]} ({lengths[first][bad[0]]} vs {num[bad[0]]})")
    if om.count:
        count = step.scalar(om.count, f"{om.where}.count").astype(np.int64)
        num = ak.to_numpy(ak.num(next(iter(cols.values()))))
        bad = np.flatnonzero((count > num) | (count < 0)) if fixed else np.flatnonzero(count != num)
        if bad.size:
            i = bad[0]
            raise InputError(f"{step.where}: {om.where}: count branch {om.count!r} is {count[i]} in entry {step.start + i} but "
                             f"the components hold {num[i]} {'slots' if fixed else 'objects'} there")
        if fixed:
            cols = {k: x[ak.local_index(x, axis=1) < count] for k, x in cols.items()}
    return cols


def _four_vectors(cols: Mapping[str, ak.Array], scale: float, mass: float | None, **extra: ak.Array) -> ak.Array:
    """Canonical Momentum4D records from any complete component set, through ``vector``."""
    kin = {k: ak.values_astype(x, np.float64) * (scale if k in SCALED else 1.0) for k, x in cols.items() if k in KINEMATICS}
    if "mass" not in kin and "E" not in kin:
        kin["mass"] = ak.full_like(next(iter(kin.values())), mass)
    v = vector.zip(kin)
    return _p4(v.pt, v.eta, v.phi, v.mass, **extra)


def _leptons(cols: Mapping[str, ak.Array], kind: str, scale: float) -> ak.Array:
    flavour, mass = LEPTON_OBJECTS[kind]
    if "pdgId" in cols:
        pdg = ak.values_astype(cols["pdgId"], np.int32)
        if "charge" in cols:  # sign from the charge: a negative lepton has positive pdgId
            pdg = -np.sign(ak.values_astype(cols["charge"], np.int32)) * abs(pdg)
    else:
        pdg = -flavour * np.sign(ak.values_astype(cols["charge"], np.int32))
    like = next(cols[k] for k in KINEMATICS if k in cols)
    iso = ak.values_astype(cols["iso"], np.float64) if "iso" in cols else ak.full_like(like, np.nan, dtype=np.float64)
    return _four_vectors(cols, scale, mass, pdgId=ak.values_astype(pdg, np.int32), iso=iso)


def _none(n: int) -> ak.Array:
    """``n`` empty lists of float64."""
    return ak.unflatten(np.zeros(0), np.zeros(n, np.int64))


def _level(step: _Step, objects: Mapping[str, ObjectMap], scale: float) -> dict[str, ak.Array | None]:
    """Canonical leptons, jets, photons (None when not mapped) and met of one level."""
    n = len(step.a)
    leptons = [_leptons(_components(step, om), kind, scale) for kind, om in objects.items() if kind in LEPTON_OBJECTS]
    if not leptons:
        e = _none(n)
        leptons = [_p4(e, e, e, e, pdgId=ak.values_astype(e, np.int32), iso=e)]
    if "jets" in objects:
        cols = _components(step, objects["jets"])
        jets = _four_vectors(cols, scale, None, **{k: cols[k] for k in JET_EXTRAS if k in cols})
    else:
        e = _none(n)
        jets = _p4(e, e, e, e)
    photons = _four_vectors(_components(step, objects["photons"]), scale, KNOWN_MASS["photons"]) if "photons" in objects else None
    met = None
    if "met" in objects:
        m = objects["met"]
        v = vector.zip({k: step.scalar(b, f"{m.where}.{k}").astype(np.float64) * (scale if k in SCALED else 1.0)
                        for k, b in m.components.items()})
        met = ak.zip({"pt": v.pt, "phi": v.phi})
    return {"leptons": _sorted(ak.concatenate(leptons, axis=1)), "jets": _sorted(jets),
            "photons": _sorted(photons) if photons is not None else None, "met": met}
