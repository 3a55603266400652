"""Simulated (particle, reco) pairs and reco-level pseudo-data for the ``unfold`` stage.

Input: ``prepare``'s parquet splits of one sample, one row per event passing any level, with
``{level}_pass`` and the feature columns ``{level}_{observable}`` (GeV for momenta and masses,
dimensionless otherwise), and the sample's ``metadata.json``.

Fiducial region at a level: the event passes ``{level}_pass`` and every observable is finite (the
default Z + leading-jet observables need a jet: an event without one at that level is outside).
An event of the simulation can pass both levels (a *pair*), only the particle level (an
*efficiency loss*: its particle-level values count in the unfolded result) or only the reco level
(a *fake*: its reco values are in the data, but it has no particle-level counterpart). Every method
uses both masks (OmniFold PR #21): the unfolded result is the full particle-level distribution of
the fiducial region, not only of the events that pass both levels.

Pseudo-data: the reco-level fiducial events of another sample; its particle-level fiducial events
are the truth, kept aside for the evaluation only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io import read_parquet_columns

LEVELS = ("particle", "reco")
SAME_SELECTION = ("levels", "selection", "max_jets")  # metadata.json keys two samples must share


@dataclass
class Events:
    """One sample's events: observables at both levels (NaN outside the fiducial region), masks, weights.

    ``particle``, ``reco``: (n, F); ``pass_particle``, ``pass_reco``: (n,) bool; ``weight``: generator
    weights (n,); ``split``: the prepared split of each row.
    """

    name: str
    observables: list[str]
    particle: np.ndarray
    reco: np.ndarray
    pass_particle: np.ndarray
    pass_reco: np.ndarray
    weight: np.ndarray
    split: np.ndarray

    def __len__(self) -> int:
        return len(self.weight)

    def subset(self, mask: np.ndarray) -> Events:
        """The rows in ``mask``."""
        return Events(self.name, self.observables, self.particle[mask], self.reco[mask], self.pass_particle[mask],
                      self.pass_reco[mask], self.weight[mask], self.split[mask])

    @property
    def pairs(self) -> np.ndarray:
        """Rows passing both levels."""
        return self.pass_particle & self.pass_reco

    def counts(self) -> dict[str, int]:
        """Pairs, efficiency losses (particle only) and fakes (reco only)."""
        return {"events": len(self), "pairs": int(self.pairs.sum()), "particle_only": int((self.pass_particle & ~self.pass_reco).sum()),
                "reco_only": int((self.pass_reco & ~self.pass_particle).sum())}


def read_metadata(path: str | os.PathLike[str]) -> dict:
    """A prepared sample's ``metadata.json``."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable metadata.json of a prepared sample: {exc}") from exc


def check_same_selection(sim_meta: str | os.PathLike[str], data_meta: str | os.PathLike[str]) -> None:
    """InputError when the two prepared samples differ in levels, selection or ``max_jets``."""
    a, b = read_metadata(sim_meta), read_metadata(data_meta)
    for key in SAME_SELECTION:
        if a.get(key) != b.get(key):
            diff = a.get(key), b.get(key)
            if key == "selection" and isinstance(diff[0], dict) and isinstance(diff[1], dict):
                diff = ({k: v for k, v in diff[0].items() if diff[1].get(k) != v}, {k: v for k, v in diff[1].items() if diff[0].get(k) != v})
            raise InputError(f"pseudo-data {data_meta} was prepared with a different {key} than the simulation {sim_meta}: "
                             f"{diff[1]} vs {diff[0]} (unfolding needs the same selection)")
    missing = [lv for lv in LEVELS if lv not in (a.get("levels") or [])]
    if missing:
        raise InputError(f"{sim_meta}: levels {a.get('levels')} lack {missing} (unfolding needs particle and reco level)")


def load_events(name: str, paths: Sequence[str | os.PathLike[str]], observables: Sequence[str]) -> Events:
    """The rows of ``paths`` passing the fiducial region of either level (module doc)."""
    if not observables:
        raise InputError(f"unfold: no observables configured for sample {name!r}")
    cols = ["weight", *(f"{lv}_pass" for lv in LEVELS), *(f"{lv}_{o}" for lv in LEVELS for o in observables)]
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("particle", "reco", "pass_particle", "pass_reco", "weight", "split",
                                                          "raw_particle", "raw_reco")}
    for path in paths:
        t = read_parquet_columns(path, cols, f"sample {name!r}: observables {list(observables)} at particle and reco level "
                                 "of a prepared sample")
        w = t.column("weight").to_numpy(zero_copy_only=False).astype(np.float64)
        if not np.isfinite(w).all():
            raise InputError(f"{path}: generator weight {w[~np.isfinite(w)][0]} in row {int(np.flatnonzero(~np.isfinite(w))[0])}")
        for lv in LEVELS:
            x = np.column_stack([t.column(f"{lv}_{o}").to_numpy(zero_copy_only=False).astype(np.float64) for o in observables]) \
                if t.num_rows else np.zeros((0, len(observables)))
            passed = t.column(f"{lv}_pass").to_numpy(zero_copy_only=False).astype(bool)
            parts[f"raw_{lv}"].append(x[passed])
            ok = passed & np.isfinite(x).all(1)
            parts[lv].append(np.where(ok[:, None], x, np.nan))
            parts[f"pass_{lv}"].append(ok)
        parts["weight"].append(w)
        parts["split"].append(np.full(t.num_rows, Path(path).stem))
    ev = Events(name, list(observables), *(np.concatenate(parts[k]) for k in ("particle", "reco", "pass_particle", "pass_reco", "weight", "split")))
    for lv in LEVELS:
        raw = np.concatenate(parts[f"raw_{lv}"])
        for j, o in enumerate(observables):
            if len(raw) and not np.isfinite(raw[:, j]).any():
                raise InputError(f"sample {name!r}: observable {lv}_{o} is NaN in every event passing {lv}_pass in "
                                 f"{[str(p) for p in paths]} (finite values expected)")
    keep = ev.pass_particle | ev.pass_reco
    return ev.subset(keep)


@dataclass
class UnfoldingInput:
    """Simulation (all its fiducial rows) and pseudo-data (reco level to unfold, particle level as truth)."""

    sim: Events
    data: Events

    @property
    def data_reco(self) -> np.ndarray:
        return self.data.reco[self.data.pass_reco]

    @property
    def data_reco_weight(self) -> np.ndarray:
        return self.data.weight[self.data.pass_reco]

    @property
    def truth(self) -> np.ndarray:
        return self.data.particle[self.data.pass_particle]

    @property
    def truth_weight(self) -> np.ndarray:
        return self.data.weight[self.data.pass_particle]


def load_input(sim_paths: Sequence[str | os.PathLike[str]], data_paths: Sequence[str | os.PathLike[str]],
               sim_meta: str | os.PathLike[str], data_meta: str | os.PathLike[str], settings: Mapping) -> UnfoldingInput:
    """Simulation ``settings['sim']`` and pseudo-data ``settings['data']`` with the checks of the module doc."""
    check_same_selection(sim_meta, data_meta)
    obs = list(settings["observables"])
    sim = load_events(settings["sim"], sim_paths, obs)
    data = load_events(settings["data"], data_paths, obs)
    for ev, paths in ((sim, sim_paths), (data, data_paths)):
        if not ev.pass_reco.any():
            raise InputError(f"sample {ev.name!r}: no event in the reco-level fiducial region (pass and finite {obs}) in "
                             f"{[str(p) for p in paths]}")
    if not sim.pairs.any():
        raise InputError(f"sample {sim.name!r}: no event passes both particle and reco level in {[str(p) for p in sim_paths]}: "
                         "no (particle, reco) pairs to learn the detector response from")
    if not data.pass_particle.any():
        raise InputError(f"pseudo-data {data.name!r}: no particle-level fiducial event (the truth) in {[str(p) for p in data_paths]}")
    return UnfoldingInput(sim, data)


def integer_columns(x: np.ndarray) -> np.ndarray:
    """Columns whose finite values are all integers (e.g. a constituent multiplicity), (F,) bool."""
    out = []
    for col in np.asarray(x, np.float64).T:
        v = col[np.isfinite(col)]
        out.append(bool(len(v)) and bool(np.all(v == np.round(v))))
    return np.asarray(out, dtype=bool)


def bin_edges(x: np.ndarray, n_bins: int, integer: bool, lo_q: float = 0.005, hi_q: float = 0.995) -> np.ndarray:
    """Edges of about ``n_bins`` bins holding equal shares of ``x`` (finite values) between its ``lo_q`` and
    ``hi_q`` quantiles; half-integer edges for an integer observable. Values outside go to the outer bins
    (:func:`lhcchain.stats.bin_index`)."""
    v = np.asarray(x, np.float64)
    v = v[np.isfinite(v)]
    edges = np.quantile(v, np.linspace(lo_q, hi_q, int(n_bins) + 1))
    if integer:
        edges = np.floor(edges) + 0.5
    edges = np.unique(edges)
    if len(edges) < 2:
        edges = np.array([v.min() - 0.5, v.max() + 0.5])
    return edges
