# Stage unfold: reco-level pseudo-data (unfold.data) unfolded to the particle level with the (particle, reco)
# pairs of a simulation (unfold.sim): binned IBU, OmniFold, cINN and iterative cINN, then one evaluation.
# results/unfold/{ibu.json, omnifold.{parquet,json}, cinn.{pt,parquet,json}, cinn_calibration.png,
#                 icinn.{parquet,json}, metrics.json, observables.png}

from lhcchain.unfold.settings import unfold_inputs, unfold_methods, unfold_settings

UNFOLD_DATA = dict(
    sim=unfold_inputs(config, "sim"),
    data=unfold_inputs(config, "data"),
    sim_meta=f"results/data/{config['unfold']['sim']}/metadata.json",
    data_meta=f"results/data/{config['unfold']['data']}/metadata.json",
)
UNFOLD_RESULTS = {
    "ibu": {"summary": "results/unfold/ibu.json"},
    "omnifold": {"summary": "results/unfold/omnifold.json", "events": "results/unfold/omnifold.parquet"},
    "cinn": {"summary": "results/unfold/cinn.json", "events": "results/unfold/cinn.parquet"},
    "icinn": {"summary": "results/unfold/icinn.json", "events": "results/unfold/icinn.parquet"},
}


rule unfold_ibu:
    input:
        code=script_sources("unfold_ibu"),
        **UNFOLD_DATA,
    output:
        summary="results/unfold/ibu.json",
    params:
        settings=unfold_settings(config, "ibu"),
    log:
        "logs/unfold/ibu.log",
    benchmark:
        "benchmarks/unfold/ibu.tsv"
    threads: RES["unfold_ibu"]["threads"]
    resources:
        mem_mb=RES["unfold_ibu"]["mem_mb"],
        runtime=RES["unfold_ibu"]["runtime"],
    conda:
        "../envs/unfold.yaml"
    script:
        "../scripts/unfold_ibu.py"


rule unfold_omnifold:
    input:
        code=script_sources("unfold_omnifold"),
        **UNFOLD_DATA,
    output:
        events="results/unfold/omnifold.parquet",
        summary="results/unfold/omnifold.json",
    params:
        settings=unfold_settings(config, "omnifold"),
        device=config["device"],
        seed=config["seed"],
    log:
        "logs/unfold/omnifold.log",
    benchmark:
        "benchmarks/unfold/omnifold.tsv"
    threads: RES["unfold_omnifold"]["threads"]
    resources:
        mem_mb=RES["unfold_omnifold"]["mem_mb"],
        runtime=RES["unfold_omnifold"]["runtime"],
        gpu=gpu_request(config),
    conda:
        "../envs/unfold.yaml"
    script:
        "../scripts/unfold_omnifold.py"


rule unfold_cinn:
    input:
        code=script_sources("unfold_cinn"),
        **UNFOLD_DATA,
    output:
        model="results/unfold/cinn.pt",
        events="results/unfold/cinn.parquet",
        summary="results/unfold/cinn.json",
        calibration_plot=report("results/unfold/cinn_calibration.png", category="unfold"),
    params:
        settings=unfold_settings(config, "cinn"),
        device=config["device"],
        seed=config["seed"],
    log:
        "logs/unfold/cinn.log",
    benchmark:
        "benchmarks/unfold/cinn.tsv"
    threads: RES["unfold_cinn"]["threads"]
    resources:
        mem_mb=RES["unfold_cinn"]["mem_mb"],
        runtime=RES["unfold_cinn"]["runtime"],
        gpu=gpu_request(config),
    conda:
        "../envs/unfold.yaml"
    script:
        "../scripts/unfold_cinn.py"


rule unfold_icinn:
    input:
        code=script_sources("unfold_icinn"),
        **UNFOLD_DATA,
        cinn_model="results/unfold/cinn.pt",
        cinn_events="results/unfold/cinn.parquet",
    output:
        events="results/unfold/icinn.parquet",
        summary="results/unfold/icinn.json",
    params:
        settings=unfold_settings(config, "icinn"),
        device=config["device"],
        seed=config["seed"],
    log:
        "logs/unfold/icinn.log",
    benchmark:
        "benchmarks/unfold/icinn.tsv"
    threads: RES["unfold_icinn"]["threads"]
    resources:
        mem_mb=RES["unfold_icinn"]["mem_mb"],
        runtime=RES["unfold_icinn"]["runtime"],
        gpu=gpu_request(config),
    conda:
        "../envs/unfold.yaml"
    script:
        "../scripts/unfold_icinn.py"


rule unfold_evaluate:
    input:
        code=script_sources("unfold_evaluate"),
        **UNFOLD_DATA,
        results=[path for m in unfold_methods(config) for path in UNFOLD_RESULTS[m].values()],
    output:
        metrics="results/unfold/metrics.json",
        figure=report("results/unfold/observables.png", category="unfold"),
    params:
        settings=unfold_settings(config, "evaluate"),
        results={m: UNFOLD_RESULTS[m] for m in unfold_methods(config)},
        device=config["device"],
        seed=config["seed"],
    log:
        "logs/unfold/evaluate.log",
    benchmark:
        "benchmarks/unfold/evaluate.tsv"
    threads: RES["unfold_evaluate"]["threads"]
    resources:
        mem_mb=RES["unfold_evaluate"]["mem_mb"],
        runtime=RES["unfold_evaluate"]["runtime"],
        gpu=gpu_request(config),
    conda:
        "../envs/unfold.yaml"
    script:
        "../scripts/unfold_evaluate.py"
