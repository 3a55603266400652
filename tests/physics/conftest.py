"""Shared helpers of the physics tests.

* ``single_thread`` (autouse): one torch intra-op thread per test module. The batched kernels here
  are small; extra threads only add overhead and contend on a busy machine.
* Four-vector helpers written independently of :mod:`lhcchain.physics` (so tests that check the
  package's kinematics do not reuse it): Minkowski square, boosts, rotations and a random Lorentz
  transformation. Momenta are ``(..., 4)`` tensors ``(E, px, py, pz)``, metric (+,-,-,-).
"""

from __future__ import annotations

import math

import pytest
import torch

from ..conftest import torch_threads


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """One intra-op thread for the module, restored afterwards."""
    with torch_threads(1):
        yield


def msq(p: torch.Tensor) -> torch.Tensor:
    """Minkowski square ``p.p`` over the last axis."""
    return p[..., 0] ** 2 - (p[..., 1:] ** 2).sum(-1)


def boost(p: torch.Tensor, frame: torch.Tensor) -> torch.Tensor:
    """Boost ``p`` (batch, 4) from the rest frame of ``frame`` (batch, 4, timelike) to the frame
    where it has ``frame``."""
    mass = torch.sqrt(msq(frame))
    beta, gamma = frame[:, 1:] / frame[:, :1], frame[:, 0] / mass
    bp, b2 = (beta * p[:, 1:]).sum(-1), (beta * beta).sum(-1)
    coef = torch.where(b2 > 0, (gamma - 1) * bp / torch.where(b2 > 0, b2, 1.0), 0.0 * b2) + gamma * p[:, 0]
    return torch.cat([(gamma * (p[:, 0] + bp))[:, None], p[:, 1:] + coef[:, None] * beta], -1)


def boost_z(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Boost along z by rapidity ``y`` (broadcast against ``p[..., 0]``)."""
    ch, sh = torch.cosh(y), torch.sinh(y)
    e, pz = p[..., 0], p[..., 3]
    return torch.stack([ch * e + sh * pz, p[..., 1], p[..., 2], sh * e + ch * pz], -1)


def random_rotation(generator: torch.Generator, dtype=torch.float64) -> torch.Tensor:
    """A uniformly random proper rotation (3, 3)."""
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=generator, dtype=dtype))
    q = q * torch.sign(torch.diagonal(r))
    return q if torch.det(q) > 0 else -q


def rotate(p: torch.Tensor, rot: torch.Tensor) -> torch.Tensor:
    """Rotate the spatial parts of ``p`` (..., 4) by ``rot`` (3, 3)."""
    return torch.cat([p[..., :1], p[..., 1:] @ rot.T], -1)


def general_lorentz(seed: int) -> torch.Tensor:
    """A proper orthochronous Lorentz matrix (4, 4): a random rotation, then a boost with |beta| = 0.8
    in a random direction. Apply as ``p @ general_lorentz(seed).T``."""
    g = torch.Generator().manual_seed(seed)
    q = random_rotation(g)
    beta = 0.8 * torch.nn.functional.normalize(torch.randn(3, generator=g, dtype=torch.float64), dim=0)
    gamma = 1 / math.sqrt(1 - float(beta @ beta))
    lam = torch.eye(4, dtype=torch.float64)
    lam[0, 0], lam[0, 1:], lam[1:, 0] = gamma, gamma * beta, gamma * beta
    lam[1:, 1:] += (gamma - 1) * torch.outer(beta, beta) / float(beta @ beta)
    rot = torch.eye(4, dtype=torch.float64)
    rot[1:, 1:] = q
    return lam @ rot
