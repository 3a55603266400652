"""Training events for the generative networks: reading, the per-particle representation, transforms.

Events are Z(-> l l) + n jets at one level (``parton``, ``particle`` or ``reco``) of a prepared parquet
file from the ``prepare`` stage, or an LHE file (parton level) read with the ``prepare`` readers and
selection. Only events passing that level's selection with exactly ``n`` jets, ``n`` in the configured
``multiplicities``, are used.

Representation (GeV, radians), one row per event, padded with NaN after the last jet::

    l1: pt, eta           (phi of l1 is the reference: dphi = 0, so it is not stored)
    l2: pt, eta, dphi
    jk: pt, eta, dphi, m  (k = 1 .. n, jets in decreasing pt)

``dphi = phi - phi_l1`` wrapped to [-pi, pi). Lepton masses are not modelled: they follow from the
flavour (``pdgId`` of l1, l2 = -l1), which is sampled from its training frequency per multiplicity;
``phi_l1`` is sampled uniformly (the events are symmetric under rotations about the beam).

:class:`Transform` maps the representation to the network's space: ``log(pt - pt_min)`` with
``pt_min`` the selection threshold of the object, ``atanh(eta / eta_max)`` with ``eta_max`` the
selection's limit (``eta`` unchanged without one), ``atanh(dphi / pi)``, ``log(m + 1 GeV)``, then
standardised per dimension on the training events. The atanh maps keep the sharp acceptance edges
out of the network's space. Dimensions that are constant in training (e.g. massless partons) are
held at their value and map to 0. Optionally (``dilepton_mass``) l1's pt is traded for the dilepton
mass, and (``mll_peak``) that mass is mapped through the Breit-Wigner distribution of the resonance
(:func:`breit_wigner_logit`, :class:`Transform`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import vector

from ..errors import InputError
from ..io import read_parquet_columns
from ..physics.phasespace import BreitWigner

LEPTON_MASS = {11: 0.000511, 13: 0.1056584, 15: 1.77686}  # GeV, by |pdgId|
MASS_OFFSET = 1.0  # GeV, in log(m + MASS_OFFSET)
ATANH_EDGE = 1.0 - 1e-6  # |value| / bound (dphi / pi, eta / eta_max) is clipped below this before atanh
MLL_MARGIN = 0.01  # relative widening of the m_ll window for the Breit-Wigner mapping


def lepton_mass(pdg: np.ndarray) -> np.ndarray:
    """Lepton masses (GeV) from ``pdgId`` codes."""
    a = np.abs(np.asarray(pdg))
    return np.select([a == code for code in LEPTON_MASS], list(LEPTON_MASS.values()), np.nan)


def layout(n_jets: int) -> list[tuple[str, str]]:
    """(object, feature) of each representation dimension for ``n_jets`` jets (module doc)."""
    dims = [("l1", "pt"), ("l1", "eta"), ("l2", "pt"), ("l2", "eta"), ("l2", "dphi")]
    for k in range(1, n_jets + 1):
        dims += [(f"j{k}", "pt"), (f"j{k}", "eta"), (f"j{k}", "dphi"), (f"j{k}", "mass")]
    return dims


def n_dims(n_jets: int) -> int:
    """Representation dimension of an event with ``n_jets`` jets: 5 + 4 n."""
    return 5 + 4 * int(n_jets)


def wrap_phi(phi: np.ndarray) -> np.ndarray:
    """Angle wrapped to [-pi, pi) (radians)."""
    return (np.asarray(phi) + np.pi) % (2 * np.pi) - np.pi


@dataclass
class Events:
    """Selected events: representation ``x`` (N, 5 + 4 max(multiplicities)), NaN-padded, and per event
    the jet count, the leading lepton's ``pdgId`` and azimuth (rad) and the event weight."""

    x: np.ndarray
    n_jets: np.ndarray
    pdg: np.ndarray
    phi: np.ndarray
    weight: np.ndarray
    source: str

    def __len__(self) -> int:
        return len(self.n_jets)

    def mask(self) -> np.ndarray:
        """(N, D) boolean: dimensions present for each event's multiplicity."""
        return np.arange(self.x.shape[1])[None, :] < (5 + 4 * self.n_jets)[:, None]

    def subset(self, keep: np.ndarray) -> Events:
        return Events(self.x[keep], self.n_jets[keep], self.pdg[keep], self.phi[keep], self.weight[keep], self.source)


def needed_columns(level: str, max_jets: int) -> list[str]:
    """Prepare-schema columns the representation is built from, for ``level``."""
    cols = [f"{level}_pass", f"{level}_n_jets"]
    for lep in ("l1", "l2"):
        cols += [f"{level}_{lep}_{k}" for k in ("pt", "eta", "phi", "pdgId")]
    for k in range(1, max_jets + 1):
        cols += [f"{level}_j{k}_{f}" for f in ("pt", "eta", "phi", "mass")]
    return cols


def read_columns(path: str | os.PathLike[str], level: str, max_jets: int,
                 selection: Mapping[str, Any] | None = None) -> dict[str, np.ndarray]:
    """Columns of :func:`needed_columns` (and ``weight``) from a prepared parquet file, or from an LHE
    file (parton level, run through the ``prepare`` selection ``selection`` with ``max_jets`` jets)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"training input {p} does not exist")
    cols = needed_columns(level, max_jets)
    if p.name.endswith((".lhe", ".lhe.gz", ".lhef")):
        return _lhe_columns(p, level, max_jets, selection)
    table = read_parquet_columns(p, cols, f"a prepared sample with level {level!r}", optional=["weight"])
    out = {c: table.column(c).to_numpy(zero_copy_only=False) for c in table.column_names}
    out.setdefault("weight", np.ones(table.num_rows))
    return out


def _lhe_columns(path: Path, level: str, max_jets: int, selection: Mapping[str, Any] | None) -> dict[str, np.ndarray]:
    from ..prepare.readers import iterate_events
    from ..prepare.selection import select_level

    if level != "parton":
        raise InputError(f"file {path}: LHE files hold parton level only; generate.level is {level!r}")
    if selection is None:
        raise InputError(f"file {path}: reading an LHE file needs the prepare selection")
    parts: list[dict[str, np.ndarray]] = []
    for batch in iterate_events(path, ["parton"], 10_000, "lhe"):
        _, feats = select_level(batch.levels["parton"], selection, max_jets, "parton")
        parts.append({**{c: feats[c] for c in needed_columns(level, max_jets)}, "weight": batch.weight})
    if not parts:
        raise InputError(f"file {path}: no events")
    return {c: np.concatenate([q[c] for q in parts]) for c in parts[0]}


def build_events(cols: Mapping[str, np.ndarray], level: str, multiplicities: Sequence[int], source: str) -> Events:
    """:class:`Events` from prepare-schema columns: events passing ``level`` with a jet count in
    ``multiplicities``. InputError naming ``source`` and the column on non-finite kinematics."""
    mult = sorted(int(m) for m in multiplicities)
    n_jets = np.asarray(cols[f"{level}_n_jets"]).astype(np.int64)
    keep = np.asarray(cols[f"{level}_pass"]).astype(bool) & np.isin(n_jets, mult)
    n_jets = n_jets[keep]
    c = {k: np.asarray(v)[keep] for k, v in cols.items()}
    phi1 = c[f"{level}_l1_phi"].astype(np.float64)
    x = np.full((len(n_jets), n_dims(mult[-1])), np.nan)
    for d, (obj, feat) in enumerate(layout(mult[-1])):
        has = n_jets >= (int(obj[1:]) if obj[0] == "j" else 0)
        name = f"{level}_{obj}_{'phi' if feat == 'dphi' else feat}"
        v = c[name].astype(np.float64)
        if feat == "dphi":
            v = wrap_phi(v - phi1)
        bad = has & ~np.isfinite(v)
        if bad.any():
            raise InputError(f"{source}: column {name!r} is not finite in {int(bad.sum())} selected events")
        x[has, d] = v[has]
    pdg = c[f"{level}_l1_pdgId"].astype(np.int32)
    if not np.isin(np.abs(pdg), list(LEPTON_MASS)).all():
        raise InputError(f"{source}: column {level}_l1_pdgId holds non-lepton codes {sorted(set(pdg) - set(LEPTON_MASS))[:5]}")
    return Events(x, n_jets, pdg, phi1, np.asarray(c["weight"], dtype=np.float64), source)


def load_events(path: str | os.PathLike[str], level: str, multiplicities: Sequence[int], max_jets: int,
                selection: Mapping[str, Any] | None = None) -> Events:
    """:func:`read_columns` + :func:`build_events`; InputError when no event is selected."""
    if max(multiplicities) > max_jets:
        raise InputError(f"generate: multiplicity {max(multiplicities)} exceeds the {max_jets} jets stored per event in {path}")
    ev = build_events(read_columns(path, level, max_jets, selection), level, multiplicities, str(path))
    if len(ev) == 0:
        raise InputError(f"{path}: no events pass level {level!r} with {list(multiplicities)} jets")
    return ev


def breit_wigner_logit(m: np.ndarray, mass: float, width: float, lo: float, hi: float) -> np.ndarray:
    """logit(F(m)), F the cumulative distribution of a Breit-Wigner in m^2 (``mass``, ``width`` in GeV)
    truncated to ``lo`` < m < ``hi`` (GeV; ``hi`` may be inf), i.e. of the phase-space mapping
    :class:`lhcchain.physics.phasespace.BreitWigner`. A resonance peak becomes a smooth bump the
    networks learn from few events: an exact Breit-Wigner maps to a standard logistic variable.
    m outside (lo, hi) maps to NaN."""
    s = torch.as_tensor(np.square(np.asarray(m, dtype=np.float64)))
    t = BreitWigner(mass, width).inverse(s, torch.tensor(float(lo) ** 2), torch.tensor(float(hi) ** 2)).numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((t > 0) & (t < 1), np.log(t) - np.log1p(-t), np.nan)


def breit_wigner_logit_inverse(c: np.ndarray, mass: float, width: float, lo: float, hi: float) -> np.ndarray:
    """The mass m (GeV) of :func:`breit_wigner_logit` value ``c``."""
    r = torch.as_tensor(0.5 * (1.0 + np.tanh(0.5 * np.asarray(c, dtype=np.float64))))
    s, _ = BreitWigner(mass, width).sample(r, torch.tensor(float(lo) ** 2), torch.tensor(float(hi) ** 2))
    return np.sqrt(s.numpy())


def massless_mll(pt1: np.ndarray, eta1: np.ndarray, pt2: np.ndarray, eta2: np.ndarray, dphi: np.ndarray) -> np.ndarray:
    """Dilepton mass (GeV) neglecting the lepton masses: sqrt(2 pt1 pt2 (cosh(eta1 - eta2) - cos dphi))."""
    return np.sqrt(2 * pt1 * pt2 * (np.cosh(eta1 - eta2) - np.cos(dphi)))


class Transform:
    """Representation <-> network space (module doc), fitted on training events.

    With ``dilepton_mass`` the network coordinate of l1's pt is the massless dilepton mass
    (:func:`massless_mll`, standardised) instead of ``log(pt - pt_min)``: given l2's pt and both
    leptons' angles this is a bijection, and it makes the narrow Z peak a one-dimensional feature
    the networks learn from a few thousand events. l2 keeps ``log(pt - pt_min)``, so the lepton
    threshold still holds by construction; l1's pt may come out below l2's, and sampling then swaps
    the leptons (the pt order is a labelling, not a cut).

    ``mll_peak`` = (mass, width) in GeV further maps that mass with :func:`breit_wigner_logit` on
    ``mll_range`` = (lo, hi) GeV, the ``selection``'s m_ll window widened by ``MLL_MARGIN`` (the
    network mass neglects lepton masses; sampling enforces the window itself). Without it the mass
    is standardised linearly. ``selection`` (prepare's keys) also gives ``pt_min`` and the eta limits:
    ``bound`` holds, per dimension, the limit of the atanh map (pi for dphi, eta_max for eta; 0: none).
    """

    def __init__(self, max_jets: int, selection: Mapping[str, Any] | None = None, dilepton_mass: bool = False,
                 mll_peak: Sequence[float] | None = None) -> None:
        sel = dict(selection or {})
        self.dims = layout(max_jets)

        def bound(obj: str, key: str) -> float:  # the selection's lepton or jet threshold; 0: none
            return float(sel.get(f"{'lepton' if obj[0] == 'l' else 'jet'}_{key}") or 0.0)

        self.pt_min = np.array([bound(o, "pt_min") if f == "pt" else 0.0 for o, f in self.dims])
        self.bound = np.array([np.pi if f == "dphi" else bound(o, "eta_max") if f == "eta" else 0.0 for o, f in self.dims])
        self.kind = [f for _, f in self.dims]
        self.dilepton_mass = bool(dilepton_mass)
        if self.dilepton_mass:
            self.kind[0] = "mll"
        if mll_peak is not None and not self.dilepton_mass:
            raise InputError("generate: mll_peak maps the dilepton-mass coordinate and needs dilepton_mass: true")
        if mll_peak is not None and not (len(mll_peak) == 2 and all(float(v) > 0 for v in mll_peak)):
            raise InputError(f"generate: mll_peak must be [mass, width] in GeV, both > 0, got {mll_peak}")
        self.mll_peak = None if mll_peak is None else (float(mll_peak[0]), float(mll_peak[1]))
        lo, hi = sel.get("mll_min"), sel.get("mll_max")
        self.mll_range = (0.0 if lo is None else float(lo) * (1.0 - MLL_MARGIN), np.inf if hi is None else float(hi) * (1.0 + MLL_MARGIN))
        self.mean = np.zeros(len(self.dims))
        self.std = np.ones(len(self.dims))
        self.constant = np.zeros(len(self.dims), bool)
        self.value = np.zeros(len(self.dims))

    def _raw(self, x: np.ndarray, source: str = "events") -> np.ndarray:
        z = np.array(x, dtype=np.float64)
        for d, kind in enumerate(self.kind[: z.shape[1]]):
            col = z[:, d]
            if kind == "pt":
                below = col <= self.pt_min[d]
                if below.any():
                    raise InputError(f"{source}: {self.dims[d][0]} pt <= pt_min = {self.pt_min[d]} GeV in {int(below.sum())} events")
                z[:, d] = np.log(col - self.pt_min[d])
            elif self.bound[d] > 0:
                z[:, d] = np.arctanh(np.clip(col / self.bound[d], -ATANH_EDGE, ATANH_EDGE))
            elif kind == "mass":
                z[:, d] = np.log(np.maximum(col, 0.0) + MASS_OFFSET)
            elif kind == "mll":
                z[:, d] = massless_mll(x[:, 0], x[:, 1], x[:, 2], x[:, 3], x[:, 4])
                if self.mll_peak is not None:
                    outside = ~((z[:, d] > self.mll_range[0]) & (z[:, d] < self.mll_range[1]))
                    if outside.any():
                        raise InputError(f"{source}: dilepton mass outside {self.mll_range} GeV (the selection's m_ll "
                                         f"window with margin) in {int(outside.sum())} events")
                    z[:, d] = breit_wigner_logit(z[:, d], *self.mll_peak, *self.mll_range)
        return z

    def fit(self, events: Events) -> Transform:
        """Per-dimension mean and standard deviation over the events where the dimension is present."""
        z = self._raw(events.x, events.source)
        for d in range(z.shape[1]):
            col = events.x[:, d]
            present = np.isfinite(col)
            if not present.any():
                continue
            zc = z[present, d]
            self.mean[d], std = zc.mean(), zc.std()
            if std < 1e-9 * max(1.0, abs(self.mean[d])):
                self.constant[d], self.value[d], self.std[d] = True, float(col[present][0]), 1.0
            else:
                self.std[d] = std
        return self

    def forward(self, x: np.ndarray, source: str = "events") -> np.ndarray:
        """Representation (N, D) -> standardised network inputs (NaN stays NaN)."""
        d = x.shape[1]
        z = (self._raw(x, source) - self.mean[:d]) / self.std[:d]
        z[:, self.constant[:d]] = np.where(np.isfinite(z[:, self.constant[:d]]), 0.0, np.nan)
        return z

    def inverse(self, z: np.ndarray) -> np.ndarray:
        """Network outputs (N, D) -> representation (GeV, rad); negative masses clipped to 0."""
        d = z.shape[1]
        u = np.asarray(z, dtype=np.float64) * self.std[:d] + self.mean[:d]
        x = np.empty_like(u)
        for i, kind in enumerate(self.kind[:d]):
            if kind == "pt":
                x[:, i] = self.pt_min[i] + np.exp(u[:, i])
            elif self.bound[i] > 0:
                x[:, i] = self.bound[i] * np.tanh(u[:, i])
            elif kind == "mass":
                x[:, i] = np.maximum(np.exp(u[:, i]) - MASS_OFFSET, 0.0)
            else:
                x[:, i] = u[:, i]
            if self.constant[i]:
                x[:, i] = self.value[i]
        if self.dilepton_mass and d > 4:
            mll = u[:, 0] if self.mll_peak is None else breit_wigner_logit_inverse(u[:, 0], *self.mll_peak, *self.mll_range)
            with np.errstate(divide="ignore"):
                x[:, 0] = mll**2 / (2 * x[:, 2] * (np.cosh(x[:, 1] - x[:, 3]) - np.cos(x[:, 4])))
        return x

    def state(self) -> dict[str, Any]:
        return {"n_dims": len(self.dims), "pt_min": self.pt_min.tolist(), "bound": self.bound.tolist(),
                "mean": self.mean.tolist(), "std": self.std.tolist(),
                "constant": self.constant.tolist(), "value": self.value.tolist(), "dilepton_mass": self.dilepton_mass,
                "mll_peak": self.mll_peak, "mll_range": list(self.mll_range)}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Transform:
        t = cls((int(state["n_dims"]) - 5) // 4, dilepton_mass=bool(state["dilepton_mass"]), mll_peak=state["mll_peak"])
        t.mll_range = tuple(float(v) for v in state["mll_range"])
        t.pt_min, t.bound, t.mean, t.std = (np.array(state[k], dtype=np.float64) for k in ("pt_min", "bound", "mean", "std"))
        t.constant, t.value = np.array(state["constant"], bool), np.array(state["value"], dtype=np.float64)
        return t


def to_columns(x: np.ndarray, n_jets: np.ndarray, pdg: np.ndarray, phi1: np.ndarray, level: str,
               max_jets: int) -> dict[str, np.ndarray]:
    """Prepare-schema columns ``{level}_*`` (kinematics, dilepton and dijet observables) of events in
    the representation; jets are written in decreasing pt, NaN-padded to ``max_jets``."""
    n = len(n_jets)
    out: dict[str, np.ndarray] = {f"{level}_n_leptons": np.full(n, 2, np.int16), f"{level}_n_jets": n_jets.astype(np.int16)}
    m_lep = lepton_mass(pdg)
    leptons = {"l1": (x[:, 0], x[:, 1], phi1, pdg), "l2": (x[:, 2], x[:, 3], wrap_phi(phi1 + x[:, 4]), -pdg)}
    for tag, (pt, eta, phi, pid) in leptons.items():
        for k, v in (("pt", pt), ("eta", eta), ("phi", phi)):
            out[f"{level}_{tag}_{k}"] = v.astype(np.float32)
        out[f"{level}_{tag}_pdgId"] = pid.astype(np.int32)
    p4 = {t: vector.array({"pt": pt, "eta": eta, "phi": phi, "mass": m_lep}) for t, (pt, eta, phi, _) in leptons.items()}
    ll = p4["l1"] + p4["l2"]
    for k, v in (("mll", ll.mass), ("ptll", ll.pt), ("yll", ll.rapidity), ("phill", ll.phi)):
        out[f"{level}_{k}"] = np.asarray(v, dtype=np.float32)
    jets = {f: np.full((n, max_jets), np.nan) for f in ("pt", "eta", "phi", "mass")}
    width = (x.shape[1] - 5) // 4
    for k in range(min(width, max_jets)):
        has = n_jets > k
        base = 5 + 4 * k
        jets["pt"][has, k], jets["eta"][has, k] = x[has, base], x[has, base + 1]
        jets["phi"][has, k], jets["mass"][has, k] = wrap_phi(phi1[has] + x[has, base + 2]), x[has, base + 3]
    order = np.argsort(-np.nan_to_num(jets["pt"], nan=-np.inf), axis=1, kind="stable")
    for f in jets:
        jets[f] = np.take_along_axis(jets[f], order, axis=1)
    for f in ("pt", "eta", "phi", "mass"):
        for k in range(max_jets):
            out[f"{level}_j{k + 1}_{f}"] = jets[f][:, k].astype(np.float32)
    out[f"{level}_ht"] = np.nansum(jets["pt"], axis=1).astype(np.float32)
    j = [vector.array({f: np.nan_to_num(jets[f][:, k]) for f in ("pt", "eta", "phi", "mass")}) for k in range(min(2, max_jets))]
    two = n_jets >= 2
    out[f"{level}_mjj"] = np.where(two, (j[0] + j[1]).mass, np.nan).astype(np.float32) if max_jets >= 2 else np.full(n, np.nan, np.float32)
    out[f"{level}_drjj"] = np.where(two, j[0].deltaR(j[1]), np.nan).astype(np.float32) if max_jets >= 2 else np.full(n, np.nan, np.float32)
    out[f"{level}_pass"] = np.ones(n, bool)
    return out


def delta_r_min(x: np.ndarray, n_jets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per event: smallest jet-jet and smallest jet-lepton Delta R (inf where there is no such pair)."""
    n = len(n_jets)
    jj, jl = np.full(n, np.inf), np.full(n, np.inf)
    width = (x.shape[1] - 5) // 4
    eta_l, dphi_l = np.stack([x[:, 1], x[:, 3]], 1), np.stack([np.zeros(n), x[:, 4]], 1)
    for a in range(width):
        ea, pa = x[:, 5 + 4 * a + 1], x[:, 5 + 4 * a + 2]
        has_a = n_jets > a
        dr_l = np.hypot(ea[:, None] - eta_l, wrap_phi(pa[:, None] - dphi_l)).min(1)
        jl = np.where(has_a, np.minimum(jl, dr_l), jl)
        for b in range(a + 1, width):
            eb, pb = x[:, 5 + 4 * b + 1], x[:, 5 + 4 * b + 2]
            dr = np.hypot(ea - eb, wrap_phi(pa - pb))
            jj = np.where(has_a & (n_jets > b), np.minimum(jj, dr), jj)
    return jj, jl


def lepton_flavours(events: Events, multiplicities: Sequence[int]) -> dict[int, dict[int, float]]:
    """Per multiplicity, the frequency of each leading-lepton ``pdgId`` in ``events``."""
    out: dict[int, dict[int, float]] = {}
    for m in multiplicities:
        codes, counts = np.unique(events.pdg[events.n_jets == m], return_counts=True)
        out[int(m)] = {int(c): float(k) / max(int(counts.sum()), 1) for c, k in zip(codes, counts)}
    return out



def dataset_info(metadata: str | os.PathLike[str]) -> dict[str, Any]:
    """``selection`` and ``max_jets`` of a prepared dataset, from its ``metadata.json``."""
    p = Path(metadata)
    try:
        meta = json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{p}: not a readable metadata.json of the prepare stage: {exc}") from exc
    for key in ("selection", "max_jets"):
        if key not in meta:
            raise InputError(f"{p}: key {key!r} is missing")
    return {"selection": dict(meta["selection"]), "max_jets": int(meta["max_jets"])}
