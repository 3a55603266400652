# Stage generate: prepared events -> generative networks (CFM, spline flow, autoregressive transformer)
# -> large event samples in prepare's schema -> evaluation against held-out truth.
# results/generate/{model}/{model.pt, train.json, events.parquet, events.root, sample.json,
#                           metrics.json, classifier.png, mll.png, hist_{n}j.png}


rule train_generator:
    input:
        code=script_sources("generate_train"),
        train=f"results/data/{GENERATE_DATA}/train.parquet",
        val=f"results/data/{GENERATE_DATA}/val.parquet",
        metadata=f"results/data/{GENERATE_DATA}/metadata.json",
    output:
        model="results/generate/{model}/model.pt",
        summary="results/generate/{model}/train.json",
    params:
        settings=lambda w: generate_settings(config, w.model),
        level=config["generate"]["level"],
        multiplicities=config["generate"]["multiplicities"],
        device=config["device"],
        seed=config["seed"],
    log:
        "logs/generate/{model}/train.log",
    benchmark:
        "benchmarks/generate/{model}/train.tsv"
    threads: RES["train_generator"]["threads"]
    resources:
        mem_mb=RES["train_generator"]["mem_mb"],
        runtime=RES["train_generator"]["runtime"],
        gpu=gpu_request(config),
    conda:
        "../envs/generate.yaml"
    wildcard_constraints:
        model=constraint(config["generate"]["models"]),
    script:
        "../scripts/generate_train.py"


rule sample_generator:
    input:
        code=script_sources("generate_sample"),
        model="results/generate/{model}/model.pt",
    output:
        parquet="results/generate/{model}/events.parquet",
        root="results/generate/{model}/events.root",
        summary="results/generate/{model}/sample.json",
    params:
        settings=config["generate"]["sampling"],
        device=config["device"],
        seed=config["seed"],
    log:
        "logs/generate/{model}/sample.log",
    benchmark:
        "benchmarks/generate/{model}/sample.tsv"
    threads: RES["sample_generator"]["threads"]
    resources:
        mem_mb=RES["sample_generator"]["mem_mb"],
        runtime=RES["sample_generator"]["runtime"],
        gpu=gpu_request(config),
    conda:
        "../envs/generate.yaml"
    wildcard_constraints:
        model=constraint(config["generate"]["models"]),
    script:
        "../scripts/generate_sample.py"


rule evaluate_generator:
    input:
        code=script_sources("generate_evaluate"),
        model="results/generate/{model}/model.pt",
        events="results/generate/{model}/events.parquet",
        summary="results/generate/{model}/sample.json",
        truth=f"results/data/{GENERATE_DATA}/test.parquet",
        sim=[f"results/sim/{GENERATE_DATA}/metrics.json"] if GENERATE_DATA in config["samples"] else [],
    output:
        metrics="results/generate/{model}/metrics.json",
        classifier_plot=report("results/generate/{model}/classifier.png", category="generate", subcategory="{model}"),
        mll_plot=report("results/generate/{model}/mll.png", category="generate", subcategory="{model}"),
        **{
            f"hist_{n}j": report(f"results/generate/{{model}}/hist_{n}j.png", category="generate", subcategory="{model}")
            for n in config["generate"]["multiplicities"]
        },
    params:
        settings=config["generate"]["evaluation"],
        device=config["device"],
        seed=config["seed"],
    log:
        "logs/generate/{model}/evaluate.log",
    benchmark:
        "benchmarks/generate/{model}/evaluate.tsv"
    threads: RES["evaluate_generator"]["threads"]
    resources:
        mem_mb=RES["evaluate_generator"]["mem_mb"],
        runtime=RES["evaluate_generator"]["runtime"],
        gpu=gpu_request(config),
    conda:
        "../envs/generate.yaml"
    wildcard_constraints:
        model=constraint(config["generate"]["models"]),
    script:
        "../scripts/generate_evaluate.py"
