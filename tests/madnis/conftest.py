"""Shared fixtures of the MadNIS-stage tests: process entries from the config, tiny trained
integrators (drell_yan_zprime, gg_3g) and a tiny gg -> ggg amplitude surrogate, built once per
package on the CPU with one torch thread.

Independent helpers (written without :mod:`lhcchain`) for four-vectors ``(E, px, py, pz)`` in GeV.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest
import torch
import yaml

from lhcchain.config import resolve_settings
from lhcchain.madnis.integrator import CheckedIntegrand, save_integrator, train_madnis
from lhcchain.physics.process import Process
from lhcchain.physics.processes import build_process

from ..conftest import torch_threads

ROOT = Path(__file__).resolve().parents[2]
CPU = torch.device("cpu")
TINY: dict[str, Any] = {"steps": 5, "batch_size": 256, "vegas": {"iterations": 2, "samples_per_channel": 200},
                        "flow": {"layers": 2, "units": 16, "bins": 8}}
"""A few seconds of MadNIS training: enough to exercise every code path, not to converge."""
GG3G_SETTINGS: dict[str, Any] = {**TINY, "steps": 20, "batch_size": 512,
                                 "vegas": {"iterations": 4, "samples_per_channel": 1000}}
"""gg -> ggg weights have a heavy tail; a little more training keeps its unweighting affordable."""


class Trained(NamedTuple):
    """A trained integrator with the objects that made it."""

    integrator: Any
    function: CheckedIntegrand
    spec: dict
    settings: dict
    summary: dict

    @property
    def process(self) -> Process:
        return self.function.process


@pytest.fixture(autouse=True, scope="package")
def single_thread():
    """One torch intra-op thread for the MadNIS tests (restored afterwards)."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="package")
def process_specs() -> dict[str, dict]:
    """The ``processes`` entries of ``config/config.yaml``."""
    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["processes"]


@pytest.fixture(scope="package")
def dy_spec(process_specs) -> dict:
    return copy.deepcopy(process_specs["drell_yan_zprime"])


@pytest.fixture(scope="package")
def gg3g_spec(process_specs) -> dict:
    return copy.deepcopy(process_specs["gg_3g"])


@pytest.fixture(scope="package")
def dy_process(dy_spec) -> Process:
    return build_process(dy_spec, "cpu", 1)


@pytest.fixture(scope="package")
def gg3g_process(gg3g_spec) -> Process:
    return build_process(gg3g_spec, "cpu", 1)


def _train(spec: dict, settings: dict, seed: int) -> Trained:
    function = CheckedIntegrand(build_process(spec, "cpu", 1))
    resolved = resolve_settings(settings, "madnis.training")
    integrator, summary = train_madnis(function, resolved, CPU, seed)
    return Trained(integrator, function, spec, resolved, summary)


@pytest.fixture(scope="package")
def dy_trained(dy_spec) -> Trained:
    """MadNIS on drell_yan_zprime after :data:`TINY` training (seed 1)."""
    return _train(dy_spec, TINY, seed=1)


@pytest.fixture(scope="package")
def gg3g_trained(gg3g_spec) -> Trained:
    """MadNIS on gg_3g after :data:`GG3G_SETTINGS` training (seed 2)."""
    return _train(gg3g_spec, GG3G_SETTINGS, seed=2)


@pytest.fixture(scope="package")
def gg3g_checkpoint(gg3g_trained, tmp_path_factory) -> Path:
    """The gg_3g integrator saved as a stage checkpoint."""
    path = tmp_path_factory.mktemp("madnis_gg3g") / "integrator.pt"
    t = gg3g_trained
    save_integrator(str(path), t.integrator, t.spec, t.settings, {k: v for k, v in t.summary.items() if k != "loss"})
    return path


@pytest.fixture(scope="package")
def gg3g_surrogate(gg3g_process, tmp_path_factory) -> Path:
    """A small gg -> ggg amplitude surrogate (as in ``tests/amplitudes``: flat dataset, short training)."""
    from lhcchain.amplitudes.data import make_dataset
    from lhcchain.amplitudes.train import train

    folder = tmp_path_factory.mktemp("madnis_surrogate")
    make_dataset(gg3g_process, 3000, folder / "gg_3g.h5", sampling="flat",
                 split={"train": 0.8, "val": 0.1, "test": 0.1}, seed=11, batch_size=4000)
    settings = {"hidden": 64, "layers": 3, "epochs": 20, "batch_size": 256, "lr": 3e-3, "patience": 100,
                "max_minutes": 1.0}
    train(folder / "gg_3g.h5", folder / "surrogate.pt", settings, device="cpu", threads=1, seed=1)
    return folder / "surrogate.pt"


# ----------------------------------------------------------------------------- independent kinematics


def msq(p: np.ndarray) -> np.ndarray:
    """Minkowski square over the last axis, metric (+,-,-,-)."""
    return p[..., 0] ** 2 - (p[..., 1:] ** 2).sum(-1)


def pt(p: np.ndarray) -> np.ndarray:
    return np.hypot(p[..., 1], p[..., 2])


def eta(p: np.ndarray) -> np.ndarray:
    return np.arcsinh(p[..., 3] / pt(p))


def phi(p: np.ndarray) -> np.ndarray:
    return np.arctan2(p[..., 2], p[..., 1])
