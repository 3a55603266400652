# Stage reweight: classifier density ratios w = D / (1 - D) between two prepared samples, cross-fitted,
# calibrated and checked, then the closure of the reweighting.
# results/reweight/{name}/{model.pt, weights.parquet, train.json, calibration.png, metrics.json, closure.png}


rule reweight_train:
    input:
        code=stage_sources("reweight", "generate"),
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
        code=stage_sources("reweight", "generate"),
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
