"""Surrogate-accelerated unweighting (two-stage rejection with an amplitude surrogate).

With ``w_s`` the weight of a point computed with the surrogate ``|M|^2`` (:mod:`lhcchain.amplitudes`)
instead of the exact one and ``w`` the exact weight:

1. accept with probability ``min(1, w_s / w_s,max)``;
2. evaluate the exact ``|M|^2`` of the survivors only; with ``u = (w / w_s) max(1, w_s / w_s,max)``
   (the survivor's exact weight in units of ``w_s,max``), accept with probability ``min(1, u / u_max)``.

The accepted events follow the exact distribution up to the capped overweights (``u > u_max`` in
stage 2, ``w_s > w_s,max`` in stage 1 is carried exactly through ``u``). ``w_s,max`` and ``u_max``
are truncated maxima (:func:`lhcchain.madnis.weights.truncated_maximum`) of a calibration sample.
The cross-section ``mean(1_accepted1 u) w_s,max`` over all stage-1 calls is unbiased.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..amplitudes.surrogate import Surrogate
from ..errors import InputError
from ..physics.process import MatrixElement, Process


def surrogate_matrix_element(process: Process, surrogate: Surrogate) -> MatrixElement:
    """The surrogate as a replacement of ``process.matrix_element`` in its integrand.

    A ``bare`` surrogate (one subprocess's ``|M|^2``) is multiplied by that subprocess's symmetry
    factor and parton luminosity; a ``weighted`` one already is the PDF-weighted sum.
    """
    if surrogate.n_legs != 2 + process.n_out:
        raise InputError(f"surrogate for {surrogate.process!r} has {surrogate.n_legs} legs, process {process.name!r} "
                         f"has {2 + process.n_out}")
    if surrogate.amplitude_kind == "weighted":
        return lambda lab, partonic, x1, x2: surrogate(lab)[0]
    if surrogate.amplitude_kind != "bare" or len(process.subprocesses) != 1:
        raise InputError(f"surrogate kind {surrogate.amplitude_kind!r} cannot replace the matrix element of "
                         f"{process.name!r} ({len(process.subprocesses)} subprocesses)")
    factor = process.subprocesses[0].symmetry_factor

    def me(lab: Tensor, partonic: Tensor, x1: Tensor | None, x2: Tensor | None) -> Tensor:
        value = factor * surrogate(lab)[0]
        if process.hadronic:
            value = value * process.parton_luminosities(partonic, x1, x2)[:, 0]
        return value

    return me


def stage_two_ratio(ratio: Tensor, surrogate_weights: Tensor, w_s_max: float) -> Tensor:
    """``u = (w / w_s) max(1, w_s / w_s,max)`` of stage-1 survivors (module doc), from the ratio
    ``w / w_s`` (= exact / surrogate integrand at the same point) and the weights ``w_s``."""
    return ratio * torch.clamp(surrogate_weights / w_s_max, min=1.0)
