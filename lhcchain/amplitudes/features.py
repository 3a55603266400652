"""Lorentz invariants, the exact target amplitude of a process and the network inputs.

Invariants: for ``n`` legs, all ``s_ij = 2 k_i . k_j`` for ``i < j`` (pair order of
:func:`invariant_pairs`: (0,1), (0,2), ..., (n-2,n-1)), with every leg outgoing, the two incoming
momenta crossed, ``k = -p`` (so ``s_12 > 0``, ``s_1j < 0`` and ``s_ij > 0`` between final legs). For
massless legs ``s_ij = (k_i + k_j)^2``.

Network inputs (:class:`FeatureMap`):

* ``invariants`` (default): ``ln|s_ij| / GeV^2`` for every pair, plus ``ln x1, ln x2``
  (``x = 2 E / sqrt_s`` of the lab-frame incoming momenta) for hadronic processes, whose target
  depends on the parton densities; standardised with training-set means and standard deviations.
* ``momenta`` (baseline): the raw four-momenta ``(E, px, py, pz)`` of every leg, standardised.

``sort_legs`` (:class:`FeatureMap`, setting ``sort_legs``): before either input is computed, the
identical outgoing legs (:func:`identical_legs`) are put in a canonical order, by decreasing energy
in the frame of the momenta. The target is symmetric in those legs, so this maps every point into
one fundamental domain of the permutation group: the network is exactly permutation invariant and
sees ``m!`` fewer distinct configurations (a continuous, piecewise-smooth map).

Target: ``y = (ln A - mean) / std`` with training-set constants (:class:`TargetMap`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..errors import InputError

FEATURES = ("invariants", "momenta")


def invariant_pairs(n_legs: int) -> list[tuple[int, int]]:
    """Pairs ``(i, j)``, ``i < j``, in the order of the columns of :func:`invariants`."""
    return [(i, j) for i in range(n_legs) for j in range(i + 1, n_legs)]


def invariant_names(n_legs: int) -> list[str]:
    """``s_ij`` names with legs numbered from 1 (``s_12``, ``s_13``, ...), as stored in the HDF5 attrs."""
    return [f"s_{i + 1}{j + 1}" if n_legs < 10 else f"s_{i + 1}_{j + 1}" for i, j in invariant_pairs(n_legs)]


def invariants(momenta: Tensor) -> Tensor:
    """``s_ij = 2 k_i . k_j`` (GeV^2) with incoming momenta crossed (module doc), shape ``(batch, n(n-1)/2)``."""
    if momenta.ndim != 3 or momenta.shape[-1] != 4 or momenta.shape[1] < 3:
        raise InputError(f"momenta must have shape (batch, n_legs >= 3, 4), got {tuple(momenta.shape)}")
    sign = torch.ones(momenta.shape[1], dtype=momenta.dtype, device=momenta.device)
    sign[:2] = -1.0
    k = momenta * sign[:, None]
    metric = torch.tensor([1.0, -1.0, -1.0, -1.0], dtype=momenta.dtype, device=momenta.device)
    dots = torch.einsum("bia,bja,a->bij", k, k, metric)
    i, j = torch.triu_indices(momenta.shape[1], momenta.shape[1], 1, device=momenta.device)
    return 2.0 * dots[:, i, j]


def amplitude_kind(process) -> str:
    """``bare`` (single-subprocess processes: the bare ``|M|^2`` of the physics core, no symmetry
    factor, no PDFs) or ``weighted`` (several subprocesses: ``Process.matrix_element``, the
    symmetry- and PDF-weighted sum ``sum_k S_k L_k |M_k|^2`` that the integrand integrates)."""
    return "bare" if len(process.subprocesses) == 1 else "weighted"


def exact_amplitude(process, momenta: Tensor, kind: str | None = None) -> Tensor:
    """The exact target ``A(p)`` of ``process`` (see :func:`amplitude_kind`) on lab-frame ``momenta``."""
    kind = kind or amplitude_kind(process)
    if kind == "bare":
        return process.subprocess_matrix_element(momenta, 0)
    if kind == "weighted":
        return process.matrix_element(momenta)
    raise InputError(f"amplitude kind must be 'bare' or 'weighted', got {kind!r}")


def identical_legs(process) -> list[int]:
    """Indices of the largest group (at least 2) of outgoing legs with the same PDG id in every
    subprocess: the legs a deep-sets network is symmetric in (gg -> n g: all outgoing gluons)."""
    subs = process.subprocesses
    groups: dict[int, list[int]] = {}
    for leg in range(process.n_out):
        ids = {s.final[leg] for s in subs}
        if len(ids) == 1:
            groups.setdefault(ids.pop(), []).append(2 + leg)
    best = max(groups.values(), key=len, default=[])
    return best if len(best) >= 2 else []


@dataclass
class FeatureMap:
    """Momenta -> standardised network inputs (module doc). ``sqrt_s``: hadronic collider energy
    (adds ``ln x1, ln x2``), None for partonic processes."""

    kind: str
    n_legs: int
    sqrt_s: float | None
    mean: Tensor | None = None
    std: Tensor | None = None
    sort: list[int] | None = None

    def __post_init__(self) -> None:
        if self.kind not in FEATURES:
            raise InputError(f"features must be one of {', '.join(FEATURES)}, got {self.kind!r}")

    @property
    def n_pairs(self) -> int:
        return self.n_legs * (self.n_legs - 1) // 2

    @property
    def dim(self) -> int:
        if self.kind == "momenta":
            return 4 * self.n_legs
        return self.n_pairs + (2 if self.sqrt_s else 0)

    def raw(self, momenta: Tensor) -> Tensor:
        """Unstandardised inputs in float64."""
        p = momenta.to(torch.float64)
        if self.sort and len(self.sort) > 1:
            legs = torch.tensor(self.sort, device=p.device)
            order = torch.argsort(p[:, legs, 0], dim=1, descending=True, stable=True)
            p = p.clone()
            p[:, legs] = torch.gather(p[:, legs], 1, order[..., None].expand(-1, -1, 4))
        if self.kind == "momenta":
            return p.reshape(p.shape[0], -1)
        s = invariants(p).abs()
        cols = [torch.log(torch.clamp(s, min=1e-300))]
        if self.sqrt_s:
            x = torch.clamp(2.0 * p[:, :2, 0] / self.sqrt_s, min=1e-300)
            cols.append(torch.log(x))
        return torch.cat(cols, -1)

    def orbits(self, identical: list[int]) -> list[list[int]]:
        """Groups of input columns that permutations of the ``identical`` legs map onto each other
        (``invariants`` only): they share standardisation constants, so that the standardised inputs
        permute exactly as the legs do."""
        if self.kind != "invariants" or len(identical) < 2:
            return []
        ident = set(identical)
        groups: dict[tuple, list[int]] = {}
        for col, (i, j) in enumerate(invariant_pairs(self.n_legs)):
            key = tuple(sorted(("*" if leg in ident else str(leg)) for leg in (i, j)))
            groups.setdefault(key, []).append(col)
        return [cols for cols in groups.values() if len(cols) > 1]

    def fit(self, momenta: Tensor, identical: list[int] = ()) -> FeatureMap:
        """Training-set means and standard deviations, pooled over the column :meth:`orbits`."""
        raw = self.raw(momenta)
        mean, var = raw.mean(0), raw.var(0)
        for cols in self.orbits(list(identical)):
            m = mean[cols].mean()
            var[cols] = (var[cols] + (mean[cols] - m) ** 2).mean()
            mean[cols] = m
        self.mean = mean
        self.std = torch.clamp(var.sqrt(), min=1e-8)
        return self

    def __call__(self, momenta: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
        raw = self.raw(momenta)
        mean, std = self.mean.to(raw.device), self.std.to(raw.device)
        return ((raw - mean) / std).to(dtype)

    def state(self) -> dict:
        return {"kind": self.kind, "n_legs": self.n_legs, "sqrt_s": self.sqrt_s,
                "mean": self.mean.cpu(), "std": self.std.cpu(), "sort": self.sort}

    @classmethod
    def from_state(cls, state: dict) -> FeatureMap:
        return cls(state["kind"], int(state["n_legs"]), state["sqrt_s"], state["mean"], state["std"], state.get("sort"))


@dataclass
class TargetMap:
    """``A <-> y = (ln A - mean) / std``."""

    mean: float = 0.0
    std: float = 1.0

    def fit(self, amplitudes: Tensor) -> TargetMap:
        log = torch.log(amplitudes.to(torch.float64))
        self.mean, self.std = float(log.mean()), max(float(log.std()), 1e-8) if log.numel() > 1 else 1.0
        return self

    def forward(self, amplitudes: Tensor) -> Tensor:
        return (torch.log(amplitudes.to(torch.float64)) - self.mean) / self.std

    def log_amplitude(self, y: Tensor) -> Tensor:
        return y.to(torch.float64) * self.std + self.mean

    def state(self) -> dict:
        return {"mean": self.mean, "std": self.std}

    @classmethod
    def from_state(cls, state: dict) -> TargetMap:
        return cls(float(state["mean"]), float(state["std"]))


