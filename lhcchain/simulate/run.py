"""One chunk of the ``simulate`` stage: Pythia -> particle level + fast detector -> NanoAOD-style ROOT.

Branches (NanoAOD names; every collection ``X`` has its counter ``nX``), GeV and radians:
  ``run, luminosityBlock, event, genWeight``;
  ``LHEPart_{pt,eta,phi,mass,pdgId,status,incomingpz}`` the hard process (status -1 in, 2 intermediate, 1 out);
  ``GenDressedLepton_{pt,eta,phi,mass,pdgId}``; ``GenJet_{pt,eta,phi,mass,nConstituents,girth,tau21}``;
  ``GenMET_{pt,phi}``; ``Muon_*``/``Electron_*`` with ``charge, pdgId, pfRelIso03_all``;
  ``Jet_*`` (as GenJet); ``MET_{pt,phi}``.
``run`` is the chunk index and ``event`` counts from 0 within the chunk, so (run, event) is unique per sample;
for LHE input ``event`` is the event's position in the LHE file (from 0), which links it to its hard event.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from typing import Any

import awkward as ak
import numpy as np
import uproot

from ..config import check_renamed
from ..io import derive_seed, staged_outputs, write_json
from .detector import reconstruct
from .objects import hard_process, particle_level
from .pythia import GeneratorConfig, chunk_offsets, generate, split_events

log = logging.getLogger(__name__)


def chunk_config(sample: str, sample_cfg: Mapping[str, Any], chunk: int, seed: int) -> GeneratorConfig:
    """The generator configuration of chunk ``chunk`` of ``sample`` (seed derived from seed, sample, chunk)."""
    check_renamed(sample_cfg, f"sample {sample!r}")
    counts = split_events(int(sample_cfg["n_events"]), int(sample_cfg["chunks"]))
    if not 0 <= chunk < len(counts):
        raise ValueError(f"sample {sample!r} has {len(counts)} chunks; chunk {chunk} does not exist")
    return GeneratorConfig(
        process=sample_cfg["process"],
        n_events=counts[chunk],
        seed=derive_seed(seed, sample, chunk),
        sqrt_s=float(sample_cfg.get("sqrt_s", GeneratorConfig.sqrt_s)),
        settings=tuple(sample_cfg.get("settings", ())),
        lhe_file=sample_cfg.get("lhe_file"),
        skip=chunk_offsets(counts)[chunk],
    )


def event_record(batch: ak.Array, detector: Mapping[str, Any], jets: Mapping[str, Any], rng: np.random.Generator, chunk: int) -> dict[str, Any]:
    """NanoAOD-style collections (name -> array) for one generated batch."""
    n = len(batch)
    gen = particle_level(batch.particles, jets["radius"], jets["pt_min"], jets.get("dress_radius", 0.1))
    reco = reconstruct(batch.particles, detector, rng, jets["radius"], jets["pt_min"])
    out: dict[str, Any] = {
        "run": np.full(n, chunk, dtype=np.int32),
        "luminosityBlock": np.ones(n, dtype=np.int32),
        "event": ak.to_numpy(batch.index),
        "genWeight": ak.to_numpy(batch.weight).astype(np.float32),
        "LHEPart": hard_process(batch.hard),
    }
    for name, coll in {**gen, **reco}.items():
        if name in ("GenMET", "MET"):
            out[f"{name}_pt"], out[f"{name}_phi"] = ak.to_numpy(coll.pt), ak.to_numpy(coll.phi)
        else:
            out[name] = coll
    return out


def branch_types(record: Mapping[str, Any]) -> dict[str, Any]:
    """uproot ``mktree`` types for a record of collections (NanoAOD layout: ``nX`` counters, ``X_field``)."""
    return {k: v.type.content if isinstance(v, ak.Array) else v.dtype for k, v in record.items()}


def simulate_chunk(
    sample: str,
    sample_cfg: Mapping[str, Any],
    chunk: int,
    seed: int,
    detector: Mapping[str, Any],
    jets: Mapping[str, Any],
    output: str | os.PathLike[str],
    summary: str | os.PathLike[str],
    batch_size: int = 500,
) -> dict[str, Any]:
    """Generate, reconstruct and write one chunk to ``output`` (ROOT) and its figures to ``summary`` (JSON).

    Memory stays bounded by ``batch_size`` events, whatever the chunk size.
    """
    cfg = chunk_config(sample, sample_cfg, chunk, seed)
    rng = np.random.default_rng(derive_seed(seed, sample, chunk, "detector"))
    t0 = time.perf_counter()
    n_done, sum_w = 0, 0.0
    gen_time = 0.0
    with staged_outputs(output, summary) as (root_tmp, json_tmp):
        with uproot.recreate(root_tmp) as f:
            t_gen = time.perf_counter()
            sigma_pb = float("nan")
            for batch in generate(cfg, batch_size=batch_size):
                sigma_pb = float(batch.attrs["cross_section_pb"])
                gen_time += time.perf_counter() - t_gen
                record = event_record(batch, detector, jets, rng, chunk)
                if n_done == 0:
                    f.mktree("Events", branch_types(record), counter_name=lambda c: f"n{c}", field_name=lambda o, i: f"{o}_{i}")
                f["Events"].extend(record)
                n_done += len(batch)
                sum_w += float(ak.sum(batch.weight))
                t_gen = time.perf_counter()
        wall = time.perf_counter() - t0
        stats = {
            "sample": sample,
            "process": cfg.process,
            "cross_section_pb": sigma_pb,
            "chunk": chunk,
            "seed": cfg.seed,
            "n_events": n_done,
            "sum_weights": sum_w,
            "wall_s": wall,
            "events_per_s": n_done / wall if wall > 0 else 0.0,
            "generator_fraction": gen_time / wall if wall > 0 else 0.0,
        }
        write_json(json_tmp, stats)
    log.info("chunk %d of %s: %d events in %.1f s (%.1f events/s)", chunk, sample, n_done, wall, stats["events_per_s"])
    return stats
