"""Leading-colour flows for events of the physics-core processes, as written to LHE files.

Each leg gets ``(colour, anticolour)`` tags (0 = none, lines numbered from 501), in the LHE convention:
an incoming quark and an outgoing quark carry a colour, antiquarks an anticolour, and an incoming
gluon's tags are those of the crossed outgoing gluon swapped.

* all gluons (``gg -> n g``): the colour ordering is drawn with probability proportional to its
  helicity-summed ``|A(sigma)|^2`` among the leading-colour orderings (the standard choice of
  matrix-element generators); adjacent gluons of the ordering share a line.
* quark lines only: Drell-Yan's ``q qbar`` annihilation line, or WBF's two quark lines through a
  colour-singlet t-channel exchange (:func:`wbf_lines`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..errors import InputError
from .gluons import _leading_orderings, gluon_amplitudes
from .electroweak import ElectroweakParameters
from .process import Process, minkowski_square
from .wbf import wbf_topologies

FIRST_LINE = 501
GLUON = 21


def _is_quark(pdg: int) -> bool:
    return 1 <= abs(pdg) <= 6


def gluon_orderings(momenta: Tensor, rng: np.random.Generator) -> list[tuple[int, ...]]:
    """A leading-colour ordering per event of ``g g -> n g`` ``momenta`` (batch, n, 4), drawn with
    probability proportional to its helicity-summed squared colour-ordered amplitude."""
    n = momenta.shape[1]
    orderings = _leading_orderings(n)
    k = torch.cat([-momenta[:, :2], momenta[:, 2:]], 1).to(torch.float64)
    amps = gluon_amplitudes(k, orderings)  # (batch, helicities, orderings)
    weights = (amps.abs() ** 2).sum(1).cpu().numpy()
    weights = weights / weights.sum(1, keepdims=True)
    choice = (rng.random(len(weights))[:, None] > np.cumsum(weights, 1)).sum(1)
    return [orderings[min(int(c), len(orderings) - 1)] for c in choice]


def _ordering_tags(ordering: tuple[int, ...]) -> np.ndarray:
    n = len(ordering)
    tags = np.zeros((n, 2), dtype=np.int64)
    for pos, leg in enumerate(ordering):
        colour, anticolour = FIRST_LINE + pos, FIRST_LINE + (pos - 1) % n
        tags[leg] = (anticolour, colour) if leg < 2 else (colour, anticolour)
    return tags


def wbf_lines(flavours: tuple[int, ...], momenta: Tensor, ew: ElectroweakParameters) -> list[tuple[int, int]]:
    """Quark lines of a WBF event (``flavours``: the four quarks, then the Higgs; ``momenta`` (legs, 4)):
    ``1 -> 3, 2 -> 4`` or ``1 -> 4, 2 -> 3``, whichever t-channel pair
    has the larger ``|1 / ((t_a - M_W^2)(t_b - M_W^2))|`` (t in GeV^2)."""
    p = momenta.to(torch.float64)

    def propagators(o1: int, o2: int) -> float:
        t1 = float(minkowski_square(p[0] - p[o1]))
        t2 = float(minkowski_square(p[1] - p[o2]))
        return abs(1.0 / ((t1 - ew.mw**2) * (t2 - ew.mw**2)))

    tops = wbf_topologies(flavours[:4], ew)
    if not tops:
        raise InputError(f"no WBF topology connects flavours {flavours}")
    _, o1, o2, _ = max(tops, key=lambda t: propagators(t[1], t[2]))
    return [(0, o1), (1, o2)]


def quark_line_tags(flavours: tuple[int, ...], lines: list[tuple[int, int]]) -> np.ndarray:
    """``(colour, anticolour)`` of every leg for quark ``lines`` (pairs of leg indices, 0 and 1 incoming)."""
    tags = np.zeros((len(flavours), 2), dtype=np.int64)
    for i, (a, b) in enumerate(lines):
        for leg in (a, b):
            if not _is_quark(flavours[leg]):
                raise InputError(f"leg {leg} (PDG {flavours[leg]}) of a colour line is not a quark")
            tags[leg, 0 if flavours[leg] > 0 else 1] = FIRST_LINE + i
    return tags


def colour_tags(process: Process, flavours: list[tuple[int, ...]], momenta: Tensor,
                rng: np.random.Generator) -> np.ndarray:
    """``(batch, legs, 2)`` colour tags of events with PDG ``flavours`` (per event, legs in momentum
    order) and lab-frame ``momenta`` (batch, legs, 4), GeV."""
    out = np.zeros((len(flavours), momenta.shape[1], 2), dtype=np.int64)
    gluonic = [i for i, fl in enumerate(flavours) if all(f == GLUON for f in fl)]
    skip = set(gluonic)
    if gluonic:
        for i, ordering in zip(gluonic, gluon_orderings(momenta[gluonic], rng)):
            out[i] = _ordering_tags(ordering)
    for i, fl in enumerate(flavours):
        if i in skip:
            continue
        coloured = [leg for leg, f in enumerate(fl) if f == GLUON or _is_quark(f)]
        if any(fl[leg] == GLUON for leg in coloured):
            raise InputError(f"process {process.name!r}: colour flows of {fl} (quarks and gluons) are not implemented")
        if coloured == [0, 1]:
            lines = [(0, 1)]
        elif process.name == "wbf_higgs":
            lines = wbf_lines(fl, momenta[i], process.ew)
        else:
            raise InputError(f"process {process.name!r}: no colour flow for flavours {fl}")
        out[i] = quark_line_tags(fl, lines)
    return out
