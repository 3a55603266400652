"""Artifact I/O: atomic writes, metrics.json, progress logging and seed derivation.

A stage writes every output into a scratch folder beside its destination and moves the files
into place only once all of them are complete, so a failure leaves nothing partial and earlier
results untouched.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from .errors import InputError

log = logging.getLogger("lhcchain")


def derive_seed(*parts: object, modulus: int = 900_000_000) -> int:
    """Deterministic seed in ``[1, modulus]`` from e.g. ``(seed, sample, chunk)``.

    The default modulus matches Pythia's allowed ``Random:seed`` range.
    """
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") % modulus + 1


def require_outputs(outputs: Mapping[str, Any], keys: Sequence[str], step: str) -> None:
    """Raise ValueError (a wiring error, not bad input) when ``outputs`` lacks a path for any of ``keys``."""
    missing = [k for k in keys if k not in outputs]
    if missing:
        raise ValueError(f"{step} needs output paths for {missing}")


@contextlib.contextmanager
def staged_outputs(*destinations: str | os.PathLike[str]) -> Iterator[list[Path]]:
    """Yield scratch paths for ``destinations``; move them into place only if the block succeeds.

    On any exception the scratch folder is removed and existing destination files are untouched.
    """
    dests = [Path(d) for d in destinations]
    parent = dests[0].parent if dests else Path(".")
    parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".staging-", dir=parent))
    staged = [scratch / f"{i}-{d.name}" for i, d in enumerate(dests)]
    try:
        yield staged
        for src, dst in zip(staged, dests):
            if not src.exists():
                raise FileNotFoundError(f"stage did not write its output {dst}")
        for src, dst in zip(staged, dests):
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: str | os.PathLike[str], data: Mapping[str, Any]) -> None:
    """Write ``data`` as indented JSON (numpy scalars converted, NaN/inf written as null)."""
    Path(path).write_text(json.dumps(_jsonable(data), indent=2, sort_keys=False) + "\n")


class Progress:
    """Log a running count with its rate (``events/s``) at most every ``interval`` seconds."""

    def __init__(self, label: str, total: int | None = None, unit: str = "events", interval: float = 10.0) -> None:
        self.label, self.total, self.unit, self.interval = label, total, unit, interval
        self.count = 0
        self.start = self._last = time.perf_counter()

    def update(self, n: int) -> None:
        self.count += n
        now = time.perf_counter()
        if now - self._last >= self.interval:
            self._last = now
            self._emit(now)

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    @property
    def rate(self) -> float:
        return self.count / max(self.elapsed, 1e-12)

    def done(self) -> None:
        self._emit(time.perf_counter())

    def _emit(self, now: float) -> None:
        of = f"/{self.total}" if self.total else ""
        log.info("%s: %d%s %s, %.1f %s/s", self.label, self.count, of, self.unit, self.count / max(now - self.start, 1e-12), self.unit)


@contextlib.contextmanager
def stage_errors(logfile: str | os.PathLike[str] | None = None) -> Iterator[None]:
    """Log to ``logfile``; turn an :class:`InputError` into one clear line and exit status 1."""
    setup_logging(logfile)
    try:
        yield
    except InputError as exc:
        log.error("%s", exc)
        raise SystemExit(f"lhcchain: {exc}") from None


def setup_logging(logfile: str | os.PathLike[str] | None = None) -> None:
    """Send lhcchain's log to ``logfile`` (a rule's ``log:``) and to stderr."""
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if logfile:
        handlers.append(logging.FileHandler(logfile, mode="w"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s", handlers=handlers, force=True)


def read_parquet_columns(path: str | os.PathLike[str], columns: Sequence[str], expected: str,
                         optional: Sequence[str] = ()) -> Any:
    """A pyarrow table of ``columns``, plus those of ``optional`` that the file has, from the parquet
    file ``path``. An unreadable file or missing columns raise InputError naming the file, the columns
    and ``expected`` (what the file should be)."""
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(path).names
    except Exception as exc:  # pyarrow raises several types for damaged files
        raise InputError(f"{path}: not a readable parquet file ({type(exc).__name__}: {exc})") from exc
    lacking = [c for c in columns if c not in names]
    if lacking:
        more = f" and {len(lacking) - 8} more" if len(lacking) > 8 else ""
        raise InputError(f"{path}: lacks columns {lacking[:8]}{more} ({expected})")
    return pq.read_table(path, columns=list(dict.fromkeys([*columns, *(c for c in optional if c in names)])))
