# Stage reweight: classifier density ratios w = D / (1 - D) between two prepared samples, cross-fitted,
# calibrated and checked, then the closure of the reweighting.
# results/reweight/{name}/{model.pt, weights.parquet, train.json, calibration.png, metrics.json, closure.png}
# A pair whose source is a generator's events also gets them refined: results/reweight/{name}/events.parquet (with w, refined_weight).
# Tune fit: a classifier parametrised in one simulation parameter, fitted to pseudo-data: results/reweight/tune/{model.pt, metrics.json, fit.png}


rule reweight_train:
    input:
        code=script_sources("reweight_train"),
        source=lambda w: reweight_inputs(config, w.name, "source"),
        target=lambda w: reweight_inputs(config, w.name, "target"),
    output:
        model="results/reweight/{name}/model.pt",
        weights="results/reweight/{name}/weights.parquet",
        summary="results/reweight/{name}/train.json",
        calibration_plot=report("results/reweight/{name}/calibration.png", category="reweight", subcategory="{name}"),
    params:
        settings=lambda w: reweight_settings(config, w.name),
        device=config["device"],
        seed=config["seed"],
    log:
        "logs/reweight/{name}/train.log",
    benchmark:
        "benchmarks/reweight/{name}/train.tsv"
    threads: RES["reweight_train"]["threads"]
    resources:
        mem_mb=RES["reweight_train"]["mem_mb"],
        runtime=RES["reweight_train"]["runtime"],
        gpu=gpu_request(config),
    conda:
        "../envs/reweight.yaml"
    wildcard_constraints:
        name=constraint(REWEIGHT),
    script:
        "../scripts/reweight_train.py"


rule reweight_evaluate:
    input:
        code=script_sources("reweight_evaluate"),
        source=lambda w: reweight_inputs(config, w.name, "source"),
        target=lambda w: reweight_inputs(config, w.name, "target"),
        weights="results/reweight/{name}/weights.parquet",
        summary="results/reweight/{name}/train.json",
        model="results/reweight/{name}/model.pt",
    output:
        metrics="results/reweight/{name}/metrics.json",
        closure_plot=report("results/reweight/{name}/closure.png", category="reweight", subcategory="{name}"),
    params:
        settings=lambda w: reweight_settings(config, w.name),
        device=config["device"],
        seed=config["seed"],
    log:
        "logs/reweight/{name}/evaluate.log",
    benchmark:
        "benchmarks/reweight/{name}/evaluate.tsv"
    threads: RES["reweight_evaluate"]["threads"]
    resources:
        mem_mb=RES["reweight_evaluate"]["mem_mb"],
        runtime=RES["reweight_evaluate"]["runtime"],
        gpu=gpu_request(config),
    conda:
        "../envs/reweight.yaml"
    wildcard_constraints:
        name=constraint(REWEIGHT),
    script:
        "../scripts/reweight_evaluate.py"


rule reweight_tune:
    input:
        code=script_sources("reweight_tune"),
        reference=tune_inputs(config, "reference"),
        normalisation=tune_inputs(config, "normalisation"),
        scan=tune_inputs(config, "scan"),
        data=tune_inputs(config, "data"),
    output:
        model="results/reweight/tune/model.pt",
        metrics="results/reweight/tune/metrics.json",
        fit_plot=report("results/reweight/tune/fit.png", category="reweight", subcategory="tune"),
    params:
        settings=tune_settings(config),
        device=config["device"],
        seed=config["seed"],
    log:
        "logs/reweight/tune.log",
    benchmark:
        "benchmarks/reweight/tune.tsv"
    threads: RES["reweight_tune"]["threads"]
    resources:
        mem_mb=RES["reweight_tune"]["mem_mb"],
        runtime=RES["reweight_tune"]["runtime"],
        gpu=gpu_request(config),
    conda:
        "../envs/reweight.yaml"
    script:
        "../scripts/reweight_tune.py"


rule reweight_refine:
    input:
        code=script_sources("reweight_refine"),
        source=lambda w: reweight_inputs(config, w.name, "source"),
        weights="results/reweight/{name}/weights.parquet",
    output:
        events="results/reweight/{name}/events.parquet",
    params:
        settings=lambda w: reweight_settings(config, w.name),
    log:
        "logs/reweight/{name}/refine.log",
    benchmark:
        "benchmarks/reweight/{name}/refine.tsv"
    threads: RES["reweight_refine"]["threads"]
    resources:
        mem_mb=RES["reweight_refine"]["mem_mb"],
        runtime=RES["reweight_refine"]["runtime"],
    conda:
        "../envs/reweight.yaml"
    wildcard_constraints:
        name=constraint(REFINE),
    script:
        "../scripts/reweight_refine.py"
