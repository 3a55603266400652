"""Fixtures of the generate tests: a small prepared Z + jets dataset made by the real ``prepare`` stage.

The input is a synthetic NanoAOD-style ROOT file (particle level: ``GenDressedLepton_*``, ``GenJet_*``,
``GenMET_*``): Z bosons of Breit-Wigner mass decaying isotropically to e+e- or mu+mu-, plus 0-3 jets
with falling p_T. ``prepare`` selects it and writes the train/val/test parquet files and metadata.json,
so the tests read exactly what the workflow gives the generate stage.
"""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot
import yaml

import lhcchain.prepare.run as prepare_run
from lhcchain.prepare.run import output_paths, prepare
from lhcchain.simulate.run import branch_types

from ..conftest import torch_threads

ROOT = Path(__file__).resolve().parents[2]
N_EVENTS = 6000


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    with torch_threads(1):
        yield


def synthetic_nanoaod(path: Path, n: int, seed: int) -> None:
    """Write ``n`` synthetic Z(-> l l) + jets events at particle level to ``path`` (module doc)."""
    rng = np.random.default_rng(seed)
    mass = 91.19 + 1.25 * np.tan(np.pi * (rng.uniform(size=n) - 0.5))  # Breit-Wigner, Gamma = 2.5 GeV
    mass = np.clip(mass, 50.0, 200.0)
    pt_z, y_z, phi_z = rng.exponential(20.0, n), rng.normal(0.0, 1.0, n), rng.uniform(-np.pi, np.pi, n)
    cos_t, phi_d = rng.uniform(-1, 1, n), rng.uniform(-np.pi, np.pi, n)
    sin_t = np.sqrt(1 - cos_t**2)
    half = mass / 2
    d = np.stack([half * sin_t * np.cos(phi_d), half * sin_t * np.sin(phi_d), half * cos_t], 1)
    mt = np.hypot(mass, pt_z)
    p_z = np.stack([pt_z * np.cos(phi_z), pt_z * np.sin(phi_z), mt * np.sinh(y_z)], 1)
    e_z = mt * np.cosh(y_z)
    beta = p_z / e_z[:, None]
    gamma = e_z / mass
    leptons = []
    for sign in (1, -1):
        q = sign * d
        bq = (beta * q).sum(1)
        e_rest = half
        p = q + ((gamma - 1) * bq / (beta**2).sum(1) + gamma * e_rest)[:, None] * beta
        pt = np.hypot(p[:, 0], p[:, 1])
        leptons.append((pt, np.arcsinh(p[:, 2] / pt), np.arctan2(p[:, 1], p[:, 0])))
    flavour = rng.choice([11, 13], n)
    lep_mass = np.where(flavour == 11, 0.000511, 0.10566)
    order = leptons[0][0] >= leptons[1][0]
    lead = [np.where(order, a, b) for a, b in zip(leptons[0], leptons[1])]
    sub = [np.where(order, b, a) for a, b in zip(leptons[0], leptons[1])]
    lep_pdg = np.stack([np.where(order, -flavour, flavour), np.where(order, flavour, -flavour)], 1)
    lep = {"pt": np.stack([lead[0], sub[0]], 1), "eta": np.stack([lead[1], sub[1]], 1), "phi": np.stack([lead[2], sub[2]], 1)}

    n_jets = rng.choice([0, 1, 2, 3], n, p=[0.2, 0.45, 0.25, 0.1])
    counts = n_jets
    total = int(counts.sum())
    jet_pt = 21.0 + rng.exponential(25.0, total)
    jet = {"pt": jet_pt, "eta": rng.normal(0.0, 1.8, total), "phi": rng.uniform(-np.pi, np.pi, total),
           "mass": jet_pt * rng.uniform(0.05, 0.2, total)}
    tree = {
        "run": np.ones(n, np.int64), "event": np.arange(n, dtype=np.int64), "genWeight": np.ones(n, np.float32),
        "GenDressedLepton": ak.from_regular(ak.zip({
            "pt": lep["pt"].astype(np.float32), "eta": lep["eta"].astype(np.float32), "phi": lep["phi"].astype(np.float32),
            "mass": np.stack([lep_mass] * 2, 1).astype(np.float32), "pdgId": lep_pdg.astype(np.int32)})),
        "GenJet": ak.zip({k: ak.unflatten(v.astype(np.float32), counts) for k, v in jet.items()}),
        "GenMET_pt": rng.exponential(5.0, n).astype(np.float32), "GenMET_phi": rng.uniform(-np.pi, np.pi, n).astype(np.float32),
    }
    with uproot.recreate(path) as f:
        f.mktree("Events", branch_types(tree),
                 counter_name=lambda c: f"n{c}", field_name=lambda o, i: f"{o}_{i}")
        f["Events"].extend(tree)


def skip_figures(hists, levels, cutflow, tmp, sample) -> None:
    for key in ("mll_plot", "jets_plot", "cutflow_plot"):
        Path(tmp[key]).write_bytes(b"")


@pytest.fixture(scope="session")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder with the prepare stage's outputs (train/val/test.parquet, metadata.json) of the synthetic sample."""
    base = tmp_path_factory.mktemp("gen_data")
    nano = base / "synthetic_nano.root"
    synthetic_nanoaod(nano, N_EVENTS, seed=5)
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["prepare"]
    cfg["levels"] = ["particle"]
    outs = output_paths(base / "data")
    mp = pytest.MonkeyPatch()
    mp.setattr(prepare_run, "_figures", skip_figures)
    try:
        prepare("synthetic", [nano], outs, cfg, seed=3)
    finally:
        mp.undo()
    return base / "data"
