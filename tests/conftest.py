"""Shared pytest fixtures: paths to the real event files in ../shared/data."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder ``../shared/data`` beside the project checkout (real files written by other programs)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"shared test data not found at {SHARED_DATA}; the checkout must sit beside ../shared")
    return SHARED_DATA
