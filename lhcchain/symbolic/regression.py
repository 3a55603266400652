"""Symbolic regression of the score: a Pareto front of formulas, simplified and refitted.

Engines (``engine``): ``pyoperon`` (default), ``gplearn`` (fallback, pure Python) and ``pysr``
(only where PySR and Julia are installed; not on the development machines, so untested there).
A requested engine that is not installed stops with :class:`~lhcchain.errors.InputError`.

pyoperon (C++ genetic programming, :class:`pyoperon.sklearn.SymbolicRegressor`) runs with

* two objectives, ``mse`` (with operon's linear scaling ``a g(x) + b``) and ``length`` (tree
  nodes), so that NSGA-II returns a true Pareto front rather than one best model;
* ``optimizer_iterations`` > 0 Levenberg-Marquardt steps on each tree's constants (without them
  operon does not fit constants);
* one thread and a seed: the same settings give the same front on the same machine. A wall-clock
  limit (``max_minutes``) ends the search at a load-dependent point and breaks that.

gplearn (:class:`gplearn.genetic.SymbolicRegressor`) has one objective and no constant fitting. It
runs with operon's linear scaling as its fitness (``1 - corr(g(x), y)^2``, the MSE of the best
``a g(x) + b`` over ``Var(y)``) plus ``parsimony`` per node, ``max_evaluations / population_size``
generations at most, one job and a seed (deterministic). Its front is the non-dominated set in
(length, fitness) of every program of every generation up to ``max_length`` nodes, each scaled by
its least-squares ``a, b``. Its protected ``div``, ``log`` and ``sqrt`` become the plain functions.

Each front member is parsed into sympy (operon's ``^ 2`` is ``square``) and simplified
(:func:`parametrise`: common factors pulled out, one overall constant per product of sums). A constant
added at the top level is dropped: the score is parity-odd (``E[t] = 0``), and a shift carries no
information. Its remaining floating constants become free parameters ``c0, c1, ...`` and are refitted
by least squares (:func:`scipy.optimize.curve_fit`) on the full data set, with the covariance scaled
by the residual variance. Complexity is the node count of the sympy expression tree: one per symbol,
constant, function and binary operation, so ``a x1 x2 sin(delta_phi + d)`` has 10 (a n-ary sum or
product of k terms counts k - 1 operations, ``x^2`` one and ``a / b`` one). The front is then
recomputed in (complexity, refitted MSE): every kept formula is better than all simpler ones.
"""

from __future__ import annotations

import importlib
import logging
import math
import shutil
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import sympy
from scipy.optimize import OptimizeWarning, curve_fit

from ..config import default_section
from ..errors import InputError

log = logging.getLogger("lhcchain")

#: Operators the config may list, as pyoperon names them (``square``: x^2, ``div``: a / b).
OPERATORS = ("add", "sub", "mul", "div", "square", "sin", "cos", "exp", "log", "sqrt", "tanh", "abs")
#: Engines the stage can run (module doc).
ENGINES = ("pyoperon", "gplearn", "pysr")
#: pyoperon keyword arguments the config sets directly (the rest are fixed by the module doc).
OPERON_KEYS = ("population_size", "generations", "max_evaluations", "max_depth", "optimizer_iterations", "tournament_size")

_SYMPY_FUNCTIONS = {"sin": sympy.sin, "cos": sympy.cos, "exp": sympy.exp, "log": sympy.log, "sqrt": sympy.sqrt,
                    "tanh": sympy.tanh, "abs": sympy.Abs, "square": lambda x: x**2}


def _engine(settings: Mapping[str, Any]) -> str:
    """``settings['engine']``; where a caller leaves it out, the default config's ``symbolic.regression.engine``."""
    return settings["engine"] if "engine" in settings else default_section("symbolic.regression")["engine"]


def check_settings(settings: Mapping[str, Any]) -> None:
    """Raise :class:`InputError` for an unknown engine or operator, an engine that is not installed
    (PySR: also without Julia) or, with pyoperon, no constant fits."""
    engine = _engine(settings)
    if engine not in ENGINES:
        raise InputError(f"symbolic.regression.engine: unknown engine {engine!r}; available: {', '.join(ENGINES)}")
    unknown = [op for op in settings["operators"] if op not in OPERATORS]
    if unknown:
        raise InputError(f"symbolic.regression.operators: unknown operator(s) {', '.join(map(repr, unknown))}; "
                         f"the {engine} engine knows {', '.join(OPERATORS)}")
    if engine == "pyoperon" and int(settings["optimizer_iterations"]) < 1:
        raise InputError("symbolic.regression.optimizer_iterations must be >= 1: without it pyoperon fits no constants")
    module = {"pyoperon": "pyoperon.sklearn", "gplearn": "gplearn.genetic", "pysr": "pysr"}[engine]
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise InputError(f"symbolic.regression.engine: {engine} is not installed ({exc}); `pip install {engine}`"
                         + (" and Julia" if engine == "pysr" else "") + ", or choose another engine") from None
    if engine == "pysr" and shutil.which("julia") is None:
        raise InputError("symbolic.regression.engine: pysr needs Julia, which is not on the PATH; choose pyoperon or gplearn")


def complexity(expr: sympy.Expr) -> int:
    """Node count of ``expr`` (module doc)."""
    if expr.is_Atom:
        return 1
    if isinstance(expr, sympy.Pow) and expr.exp in (2, -1, sympy.Rational(1, 2)):
        return 1 + complexity(expr.base)
    if isinstance(expr, sympy.Mul) and expr.args[0] == -1:  # -x: a sign, one operation
        return 1 + complexity(sympy.Mul(*expr.args[1:]))
    if isinstance(expr, sympy.Mul):  # a / b: the division replaces the product's operation
        return len(expr.args) - 1 + sum(
            complexity(a.base) if isinstance(a, sympy.Pow) and a.exp == -1 else complexity(a) for a in expr.args)
    ops = len(expr.args) - 1 if isinstance(expr, sympy.Add) else 1
    return ops + sum(complexity(a) for a in expr.args)


def parse_formula(text: str, names: Sequence[str]) -> sympy.Expr:
    """The sympy expression of an operon infix formula over variables ``names``."""
    local = {n: sympy.Symbol(n, real=True) for n in names} | _SYMPY_FUNCTIONS
    return sympy.parse_expr(text.replace("^", "**"), local_dict=local)


def _factors(node: sympy.Expr) -> list[sympy.Expr]:
    """Factors of a (possibly nested, unevaluated) product."""
    if isinstance(node, sympy.Mul):
        return [f for a in node.args for f in _factors(a)]
    return [node]


def _numeric_factor(term: sympy.Expr) -> float:
    """The product of the numbers among the factors of ``term``."""
    return math.prod(float(a) for a in _factors(term) if a.is_Number)


def parametrise(expr: sympy.Expr) -> tuple[sympy.Expr, list[sympy.Symbol], list[float]]:
    """Simplify ``expr`` and turn its constants into parameters ``c0, c1, ...``: returns (parametric
    expression, parameters, their values).

    Simplification (bounded in time, unlike ``sympy.simplify``): sympy's ``factor_terms``; a
    top-level additive constant is dropped; in every product the numbers and the numeric factor of
    each sum's first symbolic term are merged into one constant (``2 (3 x + 1)`` -> ``c (x + d)``).
    """
    expr = sympy.factor_terms(expr)
    coeff, rest = expr.as_coeff_Mul()
    if isinstance(rest, sympy.Add):  # -(a + b + c): the sign over the sum, to find its constant
        expr = sympy.Add(*[coeff * a for a in rest.args])
    if isinstance(expr, sympy.Add):
        expr = sympy.Add(*[a for a in expr.args if a.free_symbols])
    params: list[sympy.Symbol] = []
    values: list[float] = []

    def constant(value: float) -> sympy.Expr:
        if abs(abs(value) - 1.0) < 1e-12:  # 1 up to the rounding of the normalisation
            return sympy.Integer(1 if value > 0 else -1)
        params.append(sympy.Symbol(f"c{len(params)}", real=True))
        values.append(value)
        return params[-1]

    def replace(node: sympy.Expr) -> sympy.Expr:
        if isinstance(node, sympy.Float):
            return constant(float(node))
        if node.is_Atom:  # symbols, and integers such as exponents
            return node
        if not isinstance(node, sympy.Mul):
            return node.func(*[replace(a) for a in node.args])
        coeff, exact, factors = 1.0, sympy.Integer(1), []
        for f in _factors(node):
            if f.is_Number:
                coeff *= float(f)
                exact = exact * f if exact is not None and not isinstance(f, sympy.Float) else None
                continue
            if isinstance(f, sympy.Add):
                lead = next((_numeric_factor(t) for t in f.args if t.free_symbols), 1.0)
                if lead != 0.0:
                    coeff *= lead
                    exact = None if lead != 1.0 else exact
                    f = sympy.Add(*[t / lead for t in f.args])
            factors.append(replace(f))
        return sympy.Mul(exact if exact is not None else constant(coeff), *factors)

    return replace(expr), params, values


def refit(expr: sympy.Expr, params: Sequence[sympy.Symbol], p0: Sequence[float], names: Sequence[str],
          x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Least-squares fit of ``params`` of ``expr`` to ``y`` on ``x`` (columns ``names``): values, errors
    (covariance scaled by the residual variance), MSE and the fitted formula."""
    symbols = [sympy.Symbol(n, real=True) for n in names]
    func = sympy.lambdify([symbols, *params], expr, "numpy")

    def model(xt: np.ndarray, *p: float) -> np.ndarray:
        return np.broadcast_to(np.asarray(func(xt, *p), dtype=np.float64), (xt.shape[1],))

    values, errors = np.asarray(p0, dtype=np.float64), np.zeros(len(p0))
    if params:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            try:
                values, cov = curve_fit(model, x.T, y, p0=values, maxfev=20000)
                errors = np.sqrt(np.clip(np.diag(cov), 0.0, None))
            except (RuntimeError, ValueError) as exc:  # no convergence: keep operon's constants
                log.warning("symbolic: refit of %s failed (%s); keeping the search's constants", expr, exc)
                errors = np.full(len(p0), np.nan)
    pred = model(x.T, *values)
    mse = float(np.mean((y - pred) ** 2)) if np.isfinite(pred).all() else float("inf")
    fitted = expr.subs(dict(zip(params, values)))
    return {"values": [float(v) for v in values], "errors": [float(e) for e in errors], "mse": mse, "fitted": fitted}


def run_engine(x: np.ndarray, y: np.ndarray, names: Sequence[str], settings: Mapping[str, Any], seed: int) -> list[str]:
    """Formulas of the engine's Pareto front (infix strings that sympy parses, full precision), simplest first."""
    check_settings(settings)
    engine = _engine(settings)
    run = {"pyoperon": _run_operon, "gplearn": _run_gplearn, "pysr": _run_pysr}[engine]
    formulas = run(x, y, names, settings, seed)
    log.info("symbolic: %s front of %d:\n%s", engine, len(formulas), "\n".join(formulas))
    return formulas


def _run_operon(x: np.ndarray, y: np.ndarray, names: Sequence[str], settings: Mapping[str, Any], seed: int) -> list[str]:
    from pyoperon.sklearn import SymbolicRegressor

    minutes = settings.get("max_minutes")
    regressor = SymbolicRegressor(
        allowed_symbols=",".join([*settings["operators"], "constant", "variable"]),
        objectives=["mse", "length"],
        max_length=int(settings["max_length"]),
        n_threads=1,
        random_state=int(seed),
        max_time=None if minutes is None else max(1, int(60 * float(minutes))),
        **{k: int(settings[k]) for k in OPERON_KEYS if k in settings},
    )
    regressor.fit(x, y)
    front = sorted(regressor.pareto_front_, key=lambda m: m["length"])
    log.info("symbolic: pyoperon ran %d generations, %d residual evaluations",
             regressor.stats_["generations"], regressor.stats_["residual_evaluations"])
    return [regressor.get_model_string(m["tree"], 12, list(names)) for m in front]


def _scaled_loss(y: np.ndarray, pred: np.ndarray, w: np.ndarray) -> float:
    """gplearn fitness: ``1 - corr(pred, y)^2`` (weighted), 1 for a constant or non-finite ``pred``."""
    if not np.isfinite(pred).all() or np.ptp(pred) == 0.0:
        return 1.0
    c = np.cov(pred, y, aweights=w)
    return float(1.0 - c[0, 1] ** 2 / (c[0, 0] * c[1, 1]))


def _gplearn_functions(operators: Sequence[str]) -> list[Any]:
    from gplearn.functions import make_function

    extra = {"square": np.square, "tanh": np.tanh,
             "exp": lambda a: np.exp(np.clip(a, -50.0, 50.0))}  # gplearn needs closure under every input
    return [op if op not in extra else make_function(function=extra[op], name=op, arity=1, wrap=False) for op in operators]


#: gplearn's names of our operators in the infix of :func:`_gplearn_infix`.
_GPLEARN_INFIX = {"add": "({} + {})", "sub": "({} - {})", "mul": "({} * {})", "div": "({} / {})", "square": "({})^2",
                  "sin": "sin({})", "cos": "cos({})", "exp": "exp({})", "log": "log(abs({}))", "sqrt": "sqrt(abs({}))",
                  "tanh": "tanh({})", "abs": "abs({})"}


def _gplearn_infix(program: Any, names: Sequence[str]) -> str:
    """Infix string of a gplearn program (its prefix list of functions, variable indices and constants)."""
    nodes = program.program

    def build(i: int) -> tuple[str, int]:
        node = nodes[i]
        if not hasattr(node, "arity"):
            return (names[node] if isinstance(node, (int, np.integer)) else repr(float(node))), i + 1
        args, j = [], i + 1
        for _ in range(node.arity):
            arg, j = build(j)
            args.append(arg)
        return _GPLEARN_INFIX[node.name].format(*args), j

    return build(0)[0]


def _run_gplearn(x: np.ndarray, y: np.ndarray, names: Sequence[str], settings: Mapping[str, Any], seed: int) -> list[str]:
    from gplearn.fitness import make_fitness
    from gplearn.genetic import SymbolicRegressor

    population = int(settings["population_size"])
    generations = max(1, min(int(settings["generations"]), int(settings["max_evaluations"]) // population))
    regressor = SymbolicRegressor(
        population_size=population, generations=generations,
        **({"tournament_size": int(settings["tournament_size"])} if "tournament_size" in settings else {}),  # else gplearn's (20)
        function_set=_gplearn_functions(settings["operators"]),
        metric=make_fitness(function=_scaled_loss, greater_is_better=False, wrap=False),
        parsimony_coefficient=float(settings["parsimony"]), n_jobs=1, random_state=int(seed),
    )
    regressor.fit(x, y)
    best: dict[int, Any] = {}  # length -> best program of that length over every generation
    for generation in regressor._programs:  # gplearn keeps every generation (low_memory=False)
        for program in generation or []:
            if program is None or program.length_ > int(settings["max_length"]):
                continue
            if program.length_ not in best or program.raw_fitness_ < best[program.length_].raw_fitness_:
                best[program.length_] = program
    formulas, record = [], np.inf
    for length in sorted(best):
        program = best[length]
        if program.raw_fitness_ >= record:
            continue
        record = program.raw_fitness_
        pred = program.execute(x)
        a, b = np.polyfit(pred, y, 1)
        formulas.append(f"{float(a)!r} * {_gplearn_infix(program, names)} + {float(b)!r}")
    log.info("symbolic: gplearn ran %d generations of %d programs", generations, population)
    return formulas


def _run_pysr(x: np.ndarray, y: np.ndarray, names: Sequence[str], settings: Mapping[str, Any], seed: int) -> list[str]:
    # Optional engine, imported by name: PySR (and Julia) are in neither pyproject.toml nor the envs.
    PySRRegressor = importlib.import_module("pysr").PySRRegressor  # noqa: N806
    binary = {"add": "+", "sub": "-", "mul": "*", "div": "/"}
    regressor = PySRRegressor(
        binary_operators=[binary[op] for op in settings["operators"] if op in binary],
        unary_operators=[op for op in settings["operators"] if op not in binary],
        maxsize=int(settings["max_length"]), populations=1, population_size=int(settings["population_size"]),
        niterations=int(settings["generations"]), random_state=int(seed), deterministic=True, parallelism="serial",
    )
    regressor.fit(x, y, variable_names=list(names))
    return [str(e) for e in regressor.equations_.sort_values("complexity")["sympy_format"]]


def pareto_front(entries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Entries not dominated in (complexity, mse), one per complexity, by increasing complexity."""
    out: list[dict[str, Any]] = []
    for e in sorted(entries, key=lambda e: (e["complexity"], e["mse"])):
        if not out or e["mse"] < out[-1]["mse"] * (1 - 1e-9):
            out.append(dict(e))
    return out


def _rounded(expr: sympy.Expr, digits: int = 4) -> sympy.Expr:
    return expr.xreplace({f: sympy.Float(f, digits) for f in expr.atoms(sympy.Float)})


def symbolic_regression(x: np.ndarray, y: np.ndarray, names: Sequence[str], settings: Mapping[str, Any], seed: int,
                        x_full: np.ndarray | None = None, y_full: np.ndarray | None = None) -> dict[str, Any]:
    """Run the engine on ``(x, y)``, simplify and refit every front formula on ``(x_full, y_full)``
    (default: the same data); returns the front (module doc) with the timings in s."""
    x_full = x if x_full is None else x_full
    y_full = y if y_full is None else y_full
    start = time.perf_counter()
    formulas = run_engine(x, y, names, settings, seed)
    search_s = time.perf_counter() - start
    variance = float(np.var(y_full))
    entries, seen = [], set()
    for text in formulas:
        expr, params, values = parametrise(parse_formula(text, names))
        key = sympy.srepr(expr)
        if not expr.free_symbols - set(params) or key in seen:
            continue
        seen.add(key)
        fit = refit(expr, params, values, names, x_full, y_full)
        fitted = _rounded(fit["fitted"])
        entries.append({
            "complexity": complexity(expr),
            "n_parameters": len(params),
            "formula": str(fitted),
            "latex": sympy.latex(fitted),
            "parametric": str(expr),
            "parametric_latex": sympy.latex(expr),
            "parameters": {str(p): {"value": v, "error": e} for p, v, e in zip(params, fit["values"], fit["errors"])},
            "variables": sorted(str(s) for s in expr.free_symbols - set(params)),
            "mse": fit["mse"],
            "mse_over_var": fit["mse"] / variance,
            "search_formula": text,
        })
    front = pareto_front(entries)
    return {"front": front, "variance": variance, "search_s": search_s, "total_s": time.perf_counter() - start,
            "n_search_events": int(len(y)), "n_refit_events": int(len(y_full))}


def markdown_table(front: Sequence[Mapping[str, Any]], unit: str = "TeV^4") -> str:
    """The front as a Markdown table (like Table 7 of arXiv:2109.10414)."""
    lines = [f"| complexity | free parameters | formula | MSE [{unit}] | MSE / Var(t) |", "| --- | --- | --- | --- | --- |"]
    for e in front:
        lines.append(f"| {e['complexity']} | {e['n_parameters']} | `{e['formula']}` | {e['mse']:.4g} | {e['mse_over_var']:.4f} |")
    return "\n".join(lines) + "\n"
