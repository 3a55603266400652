"""Benchmark of the MadNIS stage: MadNIS against VEGAS and flat sampling on pp -> gamma*/Z/Z' -> mu mu.

Runs :func:`lhcchain.madnis.run.integrate` once with the default config's process and settings
(``processes.drell_yan_zprime``, ``madnis.training``, ``madnis.evaluation``, ``madnis.reference``):
MadNIS training, VEGAS trained with the same number of integrand calls, flat sampling, each then
evaluated on the same number of points, and Pythia 8's cross-section of the same process.

Prints ONE JSON line: per method the cross-section and error (pb), relative standard deviation of
the weights, unweighting efficiency (both with their spread over ``madnis.evaluation.replicas`` further
evaluations), integrand calls and wall time (s); the MadNIS/VEGAS and MadNIS/flat ratios; the pulls
between methods; and MadNIS / Pythia 8.

Usage: ``python bench/madnis.py [--process NAME] [--steps N] [--calls N] [--threads T] [--device D]``.
Default (1000 steps, 200 000 evaluation calls): about 3 minutes on one CPU core.

Surrogate unweighting (``--unweight``): from the process's trained integrator and amplitude surrogate
(default ``results/madnis/{process}/integrator.pt`` and ``results/amplitudes/{process}/model.pt``, e.g.
``python bench/madnis.py --process gg_5g --unweight``), runs :func:`lhcchain.madnis.run.unweight`
(exact and two-stage unweighting in one job, ``madnis.events`` with ``--events`` and
``--calibration-calls``; ``--events 0`` skips it) and prints ONE JSON line: the time per call of each
part (:func:`lhcchain.madnis.profile.time_per_call`); on ``--sample-calls`` weighted points, the exact,
stage-1 and stage-2 efficiencies, the truncated fractions and the gain the times per call predict
(:func:`~lhcchain.madnis.profile.sample_efficiencies`, :func:`~lhcchain.madnis.profile.expected_gain`);
and from the unweighting loop the measured gain (time per event, exact over surrogate), its
efficiencies, overweight fractions, cross-sections and the chi^2 p-values of the distributions.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

import yaml

# This file is called madnis.py: drop its folder from the path so that ``import madnis`` (inside
# lhcchain.madnis) finds the library, not this script.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from lhcchain.config import madnis_events, madnis_settings, process_spec  # noqa: E402
from lhcchain.madnis.run import METHODS, integrate, unweight  # noqa: E402

CONFIG = Path(__file__).resolve().parents[1] / "config" / "config.yaml"
FIGURES = ("cross_section_pb", "error_pb", "rel_stddev", "rel_stddev_spread", "unweighting_efficiency",
           "unweighting_efficiency_spread", "unweighting_efficiency_truncated", "overweight_fraction", "n_calls", "wall_time_s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--process", default="drell_yan_zprime", help="a key of the config's processes")
    ap.add_argument("--steps", type=int, default=None, help="MadNIS training steps (default: the config's)")
    ap.add_argument("--calls", type=int, default=None, help="evaluation calls per method (default: the config's)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--unweight", action="store_true", help="surrogate unweighting against exact (module doc)")
    ap.add_argument("--integrator", default=None, help="--unweight: integrator checkpoint")
    ap.add_argument("--surrogate", default=None, help="--unweight: amplitude-surrogate checkpoint")
    ap.add_argument("--events", type=int, default=None, help="--unweight: events per method (default: the config's)")
    ap.add_argument("--calibration-calls", type=int, default=None, help="--unweight: calls fixing the maxima")
    ap.add_argument("--profile-calls", type=int, default=2000, help="--unweight: points timed per part")
    ap.add_argument("--sample-calls", type=int, default=100_000, help="--unweight: weighted points for the efficiencies")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr)
    config = yaml.safe_load(CONFIG.read_text())
    if args.unweight:
        print(json.dumps(bench_unweighting(args, config)))
        return
    settings = madnis_settings(config, args.process)
    if args.steps is not None:
        settings["steps"] = args.steps
    evaluation = dict(config["madnis"]["evaluation"])
    if args.calls is not None:
        evaluation["n_calls"] = args.calls
    with tempfile.TemporaryDirectory() as tmp:
        outputs = {key: str(Path(tmp) / name) for key, name in
                   (("checkpoint", "integrator.pt"), ("metrics", "metrics.json"), ("weights", "weights.png"),
                    ("channels", "channels.png"))}
        metrics = integrate(process_spec(config, args.process), settings, evaluation, config["madnis"]["reference"],
                            outputs, device=args.device, threads=args.threads, seed=args.seed)
    out = {
        "process": args.process,
        "methods": {m: {k: metrics["methods"][m][k] for k in FIGURES} for m in METHODS},
        "ratios": metrics["ratios"],
        "pulls": metrics["pulls"],
        "pythia": metrics.get("pythia"),
        "train_steps": metrics["methods"]["madnis"]["train_steps"],
        "eval_calls": evaluation["n_calls"],
        "threads": args.threads,
        "device": args.device,
    }
    print(json.dumps(out))


def bench_unweighting(args: argparse.Namespace, config: dict) -> dict:
    """Exact against surrogate unweighting of ``args.process`` (module doc)."""
    import numpy as np
    import torch

    from lhcchain.amplitudes.surrogate import load_surrogate
    from lhcchain.madnis.integrator import CheckedIntegrand, draw, load_integrator
    from lhcchain.madnis.profile import expected_gain, sample_efficiencies, time_per_call
    from lhcchain.madnis.surrogate import surrogate_matrix_element

    integrator_path = args.integrator or f"results/madnis/{args.process}/integrator.pt"
    surrogate_path = args.surrogate or f"results/amplitudes/{args.process}/model.pt"
    settings = madnis_events(config["madnis"]["events"], args.process)
    if args.events is not None:
        settings["n_events"] = args.events
    if args.calibration_calls is not None:
        settings["calibration_calls"] = args.calibration_calls
    out: dict = {"process": args.process, "integrator": integrator_path, "surrogate": surrogate_path}
    integrator, function, _ = load_integrator(integrator_path, args.device, args.threads)
    if settings["flow_float32"]:
        integrator.to(torch.float32)
    process = function.process
    surrogate = surrogate_matrix_element(process, load_surrogate(surrogate_path, process.device))
    torch.manual_seed(args.seed)
    times = time_per_call(integrator, process, surrogate, args.profile_calls)
    out["time_per_call_s"] = times
    # efficiencies of both unweightings on one weighted sample (half calibrates the maxima)
    sample = draw(integrator, args.sample_calls, min(args.sample_calls, 20_000))
    w = sample.weights.double().cpu().numpy()
    keep = torch.from_numpy(w > 0)
    # the draw holds the exact f; only the surrogate integrand is evaluated (as TwoStage.calibrate)
    f_fast, _ = CheckedIntegrand(process, surrogate)(sample.x[keep], sample.channels[keep])
    w_s = w.copy()
    w_s[w > 0] *= (f_fast.double() / sample.func_vals[keep].double()).cpu().numpy()
    eff = sample_efficiencies(w, w_s, float(settings["epsilon"]), np.random.default_rng(args.seed))
    out["sample"] = {"calls": args.sample_calls, **eff,
                     "stage1_over_exact_efficiency": eff["stage1_efficiency"] / eff["efficiency_exact"],
                     **expected_gain(times, eff["efficiency_exact"], eff["stage1_efficiency"], eff["stage2_efficiency"])}
    if settings["n_events"] > 0:  # the unweighting loop itself, exact and two-stage in one job
        with tempfile.TemporaryDirectory() as tmp:
            outputs = {key: str(Path(tmp) / name) for key, name in
                       (("lhe", "events.lhe.gz"), ("parquet", "events.parquet"), ("metrics", "unweight.json"),
                        ("distributions", "distributions.png"))}
            metrics = unweight(integrator_path, settings, outputs, surrogate_path, device=args.device,
                               threads=args.threads, seed=args.seed)
        exact, fast = metrics["exact"], metrics["surrogate"]
        out["unweighting"] = {
            "gain": fast["speedup"],
            "efficiency_exact": exact["efficiency"],
            "stage1_efficiency": fast["stage1_efficiency"],
            "stage2_efficiency": fast["stage2_efficiency"],
            "stage1_over_exact_efficiency": fast["stage1_efficiency"] / exact["efficiency"],
            "exact_truncated_fraction": exact["truncated_fraction"],
            "stage2_truncated_fraction": fast["stage2_truncated_fraction"],
            "time_per_event_exact_s": exact["time_per_event_s"],
            "time_per_event_surrogate_s": fast["time_per_event_s"],
            "cross_section_exact_pb": metrics["cross_section_pb"],
            "cross_section_surrogate_pb": fast["cross_section_pb"],
            "cross_section_surrogate_error_pb": fast["error_pb"],
            "chi2_p_values": {k: v["p_value"] for k, v in fast["agreement"].items()},
            "n_events": settings["n_events"],
            "calibration_calls": settings["calibration_calls"],
        }
    out.update({"flow_float32": settings["flow_float32"], "threads": args.threads, "device": args.device})
    return out


if __name__ == "__main__":
    main()
