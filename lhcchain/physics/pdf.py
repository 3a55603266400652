"""Parton distribution functions and alpha_s from LHAPDF6 ``lhagrid1`` grids, in batched torch.

A PDF set is an LHAPDF6 folder ``NAME/`` with ``NAME.info`` (YAML metadata) and member files
``NAME_0000.dat``, or a bare member file such as those Pythia 8 ships in
``<prefix>/share/Pythia8/pdfdata`` (see :func:`pythia_pdfdata_dir`). :func:`load_pdf` reads one
member into a :class:`GridPDF`.

Conventions
-----------
* ``x`` is the momentum fraction, ``Q2`` the factorisation scale squared in GeV^2 (``Q`` in GeV
  for the ``...Q`` methods). Values returned are ``x f(x, Q2)`` (momentum densities), as LHAPDF.
* Flavours are PDG ids: -5..5 for (anti)quarks, 21 for the gluon (0 is accepted as gluon), plus
  whatever else the file holds (6, -6, 22). A flavour the set does not hold gives 0, as in LHAPDF.
* :data:`PARTONS` fixes the order of the last axis of :meth:`GridPDF.xfxQ2_all`:
  ``(-5, -4, -3, -2, -1, 21, 1, 2, 3, 4, 5)`` = bbar, cbar, sbar, ubar, dbar, g, d, u, s, c, b.
* dtype and device follow the inputs (float32 or float64; Python numbers give float64 on the
  CPU). The grid is kept in float64 and cast/moved lazily, once per (dtype, device).

Interpolation
-------------
LHAPDF's default ``logcubic`` (LogBicubicInterpolator) scheme: on each Q subgrid, cubic Hermite
interpolation in ``log x`` with knot derivatives from finite differences (mean of the left and
right slopes; one-sided at the first and last x knot), then cubic Hermite in ``log Q2`` between
the two x-interpolated neighbouring Q rows, with derivatives from the x-interpolated rows one
further out (one-sided at the subgrid's edges). Subgrids with fewer than four Q knots fall back to
bilinear interpolation in (log x, log Q2), as LHAPDF does. The subgrid is the one whose Q range
contains Q; a Q exactly on a boundary (a flavour threshold) takes the upper subgrid, as in LHAPDF,
and no interpolation ever crosses a boundary. All subgrids of a file must share their x knots.

Pythia's own ``LHAGrid1`` class reads the same files but interpolates with four-point Lagrange
polynomials in ``log x`` and ``log Q``. Both pass through every knot; in between they differ by
~1e-5 relative typically and below ~1e-3 for 99% of points, more (up to several per cent of the
largest parton) in the first and last Q interval of a subgrid where PDFs evolve fast, since LHAPDF
uses one-sided differences there (the test suite measures this).

Extrapolation ("nearest", also Pythia's LHAGrid1 default)
----------------------------------------------------------
Outside the grid every value is frozen at the grid edge: ``x < XMin`` gives ``xf(XMin, Q2)``,
``x > XMax`` gives ``xf(XMax, Q2)`` (zero for sets whose grid ends at x = 1), ``Q < QMin`` gives
``xf(x, QMin^2)`` and ``Q > QMax`` gives ``xf(x, QMax^2)``; corners combine both. (LHAPDF's own
default is 'continuation' extrapolation; in range the two agree.) ``ForcePositive`` metadata is
honoured as in LHAPDF: 1 clips results at 0, 2 at 1e-10; the default 0 returns raw values, which
can be negative (e.g. the strange sea of NNPDF3.1 LO at low Q).

alpha_s
-------
If the metadata has ``AlphaS_Qs``/``AlphaS_Vals`` (LHAPDF ``ipol``), alpha_s is interpolated
from that table with LHAPDF's ``ipol`` scheme (:class:`AlphaS`). Otherwise it is run from
``AlphaS_MZ`` at ``MZ`` by solving the renormalisation-group equation (RK4, float64) and
tabulating the solution, with ``AlphaS_OrderQCD`` read as the perturbative order of the set
(0 = LO = one-loop beta function, ..., 3 = four loops; LHAPDF's ODE solver instead reads it as
the number of loops), thresholds at the quark masses (``AlphaS_M*`` or ``M*``, LHAPDF's defaults
otherwise), at most ``AlphaS_NumFlavors``/``NumFlavors`` (default 5) active flavours, and
MSbar decoupling at mu = m_q at the order of the set. LHAPDF's Lambda-based ``analytic`` type is
replaced by this running from ``AlphaS_MZ``.

A bare member file has no ``.info``; then ``AlphaS_MZ`` and ``AlphaS_OrderQCD`` are read from the
set name when it follows the usual pattern (``..._lo_as_0118...`` -> 0.118 at order 0;
``nlo``/``nnlo``/``n3lo`` -> 1/2/3) and the charm, bottom and top masses from the file's Q-subgrid
boundaries (each boundary is given to the heavy quark whose default mass is nearest). Anything can
be overridden with ``load_pdf(..., metadata={...})``.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import yaml

from ..errors import InputError

PARTONS: tuple[int, ...] = (-5, -4, -3, -2, -1, 21, 1, 2, 3, 4, 5)
"""Flavour order of the last axis of :meth:`GridPDF.xfxQ2_all`."""

# LHAPDF's global defaults (lhapdf.conf) for keys a set does not give.
_DEFAULT_METADATA: dict[str, Any] = {
    "MZ": 91.1876,
    "MDown": 0.005,
    "MUp": 0.002,
    "MStrange": 0.10,
    "MCharm": 1.29,
    "MBottom": 4.19,
    "MTop": 172.9,
    "ForcePositive": 0,
}
_MASS_KEYS = ("MDown", "MUp", "MStrange", "MCharm", "MBottom", "MTop")  # PDG ids 1..6
_ORDER_TOKENS = {"lo": 0, "nlo": 1, "nnlo": 2, "n3lo": 3}
_ZETA3 = 1.2020569031595942
_PID_RANGE = 22  # per-event flavour lookup table covers PDG ids -22..22


# --------------------------------------------------------------------------------------------
# Locating sets


def pythia_pdfdata_dir() -> Path:
    """Folder ``share/Pythia8/pdfdata`` of the installed Pythia 8.

    ``PYTHIA8DATA`` (Pythia's ``xmldoc`` folder) wins when set: its sibling ``pdfdata`` is used.
    Otherwise ``<prefix>/share/Pythia8/pdfdata``, with ``<prefix>`` the install prefix of the
    ``pythia8mc`` module (``<prefix>/lib/pythonX.Y/site-packages/pythia8mc*.so``), then
    ``sys.prefix``.
    """
    env = os.environ.get("PYTHIA8DATA")
    if env:
        folder = Path(env).expanduser().parent / "pdfdata"
        if not folder.is_dir():
            raise InputError(f"PYTHIA8DATA={env!r} is set but {folder} (its sibling pdfdata folder) does not exist")
        return folder
    candidates = []
    spec = importlib.util.find_spec("pythia8mc")
    if spec is not None and spec.origin:
        candidates.append(Path(spec.origin).resolve().parents[3] / "share" / "Pythia8" / "pdfdata")
    candidates.append(Path(sys.prefix) / "share" / "Pythia8" / "pdfdata")
    for folder in candidates:
        if folder.is_dir():
            return folder
    raise InputError(f"Pythia's pdfdata folder not found (looked in {', '.join(map(str, candidates))}); "
                     "install pythia8mc or set PYTHIA8DATA to Pythia's share/Pythia8/xmldoc")


def _search_dirs() -> list[Path]:
    """LHAPDF data folders (``LHAPDF_DATA_PATH``, ``LHAPATH``) then Pythia's pdfdata, if present."""
    dirs = [Path(p) for var in ("LHAPDF_DATA_PATH", "LHAPATH") for p in os.environ.get(var, "").split(os.pathsep) if p]
    try:
        dirs.append(pythia_pdfdata_dir())
    except InputError:
        pass
    return dirs


def _set_name(member_file: Path) -> str:
    return re.sub(r"_\d{4}\.dat$", "", member_file.name)


def _info_beside(member_file: Path) -> Path | None:
    info = member_file.parent / f"{_set_name(member_file)}.info"
    return info if info.is_file() else None


def _resolve(source: str | os.PathLike[str], member: int) -> tuple[Path, Path | None]:
    """Member file and ``.info`` file (or None) for a set name, a set folder or a member file."""
    path = Path(source).expanduser()
    if path.is_file():
        if member != 0:
            raise InputError(f"member={member} given with the member file {path}; pass the set folder or name instead")
        return path, _info_beside(path)
    if path.is_dir():
        member_file = path / f"{path.name}_{member:04d}.dat"
        if not member_file.is_file():
            raise InputError(f"PDF member file {member_file} not found in the set folder {path}")
        return member_file, _info_beside(member_file)
    name = str(source)
    if os.sep in name or name.endswith(".dat"):
        raise InputError(f"PDF file or folder {path} not found")
    dirs = _search_dirs()
    for folder in dirs:
        if (folder / name).is_dir():
            return _resolve(folder / name, member)
        member_file = folder / f"{name}_{member:04d}.dat"
        if member_file.is_file():
            return member_file, _info_beside(member_file)
    raise InputError(f"PDF set {name!r} (member {member}) not found as {name}/ or {name}_{member:04d}.dat in "
                     f"{', '.join(map(str, dirs)) or 'no folder (set LHAPDF_DATA_PATH or install pythia8mc)'}")


# --------------------------------------------------------------------------------------------
# Reading lhagrid1 files


@dataclass(frozen=True)
class _Subgrid:
    x: np.ndarray  # (nx,) knots
    q: np.ndarray  # (nq,) knots in GeV
    flavours: tuple[int, ...]
    xf: np.ndarray  # (nx, nq, n_flavours)


def _read_text(path: Path) -> str:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"cannot read PDF file {path}: {err}") from err


def _read_yaml(text: str, path: Path, what: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise InputError(f"{path}: malformed YAML {what}: {err}") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"{path}: the {what} must be YAML 'key: value' lines, got {type(data).__name__}")
    return data


_FLOAT = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _numbers(text: str, dtype: type, path: Path, what: str) -> np.ndarray:
    """Whitespace-separated numbers; like C++ stream input (which Pythia and LHAPDF use), also
    numbers written without a separating blank (``0.0e+000.0e+00``, seen in CT14qed)."""
    try:
        return np.array(text.split(), dtype=dtype)
    except ValueError as err:
        tokens = _FLOAT.findall(text) if dtype is float else []
        if not tokens or "".join(tokens) != "".join(text.split()):
            raise InputError(f"{path}: malformed {what}: {err}") from err
        return np.array(tokens, dtype=dtype)


def _read_lhagrid1(path: Path) -> tuple[dict[str, Any], list[_Subgrid]]:
    """Header metadata and subgrids of an ``lhagrid1`` member file."""
    text = _read_text(path)
    header, *blocks = re.split(r"^---[ \t\r]*$", text, flags=re.MULTILINE)
    if not blocks:
        raise InputError(f"{path}: not an lhagrid1 file (no '---' line after the header)")
    meta = _read_yaml(header, path, "header")
    if meta.get("Format", "lhagrid1") != "lhagrid1":
        raise InputError(f"{path}: format {meta['Format']!r} is not supported, only lhagrid1")
    grids = []
    for i, block in enumerate(blocks):
        lines = block.strip().splitlines()
        if not lines:
            continue
        what = f"subgrid {i}"
        if len(lines) < 4:
            raise InputError(f"{path}: {what} is truncated: it needs x knots, Q knots, flavours and values")
        x = _numbers(lines[0], float, path, f"{what} x knots")
        q = _numbers(lines[1], float, path, f"{what} Q knots")
        flavours = tuple(int(f) for f in _numbers(lines[2], int, path, f"{what} flavour ids"))
        values = _numbers(" ".join(lines[3:]), float, path, f"{what} values")
        expected = x.size * q.size * len(flavours)
        if values.size != expected:
            raise InputError(f"{path}: {what} has {values.size} values, expected {x.size} x * {q.size} Q * "
                             f"{len(flavours)} flavours = {expected}")
        values = values.reshape(x.size, q.size, len(flavours))
        repeated = np.flatnonzero(np.diff(x) == 0) + 1  # a repeated x knot with equal values (CT14qed): drop it
        if repeated.size and np.array_equal(values[repeated], values[repeated - 1]):
            x, values = np.delete(x, repeated), np.delete(values, repeated, axis=0)
        if x.size < 4 or q.size < 2:
            raise InputError(f"{path}: {what} needs at least 4 x knots and 2 Q knots, has {x.size} and {q.size}")
        if not (np.all(x > 0) and np.all(np.diff(x) > 0) and np.all(q > 0) and np.all(np.diff(q) > 0)):
            raise InputError(f"{path}: {what} knots must be positive and strictly increasing")
        grids.append(_Subgrid(x, q, flavours, values))
    if not grids:
        raise InputError(f"{path}: no subgrid found after the header")
    for i, (lower, upper) in enumerate(zip(grids, grids[1:]), start=1):
        if upper.x.shape != lower.x.shape or not np.allclose(upper.x, lower.x, rtol=1e-8, atol=0):
            raise InputError(f"{path}: subgrid {i} has other x knots than subgrid 0; all subgrids must share them")
        if abs(upper.q[0] / lower.q[-1] - 1) > 1e-5:
            raise InputError(f"{path}: subgrid {i} starts at Q={upper.q[0]} but subgrid {i - 1} ends at Q={lower.q[-1]}")
        lower.q[-1] = upper.q[0]  # make the shared boundary exact
    return meta, grids


def _metadata_from_name(name: str) -> dict[str, Any]:
    """``AlphaS_MZ`` and ``AlphaS_OrderQCD`` read from a set name like ``NNPDF31_nlo_as_0118``."""
    meta: dict[str, Any] = {}
    alphas = re.search(r"_as_(\d{4})(?:_|$)", name)
    if alphas:
        meta["AlphaS_MZ"] = int(alphas.group(1)) / 1000
    for token in name.lower().split("_"):
        order = re.fullmatch(r"(n3lo|nnlo|nlo|lo)(nllx)?", token)
        if order:
            meta["AlphaS_OrderQCD"] = _ORDER_TOKENS[order.group(1)]
            break
    return meta


def _masses_from_subgrids(grids: list[_Subgrid]) -> dict[str, float]:
    """Heavy-quark masses from Q-subgrid boundaries, each given to the nearest default mass (log Q)."""
    heavy = ("MCharm", "MBottom", "MTop")
    masses = {}
    for grid in grids[1:]:
        edge = float(grid.q[0])
        key = min(heavy, key=lambda k: abs(math.log(edge / _DEFAULT_METADATA[k])))
        masses[key] = edge
    return masses


# --------------------------------------------------------------------------------------------
# Interpolation helpers


def _hermite(t: torch.Tensor, v0: torch.Tensor, d0: torch.Tensor, v1: torch.Tensor, d1: torch.Tensor) -> torch.Tensor:
    """Cubic Hermite on [0, 1] through ``v0``, ``v1`` with end derivatives ``d0``, ``d1`` (per unit t)."""
    t2 = t * t
    t3 = t2 * t
    return (2 * t3 - 3 * t2 + 1) * v0 + (t3 - 2 * t2 + t) * d0 + (3 * t2 - 2 * t3) * v1 + (t3 - t2) * d1


def _as_float_tensors(*values: torch.Tensor | float) -> list[torch.Tensor]:
    """Broadcast inputs to one floating tensor type: the promoted float dtype of the tensor inputs
    (float64 when none is floating) on the first tensor's device (CPU when none)."""
    tensors = [v for v in values if isinstance(v, torch.Tensor)]
    device = tensors[0].device if tensors else torch.device("cpu")
    floats = [t.dtype for t in tensors if t.is_floating_point()]
    dtype = functools.reduce(torch.promote_types, floats) if floats else torch.float64
    return list(torch.broadcast_tensors(*(torch.as_tensor(v, dtype=dtype, device=device) for v in values)))


def _split_at_repeats(knots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) indices of the runs of ``knots`` separated by repeated values."""
    cuts = np.flatnonzero(np.diff(knots) == 0) + 1
    return np.concatenate([[0], cuts]), np.concatenate([cuts, [knots.size]])


def _locate(sorted_knots: torch.Tensor, lower_edges: torch.Tensor, starts: torch.Tensor, ends: torch.Tensor,
            values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Index ``i`` of the knot interval ``[i, i+1]`` holding each value, within the subgrid whose range
    holds it (a value on a boundary goes to the upper subgrid); also that subgrid's start and end.

    ``sorted_knots`` concatenates the subgrids' knots, each boundary knot appearing twice."""
    sub = (torch.searchsorted(lower_edges, values, right=True) - 1).clamp(min=0)
    start, end = starts[sub], ends[sub]
    i = torch.searchsorted(sorted_knots, values, right=True) - 1
    return torch.maximum(torch.minimum(i, end - 2), start), start, end


class AlphaS:
    """alpha_s(Q2) interpolated from tabulated knots, with LHAPDF's ``ipol`` scheme.

    Cubic Hermite in ``log Q2`` with knot derivatives from finite differences (mean of the left and
    right slopes; one-sided at the ends of each subgrid). A repeated Q knot marks a flavour threshold:
    the knots split into subgrids there and nothing is interpolated across it; a Q exactly on a
    threshold takes the upper subgrid. Below the first knot alpha_s continues as a power of Q2
    through the first two distinct knots; above the last knot it is frozen. Batched like
    :class:`GridPDF`.
    """

    def __init__(self, q: Sequence[float], values: Sequence[float], source: str = "alpha_s table",
                 derivatives: Sequence[float] | None = None) -> None:
        """``q``: knots in GeV, non-decreasing, a value repeated once at each threshold;
        ``values``: alpha_s at the knots; ``source`` names them in error messages; ``derivatives``:
        d alpha_s / d ln Q2 at the knots when known exactly (else finite differences, as LHAPDF)."""
        qs = np.asarray(q, dtype=float)
        alphas = np.asarray(values, dtype=float)
        if qs.ndim != 1 or qs.shape != alphas.shape or qs.size < 2:
            raise InputError(f"{source}: AlphaS_Qs and AlphaS_Vals must be lists of equal length >= 2, "
                             f"got {qs.size} and {alphas.size}")
        if not (np.all(qs > 0) and np.all(np.diff(qs) >= 0) and np.all(np.isfinite(alphas))):
            raise InputError(f"{source}: AlphaS_Qs must be positive and non-decreasing, AlphaS_Vals finite")
        starts, ends = _split_at_repeats(qs)
        if np.any(ends - starts < 2):
            raise InputError(f"{source}: every run of AlphaS_Qs between repeated (threshold) knots needs >= 2 knots")
        logq2 = np.log(qs * qs)
        if derivatives is None:
            slopes = np.zeros(qs.size - 1)
            inner = np.diff(logq2) > 0
            slopes[inner] = np.diff(alphas)[inner] / np.diff(logq2)[inner]
            deriv = np.empty_like(alphas)
            for s, e in zip(starts, ends):
                deriv[s] = slopes[s]
                deriv[e - 1] = slopes[e - 2]
                deriv[s + 1:e - 1] = 0.5 * (slopes[s:e - 2] + slopes[s + 1:e - 1])
        else:
            deriv = np.asarray(derivatives, dtype=float)
        distinct = int(np.flatnonzero(qs != qs[0])[0])
        self.q = qs
        self.values = alphas
        self._power = math.log(alphas[distinct] / alphas[0]) / (logq2[distinct] - logq2[0])
        self._arrays = (logq2, alphas, deriv, logq2[starts], starts, ends)
        self._cache: dict[tuple[torch.dtype, torch.device], tuple[torch.Tensor, ...]] = {}

    @classmethod
    def from_running(cls, alphas_mz: float, order: int, *, mz: float = 91.1876,
                     masses: Sequence[float] = tuple(_DEFAULT_METADATA[k] for k in _MASS_KEYS),
                     nf_max: int = 5, fixed_nf: int | None = None, q_range: tuple[float, float] = (1.0, 1e5),
                     knots_per_decade: int = 50) -> AlphaS:
        """Solve the QCD renormalisation-group equation from ``alphas_mz`` at ``mz`` and tabulate it.

        ``order``: perturbative order (0 = LO, one-loop beta, ..., 3 = four loops). ``masses``:
        d, u, s, c, b, t masses in GeV, the flavour thresholds (at most ``nf_max`` active flavours;
        ``fixed_nf`` fixes the number instead). At each threshold alpha_s is matched with MSbar
        decoupling at mu = m through O(alpha_s^(order)) (continuous at LO and NLO). Knots span
        ``q_range`` (GeV, widened to contain ``mz``), ``knots_per_decade`` per decade of Q, plus
        ``mz`` itself, and carry the exact derivative from the beta function, so the cubic
        interpolation between them is accurate to ~1e-8; towards low Q the table stops where
        alpha_s passes 2.
        """
        if not 0 <= order <= 3:
            raise InputError(f"AlphaS_OrderQCD must be 0 (LO) to 3 (N3LO), got {order}")
        loops = order + 1

        def n_flavours(q: float) -> int:
            if fixed_nf is not None:
                return fixed_nf
            return max((h for h, m in enumerate(masses, start=1) if m < q and h <= nf_max), default=0)

        def derivative(y: float, nf: int) -> float:  # d alpha_s / d ln Q2
            betas = ((33 - 2 * nf) / (12 * math.pi),
                     (153 - 19 * nf) / (24 * math.pi ** 2),
                     (2857 - 5033 / 9 * nf + 325 / 27 * nf ** 2) / (128 * math.pi ** 3),
                     ((149753 / 6 + 3564 * _ZETA3) - (1078361 / 162 + 6502 / 27 * _ZETA3) * nf
                      + (50065 / 162 + 6472 / 81 * _ZETA3) * nf ** 2 + 1093 / 729 * nf ** 3) / (256 * math.pi ** 4))
            return -y * y * sum(b * y ** i for i, b in enumerate(betas[:loops]))

        def run(y: float, t0: float, t1: float, nf: int) -> float:  # RK4 in t = ln Q2
            steps = max(1, math.ceil(abs(t1 - t0) / 0.01))
            h = (t1 - t0) / steps
            for _ in range(steps):
                k1 = derivative(y, nf)
                k2 = derivative(y + 0.5 * h * k1, nf)
                k3 = derivative(y + 0.5 * h * k2, nf)
                k4 = derivative(y + h * k3, nf)
                y += h * (k1 + 2 * k2 + 2 * k3 + k4) / 6
            return y

        def decouple(y: float, n_light: int, upward: bool) -> float:  # alpha_s across a threshold at mu = m
            a = y / math.pi
            c2 = 11 / 72
            c3 = 564731 / 124416 - 82043 / 27648 * _ZETA3 - 2633 / 31104 * n_light
            shift = (c2 * a * a if order >= 2 else 0.0) + (c3 * a ** 3 if order >= 3 else 0.0)
            return y * (1 - shift if upward else 1 + shift)

        q_lo, q_hi = min(q_range[0], mz), max(q_range[1], mz)
        thresholds = [m for m in sorted(masses) if q_lo < m < q_hi
                      and n_flavours(m * (1 - 1e-9)) != n_flavours(m * (1 + 1e-9))]
        edges = [q_lo, *thresholds, q_hi]
        qs, nfs = [], []  # knots ascending, each threshold twice (end of one segment, start of the next)
        for a, b in zip(edges, edges[1:]):
            knots = np.geomspace(a, b, max(2, math.ceil(math.log10(b / a) * knots_per_decade) + 1))
            if a < mz < b:
                knots = np.sort(np.append(knots, mz))
            qs.extend(knots)
            nfs.extend([n_flavours(math.sqrt(a * b))] * knots.size)
        logq2 = [2 * math.log(q) for q in qs]
        values = [math.nan] * len(qs)
        home = qs.index(mz)
        values[home] = alphas_mz
        for k in range(home + 1, len(qs)):  # upward from MZ
            if qs[k] == qs[k - 1]:
                values[k] = decouple(values[k - 1], nfs[k - 1], upward=True)
            else:
                values[k] = run(values[k - 1], logq2[k - 1], logq2[k], nfs[k])
        lowest = 0
        for k in range(home - 1, -1, -1):  # downward from MZ, stopping where alpha_s blows up
            if qs[k] == qs[k + 1]:
                values[k] = decouple(values[k + 1], nfs[k], upward=False)
            else:
                values[k] = run(values[k + 1], logq2[k + 1], logq2[k], nfs[k])
            if not (math.isfinite(values[k]) and values[k] <= 2):
                lowest = k + 1 + (qs[k + 1] == qs[min(k + 2, len(qs) - 1)])
                break
        slopes = [derivative(y, nf) for y, nf in zip(values, nfs)]
        return cls(qs[lowest:], values[lowest:], source=f"alpha_s running from alpha_s(MZ)={alphas_mz}",
                   derivatives=slopes[lowest:])

    def _tensors(self, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, ...]:
        key = (dtype, device)
        if key not in self._cache:
            logq2, alphas, deriv, lower, starts, ends = self._arrays
            as_float = functools.partial(torch.as_tensor, dtype=dtype, device=device)
            as_long = functools.partial(torch.as_tensor, dtype=torch.long, device=device)
            self._cache[key] = (as_float(logq2), as_float(alphas), as_float(deriv), as_float(lower),
                                as_long(starts), as_long(ends))
        return self._cache[key]

    def alphasQ2(self, Q2: torch.Tensor | float) -> torch.Tensor:
        """alpha_s at ``Q2`` (GeV^2), same shape, dtype and device."""
        (q2,) = _as_float_tensors(Q2)
        logq2, alphas, deriv, lower, starts, ends = self._tensors(q2.dtype, q2.device)
        q2_min, q2_max = float(self.q[0]) ** 2, float(self.q[-1]) ** 2
        lq = torch.log(q2.clamp(q2_min, q2_max)).contiguous()
        i, _, _ = _locate(logq2, lower, starts, ends, lq)
        dq = logq2[i + 1] - logq2[i]
        value = _hermite((lq - logq2[i]) / dq, alphas[i], deriv[i] * dq, alphas[i + 1], deriv[i + 1] * dq)
        value = torch.where(q2 < q2_min, alphas[0] * (q2 / q2_min) ** self._power, value)
        return torch.where(q2 > q2_max, alphas[-1], value)

    def alphasQ(self, Q: torch.Tensor | float) -> torch.Tensor:
        """alpha_s at ``Q`` (GeV)."""
        (q,) = _as_float_tensors(Q)
        return self.alphasQ2(q * q)


@dataclass(frozen=True)
class _GridTensors:
    logx: torch.Tensor  # (nx,)
    logq2: torch.Tensor  # (nq,) all subgrids, boundary knots twice
    lower: torch.Tensor  # (n_subgrids,) log Q2 of each subgrid's first knot
    starts: torch.Tensor  # (n_subgrids,) long
    ends: torch.Tensor  # (n_subgrids,) long, exclusive
    table: torch.Tensor  # (nq * nx, 2, n_columns): [xf, d xf / d log x] at each (Q, x) knot
    pid_columns: torch.Tensor  # (2 * _PID_RANGE + 1,) long: column of PDG id p at p + _PID_RANGE, -1 if absent


class GridPDF:
    """One member of an LHAPDF6 ``lhagrid1`` PDF set, evaluated in batched torch (see the module doc).

    Attributes: ``name`` (set name), ``member``, ``path`` (member file), ``info_path`` (``.info`` or
    None), ``metadata`` (merged, later winning: LHAPDF defaults, values read from the set name and
    subgrids when there is no ``.info``, ``.info``, member header, user overrides), ``flavours`` (PDG ids in the
    file), ``x_min``, ``x_max``, ``q_min``, ``q_max`` (grid edges, GeV) and ``q_edges`` (Q
    boundaries between subgrids, GeV). Build it with :func:`load_pdf`.
    """

    def __init__(self, path: Path, info_path: Path | None = None, member: int = 0,
                 metadata: Mapping[str, Any] | None = None) -> None:
        header, grids = _read_lhagrid1(path)
        info = _read_yaml(_read_text(info_path), info_path, "set info") if info_path is not None else {}
        self.name = _set_name(path)
        self.member = member
        self.path = path
        self.info_path = info_path
        inferred = {} if info_path is not None else {**_metadata_from_name(self.name), **_masses_from_subgrids(grids)}
        self.metadata: dict[str, Any] = {**_DEFAULT_METADATA, **inferred, **info, **header, **(metadata or {})}
        self._force_positive = int(self.metadata["ForcePositive"])

        flavours = [21 if f == 0 else f for grid in grids for f in grid.flavours]
        self.flavours = tuple(dict.fromkeys(flavours))
        columns = PARTONS + tuple(f for f in self.flavours if f not in PARTONS)
        self._columns = {pid: i for i, pid in enumerate(columns)}
        x = grids[0].x
        q = np.concatenate([grid.q for grid in grids])
        values = np.zeros((q.size, x.size, len(columns)))
        row = 0
        for grid in grids:
            for k, pid in enumerate(grid.flavours):
                values[row:row + grid.q.size, :, self._columns[21 if pid == 0 else pid]] = grid.xf[:, :, k].T
            row += grid.q.size
        logx = np.log(x)
        slopes = np.diff(values, axis=1) / np.diff(logx)[None, :, None]
        deriv = np.empty_like(values)
        deriv[:, 0], deriv[:, -1] = slopes[:, 0], slopes[:, -1]
        deriv[:, 1:-1] = 0.5 * (slopes[:, :-1] + slopes[:, 1:])

        sizes = np.array([grid.q.size for grid in grids])
        ends = np.cumsum(sizes)
        starts = ends - sizes
        logq2 = np.log(q * q)
        pid_columns = np.full(2 * _PID_RANGE + 1, -1)
        for pid, col in self._columns.items():
            pid_columns[pid + _PID_RANGE] = col
        pid_columns[_PID_RANGE] = self._columns[21]
        self._arrays = dict(logx=logx, logq2=logq2, lower=logq2[starts], starts=starts, ends=ends,
                            table=np.stack([values, deriv], axis=2).reshape(q.size * x.size, 2, len(columns)),
                            pid_columns=pid_columns)
        self._short_subgrids = bool(np.any(sizes < 4))
        self._cache: dict[tuple[torch.dtype, torch.device], _GridTensors] = {}
        self.x_min, self.x_max = float(x[0]), float(x[-1])
        self.q_min, self.q_max = float(q[0]), float(q[-1])
        self.q_edges = tuple(float(grid.q[0]) for grid in grids[1:])

    def __repr__(self) -> str:
        return (f"GridPDF({self.name!r}, member={self.member}, x in [{self.x_min:g}, {self.x_max:g}], "
                f"Q in [{self.q_min:g}, {self.q_max:g}] GeV, flavours={self.flavours})")

    def _tensors(self, dtype: torch.dtype, device: torch.device) -> _GridTensors:
        key = (dtype, device)
        if key not in self._cache:
            self._cache[key] = _GridTensors(**{
                name: torch.as_tensor(array, dtype=dtype if array.dtype.kind == "f" else torch.long, device=device)
                for name, array in self._arrays.items()})
        return self._cache[key]

    def _interpolate(self, x: torch.Tensor, q2: torch.Tensor, columns: slice) -> torch.Tensor:
        """xf for the table ``columns`` at broadcast ``x``, ``q2``: shape ``(*x.shape, n_columns)``."""
        g = self._tensors(x.dtype, x.device)
        shape = x.shape
        logx = torch.log(x.clamp(self.x_min, self.x_max)).reshape(-1)
        logq2 = torch.log(q2.clamp(self.q_min ** 2, self.q_max ** 2)).reshape(-1)
        iq, start, end = _locate(g.logq2, g.lower, g.starts, g.ends, logq2)
        ix = (torch.searchsorted(g.logx, logx, right=True) - 1).clamp(0, g.logx.numel() - 2)
        dlx = (g.logx[ix + 1] - g.logx[ix])[:, None]
        tx = (logx[:, None] - g.logx[ix][:, None]) / dlx
        short = (end - start < 4)[:, None]
        table = g.table[:, :, columns]
        nx = g.logx.numel()
        rows = []  # xf interpolated in log x on the Q rows iq-1 .. iq+2 (clamped into the subgrid)
        for offset in (-1, 0, 1, 2):
            iqk = torch.maximum(torch.minimum(iq + offset, end - 1), start)
            lo, hi = table[iqk * nx + ix], table[iqk * nx + ix + 1]
            value = _hermite(tx, lo[:, 0], lo[:, 1] * dlx, hi[:, 0], hi[:, 1] * dlx)
            if self._short_subgrids:
                value = torch.where(short, torch.lerp(lo[:, 0], hi[:, 0], tx), value)
            rows.append(value)
        vll, vl, vh, vhh = rows
        first, last = iq == start, iq + 2 == end
        dq1 = g.logq2[iq + 1] - g.logq2[iq]
        dq0 = torch.where(first, dq1, g.logq2[iq] - g.logq2[(iq - 1).clamp(min=0)])
        dq2 = torch.where(last, dq1, g.logq2[(iq + 2).clamp(max=g.logq2.numel() - 1)] - g.logq2[iq + 1])
        slope = (vh - vl) / dq1[:, None]
        dl = torch.where(first[:, None], slope, 0.5 * (slope + (vl - vll) / dq0[:, None]))
        dh = torch.where(last[:, None], slope, 0.5 * (slope + (vhh - vh) / dq2[:, None]))
        tq = ((logq2 - g.logq2[iq]) / dq1)[:, None]
        out = _hermite(tq, vl, dl * dq1[:, None], vh, dh * dq1[:, None])
        if self._short_subgrids:
            out = torch.where(short, torch.lerp(vl, vh, tq), out)
        if self._force_positive:
            out = out.clamp(min=0.0 if self._force_positive == 1 else 1e-10)
        return out.reshape(*shape, out.shape[-1])

    def xfxQ2(self, pid: int | torch.Tensor, x: torch.Tensor | float, Q2: torch.Tensor | float) -> torch.Tensor:
        """``x f(x, Q2)`` for PDG id ``pid`` at momentum fraction ``x`` and scale ``Q2`` (GeV^2).

        ``pid`` is an int, or an integer tensor giving one flavour per point; ``pid``, ``x`` and
        ``Q2`` broadcast together and the result has their broadcast shape.
        """
        if isinstance(pid, torch.Tensor):
            x, q2 = _as_float_tensors(x, Q2)
            pid, x, q2 = torch.broadcast_tensors(pid.to(device=x.device, dtype=torch.long), x, q2)
            columns = self._tensors(x.dtype, x.device).pid_columns
            column = columns[(pid + _PID_RANGE).clamp(0, 2 * _PID_RANGE)]
            column = torch.where(pid.abs() <= _PID_RANGE, column, -1)
            values = self._interpolate(x, q2, slice(None)).gather(-1, column.clamp(min=0)[..., None])[..., 0]
            return torch.where(column >= 0, values, 0.0)
        x, q2 = _as_float_tensors(x, Q2)
        column = self._columns.get(21 if pid == 0 else int(pid))
        if column is None:
            return torch.zeros_like(x)
        return self._interpolate(x, q2, slice(column, column + 1))[..., 0]

    def xfxQ(self, pid: int | torch.Tensor, x: torch.Tensor | float, Q: torch.Tensor | float) -> torch.Tensor:
        """``x f(x, Q^2)`` with the scale given as ``Q`` (GeV); see :meth:`xfxQ2`."""
        x, q = _as_float_tensors(x, Q)
        return self.xfxQ2(pid, x, q * q)

    def xfxQ2_all(self, x: torch.Tensor | float, Q2: torch.Tensor | float) -> torch.Tensor:
        """``x f(x, Q2)`` for all of :data:`PARTONS` at once: shape ``(*broadcast shape, 11)``,
        last axis ordered bbar, cbar, sbar, ubar, dbar, g, d, u, s, c, b (PDG -5..-1, 21, 1..5)."""
        x, q2 = _as_float_tensors(x, Q2)
        return self._interpolate(x, q2, slice(0, len(PARTONS)))

    @functools.cached_property
    def alpha_s(self) -> AlphaS:
        """The set's alpha_s (see the module doc), built on first use."""
        meta = self.metadata
        if "AlphaS_Qs" in meta and "AlphaS_Vals" in meta:
            return AlphaS(meta["AlphaS_Qs"], meta["AlphaS_Vals"], source=str(self.info_path or self.path))
        missing = [k for k in ("AlphaS_MZ", "AlphaS_OrderQCD") if k not in meta]
        if missing:
            raise InputError(f"{self.path}: no alpha_s information: {' and '.join(missing)} not in the set's "
                             "metadata nor readable from its name; pass them with load_pdf(..., metadata={...})")
        masses = [float(meta.get(f"AlphaS_{key}", meta[key])) for key in _MASS_KEYS]
        nf = int(meta.get("AlphaS_NumFlavors", meta.get("NumFlavors", 5)))
        fixed = str(meta.get("AlphaS_FlavorScheme", meta.get("FlavorScheme", "variable"))).lower() == "fixed"
        return AlphaS.from_running(float(meta["AlphaS_MZ"]), int(meta["AlphaS_OrderQCD"]), mz=float(meta["MZ"]),
                                   masses=masses, nf_max=nf, fixed_nf=nf if fixed else None,
                                   q_range=(min(self.q_min, 1.0), max(self.q_max, 1e4)))

    def alphasQ2(self, Q2: torch.Tensor | float) -> torch.Tensor:
        """alpha_s of the set at ``Q2`` (GeV^2), same shape, dtype and device."""
        return self.alpha_s.alphasQ2(Q2)

    def alphasQ(self, Q: torch.Tensor | float) -> torch.Tensor:
        """alpha_s of the set at ``Q`` (GeV)."""
        return self.alpha_s.alphasQ(Q)


def load_pdf(source: str | os.PathLike[str], member: int = 0, *,
             metadata: Mapping[str, Any] | None = None) -> GridPDF:
    """Load one member of an LHAPDF6 ``lhagrid1`` set.

    ``source`` is a path to a member file (``NAME_0000.dat``) or a set folder (``NAME/``), or a set
    name looked up as ``NAME/`` or ``NAME_<member>.dat`` in ``LHAPDF_DATA_PATH``, ``LHAPATH`` and
    Pythia's pdfdata folder (:func:`pythia_pdfdata_dir`), in that order. ``metadata`` overrides
    entries of the set's metadata (e.g. ``{"AlphaS_MZ": 0.118, "AlphaS_OrderQCD": 0}`` for a bare
    file whose name says nothing). Raises :class:`~lhcchain.errors.InputError` naming the file
    when it is missing or malformed.
    """
    member_file, info_file = _resolve(source, member)
    return GridPDF(member_file, info_file, member, metadata)
