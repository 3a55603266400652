"""Device selection shared by every stage that runs torch.

``device`` in the config is ``auto`` (CUDA when available, else CPU), ``cpu`` or ``cuda``
(``cuda:N`` also accepted). The rule's ``threads`` sets torch's intra-op thread count, so
that ``snakemake --cores N`` never oversubscribes the machine.
"""

from __future__ import annotations

import torch

from .errors import InputError


def select_device(device: str = "auto", threads: int | None = None) -> torch.device:
    """Return the torch device named by ``device`` and set torch's thread count to ``threads``."""
    if threads is not None and threads > 0:
        torch.set_num_threads(int(threads))
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InputError(f"config key 'device' is {device!r} but no CUDA device is available; use 'auto' or 'cpu'")
        return torch.device(device)
    raise InputError(f"config key 'device' must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}")
