"""Event-file readers with schema auto-detection, streaming in bounded-memory steps.

Supported inputs and what each gives (``levels``):
  * NanoAOD-style ROOT (tree ``Events``: ours from ``simulate`` and real CMS NanoAOD):
    reco (``Muon_*``, ``Electron_*``, ``Jet_*``, ``MET_*``, ``Photon_*`` where present), particle
    (``GenDressedLepton_*``, ``GenJet_*``, ``GenMET_*``, ``GenIsolatedPhoton_*`` where present: CMS's
    Rivet-based isolated prompt photons), parton (``LHEPart_*`` with status 1).
  * Delphes ROOT (tree ``Delphes``): reco (``Muon.*``, ``Electron.*``, ``Jet.*``, ``MissingET.*``,
    ``Photon.*`` where present), particle (``GenJet.*``, bare status-1 leptons from ``Particle.*``,
    ``GenMissingET.*``; no photons: the record has no isolation or prompt flag to tell prompt photons
    from the many pi0 decay photons), parton (``Particle.*`` with Pythia 8 status 23, the outgoing
    hard process).
  * LHE files, plain or gzipped (pylhe): parton level (status-1 particles).
  * Any other flat tree through the dataset's branch map (``format: flat``): see :mod:`lhcchain.prepare.flat`.

Every level becomes the same canonical objects: ``leptons``, ``jets`` and ``photons`` as Momentum4D
records (``pt, eta, phi, mass`` in GeV/rad, leptons with ``pdgId`` and optional ``iso``, jets with any
of ``nConstituents, girth, tau21``; ``photons`` None where the input has no photon collection at that
level, as our ``simulate`` files) and ``met`` (``pt, phi``, or None at parton level without neutrinos).
Parton-level photons are the outgoing photons of the hard process.
"""

from __future__ import annotations

import functools
import itertools
import operator
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import awkward as ak
import numpy as np
import uproot
import vector

from ..errors import InputError

vector.register_awkward()

LEVELS = ("parton", "particle", "reco")
JET_EXTRAS = ("nConstituents", "girth", "tau21")
LEPTONS = (11, 13)
PARTONS = (1, 2, 3, 4, 5, 21)
NEUTRINOS = (12, 14, 16)
MUON_MASS, ELECTRON_MASS = 0.1056584, 0.000511


@dataclass
class Batch:
    """One step of events from one file: canonical objects per level plus event identity and weight."""

    levels: dict[str, dict[str, ak.Array | None]]
    weight: np.ndarray
    entry: np.ndarray  # entry number within the file
    run: np.ndarray
    event: np.ndarray
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.weight)


def detect_format(path: str | os.PathLike[str]) -> str:
    """``nanoaod``, ``delphes`` or ``lhe`` from the file's name and content."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"input file {p} does not exist")
    if p.name.endswith((".lhe", ".lhe.gz", ".lhef")):
        return "lhe"
    trees = _open_root(p).keys(cycle=False)
    if "Events" in trees:
        return "nanoaod"
    if "Delphes" in trees:
        return "delphes"
    raise InputError(f"file {p}: no tree 'Events' (NanoAOD) or 'Delphes' found; keys are {trees}. "
                     "For another tree, give the dataset format: flat, its tree and a branches map")


def _open_root(path: Path) -> uproot.ReadOnlyDirectory:
    try:
        return uproot.open(path)
    except Exception as exc:  # uproot raises many types for damaged files
        raise InputError(f"file {path} is not a readable ROOT file (truncated or corrupt?): {exc}") from exc


def _p4(pt: ak.Array, eta: ak.Array, phi: ak.Array, mass: ak.Array, **extra: ak.Array) -> ak.Array:
    fields = {"pt": pt, "eta": eta, "phi": phi, "mass": mass}
    return ak.zip({k: ak.values_astype(v, np.float64) for k, v in fields.items()} | extra, with_name="Momentum4D")


def _sorted(objs: ak.Array) -> ak.Array:
    return objs[ak.argsort(objs.pt, axis=1, ascending=False)]


def _is(pdg: ak.Array, ids: Sequence[int]) -> ak.Array:
    a = abs(pdg)
    return functools.reduce(operator.or_, [a == i for i in ids])


def _met_from(objs: ak.Array) -> ak.Array:
    px, py = ak.to_numpy(ak.sum(objs.px, axis=1)), ak.to_numpy(ak.sum(objs.py, axis=1))
    return ak.zip({"pt": np.hypot(px, py), "phi": np.arctan2(py, px)})


# --------------------------------------------------------------------------- NanoAOD

_NANO_LEPTON = ("pt", "eta", "phi", "mass", "pdgId")
_NANO_JET = ("pt", "eta", "phi", "mass")
_NANO_PHOTON = {"reco": "Photon", "particle": "GenIsolatedPhoton"}
_DELPHES_PHOTON = [f"Photon.{f}" for f in ("PT", "Eta", "Phi")]


def _nano_branches(levels: Sequence[str]) -> tuple[list[str], list[str]]:
    """(required, optional) branches for the requested levels."""
    req: list[str] = []
    opt: list[str] = ["genWeight", "run", "event"]
    if "reco" in levels:
        req += [f"{c}_{f}" for c in ("Muon", "Electron") for f in _NANO_LEPTON]
        req += [f"Jet_{f}" for f in _NANO_JET] + ["MET_pt", "MET_phi"]
        opt += ["Muon_pfRelIso03_all", "Electron_pfRelIso03_all"] + [f"Jet_{f}" for f in JET_EXTRAS]
    if "particle" in levels:
        req += [f"GenDressedLepton_{f}" for f in _NANO_LEPTON] + [f"GenJet_{f}" for f in _NANO_JET] + ["GenMET_pt", "GenMET_phi"]
        opt += [f"GenJet_{f}" for f in JET_EXTRAS]
    opt += [f"{_NANO_PHOTON[lv]}_{f}" for lv in ("reco", "particle") if lv in levels for f in _NANO_JET]
    if "parton" in levels:
        req += [f"LHEPart_{f}" for f in ("pt", "eta", "phi", "mass", "pdgId", "status")]
    return req, opt


def _nano_jets(a: ak.Array, prefix: str) -> ak.Array:
    extra = {f: a[f"{prefix}_{f}"] for f in JET_EXTRAS if f"{prefix}_{f}" in a.fields}
    return _sorted(_p4(a[f"{prefix}_pt"], a[f"{prefix}_eta"], a[f"{prefix}_phi"], a[f"{prefix}_mass"], **extra))


def _iso(a: ak.Array, branch: str, like: ak.Array) -> ak.Array:
    """Relative isolation from ``branch``, or NaN (no isolation cut) when the file has none."""
    return ak.values_astype(a[branch], np.float64) if branch in a.fields else ak.full_like(like, np.nan, dtype=np.float64)


def _nano_leptons(a: ak.Array, prefix: str) -> ak.Array:
    pt = a[f"{prefix}_pt"]
    return _p4(pt, a[f"{prefix}_eta"], a[f"{prefix}_phi"], a[f"{prefix}_mass"], pdgId=a[f"{prefix}_pdgId"],
               iso=_iso(a, f"{prefix}_pfRelIso03_all", pt))


def _nano_photons(a: ak.Array, prefix: str) -> ak.Array | None:
    """Photons ``{prefix}_{pt,eta,phi,mass}``, or None when the file lacks any of the branches."""
    names = [f"{prefix}_{f}" for f in _NANO_JET]
    return _sorted(_p4(*(a[b] for b in names))) if set(names) <= set(a.fields) else None


def _nano_levels(a: ak.Array, levels: Sequence[str]) -> dict[str, dict[str, ak.Array | None]]:
    out: dict[str, dict[str, ak.Array | None]] = {}
    if "reco" in levels:
        out["reco"] = {
            "leptons": _sorted(ak.concatenate([_nano_leptons(a, "Muon"), _nano_leptons(a, "Electron")], axis=1)),
            "jets": _nano_jets(a, "Jet"),
            "photons": _nano_photons(a, _NANO_PHOTON["reco"]),
            "met": ak.zip({"pt": a["MET_pt"], "phi": a["MET_phi"]}),
        }
    if "particle" in levels:
        out["particle"] = {
            "leptons": _sorted(_nano_leptons(a, "GenDressedLepton")),
            "jets": _nano_jets(a, "GenJet"),
            "photons": _nano_photons(a, _NANO_PHOTON["particle"]),
            "met": ak.zip({"pt": a["GenMET_pt"], "phi": a["GenMET_phi"]}),
        }
    if "parton" in levels:
        out["parton"] = _parton_level(_p4(a.LHEPart_pt, a.LHEPart_eta, a.LHEPart_phi, a.LHEPart_mass, pdgId=a.LHEPart_pdgId), a.LHEPart_status == 1)
    return out


def _parton_level(parts: ak.Array, outgoing: ak.Array) -> dict[str, ak.Array | None]:
    """Hard-process leptons, partons (as jets), photons and neutrino MET from outgoing particles."""
    parts = parts[outgoing]
    nu = parts[_is(parts.pdgId, NEUTRINOS)]
    return {
        "leptons": _sorted(parts[_is(parts.pdgId, LEPTONS)]),
        "jets": _sorted(ak.with_name(parts[_is(parts.pdgId, PARTONS)][["pt", "eta", "phi", "mass"]], "Momentum4D")),
        "photons": _sorted(ak.with_name(parts[parts.pdgId == 22][["pt", "eta", "phi", "mass"]], "Momentum4D")),
        "met": _met_from(nu),
    }


# --------------------------------------------------------------------------- Delphes

def _delphes_branches(levels: Sequence[str]) -> tuple[list[str], list[str]]:
    req: list[str] = []
    opt: list[str] = ["Event.Weight", "Event.Number"]
    if "reco" in levels:
        req += [f"{c}.{f}" for c in ("Muon", "Electron") for f in ("PT", "Eta", "Phi", "Charge")]
        req += [f"Jet.{f}" for f in ("PT", "Eta", "Phi", "Mass")] + ["MissingET.MET", "MissingET.Phi"]
        opt += ["Muon.IsolationVar", "Electron.IsolationVar", *_DELPHES_PHOTON]
    if "particle" in levels:
        req += [f"GenJet.{f}" for f in ("PT", "Eta", "Phi", "Mass")] + ["GenMissingET.MET", "GenMissingET.Phi"]
    if "particle" in levels or "parton" in levels:
        req += [f"Particle.{f}" for f in ("PID", "Status", "PT", "Eta", "Phi", "Mass")]
    return req, opt


def _delphes_leptons(a: ak.Array, prefix: str, pdg: int, mass: float) -> ak.Array:
    pt = a[f"{prefix}.PT"]
    return _p4(pt, a[f"{prefix}.Eta"], a[f"{prefix}.Phi"], ak.full_like(pt, mass),
               pdgId=ak.values_astype(-pdg * a[f"{prefix}.Charge"], np.int32), iso=_iso(a, f"{prefix}.IsolationVar", pt))


def _delphes_levels(a: ak.Array, levels: Sequence[str]) -> dict[str, dict[str, ak.Array | None]]:
    out: dict[str, dict[str, ak.Array | None]] = {}
    if "particle" in levels or "parton" in levels:
        parts = _p4(a["Particle.PT"], a["Particle.Eta"], a["Particle.Phi"], a["Particle.Mass"], pdgId=a["Particle.PID"])
        status = a["Particle.Status"]
    if "reco" in levels:
        mu = _delphes_leptons(a, "Muon", 13, MUON_MASS)
        el = _delphes_leptons(a, "Electron", 11, ELECTRON_MASS)
        out["reco"] = {
            "leptons": _sorted(ak.concatenate([mu, el], axis=1)),
            "jets": _sorted(_p4(a["Jet.PT"], a["Jet.Eta"], a["Jet.Phi"], a["Jet.Mass"])),
            "photons": _sorted(_p4(*(a[b] for b in _DELPHES_PHOTON), ak.zeros_like(a["Photon.PT"])))
            if set(_DELPHES_PHOTON) <= set(a.fields) else None,
            "met": ak.zip({"pt": ak.firsts(a["MissingET.MET"]), "phi": ak.firsts(a["MissingET.Phi"])}),  # one-element collection
        }
    if "particle" in levels:
        stable = parts[(status == 1) & _is(parts.pdgId, LEPTONS)]
        out["particle"] = {
            "leptons": _sorted(stable),
            "jets": _sorted(_p4(a["GenJet.PT"], a["GenJet.Eta"], a["GenJet.Phi"], a["GenJet.Mass"])),
            "photons": None,
            "met": ak.zip({"pt": ak.firsts(a["GenMissingET.MET"]), "phi": ak.firsts(a["GenMissingET.Phi"])}),
        }
    if "parton" in levels:
        out["parton"] = _parton_level(parts, status == 23)
    return out


# --------------------------------------------------------------------------- ROOT iteration

def _open_tree(path: Path, tree_name: str, fmt: str) -> tuple[uproot.TTree, set[str]]:
    """The TTree ``tree_name`` of ROOT file ``path`` and its branch names."""
    f = _open_root(path)
    if tree_name not in f.keys(cycle=False):
        raise InputError(f"file {path}: tree {tree_name!r} not found (format {fmt}); keys are {f.keys(cycle=False)}")
    try:  # a damaged TTree header fails here (e.g. zlib.error), before any basket is read
        tree = f[tree_name]
        return tree, set(tree.keys())
    except Exception as exc:
        raise InputError(f"file {path}: cannot read tree {tree_name!r} (truncated or corrupt file?): {type(exc).__name__}: {exc}") from exc


def _iterate_root(path: Path, fmt: str, levels: Sequence[str], step_size: int) -> Iterator[Batch]:
    tree_name, branches = ("Events", _nano_branches) if fmt == "nanoaod" else ("Delphes", _delphes_branches)
    tree, present = _open_tree(path, tree_name, fmt)
    req, opt = branches(levels)
    missing = [b for b in req if b not in present]
    if missing:
        raise InputError(f"file {path}: tree {tree_name!r} lacks branch {missing[0]!r} needed for levels {list(levels)}"
                         + (f" (and {len(missing) - 1} more: {missing[1:6]})" if len(missing) > 1 else ""))
    names = req + [b for b in opt if b in present]
    start = 0
    for a in _guarded(tree.iterate(names, step_size=step_size, library="ak"), f"file {path}: reading tree {tree_name!r}"):
        n = len(a)
        entry = np.arange(start, start + n, dtype=np.int64)
        start += n
        has = set(a.fields)
        if fmt == "nanoaod":
            lv = _nano_levels(a, levels)
            weight = ak.to_numpy(a["genWeight"]).astype(np.float64) if "genWeight" in has else np.ones(n)
            run = ak.to_numpy(a["run"]).astype(np.int64) if "run" in has else np.zeros(n, np.int64)
            event = ak.to_numpy(a["event"]).astype(np.int64) if "event" in has else entry
        else:
            lv = _delphes_levels(a, levels)
            weight = ak.to_numpy(ak.fill_none(ak.firsts(a["Event.Weight"]), 1.0)) if "Event.Weight" in has else np.ones(n)
            run = np.zeros(n, np.int64)
            event = ak.to_numpy(ak.firsts(a["Event.Number"])).astype(np.int64) if "Event.Number" in has else entry
        yield Batch(lv, weight, entry, run, event)


def _guarded(it: Iterator, what: str) -> Iterator:
    """Re-raise read failures of ``it`` (truncated baskets, bad compression, XML errors) as InputError."""
    count = 0
    while True:
        try:
            item = next(it)
        except StopIteration:
            return
        except Exception as exc:  # readers raise many exception types for damaged files
            raise InputError(f"{what} failed after {count} steps (truncated or corrupt file?): {type(exc).__name__}: {exc}") from exc
        count += 1
        yield item


# --------------------------------------------------------------------------- LHE

def _iterate_lhe(path: Path, levels: Sequence[str], step_size: int) -> Iterator[Batch]:
    import pylhe

    unsupported = [lv for lv in levels if lv != "parton"]
    if unsupported:
        raise InputError(f"file {path}: LHE files hold parton level only; levels {unsupported} were requested")
    try:
        events = pylhe.LHEFile.fromfile(str(path)).events
    except Exception as exc:
        raise InputError(f"file {path}: not a readable LHE file: {type(exc).__name__}: {exc}") from exc

    def next_chunk() -> list:
        # pylhe stops at an XML error with only a 'Parse Error' warning: make it an error, so a
        # truncated or corrupt file is not read as a shorter, valid one.
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message="Parse Error", category=RuntimeWarning)
            return list(itertools.islice(events, step_size))

    chunks = iter(next_chunk, [])
    start = 0
    for chunk in _guarded(chunks, f"file {path}: reading LHE events"):
        a = pylhe.to_awkward(chunk)
        n = len(a)
        v = a.particles.vector
        parts = _p4(v.pt, v.eta, v.phi, a.particles.m, pdgId=a.particles.id)
        entry = np.arange(start, start + n, dtype=np.int64)
        start += n
        yield Batch({"parton": _parton_level(parts, a.particles.status == 1)}, ak.to_numpy(a.eventinfo.weight).astype(np.float64),
                    entry, np.zeros(n, np.int64), entry)


def iterate_events(path: str | os.PathLike[str], levels: Sequence[str], step_size: int = 10_000, fmt: str = "auto") -> Iterator[Batch]:
    """Stream ``path`` in steps of ``step_size`` events as :class:`Batch` es of canonical objects."""
    p = Path(path)
    fmt = detect_format(p) if fmt == "auto" else fmt
    if fmt == "lhe":
        yield from _iterate_lhe(p, levels, step_size)
    elif fmt in ("nanoaod", "delphes"):
        if not p.is_file():
            raise InputError(f"input file {p} does not exist")
        yield from _iterate_root(p, fmt, levels, step_size)
    else:
        raise InputError(f"file {p}: unknown format {fmt!r}; expected auto, nanoaod, delphes or lhe")
