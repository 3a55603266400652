"""Pythia 8 event generation (``pythia8mc``), as columnar batches of final-state particles.

Processes are named presets of Pythia settings; a sample adds its own settings (a tune
variation, say) on top. An external LHE file is showered with ``Beams:frameType = 4``.
Momenta are in GeV, in the lab frame.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import awkward as ak
import numpy as np

from ..errors import InputError
from ..io import Progress

log = logging.getLogger(__name__)

PROCESSES: dict[str, list[str]] = {
    # pp -> Z/gamma* -> l+l- (l = e, mu) with the full gamma*/Z interference; jets come from the
    # matrix-element-corrected parton shower (TimeShower/SpaceShower:MEcorrections, on by default).
    "drell_yan_ll": [
        "WeakSingleBoson:ffbar2gmZ = on",
        "23:onMode = off",
        "23:onIfAny = 11 13",
        "PhaseSpace:mHatMin = 50.",
    ],
    # Z/gamma* + 1 parton at matrix-element level (harder jets per generated event).
    "drell_yan_ll_jet": [
        "WeakBosonAndParton:qqbar2gmZg = on",
        "WeakBosonAndParton:qg2gmZq = on",
        "23:onMode = off",
        "23:onIfAny = 11 13",
        "PhaseSpace:mHatMin = 50.",
        "PhaseSpace:pTHatMin = 15.",
    ],
}

MB_TO_PB = 1e9

_QUIET = [
    "Next:numberCount = 0",
    "Next:numberShowEvent = 0",
    "Next:numberShowInfo = 0",
    "Next:numberShowProcess = 0",
    "Init:showChangedSettings = off",
    "Init:showChangedParticleData = off",
    "Init:showProcesses = off",
    "Init:showMultipartonInteractions = off",
]

# LHE-style status of hard-process entries, keyed by Pythia's |status| in the process record.
_HARD_STATUS = {21: -1, 22: 2, 23: 1}


@dataclass(frozen=True)
class GeneratorConfig:
    """What one chunk generates.

    ``process`` names a preset of :data:`PROCESSES`, or is ``"lhe"`` to shower ``lhe_file``
    (its events ``skip`` .. ``skip + n_events``). ``sqrt_s`` is the collider energy in GeV (ignored for LHE input,
    whose beams come from the file). ``settings`` are extra ``readString`` lines.
    """

    process: str
    n_events: int
    seed: int
    sqrt_s: float = 13000.0
    settings: tuple[str, ...] = ()
    lhe_file: str | None = None
    skip: int = 0


def pythia_settings(cfg: GeneratorConfig) -> list[str]:
    """All ``readString`` lines for ``cfg``, in the order they are applied."""
    if cfg.process == "lhe":
        if not cfg.lhe_file:
            raise InputError("sample with process 'lhe' needs the key 'lhe_file'")
        if not Path(cfg.lhe_file).is_file():
            raise InputError(f"LHE file {cfg.lhe_file} does not exist")
        base = ["Beams:frameType = 4", f"Beams:LHEF = {os.fspath(cfg.lhe_file)}", f"Beams:nSkipLHEFatInit = {cfg.skip}"]
    elif cfg.process in PROCESSES:
        base = [f"Beams:eCM = {cfg.sqrt_s}", *PROCESSES[cfg.process]]
    else:
        raise InputError(f"unknown process {cfg.process!r}; expected 'lhe' or one of {sorted(PROCESSES)}")
    return [*_QUIET, *base, "Random:setSeed = on", f"Random:seed = {cfg.seed}", *cfg.settings]


def _make_pythia(cfg: GeneratorConfig):  # noqa: ANN202 - pythia8mc.Pythia has no stubs
    import pythia8mc

    pythia = pythia8mc.Pythia("", False)
    for line in pythia_settings(cfg):
        if not pythia.readString(line):
            raise InputError(f"Pythia rejected the setting {line!r} (sample settings)")
    if not pythia.init():
        where = f"LHE file {cfg.lhe_file}" if cfg.process == "lhe" else f"process {cfg.process!r}"
        raise InputError(f"Pythia failed to initialise for {where}; see the log for Pythia's message")
    return pythia


def generate(cfg: GeneratorConfig, batch_size: int = 500, max_failures: int = 20) -> Iterator[ak.Array]:
    """Generate ``cfg.n_events`` events in batches of ``batch_size``.

    Each batch is an awkward array of events with fields
      ``particles``: final-state particles (``px, py, pz, E`` in GeV, ``pdgId``, ``charge``,
      ``prompt``: not from hadronisation or hadron decays, i.e. Pythia |status| < 81);
      ``hard``: the hard-process record (``px, py, pz, E, pdgId``, ``status`` -1 incoming,
      2 intermediate, 1 outgoing, as in LHE);
      ``weight``: the event weight (``Info::weight``);
      ``index``: the event's number in the input: for LHE input its position in the file (from 0; an
      event Pythia fails on is skipped, and the numbers of the later ones still match the file),
      otherwise the count of generated events from 0;
    and ``attrs["cross_section_pb"]``, Pythia's running estimate of the generated cross-section in pb.
    For LHE input fewer events come back when the file ends or Pythia fails on an event of the slice.
    """
    pythia = _make_pythia(cfg)
    charge_cache: dict[int, float] = {}
    progress = Progress(f"pythia ({cfg.process})", total=cfg.n_events)
    done, failures, calls = 0, 0, 0
    while done < cfg.n_events:
        final: list[tuple] = []
        hard: list[tuple] = []
        n_part, n_hard, weights, index = [], [], [], []
        target = min(batch_size, cfg.n_events - done)
        while len(weights) < target:
            if cfg.process == "lhe" and calls == cfg.n_events:
                break  # the chunk's slice is read: a failed event is not replaced by the next chunk's first
            calls += 1  # each call reads one LHE event, whether or not Pythia succeeds
            if not pythia.next():
                if cfg.process == "lhe" and pythia.infoPython().atEndOfFile():
                    break
                failures += 1
                if failures > max_failures:
                    raise RuntimeError(f"Pythia failed {failures} times for process {cfg.process!r}; aborting")
                continue
            n0, h0 = len(final), len(hard)
            final.extend((p.px(), p.py(), p.pz(), p.e(), p.id(), p.statusAbs()) for p in pythia.event if p.isFinal())
            hard.extend((p.px(), p.py(), p.pz(), p.e(), p.id(), _HARD_STATUS[p.statusAbs()])
                        for p in pythia.process if p.statusAbs() in _HARD_STATUS)
            n_part.append(len(final) - n0)
            n_hard.append(len(hard) - h0)
            weights.append(pythia.infoPython().weight())  # infoPython() returns a snapshot
            index.append(cfg.skip + calls - 1 if cfg.process == "lhe" else done + len(weights) - 1)
        if not weights:
            break
        yield _batch(final, hard, n_part, n_hard, weights, index, pythia, charge_cache)
        done += len(weights)
        progress.update(len(weights))
        if len(weights) < target:
            break
    progress.done()
    log.info("pythia: sigmaGen = %.5g pb over %d events", pythia.infoPython().sigmaGen() * MB_TO_PB, done)


def _columns(rows: list[tuple], n_cols: int) -> np.ndarray:
    return np.asarray(rows, dtype=np.float64).reshape(-1, n_cols)


def _batch(final: list[tuple], hard: list[tuple], n_part: list[int], n_hard: list[int], weights: list[float],
           index: list[int], pythia, charge_cache: dict[int, float]) -> ak.Array:  # noqa: ANN001 - pythia8mc.Pythia has no stubs
    """Columnar batch of events from per-particle rows ``(px, py, pz, E, pdgId, status)``."""
    f, h = _columns(final, 6), _columns(hard, 6)
    pid = f[:, 4].astype(np.int32)
    for i in np.unique(pid):
        charge_cache.setdefault(int(i), pythia.particleData.charge(int(i)))
    charge = np.array([charge_cache[int(i)] for i in pid], dtype=np.float32)
    particles = ak.zip({"px": f[:, 0], "py": f[:, 1], "pz": f[:, 2], "E": f[:, 3], "pdgId": pid, "charge": charge, "prompt": f[:, 5] < 81})
    hard_rec = ak.zip({"px": h[:, 0], "py": h[:, 1], "pz": h[:, 2], "E": h[:, 3], "pdgId": h[:, 4].astype(np.int32), "status": h[:, 5].astype(np.int32)})
    return ak.zip(
        {"particles": ak.unflatten(particles, np.asarray(n_part)), "hard": ak.unflatten(hard_rec, np.asarray(n_hard)),
         "weight": np.asarray(weights, dtype=np.float64), "index": np.asarray(index, dtype=np.int64)},
        depth_limit=1,
        attrs={"cross_section_pb": pythia.infoPython().sigmaGen() * MB_TO_PB},
    )


def split_events(n_events: int, chunks: int) -> list[int]:
    """Events per chunk: ``n_events`` split as evenly as possible over ``chunks``."""
    base, rest = divmod(n_events, chunks)
    return [base + (i < rest) for i in range(chunks)]


def chunk_offsets(counts: Sequence[int]) -> list[int]:
    """Index of the first event of each chunk (used to skip LHE events)."""
    return [int(x) for x in np.concatenate([[0], np.cumsum(counts)[:-1]])]
