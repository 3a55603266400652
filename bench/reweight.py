"""Benchmark of stage reweight: closure of the default pair and the classifier's training and inference rates, in one run.

Runs the stage's two steps (:func:`lhcchain.reweight.run.train` and :func:`~lhcchain.reweight.run.evaluate`)
with the config's ``reweight`` settings on the config's first pair (default ``nominal_to_alt_tune``),
reading the prepared samples in ``--data`` (default ``results/data``: run ``snakemake --cores all
results/data/nominal/metrics.json results/data/alt_tune/metrics.json`` and the same for the tune fit's scan
samples ``alphas_0p*`` first). ``--minutes`` caps each
fold network's training. ``--synthetic N`` instead reweights N events of N(0, 1)^8 onto a target shifted
by 0.1 and narrowed to 0.9 in every dimension (the analytic ratio is known; its median |log w - log w_true|
is reported).

Prints ONE JSON line: the closure AUC (a fresh classifier's AUC of reweighted source vs target) with its
error, the AUC before, the largest chi2/ndf over features before and after, the ESS fraction, the
classifier's training events/s (event passes per second) and inference events/s (ensemble of the k
networks), wall time; and the tune fit (:mod:`lhcchain.reweight.tune`, config ``reweight.tune``): the fitted
parameter of the pseudo-data with its error, true value and pull, and the parametrised classifier's rates
(``tune_*``). With ``--synthetic N`` the tune fit is the Gaussian toy of tests/reweight/test_tune.py (the mean
of N/2 events of N(0.2, 1) x N(0, 1), scan means -0.6, -0.3, 0.3, 0.6, reference mean 0).
Usage: ``python bench/reweight.py [--data DIR] [--minutes M] [--threads T] [--device D] [--synthetic N]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from scipy.stats import norm

from lhcchain.config import default_config, reweight_settings, tune_inputs, tune_scan_inputs, tune_settings
from lhcchain.reweight.run import evaluate, output_paths, train
from lhcchain.reweight.tune import output_paths as tune_paths
from lhcchain.reweight.tune import parametrised_fit, tune

ROOT = Path(__file__).resolve().parents[1]
SHIFT, WIDTH, DIMS = 0.1, 0.9, 8
TOY_SCAN, TOY_TRUE = (-0.6, -0.3, 0.3, 0.6), 0.2


def synthetic(folder: Path, n: int, target: bool, seed: int) -> Path:
    """One parquet file of ``n`` events in prepare's layout (level ``particle``, features ``x0..x7``)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(SHIFT, WIDTH, (n, DIMS)) if target else rng.normal(size=(n, DIMS))
    cols = {"file_index": np.zeros(n, np.int16), "entry": np.arange(n), "run": np.ones(n, np.int64), "event": np.arange(n),
            "weight": np.ones(n), "particle_pass": np.ones(n, bool), "particle_n_jets": np.zeros(n, np.int16),
            **{f"particle_x{j}": x[:, j] for j in range(DIMS)}}
    path = folder / ("target" if target else "source") / "train.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(pa.table(cols), path)
    return path


def main() -> None:
    cfg = default_config()
    rw = cfg["reweight"]
    name, pair = next(iter(rw["pairs"].items()))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT / "results" / "data"), help="folder of prepared samples")
    ap.add_argument("--minutes", type=float, default=rw["classifier"]["max_minutes"], help="training budget per fold network")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--synthetic", type=int, default=0, help="events per sample of the synthetic Gaussian pair instead")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr)
    settings = reweight_settings(cfg, name)
    settings["classifier"]["max_minutes"] = args.minutes
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        if args.synthetic:
            name = "synthetic_gaussians"
            settings.update(source="source", target="target", level="particle", features=[f"x{j}" for j in range(DIMS)])
            source, target = [synthetic(out, args.synthetic, False, 1)], [synthetic(out, args.synthetic, True, 2)]
        else:
            data = Path(args.data)
            source, target = ([data / s / f"{split}.parquet" for split in rw["splits"]] for s in (pair["source"], pair["target"]))
            if not all(p.is_file() for p in [*source, *target]):
                sys.exit(f"bench/reweight.py: no prepared {pair['source']} and {pair['target']} under {data}; run snakemake first "
                         "(or use --synthetic N)")
        outs = output_paths(out / "out")
        summary = train(name, source, target, outs, settings, device=args.device, threads=args.threads, seed=1)
        m = evaluate(name, source, target, outs["weights"], outs["summary"], outs["model"], outs, settings, device=args.device,
                     threads=args.threads, seed=2)
        exact = None
        if args.synthetic:
            x = pq.read_table(source[0]).to_pandas()[[f"particle_x{j}" for j in range(DIMS)]].to_numpy()
            log_true = np.sum(norm.logpdf(x, SHIFT, WIDTH) - norm.logpdf(x), axis=1)
            w = pq.read_table(outs["weights"]).column("w").to_numpy()
            exact = float(np.median(np.abs(np.log(w) - log_true)))
        ts = tune_settings(cfg)
        ts["classifier"]["max_minutes"] = args.minutes
        if args.synthetic:
            rng = np.random.default_rng(3)
            n = args.synthetic

            def draw(t: float, k: int) -> np.ndarray:
                return np.column_stack([rng.normal(t, 1, k), rng.normal(0, 1, k)])
            ts.update(grid={"min": -0.6, "max": 0.6, "points": 49}, window=0.15, truth=TOY_TRUE, parameter="toy mean")
            _, r, rates = parametrised_fit((draw(0, n), np.ones(n)), (draw(0, n), np.ones(n)),
                                           [(draw(t, n), np.ones(n), t) for t in TOY_SCAN], (draw(TOY_TRUE, n // 2), np.ones(n // 2)),
                                           ts, seed=4, device=None)
            fitted = {"fitted_value": r.value, "fitted_value_err": r.err, "pull": (r.value - TOY_TRUE) / r.err, **rates}
        else:
            files = {role: [data / Path(p).relative_to("results/data") for p in tune_inputs(cfg, role)]
                     for role in ("reference", "normalisation", "data")}
            scan = {k: [data / Path(p).relative_to("results/data") for p in ps] for k, ps in tune_scan_inputs(cfg).items()}
            fitted = tune(files["reference"], files["normalisation"], scan, files["data"], tune_paths(out / "tune"), ts,
                          device=args.device, threads=args.threads, seed=5)
    print(json.dumps({
        "bench": "reweight", "pair": name, "n_source": m["n_source"], "n_target": m["n_target"], "features": len(settings["features"]),
        "calibration": m["calibration"], "auc_before": round(m["auc_before"], 4),
        "closure_auc": round(m["closure_auc"], 4), "closure_auc_err": round(m["closure_auc_err"], 4),
        "max_chi2_ndf_before": round(m["max_chi2_ndf_before"], 2), "max_chi2_ndf_after": round(m["max_chi2_ndf_after"], 2),
        "ess_fraction": round(m["weights"]["ess_fraction"], 3), "fraction_beyond_clip": m["weights"]["fraction_beyond_clip"],
        "median_abs_log_w_error": exact,
        "train_events_per_s": round(summary["train_events_per_s"], 1), "inference_events_per_s": round(summary["inference_events_per_s"], 1),
        "tune_parameter": ts["parameter"], "fitted_parameter": round(fitted["fitted_value"], 5),
        "fitted_parameter_err": round(fitted["fitted_value_err"], 5), "fitted_parameter_truth": ts["truth"],
        "fitted_parameter_pull": None if ts["truth"] is None else round(fitted["pull"], 2),
        "tune_train_events_per_s": round(fitted["train_events_per_s"], 1), "tune_inference_events_per_s": round(fitted["inference_events_per_s"], 1),
        "device": summary["device"], "threads": args.threads, "wall_s": round(time.perf_counter() - t0, 1),
    }))


if __name__ == "__main__":
    main()
