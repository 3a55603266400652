"""Fixtures of the reweight tests: one torch thread, small fast classifier settings."""

from __future__ import annotations

import pytest

from ..conftest import torch_threads

FAST = {"hidden": 32, "layers": 2, "epochs": 200, "batch_size": 256, "lr": 3e-3, "patience": 8, "folds": 5, "repeats": 2}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    with torch_threads(1):
        yield
