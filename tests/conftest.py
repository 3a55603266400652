"""Shared pytest fixtures: the real event files in tests/data (see tests/data/README.md)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
TEST_DATA = ROOT / "tests" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Folder ``tests/data``: small real files written by other programs (CMS NanoAOD, MadGraph, POWHEG)."""
    return TEST_DATA


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """At most ``n`` torch intra-op threads inside the block, the previous count restored afterwards.
    Small batched kernels gain nothing from more threads and contend on a busy 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(min(n, before))
    try:
        yield
    finally:
        torch.set_num_threads(before)
