"""Symbolic regression: a synthetic score with a known formula, the refit's constants, complexity, bad settings."""

from __future__ import annotations

import shutil
import sys
import types

import numpy as np
import pytest
import sympy

from lhcchain.errors import InputError
from lhcchain.symbolic.regression import (
    check_settings,
    complexity,
    parametrise,
    parse_formula,
    refit,
    run_engine,
    symbolic_regression,
)

NAMES = ["x1", "x2", "delta_phi", "delta_eta"]
A, D, NOISE = -1.3, 0.3, 0.01
SETTINGS = {"engine": "pyoperon", "operators": ["add", "sub", "mul", "div", "square", "sin", "cos"], "max_length": 15,
            "population_size": 200, "generations": 50, "max_evaluations": 50000, "optimizer_iterations": 5}


def synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Observables like WBF's (x1, x2 exponential, delta_phi uniform, delta_eta in [3, 7]), the exact
    t = A x1 x2 sin(delta_phi + D) and t plus Gaussian noise of width NOISE."""
    rng = np.random.default_rng(seed)
    x = np.column_stack([rng.exponential(0.5, n), rng.exponential(0.3, n), rng.uniform(-np.pi, np.pi, n), rng.uniform(3, 7, n)])
    exact = A * x[:, 0] * x[:, 1] * np.sin(x[:, 2] + D)
    return x, exact, exact + rng.normal(0.0, NOISE, n)


@pytest.fixture(scope="module")
def front():
    x, _, y = synthetic(2000, seed=1)
    return symbolic_regression(x, y, NAMES, SETTINGS, seed=3)


def test_front_recovers_formula(front):
    """The front is ordered and non-dominated; its simplest member at the noise level has complexity
    12 (a x1 x2 sin(b delta_phi + d)), depends on x1, x2, delta_phi only and agrees with the exact
    formula on new points."""
    entries = front["front"]
    assert [e["complexity"] for e in entries] == sorted({e["complexity"] for e in entries})
    assert all(b["mse"] < a["mse"] for a, b in zip(entries, entries[1:]))
    best = next(e for e in entries if e["mse"] < 1.1 * NOISE**2)
    assert best["complexity"] == 12 and best["n_parameters"] == 3
    assert best["variables"] == ["delta_phi", "x1", "x2"]
    x, exact, _ = synthetic(1000, seed=2)
    symbols = [sympy.Symbol(n, real=True) for n in NAMES]
    predict = sympy.lambdify([symbols], parse_formula(best["formula"], NAMES), "numpy")
    assert np.sqrt(np.mean((predict(x.T) - exact) ** 2)) < 0.2 * NOISE
    # Simpler members are worse than the noise: x1 x2 sin(delta_phi) alone misses the phase D.
    assert all(e["mse"] > 2 * NOISE**2 for e in entries if e["complexity"] < best["complexity"])
    assert all(np.isfinite(p["error"]) and p["error"] > 0 for p in best["parameters"].values())


def test_search_repeats_exactly():
    """One thread and a seed: the same front twice; another seed, another search."""
    x, _, y = synthetic(500, seed=4)
    tiny = {**SETTINGS, "population_size": 50, "generations": 5, "max_evaluations": 2000}
    first = run_engine(x, y, NAMES, tiny, seed=5)
    assert run_engine(x, y, NAMES, tiny, seed=5) == first
    assert run_engine(x, y, NAMES, tiny, seed=6) != first


def test_refit_returns_known_constants():
    """The refit of the known form a x1 x2 sin(delta_phi + d) from a start 20 % off returns (A, D) within
    3 standard errors, and the errors match the spread over independent samples."""
    expr = parse_formula("c0 * x1 * x2 * sin(delta_phi + c1)", NAMES + ["c0", "c1"])
    params = sorted(expr.free_symbols - {sympy.Symbol(n, real=True) for n in NAMES}, key=str)
    fits = []
    for seed in range(5):
        x, _, y = synthetic(2000, seed=10 + seed)
        fits.append(refit(expr, params, [0.8 * A, 1.2 * D], NAMES, x, y))
    for fit in fits:
        assert abs(fit["values"][0] - A) < 3 * fit["errors"][0] and abs(fit["values"][1] - D) < 3 * fit["errors"][1]
    spread = np.std([f["values"][0] for f in fits], ddof=1)
    assert 0.3 < spread / fits[0]["errors"][0] < 3.0


def test_complexity_and_parametrise():
    x1, x2, dphi = sympy.symbols("x1 x2 delta_phi", real=True)
    a, d = sympy.symbols("a d")
    assert complexity(a * x1 * x2 * sympy.sin(dphi + d)) == 10
    assert complexity(x1**2 / x2) == 4
    expr, params, values = parametrise(parse_formula("(0.25 + 2.0 * (x1 ^ 2)) * 1.0 + 0.0001", NAMES))
    # The top-level constant 0.2501 is dropped (t is parity-odd), 1.0 is no parameter.
    assert values == [2.0] and expr == params[0] * x1**2


def test_gplearn_recovers_formula():
    """The gplearn engine (linear-scaling fitness, no constant fits) finds t = A x1 x2 sin(delta_phi):
    a front member on x1, x2, delta_phi only whose refitted constant is A within 5 % and whose MSE
    is at the noise level; the same seed repeats the search."""
    pytest.importorskip("gplearn")
    rng = np.random.default_rng(7)
    x, _, _ = synthetic(1500, seed=7)
    exact = A * x[:, 0] * x[:, 1] * np.sin(x[:, 2])
    y = exact + rng.normal(0.0, NOISE, len(exact))
    settings = {**SETTINGS, "engine": "gplearn", "parsimony": 0.001, "population_size": 500, "generations": 10,
                "max_evaluations": 5000}
    result = symbolic_regression(x, y, NAMES, settings, seed=3)
    best = min(result["front"], key=lambda e: e["mse"])
    assert best["variables"] == ["delta_phi", "x1", "x2"] and best["mse"] < 1.5 * NOISE**2
    (value,) = [p["value"] for p in best["parameters"].values()]
    assert value == pytest.approx(A, rel=0.05)
    tiny = {**settings, "population_size": 50, "generations": 3}
    assert run_engine(x, y, NAMES, tiny, seed=5) == run_engine(x, y, NAMES, tiny, seed=5)


def test_bad_settings(monkeypatch):
    with pytest.raises(InputError, match="unknown operator.*'atan2'"):
        check_settings({**SETTINGS, "operators": ["add", "atan2"]})
    with pytest.raises(InputError, match="unknown engine 'eureqa'"):
        check_settings({**SETTINGS, "engine": "eureqa"})
    with pytest.raises(InputError, match="optimizer_iterations"):
        check_settings({**SETTINGS, "optimizer_iterations": 0})
    check_settings({**SETTINGS, "engine": "gplearn", "optimizer_iterations": 0})  # gplearn fits no constants anyway
    monkeypatch.setitem(sys.modules, "pyoperon.sklearn", None)  # as if pyoperon were not installed
    with pytest.raises(InputError, match="pyoperon is not installed"):
        check_settings(SETTINGS)
    monkeypatch.setitem(sys.modules, "gplearn.genetic", None)
    with pytest.raises(InputError, match="gplearn is not installed"):
        check_settings({**SETTINGS, "engine": "gplearn"})
    monkeypatch.setitem(sys.modules, "pysr", None)
    with pytest.raises(InputError, match="pysr is not installed.*Julia"):
        check_settings({**SETTINGS, "engine": "pysr"})
    monkeypatch.setitem(sys.modules, "pysr", types.ModuleType("pysr"))  # PySR installed, Julia missing
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(InputError, match="pysr needs Julia"):
        check_settings({**SETTINGS, "engine": "pysr"})
