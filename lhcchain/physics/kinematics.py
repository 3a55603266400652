"""Four-vector kinematics on torch tensors, shared by the physics core.

Momenta are ``(..., 4)`` tensors ``(E, px, py, pz)`` in GeV, metric (+,-,-,-); every function works
over the last axis and broadcasts over the leading ones, on any dtype and device.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "complex_dtype",
    "minkowski_dot",
    "minkowski_square",
    "transverse_momentum",
    "pseudorapidity",
    "rapidity",
    "azimuth",
    "delta_phi",
    "pair_mass",
]


def complex_dtype(dtype: torch.dtype) -> torch.dtype:
    """complex128 for float64, complex64 for float32 (a complex dtype is returned unchanged)."""
    if dtype.is_complex:
        return dtype
    return torch.complex128 if dtype == torch.float64 else torch.complex64


def minkowski_dot(a: Tensor, b: Tensor) -> Tensor:
    """``a.b = a0 b0 - a_vec.b_vec`` over the last axis (no complex conjugation)."""
    return a[..., 0] * b[..., 0] - (a[..., 1:] * b[..., 1:]).sum(-1)


def minkowski_square(p: Tensor) -> Tensor:
    """``p.p`` (+,-,-,-) over the last axis, GeV^2."""
    return p[..., 0] ** 2 - (p[..., 1:] ** 2).sum(-1)


def transverse_momentum(p: Tensor) -> Tensor:
    """``sqrt(px^2 + py^2)`` (GeV)."""
    return torch.sqrt(p[..., 1] ** 2 + p[..., 2] ** 2)


def pseudorapidity(p: Tensor) -> Tensor:
    """``asinh(pz / pT)``; +-inf along the beam (never NaN)."""
    pt = transverse_momentum(p)
    has_pt = pt > 0
    eta = torch.asinh(p[..., 3] / torch.where(has_pt, pt, torch.ones_like(pt)))
    return torch.where(has_pt, eta, torch.copysign(torch.full_like(pt, math.inf), p[..., 3]))


def rapidity(p: Tensor) -> Tensor:
    """``ln((E + pz) / (E - pz)) / 2``; +-inf along the beam (never NaN for E >= |pz|)."""
    plus = torch.clamp(p[..., 0] + p[..., 3], min=0.0)
    minus = torch.clamp(p[..., 0] - p[..., 3], min=0.0)
    return 0.5 * (torch.log(plus) - torch.log(minus)).nan_to_num(nan=0.0)


def azimuth(p: Tensor) -> Tensor:
    """``atan2(py, px)`` in (-pi, pi]."""
    return torch.atan2(p[..., 2], p[..., 1])


def delta_phi(phi1: Tensor, phi2: Tensor) -> Tensor:
    """``phi1 - phi2`` wrapped into [-pi, pi)."""
    return torch.remainder(phi1 - phi2 + math.pi, 2.0 * math.pi) - math.pi


def pair_mass(p1: Tensor, p2: Tensor) -> Tensor:
    """Invariant mass of ``p1 + p2`` (GeV), 0 where the square is negative by round-off."""
    return torch.sqrt(torch.clamp(minkowski_square(p1 + p2), min=0.0))
