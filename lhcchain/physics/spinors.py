"""Massless spinors, spinor products and gluon polarisation vectors (batched torch).

Conventions (units GeV, metric (+,-,-,-), four-vectors ``(E, px, py, pz)`` in the last axis):

* A real massless momentum ``k`` has the bispinor ``k_{a adot} = k_mu sigma^mu = [[k0+k3, k1-i k2],
  [k1+i k2, k0-k3]]`` and factorises as ``k_{a adot} = lambda_a lambdatilde_adot``. :func:`spinors`
  picks the light-cone component ``k+ = k0+k3`` or ``k- = k0-k3`` of larger modulus (so momenta along
  the beam axis in either direction are fine) and sets, for ``|k+| >= |k-|``,
  ``lambda = (sqrt(k+), (k1+i k2)/sqrt(k+))``, ``lambdatilde = (sqrt(k+), (k1-i k2)/sqrt(k+))``, else
  ``lambda = ((k1-i k2)/sqrt(k-), sqrt(k-))``, ``lambdatilde = ((k1+i k2)/sqrt(k-), sqrt(k-))``.
  The square root of a negative light-cone component is ``i sqrt(|k+-|)``, so negative-energy
  momenta (crossed incoming legs) obey ``lambda(k) = i lambda(-k)``, ``lambdatilde(k) = i lambdatilde(-k)``
  and ``lambda lambdatilde = k.sigma`` holds for either sign of the energy.
* ``<ij> = lambda_i1 lambda_j2 - lambda_i2 lambda_j1`` and ``[ij] = lambdatilde_i2 lambdatilde_j1 -
  lambdatilde_i1 lambdatilde_j2``, so that ``<ij>[ji] = 2 k_i.k_j = s_ij`` and ``|<ij>|^2 = |[ij]|^2 = |s_ij|``.
* Polarisation vectors of an outgoing gluon of momentum ``k`` with reference momentum ``q`` (Dixon's
  conventions, hep-ph/9601359): ``eps_+^mu(k;q) = <q|gamma^mu|k] / (sqrt2 <qk>)`` and
  ``eps_-^mu(k;q) = <k|gamma^mu|q] / (sqrt2 [kq])`` with ``<a|gamma^mu|b] = 2 V^mu(lambda_a lambdatilde_b)``,
  where ``V(M)`` is the four-vector whose bispinor is ``M``. They satisfy ``eps.k = eps.q = 0``,
  ``eps_+.eps_- = -1``, ``eps_+.eps_+ = 0`` and ``eps_- = (eps_+)^*`` for real ``k`` and a real
  positive-energy ``q``. Changing ``q`` shifts ``eps`` by a multiple of ``k`` (gauge freedom).

Complex results are complex128 for float64 input and complex64 for float32 input, on the input's device.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .kinematics import minkowski_dot  # noqa: F401 (re-exported)


def spinors(k: Tensor) -> tuple[Tensor, Tensor]:
    """Spinors ``(lambda, lambdatilde)``, each of shape ``(..., 2)`` complex, of massless momenta ``k`` (..., 4).

    ``k`` may have negative energy (crossed legs); see the module docstring for the phase convention.
    """
    k0, k1, k2, k3 = k.unbind(-1)
    kp, km = k0 + k3, k0 - k3
    use_plus = kp.abs() >= km.abs()
    big = torch.where(use_plus, kp, km)
    root = big.abs().sqrt()
    zero = torch.zeros_like(root)
    sqrt_big = torch.complex(torch.where(big >= 0, root, zero), torch.where(big < 0, root, zero))
    perp = torch.complex(k1, k2)  # k1 + i k2
    perp_bar = torch.complex(k1, -k2)  # k1 - i k2
    lam = torch.stack(
        [torch.where(use_plus, sqrt_big, perp_bar / sqrt_big), torch.where(use_plus, perp / sqrt_big, sqrt_big)], -1
    )
    lamt = torch.stack(
        [torch.where(use_plus, sqrt_big, perp / sqrt_big), torch.where(use_plus, perp_bar / sqrt_big, sqrt_big)], -1
    )
    return lam, lamt


def angle(lam_i: Tensor, lam_j: Tensor) -> Tensor:
    """Angle bracket ``<ij> = lambda_i1 lambda_j2 - lambda_i2 lambda_j1`` of spinors of shape (..., 2)."""
    return lam_i[..., 0] * lam_j[..., 1] - lam_i[..., 1] * lam_j[..., 0]


def square(lamt_i: Tensor, lamt_j: Tensor) -> Tensor:
    """Square bracket ``[ij] = lambdatilde_i2 lambdatilde_j1 - lambdatilde_i1 lambdatilde_j2``; ``<ij>[ji] = s_ij``."""
    return lamt_i[..., 1] * lamt_j[..., 0] - lamt_i[..., 0] * lamt_j[..., 1]


def spinor_products(momenta: Tensor) -> tuple[Tensor, Tensor]:
    """All angle and square brackets ``(<ij>, [ij])`` of massless momenta (batch, n, 4), each (batch, n, n)."""
    lam, lamt = spinors(momenta)
    return angle(lam[:, :, None], lam[:, None, :]), square(lamt[:, :, None], lamt[:, None, :])


def _vector(lam: Tensor, lamt: Tensor) -> Tensor:
    """Complex four-vector ``V^mu`` (contravariant, shape (..., 4)) whose bispinor is ``lam_a lamt_adot``."""
    m00, m01 = lam[..., 0] * lamt[..., 0], lam[..., 0] * lamt[..., 1]
    m10, m11 = lam[..., 1] * lamt[..., 0], lam[..., 1] * lamt[..., 1]
    return 0.5 * torch.stack([m00 + m11, m01 + m10, 1j * (m01 - m10), m00 - m11], -1)


def polarisation_vectors(k: Tensor, q: Tensor) -> tuple[Tensor, Tensor]:
    """Polarisation vectors ``(eps_+^mu(k;q), eps_-^mu(k;q))`` of outgoing gluons, each complex (..., 4).

    ``k``: gluon momenta (..., 4), massless, either sign of energy; ``q``: massless reference momenta
    of the same shape, not parallel to ``k``. Contravariant components; see the module docstring.
    """
    lam_k, lamt_k = spinors(k)
    lam_q, lamt_q = spinors(q)
    eps_plus = math.sqrt(2.0) * _vector(lam_q, lamt_k) / angle(lam_q, lam_k)[..., None]
    eps_minus = math.sqrt(2.0) * _vector(lam_k, lamt_q) / square(lamt_k, lamt_q)[..., None]
    return eps_plus, eps_minus
