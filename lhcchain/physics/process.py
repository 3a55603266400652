"""The :class:`Process` interface: matrix element, PDFs, cuts and phase-space channels of one process.

A process turns points ``r`` of the unit hypercube into weighted events,
``E_r[integrand(r, c)] = sigma`` (pb) for every channel ``c``, and combines its channels with the
single-diagram-enhanced prior weights ``alpha_c`` that a MadNIS integrand returns.

Units and conventions (those of :mod:`lhcchain.physics`, plus):

* Cross-sections and integrand weights in pb (``GEV2_TO_PB`` converts GeV^-2).
* Hadronic processes: beams of ``sqrt_s / 2`` each, beam 1 along +z; momenta in the lab frame,
  the partons ``x1 P1`` and ``x2 P2`` first. Parton densities are number densities
  ``f(x, muF^2) = xf(x, muF^2) / x`` of one :class:`~lhcchain.physics.pdf.GridPDF`; ``x1``, ``x2``
  are passed along or read back from lab-frame incoming momenta (``x = 2 E / sqrt_s``). Negative
  grid values (NNPDF3.1 LO has a few at x > 0.8, ~1e-6 of a cross-section) are set to 0, so
  weights are never negative. The integrand evaluates ``|M|^2`` on the partonic centre-of-mass
  momenta (float32 loses ``E - |pz|`` of very forward particles in the lab frame).
* Partonic processes (``hadronic = False``): a fixed partonic ``sqrt_s`` in the centre-of-mass
  frame, no PDFs (luminosity 1).
* A process is a list of :class:`Subprocess` (initial PDG ids, final PDG ids, final-state
  symmetry factor ``S``). :meth:`Process.subprocess_matrix_elements` gives the bare ``|M_k|^2``
  (package conventions: spin/colour averaged, no symmetry factor); :meth:`Process.matrix_element`
  gives the sum the integrand integrates,

      ``M(p) = sum_k S_k L_k(p) |M_k|^2(p)``,  ``L_k = f_(a_k)(x1, muF_k^2) f_(b_k)(x2, muF_k^2)``

  (``L_k = 1`` for partonic processes), computed once per :class:`SubprocessGroup` of
  subprocesses whose ``|M|^2`` agree up to a constant factor.
* The integrand of channel c at ``r``: ``M(p) * w_c(r) / (2 s_hat) * GEV2_TO_PB`` if the event
  passes :meth:`Process.cuts`, else exactly 0; ``w_c`` is the channel's phase-space weight
  (w.r.t. ``dx1 dx2 dPhi_n`` for hadronic, ``dPhi_n`` for partonic processes; see
  :mod:`lhcchain.physics.phasespace`) and ``s_hat = (p_1 + p_2)^2``. Points a mapping cannot produce
  and points outside the cuts have weight 0 (never NaN) and finite momenta. Cuts are applied to
  the lab-frame momenta.
* dtype and device: a process is built for one dtype (float64 or float32) and device; :meth:`integrand`
  converts ``r`` to them, :meth:`madnis_function` converts its results back to the dtype and device
  of MadNIS's ``x``. :meth:`matrix_element` and :meth:`cuts` follow their input.

MadNIS: ``Integrand(process.madnis_function, input_dim=process.n_random,
channel_count=process.n_channels, has_channel_weight_prior=True)`` (or :meth:`Process.madnis_integrand`).
MadNIS multiplies ``f`` of a point drawn in channel c by its channel weight ``alpha_c`` (the prior,
optionally refined by its network), so ``f`` here is the full single-channel integrand and
``sum_c E_c[alpha_c f_c] = sigma``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from ..errors import InputError
from . import kinematics
from .kinematics import (  # re-exported: part of this module's public names
    azimuth,
    delta_phi,
    minkowski_square,
    pair_mass,
    pseudorapidity,
    rapidity,
    transverse_momentum,
)
from .pdf import PARTONS, GridPDF
from .phasespace import Channel, HadronicMapping, channel_weights, shared_n_random

__all__ = [
    "GEV2_TO_PB",
    "MappedPoint",
    "MatrixElement",
    "Subprocess",
    "SubprocessGroup",
    "Process",
    "flavour_column",
    # re-exported from .kinematics
    *(name for name in kinematics.__all__ if name not in ("complex_dtype", "minkowski_dot")),
]

#: 1 GeV^-2 in pb.
GEV2_TO_PB = 0.3893793721e9

_PARTON_COLUMN = {pid: i for i, pid in enumerate(PARTONS)}
_N_PARTONS = len(PARTONS)


# ----------------------------------------------------------------------------- kinematics


def flavour_column(pid: int) -> int:
    """Column of PDG id ``pid`` in :data:`~lhcchain.physics.pdf.PARTONS` (InputError if absent)."""
    key = 21 if pid == 0 else int(pid)
    if key not in _PARTON_COLUMN:
        raise InputError(f"PDG id {pid} is not a parton of the PDF ({', '.join(map(str, PARTONS))})")
    return _PARTON_COLUMN[key]


# ----------------------------------------------------------------------------- subprocesses


MatrixElement = Callable[[Tensor, Tensor, "Tensor | None", "Tensor | None"], Tensor]
"""``(lab, partonic, x1, x2) -> sum_k S_k L_k |M_k|^2`` (batch,): a replacement for
:meth:`Process.matrix_element` in :meth:`Process.integrand` (``x1``, ``x2`` None if partonic)."""


class MappedPoint(NamedTuple):
    """Output of :meth:`Process.map_point`."""

    momenta: Tensor
    """(batch, 2 + n_out, 4) in the lab frame (partonic processes: the centre-of-mass frame)."""
    partonic: Tensor
    """The same momenta in the partonic centre-of-mass frame."""
    weight: Tensor
    """(batch,) phase-space weight (w.r.t. ``dx1 dx2 dPhi_n`` or ``dPhi_n``)."""
    x1: Tensor | None
    x2: Tensor | None


@dataclass(frozen=True)
class Subprocess:
    """One partonic subprocess ``initial[0] initial[1] -> final``.

    ``initial``: PDG ids of the parton from beam 1 (+z) and from beam 2; ``final``: PDG ids of the
    outgoing particles in the order of the momenta; ``symmetry_factor``: the final-state
    identical-particle factor (``1/n!`` for n identical particles), applied by the integrand.
    """

    initial: tuple[int, int]
    final: tuple[int, ...]
    symmetry_factor: float = 1.0

    def __str__(self) -> str:
        return f"{self.initial[0]} {self.initial[1]} -> {' '.join(str(f) for f in self.final)}"


@dataclass(frozen=True)
class SubprocessGroup:
    """Subprocesses sharing one ``|M|^2`` up to constants: ``|M_k|^2 = factors[i] |M_rep|^2``.

    ``members``: indices into :attr:`Process.subprocesses`; ``scale``: index of the factorisation
    scale (column of :meth:`Process.factorisation_scales2`) the group's PDFs are evaluated at.
    """

    representative: Subprocess
    members: tuple[int, ...]
    factors: tuple[float, ...]
    scale: int = 0


# ----------------------------------------------------------------------------- process


class Process(ABC):
    """A scattering process: subprocesses, ``|M|^2``, PDFs, cuts and MadNIS channels (module doc).

    Subclasses set the attributes below in ``__init__`` (then call :meth:`_finish`) and implement
    :meth:`group_matrix_elements`, :meth:`subprocess_matrix_element` and :meth:`cuts`; hadronic
    ones also :meth:`factorisation_scales2`.
    """

    name: str
    """Registry name (see :func:`lhcchain.physics.processes.get_process`)."""
    hadronic: bool
    """True for pp collisions with PDFs, False for a fixed partonic energy."""
    sqrt_s: float
    """Collider energy (hadronic) or partonic ``sqrt(s_hat)`` (partonic), GeV."""
    n_out: int
    """Number of outgoing particles."""
    subprocesses: tuple[Subprocess, ...]
    groups: tuple[SubprocessGroup, ...]
    channels: tuple[Channel, ...]
    """Phase-space channels (mapping + un-normalised prior weight from the channel's propagators)."""
    pdf: GridPDF | None
    dtype: torch.dtype
    device: torch.device

    # ------------------------------------------------------------------ set-up

    def _finish(self) -> None:
        """Check the set-up and build the PDF weight matrices of the groups."""
        if self.dtype not in (torch.float32, torch.float64):
            raise InputError(f"process {self.name!r}: dtype must be torch.float32 or torch.float64, got {self.dtype}")
        if self.hadronic and self.pdf is None:
            raise InputError(f"process {self.name!r} is hadronic but has no PDF")
        self.n_random = shared_n_random(self.channels)
        covered = sorted(k for g in self.groups for k in g.members)
        if covered != list(range(len(self.subprocesses))):
            raise InputError(f"process {self.name!r}: the groups must cover every subprocess exactly once")
        if not self.hadronic:
            return
        n_scales = 1 + max(g.scale for g in self.groups)
        weights = torch.zeros(n_scales, _N_PARTONS * _N_PARTONS, len(self.groups), dtype=torch.float64)
        for gi, group in enumerate(self.groups):
            for k, factor in zip(group.members, group.factors):
                sub = self.subprocesses[k]
                a, b = (flavour_column(pid) for pid in sub.initial)
                weights[group.scale, a * _N_PARTONS + b, gi] += sub.symmetry_factor * factor
        self._group_pdf_weights = weights
        self._weight_cache: dict[tuple[torch.dtype, torch.device], Tensor] = {}

    @property
    def n_channels(self) -> int:
        return len(self.channels)

    @property
    def channel_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.channels)

    @property
    def symmetry_factors(self) -> Tensor:
        """Final-state symmetry factor of each subprocess, shape ``(n_subprocesses,)`` (process dtype)."""
        return torch.tensor([s.symmetry_factor for s in self.subprocesses], dtype=self.dtype, device=self.device)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, sqrt_s={self.sqrt_s}, subprocesses={len(self.subprocesses)}, "
            f"channels={list(self.channel_names)}, dtype={self.dtype}, device={self.device})"
        )

    # ------------------------------------------------------------------ to implement

    @abstractmethod
    def group_matrix_elements(self, momenta: Tensor) -> Tensor:
        """Bare ``|M|^2`` of each group's representative, shape ``(batch, n_groups)``."""

    @abstractmethod
    def subprocess_matrix_element(self, momenta: Tensor, index: int) -> Tensor:
        """Bare ``|M|^2`` of subprocess ``index`` evaluated directly (no grouping), shape ``(batch,)``."""

    @abstractmethod
    def cuts(self, momenta: Tensor) -> Tensor:
        """Boolean mask ``(batch,)``: True where the event passes the process's cuts."""

    def factorisation_scales2(self, momenta: Tensor) -> Tensor:
        """``muF^2`` (GeV^2) of each scale choice, shape ``(batch, n_scales)``; hadronic processes override."""
        raise NotImplementedError(f"process {self.name!r} has no PDFs")

    # ------------------------------------------------------------------ matrix elements

    def momentum_fractions(self, momenta: Tensor) -> tuple[Tensor, Tensor]:
        """``x1, x2`` (batch,) of the incoming partons of lab-frame ``momenta`` (``2 E / sqrt_s``)."""
        return 2.0 * momenta[:, 0, 0] / self.sqrt_s, 2.0 * momenta[:, 1, 0] / self.sqrt_s

    def _fractions(self, momenta: Tensor, x1: Tensor | None, x2: Tensor | None) -> tuple[Tensor, Tensor]:
        if (x1 is None) != (x2 is None):
            raise InputError(f"process {self.name!r}: give both x1 and x2 or neither")
        if x1 is None:
            return self.momentum_fractions(momenta)
        return x1.to(momenta.dtype), x2.to(momenta.dtype)

    def _densities(self, x: Tensor, q2: Tensor) -> Tensor:
        """Number densities ``f(x, Q2)`` of all :data:`PARTONS`, shape ``(..., 11)``, clipped at 0."""
        safe = torch.clamp(x, min=torch.finfo(x.dtype).tiny)
        return torch.clamp(self.pdf.xfxQ2_all(safe, q2), min=0.0) / safe.unsqueeze(-1)

    def group_weights(self, momenta: Tensor, x1: Tensor | None = None, x2: Tensor | None = None) -> Tensor:
        """``sum_(k in g) S_k factor_k L_k`` per group, shape ``(batch, n_groups)`` (``L_k = 1`` if partonic).

        ``x1``, ``x2``: momentum fractions; default read from lab-frame ``momenta``. Given them,
        ``momenta`` may be in any frame boosted along z (e.g. the partonic centre-of-mass frame).
        """
        batch = momenta.shape[0]
        if not self.hadronic:
            sym = [s.symmetry_factor for s in self.subprocesses]
            sums = [sum(sym[k] * f for k, f in zip(g.members, g.factors)) for g in self.groups]
            w = torch.tensor(sums, dtype=momenta.dtype, device=momenta.device)
            return w.expand(batch, -1)
        key = (momenta.dtype, momenta.device)
        if key not in self._weight_cache:
            self._weight_cache[key] = self._group_pdf_weights.to(dtype=momenta.dtype, device=momenta.device)
        weights = self._weight_cache[key]
        x1, x2 = self._fractions(momenta, x1, x2)
        q2 = self.factorisation_scales2(momenta)
        out = momenta.new_zeros(batch, len(self.groups))
        for scale in range(weights.shape[0]):
            f1 = self._densities(x1, q2[:, scale])
            f2 = self._densities(x2, q2[:, scale])
            lum = (f1.unsqueeze(-1) * f2.unsqueeze(-2)).reshape(batch, -1)
            out = out + lum @ weights[scale]
        return out

    def matrix_element(self, momenta: Tensor, x1: Tensor | None = None, x2: Tensor | None = None) -> Tensor:
        """``sum_k S_k L_k |M_k|^2`` (module doc), shape ``(batch,)``: the PDF- and symmetry-weighted
        sum that the integrand integrates; for a partonic process ``S |M|^2``.

        Hadronic: ``x1``, ``x2`` default to ``2 E / sqrt_s`` of lab-frame ``momenta``; passing them
        allows ``momenta`` in the partonic centre-of-mass frame, which keeps float32 accurate for
        very forward particles (the integrand does this).
        """
        self._check_momenta(momenta)
        return (self.group_weights(momenta, x1, x2) * self.group_matrix_elements(momenta)).sum(-1)

    def subprocess_matrix_elements(self, momenta: Tensor) -> Tensor:
        """Bare ``|M_k|^2`` of every subprocess, evaluated one by one: shape ``(batch, n_subprocesses)``.

        Slow for processes with many subprocesses; meant for inspection and tests.
        """
        self._check_momenta(momenta)
        return torch.stack([self.subprocess_matrix_element(momenta, k) for k in range(len(self.subprocesses))], -1)

    def parton_luminosities(self, momenta: Tensor, x1: Tensor | None = None, x2: Tensor | None = None) -> Tensor:
        """``L_k = f_a(x1, muF_k^2) f_b(x2, muF_k^2)`` of every subprocess, shape ``(batch, n_subprocesses)``
        (ones for a partonic process); ``x1``, ``x2`` as in :meth:`matrix_element`."""
        self._check_momenta(momenta)
        n = len(self.subprocesses)
        if not self.hadronic:
            return momenta.new_ones(momenta.shape[0], n)
        x1, x2 = self._fractions(momenta, x1, x2)
        q2 = self.factorisation_scales2(momenta)
        scale_of = {k: g.scale for g in self.groups for k in g.members}
        out = []
        for k, sub in enumerate(self.subprocesses):
            f1 = self._densities(x1, q2[:, scale_of[k]])[:, flavour_column(sub.initial[0])]
            f2 = self._densities(x2, q2[:, scale_of[k]])[:, flavour_column(sub.initial[1])]
            out.append(f1 * f2)
        return torch.stack(out, -1)

    def _check_momenta(self, momenta: Tensor) -> None:
        if momenta.ndim != 3 or momenta.shape[1:] != (2 + self.n_out, 4) or not momenta.is_floating_point():
            raise InputError(
                f"process {self.name!r} expects float momenta of shape (batch, {2 + self.n_out}, 4), "
                f"got {tuple(momenta.shape)} {momenta.dtype}"
            )

    # ------------------------------------------------------------------ integrand

    def channel_index(self, channel: int | str) -> int:
        """Index of ``channel`` given by index or name; InputError naming the valid ones otherwise."""
        names = self.channel_names
        if isinstance(channel, str):
            if channel not in names:
                raise InputError(f"process {self.name!r} has no channel {channel!r}; channels: {', '.join(names)}")
            return names.index(channel)
        if not 0 <= int(channel) < len(names):
            raise InputError(f"process {self.name!r}: channel index {channel} out of range 0..{len(names) - 1}")
        return int(channel)

    def channel_weights(self, momenta: Tensor) -> Tensor:
        """Normalised prior channel weights alpha, shape ``(batch, n_channels)`` (rows sum to 1).

        Rows where a prior is not finite (degenerate momenta of zero-weight points, e.g. s_hat = 0)
        are uniform, so alpha is never NaN.
        """
        alpha = channel_weights(self.channels, momenta)
        ok = torch.isfinite(alpha).all(-1, keepdim=True)
        return torch.where(ok, alpha, torch.full_like(alpha, 1.0 / self.n_channels))

    def map_point(self, r: Tensor, channel: int | str = 0) -> MappedPoint:
        """Phase-space point of ``r`` (batch, n_random) in ``channel``: lab-frame and partonic
        centre-of-mass momenta, the phase-space weight and ``x1``, ``x2`` (None if partonic).

        ``r`` is moved to the process's dtype and device.
        """
        mapping = self.channels[self.channel_index(channel)].mapping
        r = r.to(dtype=self.dtype, device=self.device)
        if r.ndim != 2 or r.shape[1] != self.n_random:
            raise InputError(f"process {self.name!r}: r must have shape (batch, {self.n_random}), got {tuple(r.shape)}")
        if isinstance(mapping, HadronicMapping):
            point = mapping.map(r)
            return MappedPoint(point.momenta, point.partonic, point.weight, point.x1, point.x2)
        partonic, weight = mapping.map(r)
        return MappedPoint(partonic, partonic, weight, None, None)

    def integrand(
        self, r: Tensor, channel: int | str = 0, matrix_element: MatrixElement | None = None
    ) -> tuple[Tensor, Tensor]:
        """Weight (pb) and lab-frame momenta of the points ``r`` (batch, n_random) mapped by ``channel``.

        ``E_r[weight] = sigma`` (pb) for every channel; ``r`` is moved to the process's dtype and
        device. Returns ``(weight (batch,), momenta (batch, 2 + n_out, 4))``; the weight is 0 outside
        the cuts and where the mapping cannot produce the point. The matrix element is evaluated
        on the partonic centre-of-mass momenta (see :meth:`map_point`).

        ``matrix_element``: a replacement for :meth:`matrix_element` (e.g. an amplitude surrogate),
        called as ``matrix_element(lab, partonic, x1, x2)`` on the points inside the cuts. A
        non-finite or negative value is passed through, for the caller to diagnose.
        """
        point = self.map_point(r, channel)
        momenta, ps_weight = point.momenta, point.weight
        finite = torch.isfinite(momenta).all(-1).all(-1) & torch.isfinite(point.partonic).all(-1).all(-1)
        finite = finite & torch.isfinite(ps_weight)
        momenta = torch.where(finite[:, None, None], momenta, torch.zeros_like(momenta))
        keep = finite & (ps_weight > 0)
        keep = keep & self.cuts(momenta)
        weight = torch.zeros_like(ps_weight)
        index = keep.nonzero().squeeze(-1)
        if index.numel():
            p = point.partonic[index]
            x1 = None if point.x1 is None else point.x1[index]
            x2 = None if point.x2 is None else point.x2[index]
            s_hat = minkowski_square(p[:, 0] + p[:, 1])
            me = self.matrix_element(p, x1, x2) if matrix_element is None else matrix_element(momenta[index], p, x1, x2)
            value = me * ps_weight[index] / (2.0 * s_hat) * GEV2_TO_PB
            weight = weight.index_put((index,), value)
        return weight, momenta

    def madnis_function(
        self, x: Tensor, channels: Tensor | int, matrix_element: MatrixElement | None = None
    ) -> tuple[Tensor, Tensor]:
        """MadNIS integrand ``(x, c) -> (f, alpha)``: ``x`` (n, n_random) in [0, 1], ``c`` (n,) channel
        indices; ``f`` (n,) the channel's integrand (pb), ``alpha`` (n, n_channels) the prior channel
        weights at the mapped point; both in the dtype and on the device of ``x``.
        ``matrix_element`` as in :meth:`integrand`."""
        n = x.shape[0]
        if not isinstance(channels, Tensor):
            channels = torch.as_tensor(channels, device=x.device).expand(n)
        f = torch.zeros(n, dtype=self.dtype, device=self.device)
        momenta = torch.zeros(n, 2 + self.n_out, 4, dtype=self.dtype, device=self.device)
        chan = channels.to(self.device)
        for c in range(self.n_channels):
            index = (chan == c).nonzero().squeeze(-1)
            if index.numel():
                w, p = self.integrand(x[index.to(x.device)], c, matrix_element)
                f[index], momenta[index] = w, p
        alpha = self.channel_weights(momenta)
        return f.to(dtype=x.dtype, device=x.device), alpha.to(dtype=x.dtype, device=x.device)

    def madnis_integrand(self):
        """A ``madnis.integrator.Integrand`` wrapping :meth:`madnis_function` (needs the madnis package)."""
        from madnis.integrator import Integrand

        return Integrand(
            self.madnis_function,
            input_dim=self.n_random,
            channel_count=self.n_channels,
            has_channel_weight_prior=True,
        )

    # ------------------------------------------------------------------ plain Monte Carlo

    def sample(self, n: int, channel: int | str = 0, seed: int | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """``n`` uniform points (a CPU generator seeded by ``seed``) through :meth:`integrand`:
        returns ``(r, weight, momenta)`` on the process's device."""
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        r = torch.rand(n, self.n_random, generator=gen, dtype=torch.float64).to(dtype=self.dtype, device=self.device)
        weight, momenta = self.integrand(r, channel)
        return r, weight, momenta

    def cross_section(
        self,
        n: int,
        channel: int | str | None = None,
        seed: int = 0,
        batch_size: int = 50_000,
        weight_function: Callable[[Tensor], Tensor] | None = None,
    ) -> tuple[float, float]:
        """Plain Monte Carlo estimate ``(sigma, standard error)`` in pb from ``n`` uniform points.

        ``channel=None``: multi-channel, ``n / n_channels`` points per channel, each weighted by
        its prior ``alpha_c`` (``sum_c E_c[alpha_c f_c]``); otherwise the single given channel.
        ``weight_function`` (momenta -> factor per event) turns it into the integral of another
        observable (e.g. an interference term divided by the matrix element).
        """
        chans = range(self.n_channels) if channel is None else [self.channel_index(channel)]
        per_channel = max(2, n // len(chans))
        total, variance = 0.0, 0.0
        for i, c in enumerate(chans):
            values = []
            done = 0
            while done < per_channel:
                m = min(batch_size, per_channel - done)
                _, w, p = self.sample(m, c, seed=seed * 1_000_003 + 7919 * i + done)
                if channel is None and self.n_channels > 1:
                    w = w * self.channel_weights(p)[:, c]
                if weight_function is not None:
                    w = torch.where(w != 0, w * weight_function(p), w)
                values.append(w.to(torch.float64).cpu())
                done += m
            v = torch.cat(values)
            total += v.mean().item()
            variance += v.var().item() / v.numel()
        return total, math.sqrt(variance)

