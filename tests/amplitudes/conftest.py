"""Shared fixtures of the amplitude-surrogate tests: one small gg -> ggg dataset per session."""

from __future__ import annotations

import pytest

from lhcchain.amplitudes.data import make_dataset
from lhcchain.physics import get_process

from ..conftest import torch_threads

SPLIT = {"train": 0.7, "val": 0.15, "test": 0.15}


@pytest.fixture(autouse=True, scope="module")
def two_threads():
    with torch_threads(2):
        yield


@pytest.fixture(scope="session")
def gg3g():
    return get_process("gg_3g")


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory, gg3g):
    """3000 flat gg -> ggg points passing the cuts, with their metrics."""
    path = tmp_path_factory.mktemp("amp") / "gg_3g.h5"
    metrics = make_dataset(gg3g, 3000, path, sampling="flat", split=SPLIT, seed=11, batch_size=4000)
    return path, metrics
