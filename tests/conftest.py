"""Shared pytest fixtures: paths to the real event files in ../shared/data."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder ``../shared/data`` beside the project checkout (real files written by other programs)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"shared test data not found at {SHARED_DATA}; the checkout must sit beside ../shared")
    return SHARED_DATA


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
