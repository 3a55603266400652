"""Datasets of exact amplitudes: sampled from a physics-core process, or imported.

HDF5 layout (one file per process, written atomically):

==============  ===============  ==========================================================
dataset         shape / dtype    content
==============  ===============  ==========================================================
``momenta``     (N, n, 4) f8     four-momenta, GeV, lab frame, conventions of :mod:`lhcchain.physics`
``invariants``  (N, n(n-1)/2) f8 ``s_ij = 2 k_i.k_j`` (GeV^2), incoming crossed (:mod:`.features`)
``amplitudes``  (N,) f8          the exact target ``A`` (:func:`~.features.exact_amplitude`)
``split``       (N,) i1          0 train, 1 validation, 2 test
``weights``     (N,) f8          only with ``sampling: integrator``: the point's integrand weight
                                 ``w = f / q`` (pb; ``f`` the integrand, ``q`` the integrator's density)
==============  ===============  ==========================================================

Attributes: ``process``, ``sampling`` (``flat``, ``importance``, ``integrator`` or ``external``), ``seed``,
``units``, ``invariant_definition``, ``invariant_names``, ``amplitude_kind``, ``hadronic``,
``sqrt_s`` (0 for partonic and imported data), ``identical_legs`` (outgoing legs a deep-sets network
may treat as identical), ``n_legs``, ``source``, ``split_fractions`` (and ``integrator``, the
checkpoint, with ``sampling: integrator``).

Sampling (:func:`make_dataset`):

* ``flat``: ``r`` uniform in the unit hypercube through the process's first channel
  (``Process.map_point(r, 0)``; RAMBO for ``gg_ng``, the channel's luminosity + phase-space mapping
  for hadronic processes). Points are distributed as that mapping's density, not as |M|^2.
* ``importance``: unweighted events. Each point is drawn in a channel ``c`` chosen uniformly, gets
  the multi-channel weight ``w = C alpha_c(p) f_c(r)`` (``f_c``: :meth:`Process.integrand`, pb;
  ``alpha_c``: the prior channel weights; ``E[w] = sigma``) and is accepted with probability
  ``min(1, w / w_max)``, ``w_max`` the ``w_max_quantile`` (default 99%) quantile of the positive weights of a pilot batch of
  ``batch_size`` points (recorded as ``w_max``; the few points above it are kept with probability 1).
  Accepted points are distributed as the cross-section density ``|M|^2 dPhi`` (x PDFs).
* ``integrator``: weighted points drawn by a trained MadNIS integrator of the same process (its
  ``integrator.pt`` from the ``madnis`` stage, :func:`lhcchain.madnis.load_integrator`), i.e. where
  the unweighting will sample; each keeps its weight ``w = f / q`` (``weights``), with which the
  surrogate's loss can weight the points (``loss_weight_power``, :mod:`.train`). The exact ``|M|^2``
  is evaluated once, by the integrand, and ``A`` recovered from it (the inverse of the surrogate's
  place in the integrand, :func:`lhcchain.madnis.surrogate.surrogate_matrix_element`).

Only points with finite momenta, non-zero phase-space weight, passing ``Process.cuts`` and with a
finite ``A > 0`` are kept.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import h5py
import numpy as np
import torch

from ..errors import InputError
from ..io import Progress, staged_outputs
from ..physics.process import GEV2_TO_PB, minkowski_square
from .features import amplitude_kind, exact_amplitude, identical_legs, invariant_names, invariants

log = logging.getLogger("lhcchain.amplitudes")

SAMPLING = ("flat", "importance", "integrator")
INVARIANT_DEFINITION = ("s_ij = 2 k_i.k_j for i<j over all legs (legs numbered from 1, incoming first), "
                        "incoming momenta crossed k = -p, outgoing k = p; metric (+,-,-,-)")


def split_labels(n: int, split: Mapping[str, float], seed: int) -> np.ndarray:
    """Random train/val/test labels (0/1/2, int8) with sizes ``round(f * n)`` of the normalised
    fractions ``split`` (keys ``train``, ``val``, ``test``); the test set takes the remainder."""
    unknown = set(split) - {"train", "val", "test"}
    if unknown:
        raise InputError(f"split: unknown key(s) {sorted(unknown)}; use train, val, test")
    fr = np.array([float(split.get(k, 0.0)) for k in ("train", "val", "test")])
    if (fr < 0).any() or not np.isfinite(fr).all() or fr.sum() <= 0 or fr[0] <= 0:
        raise InputError(f"split fractions must be >= 0 with train > 0, got {dict(split)}")
    fr = fr / fr.sum()
    n_train = int(round(fr[0] * n))
    n_val = min(int(round(fr[1] * n)), n - n_train)
    labels = np.full(n, 2, dtype=np.int8)
    perm = np.random.default_rng(seed).permutation(n)
    labels[perm[:n_train]] = 0
    labels[perm[n_train:n_train + n_val]] = 1
    return labels


def _write(path: Path, momenta: np.ndarray, amplitudes: np.ndarray, labels: np.ndarray, attrs: Mapping,
           weights: np.ndarray | None = None) -> None:
    inv = invariants(torch.from_numpy(momenta)).numpy()
    with h5py.File(path, "w") as f:
        f.create_dataset("momenta", data=momenta.astype(np.float64))
        f.create_dataset("invariants", data=inv)
        f.create_dataset("amplitudes", data=amplitudes.astype(np.float64))
        f.create_dataset("split", data=labels)
        if weights is not None:
            f.create_dataset("weights", data=weights.astype(np.float64))
        n_legs = momenta.shape[1]
        f.attrs.update({
            "units": "momenta GeV; invariants GeV^2; amplitudes: |M|^2 in the physics-core conventions "
                     "(GeV^(8-2n) for n legs, spin/colour averaged, no symmetry factor unless amplitude_kind=weighted)",
            "invariant_definition": INVARIANT_DEFINITION,
            "invariant_names": invariant_names(n_legs),
            "n_legs": n_legs,
            **attrs,
        })


def read_dataset(path: str | os.PathLike[str], parts: Sequence[int] | None = None) -> dict:
    """Arrays and attributes of a dataset file; ``parts`` (0 train, 1 val, 2 test) selects rows."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"amplitude dataset {path} does not exist")
    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in ("momenta", "invariants", "amplitudes", "split") if k not in f]
            if missing:
                raise InputError(f"amplitude dataset {path} lacks dataset(s) {', '.join(missing)}")
            split = f["split"][:]
            out = {k: f[k][:] for k in ("momenta", "invariants", "amplitudes", "weights") if k in f}
            attrs = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in f.attrs.items()}
    except OSError as exc:
        raise InputError(f"amplitude dataset {path} is not a readable HDF5 file: {exc}") from None
    if parts is not None:
        keep = np.isin(split, list(parts))
        out = {k: v[keep] for k, v in out.items()}
        split = split[keep]
    out["split"] = split
    out["attrs"] = attrs
    return out


def _flat_batch(process, n: int, gen: torch.Generator) -> torch.Tensor:
    r = torch.rand(n, process.n_random, generator=gen, dtype=torch.float64)
    point = process.map_point(r, 0)
    p = point.momenta
    ok = torch.isfinite(p).all(-1).all(-1) & torch.isfinite(point.weight) & (point.weight > 0)
    p = torch.where(ok[:, None, None], p, torch.zeros_like(p))
    ok = ok & process.cuts(p)
    return p[ok]


def _weighted_batch(process, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Multi-channel weights ``C alpha_c f_c`` and momenta of ``n`` points (channels drawn uniformly)."""
    n_ch = process.n_channels
    chan = torch.randint(n_ch, (n,), generator=gen)
    r = torch.rand(n, process.n_random, generator=gen, dtype=torch.float64)
    ws, ps = [], []
    for c in range(n_ch):
        idx = (chan == c).nonzero().squeeze(-1)
        if not idx.numel():
            continue
        w, p = process.integrand(r[idx], c)
        if n_ch > 1:
            w = w * process.channel_weights(p)[:, c] * n_ch
        ws.append(w)
        ps.append(p)
    return torch.cat(ws), torch.cat(ps)


class IntegratorSampler:
    """Points of a trained MadNIS integrator (``checkpoint``) of ``process``: ``(momenta, A, w)`` per
    batch, the exact amplitude ``A`` and weight ``w = f / q`` (pb) recovered from one integrand call."""

    def __init__(self, process, checkpoint: str | os.PathLike[str], seed: int) -> None:
        from ..madnis.integrator import CheckedIntegrand, load_integrator  # on use: the madnis library is heavy

        self.integrator, _, payload = load_integrator(str(checkpoint), process.device)
        trained = payload["process"].get("process")
        if trained != process.name:
            raise InputError(f"amplitudes: integrator checkpoint {checkpoint} is for process {trained!r}, "
                             f"not {process.name!r}")
        self.integrator.integrand = CheckedIntegrand(process).integrand()
        self.process = process
        torch.manual_seed(int(seed))

    def __call__(self, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        from ..madnis.events import event_momenta
        from ..madnis.integrator import draw

        proc = self.process
        s = draw(self.integrator, n, n)
        keep = s.func_vals > 0
        x, channels, f = s.x[keep], s.channels[keep].to(proc.device), s.func_vals[keep].to(proc.dtype)
        kin = event_momenta(proc, x, channels, weight=True)
        p = kin["partonic"]
        s_hat = minkowski_square(p[:, 0] + p[:, 1])
        # invert Process.integrand: f = ME * ps_weight / (2 s_hat) * GEV2_TO_PB
        me = f * 2.0 * s_hat / (kin["weight"] * GEV2_TO_PB)
        if amplitude_kind(proc) == "bare":  # ME = S L |M|^2 (L = 1 for a partonic process)
            me = me / proc.subprocesses[0].symmetry_factor
            if proc.hadronic:
                me = me / proc.parton_luminosities(p, kin["x1"], kin["x2"])[:, 0]
        lab = kin["lab"]
        return lab, me, s.weights[keep].to(torch.float64)


def make_dataset(process, n_points: int, output, *, sampling: str = "flat", split: Mapping[str, float],
                 seed: int, batch_size: int = 50_000, w_max_quantile: float = 0.99,
                 integrator: str | os.PathLike[str] | None = None) -> dict:
    """Sample ``n_points`` phase-space points of ``process`` passing its cuts, evaluate the exact
    amplitude and write the HDF5 file ``output`` (module doc). ``integrator``: the MadNIS checkpoint
    that ``sampling: integrator`` draws from. Returns a metrics dict."""
    if sampling not in SAMPLING:
        raise InputError(f"amplitudes: sampling must be one of {', '.join(SAMPLING)}, got {sampling!r}")
    if int(n_points) < 3:
        raise InputError(f"amplitudes: n_points must be at least 3, got {n_points}")
    if sampling == "integrator" and not integrator:
        raise InputError("amplitudes: sampling: integrator needs the MadNIS integrator checkpoint of the process")
    n_points, batch_size = int(n_points), int(batch_size)
    gen = torch.Generator().manual_seed(int(seed))
    kind = amplitude_kind(process)
    t0 = time.perf_counter()
    w_max = None
    sampler = IntegratorSampler(process, integrator, seed) if sampling == "integrator" else None
    weights: list[torch.Tensor] = []
    if sampling == "importance":
        w, _ = _weighted_batch(process, batch_size, gen)
        pos = w[w > 0].to(torch.float64).cpu()
        if not pos.numel():
            raise InputError(f"amplitudes: no point of {process.name} passes the cuts in the importance pilot batch")
        w_max = float(torch.quantile(pos[: 1 << 24], w_max_quantile))
    momenta, amps = [], []
    have, generated, me_time, me_count = 0, 0, 0.0, 0
    progress = Progress(f"amplitude_data {process.name}", n_points, "points")
    while have < n_points:
        w = None
        if sampler is not None:  # the integrand evaluated the exact amplitude (timed with it)
            t1 = time.perf_counter()
            p, a, w = sampler(batch_size)
            me_time += time.perf_counter() - t1
            me_count += p.shape[0]
        else:
            if sampling == "flat":
                p = _flat_batch(process, batch_size, gen)
            else:
                wp, p = _weighted_batch(process, batch_size, gen)  # unweighted: no weight written
                u = torch.rand(wp.shape[0], generator=gen, dtype=torch.float64).to(wp.device)
                p = p[(wp > 0) & (u * w_max < wp)]
            a = None
            if p.shape[0]:
                t1 = time.perf_counter()
                a = exact_amplitude(process, p, kind)
                if a.is_cuda:
                    torch.cuda.synchronize()
                me_time += time.perf_counter() - t1
                me_count += p.shape[0]
        generated += batch_size
        if a is not None:
            ok = torch.isfinite(a) & (a > 0)
            momenta.append(p[ok].to(torch.float64).cpu())
            amps.append(a[ok].to(torch.float64).cpu())
            if w is not None:
                weights.append(w[ok.to(w.device)].cpu())
            n_ok = int(ok.sum())
            have += n_ok
            progress.update(n_ok)
        if generated > 1000 * n_points + 100 * batch_size:
            raise InputError(f"amplitudes: {process.name} keeps fewer than 1 in 1000 points; check its cuts")
    progress.done()
    mom = torch.cat(momenta)[:n_points].numpy()
    amp = torch.cat(amps)[:n_points].numpy()
    wts = torch.cat(weights)[:n_points].numpy() if sampler is not None else None
    labels = split_labels(n_points, split, seed)
    attrs = {
        "process": process.name,
        "sampling": sampling,
        "seed": int(seed),
        "amplitude_kind": kind,
        "hadronic": bool(process.hadronic),
        "sqrt_s": float(process.sqrt_s) if process.hadronic else 0.0,
        "identical_legs": identical_legs(process),
        "source": f"lhcchain.physics process {process.name}",
        "split_fractions": [float(split.get(k, 0.0)) for k in ("train", "val", "test")],
        "w_max": float(w_max) if w_max is not None else 0.0,
    }
    if sampler is not None:
        attrs["integrator"] = str(integrator)
    with staged_outputs(output) as (tmp,):
        _write(tmp, mom, amp, labels, attrs, wts)
    elapsed = time.perf_counter() - t0
    metrics = {
        "process": process.name,
        "n_points": n_points,
        "sampling": sampling,
        "amplitude_kind": kind,
        "points_generated": generated,
        "acceptance": n_points / max(generated, 1),
        "exact_evals_per_s": me_count / max(me_time, 1e-12),
        "time_s": elapsed,
        "n_train": int((labels == 0).sum()),
        "n_val": int((labels == 1).sum()),
        "n_test": int((labels == 2).sum()),
        "log_amplitude_mean": float(np.log(amp).mean()),
        "log_amplitude_std": float(np.log(amp).std()),
    }
    log.info("amplitude_data %s: %d points in %.1f s (exact |M|^2 %.0f evals/s)", process.name, n_points,
             elapsed, metrics["exact_evals_per_s"])
    return metrics


def _load_external(source: Path, momenta_key: str, amplitudes_key: str) -> tuple[np.ndarray, np.ndarray]:
    if not source.is_file():
        raise InputError(f"external amplitudes file {source} does not exist")
    suffix = source.suffix.lower()
    try:
        if suffix == ".npz":
            with np.load(source, allow_pickle=False) as f:
                arrays = {k: f[k] for k in (momenta_key, amplitudes_key) if k in f.files}
                keys = list(f.files)
        elif suffix in (".h5", ".hdf5", ".hdf"):
            with h5py.File(source, "r") as f:
                arrays = {k: f[k][()] for k in (momenta_key, amplitudes_key) if k in f and isinstance(f[k], h5py.Dataset)}
                keys = list(f.keys())
        else:
            raise InputError(f"external amplitudes file {source}: use .npz (arrays by key) or .h5/.hdf5 (datasets), got {suffix!r}")
    except (OSError, ValueError) as exc:
        raise InputError(f"external amplitudes file {source} cannot be read: {exc}") from None
    for key in (momenta_key, amplitudes_key):
        if key not in arrays:
            raise InputError(f"external amplitudes file {source} has no key {key!r}; keys: {', '.join(keys)}")
    return arrays[momenta_key], arrays[amplitudes_key]


def import_dataset(source, output, *, split: Mapping[str, float], seed: int, momenta_key: str = "momenta",
                   amplitudes_key: str = "amplitudes", name: str | None = None,
                   identical: Sequence[int] = ()) -> dict:
    """Amplitudes computed elsewhere (e.g. one-loop gg -> gamma gamma g from NJet) to the stage's HDF5.

    ``source``: ``.npz`` with arrays ``momenta_key`` (N, n, 4), GeV, incoming first, and
    ``amplitudes_key`` (N,) (|M|^2, > 0); or ``.h5``/``.hdf5`` with datasets of those names. ``name``:
    the process name recorded (default the file stem); ``identical``: indices of outgoing legs a
    deep-sets network may treat as identical (e.g. ``[2, 3]`` for the photons of gg -> gamma gamma g).
    """
    source = Path(source)
    mom, amp = _load_external(source, momenta_key, amplitudes_key)
    where = f"external amplitudes file {source}"
    mom = np.asarray(mom)
    amp = np.asarray(amp)
    if mom.ndim != 3 or mom.shape[-1] != 4 or mom.shape[1] < 3 or not np.issubdtype(mom.dtype, np.number):
        raise InputError(f"{where}: key {momenta_key!r} must be numeric of shape (N, n_legs >= 3, 4), got {mom.shape} {mom.dtype}")
    if amp.ndim != 1 or not np.issubdtype(amp.dtype, np.number):
        raise InputError(f"{where}: key {amplitudes_key!r} must be numeric of shape (N,), got {amp.shape} {amp.dtype}")
    if amp.shape[0] != mom.shape[0]:
        raise InputError(f"{where}: {amplitudes_key!r} has {amp.shape[0]} rows but {momenta_key!r} has {mom.shape[0]}")
    if amp.shape[0] < 3:
        raise InputError(f"{where}: need at least 3 points, got {amp.shape[0]}")
    mom = mom.astype(np.float64)
    amp = amp.astype(np.float64)
    bad = ~np.isfinite(mom).all(axis=(1, 2))
    if bad.any():
        raise InputError(f"{where}: key {momenta_key!r} has {int(bad.sum())} non-finite row(s), first at row {int(np.argmax(bad))}")
    bad = ~np.isfinite(amp)
    if bad.any():
        raise InputError(f"{where}: key {amplitudes_key!r} has {int(bad.sum())} non-finite value(s), first at row {int(np.argmax(bad))}")
    bad = amp <= 0
    if bad.any():
        raise InputError(f"{where}: key {amplitudes_key!r} has {int(bad.sum())} value(s) <= 0, first at row {int(np.argmax(bad))}; "
                         "amplitudes must be positive (|M|^2)")
    n_legs = mom.shape[1]
    for leg in identical:
        if not 2 <= int(leg) < n_legs:
            raise InputError(f"{where}: identical leg {leg} is not an outgoing leg (2..{n_legs - 1})")
    labels = split_labels(mom.shape[0], split, seed)
    attrs = {
        "process": name or source.stem,
        "sampling": "external",
        "seed": int(seed),
        "amplitude_kind": "external",
        "hadronic": False,
        "sqrt_s": 0.0,
        "identical_legs": [int(i) for i in identical],
        "source": str(source),
        "split_fractions": [float(split.get(k, 0.0)) for k in ("train", "val", "test")],
        "w_max": 0.0,
    }
    with staged_outputs(output) as (tmp,):
        _write(tmp, mom, amp, labels, attrs)
    return {
        "process": attrs["process"],
        "n_points": int(mom.shape[0]),
        "sampling": "external",
        "source": str(source),
        "n_train": int((labels == 0).sum()),
        "n_val": int((labels == 1).sum()),
        "n_test": int((labels == 2).sum()),
        "log_amplitude_mean": float(np.log(amp).mean()),
        "log_amplitude_std": float(np.log(amp).std()),
    }
