"""Benchmark of the physics core: matrix-element evaluations per second, float64 against float32, in one run.

For every process of :func:`lhcchain.physics.processes.get_process` it draws phase-space points
that pass the cuts (channel 0, float64), then times ``Process.matrix_element`` (PDFs included for
hadronic processes) on the same points, in the partonic centre-of-mass frame with the momentum
fractions passed along as the integrand does, in float64 and float32, alternating the two and keeping the
best of ``--repeats`` timings, on the CPU and, when ``torch.cuda.is_available()``, on the GPU.
It reports evaluations per second, the float32/float64 speed ratio and the float32 accuracy
(maximum and median of ``|M32 - M64| / |M64|`` over the points).

Prints one JSON line. Usage: ``python bench/physics.py [--scale K] [--repeats R] [--threads T]``;
``--scale`` multiplies the default point counts (default run: well under a minute on one core).
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from lhcchain.physics.processes import get_process

#: Points per process at ``--scale 1`` (gg -> 4g with full colour is ~10x slower per point, gg -> 5g ~20x more).
POINTS = {"drell_yan": 20_000, "wbf_higgs": 2_000, "gg_3g": 4_000, "gg_4g": 400, "gg_5g": 40}


def _points(name: str, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """``n`` float64 CPU points passing the cuts of ``name`` (channel 0), as the integrand evaluates
    them: partonic centre-of-mass momenta and the momentum fractions (None for partonic processes)."""
    proc = get_process(name)
    parts: list[tuple] = []
    have, k = 0, 0
    while have < n:
        m = max(2 * (n - have), 64)
        r = torch.rand(m, proc.n_random, generator=torch.Generator().manual_seed(seed + k), dtype=torch.float64)
        point = proc.map_point(r)
        keep = (point.weight > 0) & proc.cuts(point.momenta)
        parts.append((point.partonic[keep], *(None if x is None else x[keep] for x in (point.x1, point.x2))))
        have += int(keep.sum())
        k += 1
    momenta = torch.cat([q[0] for q in parts])[:n]
    if parts[0][1] is None:
        return momenta, None, None
    return momenta, torch.cat([q[1] for q in parts])[:n], torch.cat([q[2] for q in parts])[:n]


def _time(fn, sync) -> float:
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - t0


def bench_process(name: str, points: tuple, device: torch.device, repeats: int) -> dict:
    p64 = get_process(name, dtype=torch.float64, device=device)
    p32 = get_process(name, dtype=torch.float32, device=device)
    m64, *xs64 = (None if t is None else t.to(device) for t in points)
    m32, *xs32 = (None if t is None else t.to(torch.float32) for t in (m64, *xs64))
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    # warm-up (PDF grids cast and moved, kernels compiled, caches filled)
    p64.matrix_element(m64[:64], *(None if x is None else x[:64] for x in xs64))
    p32.matrix_element(m32[:64], *(None if x is None else x[:64] for x in xs32))
    t64, t32 = [], []
    for _ in range(repeats):
        t64.append(_time(lambda: p64.matrix_element(m64, *xs64), sync))
        t32.append(_time(lambda: p32.matrix_element(m32, *xs32), sync))
    me64 = p64.matrix_element(m64, *xs64)
    me32 = p32.matrix_element(m32, *xs32)
    rel = ((me32.double() - me64) / me64).abs().cpu()
    n = m64.shape[0]
    rate64, rate32 = n / min(t64), n / min(t32)
    return {
        "n_points": n,
        "f64_evals_per_s": round(rate64, 1),
        "f32_evals_per_s": round(rate32, 1),
        "f32_speedup": round(rate32 / rate64, 3),
        "f32_max_rel_dev": float(f"{rel.max().item():.3g}"),
        "f32_median_rel_dev": float(f"{rel.median().item():.3g}"),
        "finite": bool(torch.isfinite(me64).all() and torch.isfinite(me32).all()),
    }


def main(scale: float = 1.0, repeats: int = 3, threads: int = 1) -> dict:
    torch.set_num_threads(threads)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    results: dict[str, dict] = {}
    t0 = time.perf_counter()
    for name, n in POINTS.items():
        points = _points(name, max(16, int(n * scale)), seed=1)
        results[name] = {dev.type: bench_process(name, points, dev, repeats) for dev in devices}
    out = {
        "bench": "physics",
        "quantity": "Process.matrix_element evaluations per second (PDFs and all subprocesses included)",
        "torch": torch.__version__,
        "threads": threads,
        "devices": [d.type if d.type == "cpu" else torch.cuda.get_device_name(d) for d in devices],
        "results": results,
        "wall_s": round(time.perf_counter() - t0, 1),
    }
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the default point counts")
    parser.add_argument("--repeats", type=int, default=3, help="timings per dtype (best kept)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads on the CPU")
    args = parser.parse_args()
    main(args.scale, args.repeats, args.threads)
