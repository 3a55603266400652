# Stage showers: GFLASH-style reference showers (or CaloChallenge files) -> CaloDREAM-style surrogate
# (energy and shower networks) -> generated showers -> the CaloChallenge evaluation; and Z -> ee with the electrons'
# energies from reference and surrogate showers (fast simulation in the chain).
# results/showers/{reference/{train,test}.h5 + .json, energy/{model.pt,train.json}, shower/{model.pt,train.json},
#                  generated.h5, sample.json, metrics.json, energy.png, shape.png, sparsity.png, published.png,
#                  fastsim/{metrics.json, mee.png, response.png}}
from lhcchain.showers import data_files, reference_settings  # noqa: E402

SHOWER_FILES = data_files(config)


rule shower_reference:
    input:
        code=script_sources("showers_reference"),
    output:
        showers="results/showers/reference/{split}.h5",
        summary="results/showers/reference/{split}.json",
    params:
        n=lambda w: config["showers"]["reference"][f"n_{w.split}"],
        binning=config["showers"]["binning"],
        settings=reference_settings(config),
        seed=config["seed"],
    log:
        "logs/showers/reference_{split}.log",
    benchmark:
        "benchmarks/showers/reference_{split}.tsv"
    threads: RES["shower_reference"]["threads"]
    resources:
        mem_mb=RES["shower_reference"]["mem_mb"],
        runtime=RES["shower_reference"]["runtime"],
    conda:
        "../envs/showers.yaml"
    wildcard_constraints:
        split="train|test",
    script:
        "../scripts/showers_reference.py"


rule train_showers:
    input:
        code=script_sources("showers_train"),
        data=SHOWER_FILES["train"],
    output:
        model="results/showers/{part}/model.pt",
        summary="results/showers/{part}/train.json",
    params:
        settings=lambda w: config["showers"]["surrogate"][w.part],
        binning=config["showers"]["binning"],
        threshold_mev=config["showers"]["threshold_mev"],
        device=config["device"],
        seed=config["seed"],
    log:
        "logs/showers/train_{part}.log",
    benchmark:
        "benchmarks/showers/train_{part}.tsv"
    threads: RES["train_showers"]["threads"]
    resources:
        mem_mb=RES["train_showers"]["mem_mb"],
        runtime=RES["train_showers"]["runtime"],
        gpu=gpu_request(config),
    conda:
        "../envs/showers.yaml"
    wildcard_constraints:
        part="energy|shower",
    script:
        "../scripts/showers_train.py"


rule sample_showers:
    input:
        code=script_sources("showers_sample"),
        energy="results/showers/energy/model.pt",
        shower="results/showers/shower/model.pt",
        energies=SHOWER_FILES["test"],
    output:
        showers="results/showers/generated.h5",
        summary="results/showers/sample.json",
    params:
        settings=config["showers"]["sampling"],
        device=config["device"],
        seed=config["seed"],
    log:
        "logs/showers/sample.log",
    benchmark:
        "benchmarks/showers/sample.tsv"
    threads: RES["sample_showers"]["threads"]
    resources:
        mem_mb=RES["sample_showers"]["mem_mb"],
        runtime=RES["sample_showers"]["runtime"],
        gpu=gpu_request(config),
    conda:
        "../envs/showers.yaml"
    script:
        "../scripts/showers_sample.py"


rule evaluate_showers:
    input:
        code=script_sources("showers_evaluate"),
        reference=SHOWER_FILES["test"],
        generated="results/showers/generated.h5",
        energy="results/showers/energy/model.pt",
        shower="results/showers/shower/model.pt",
    output:
        metrics="results/showers/metrics.json",
        energy_plot=report("results/showers/energy.png", category="showers"),
        shape_plot=report("results/showers/shape.png", category="showers"),
        sparsity_plot=report("results/showers/sparsity.png", category="showers"),
        published_plot=report("results/showers/published.png", category="showers"),
    params:
        settings=config["showers"]["evaluation"],
        binning=config["showers"]["binning"],
        threshold_mev=config["showers"]["threshold_mev"],
        sampling=config["showers"]["sampling"],
        reference=reference_settings(config),
        device=config["device"],
        seed=config["seed"],
    log:
        "logs/showers/evaluate.log",
    benchmark:
        "benchmarks/showers/evaluate.tsv"
    threads: RES["evaluate_showers"]["threads"]
    resources:
        mem_mb=RES["evaluate_showers"]["mem_mb"],
        runtime=RES["evaluate_showers"]["runtime"],
        gpu=gpu_request(config),
    conda:
        "../envs/showers.yaml"
    script:
        "../scripts/showers_evaluate.py"


rule showers_fastsim:
    input:
        code=script_sources("showers_fastsim"),
        events=lambda w: [f"results/data/{config['showers']['fastsim']['sample']}/{split}.parquet"
                          for split in config["showers"]["fastsim"]["splits"]],
        energy="results/showers/energy/model.pt",
        shower="results/showers/shower/model.pt",
        training=SHOWER_FILES["train"],
    output:
        metrics="results/showers/fastsim/metrics.json",
        mass_plot=report("results/showers/fastsim/mee.png", category="showers"),
        response_plot=report("results/showers/fastsim/response.png", category="showers"),
    params:
        settings=config["showers"]["fastsim"],
        binning=config["showers"]["binning"],
        reference=reference_settings(config),
        sampling=config["showers"]["sampling"],
        device=config["device"],
        seed=config["seed"],
    log:
        "logs/showers/fastsim.log",
    benchmark:
        "benchmarks/showers/fastsim.tsv"
    threads: RES["showers_fastsim"]["threads"]
    resources:
        mem_mb=RES["showers_fastsim"]["mem_mb"],
        runtime=RES["showers_fastsim"]["runtime"],
    conda:
        "../envs/showers.yaml"
    script:
        "../scripts/showers_fastsim.py"
