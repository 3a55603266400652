# Stage amplitudes: exact |M|^2 data -> surrogate network with uncertainties -> evaluation
# results/amplitudes/{process}/{data.h5, model.pt, metrics.json, accuracy.png, pulls.png}


rule amplitude_data:
    input:
        code=script_sources("amplitudes_data"),
        integrator=lambda w: amplitude_integrator(config, w.process),
    output:
        data="results/amplitudes/{process}/data.h5",
        summary="results/amplitudes/{process}/data.json",
    params:
        process=lambda w: config["processes"][w.process],
        data=config["amplitudes"]["data"],
        device=config["device"],
        seed=config["seed"],
    log:
        "logs/amplitudes/{process}/data.log",
    benchmark:
        "benchmarks/amplitudes/{process}/data.tsv"
    threads: RES["amplitude_data"]["threads"]
    resources:
        mem_mb=RES["amplitude_data"]["mem_mb"],
        runtime=RES["amplitude_data"]["runtime"],
        gpu=gpu_request(config),
    conda:
        "../envs/amplitudes.yaml"
    wildcard_constraints:
        process=constraint(config["processes"]),
    script:
        "../scripts/amplitudes_data.py"


rule amplitude_import:
    input:
        code=script_sources("amplitudes_import"),
        source=lambda w: config["amplitudes"]["external"][w.process]["file"],
    output:
        data="results/amplitudes/{process}/data.h5",
        summary="results/amplitudes/{process}/data.json",
    params:
        external=lambda w: config["amplitudes"]["external"][w.process],
        split=config["amplitudes"]["data"]["split"],
        seed=config["seed"],
    log:
        "logs/amplitudes/{process}/import.log",
    benchmark:
        "benchmarks/amplitudes/{process}/import.tsv"
    threads: RES["amplitude_data"]["threads"]
    resources:
        mem_mb=RES["amplitude_data"]["mem_mb"],
        runtime=RES["amplitude_data"]["runtime"],
    conda:
        "../envs/amplitudes.yaml"
    wildcard_constraints:
        process=constraint(config["amplitudes"]["external"]),
    script:
        "../scripts/amplitudes_import.py"


rule train_amplitude:
    input:
        code=script_sources("amplitudes_train"),
        data="results/amplitudes/{process}/data.h5",
    output:
        model="results/amplitudes/{process}/model.pt",
        summary="results/amplitudes/{process}/train.json",
    params:
        settings=lambda w: amplitude_settings(config),
        device=config["device"],
        seed=config["seed"],
    log:
        "logs/amplitudes/{process}/train.log",
    benchmark:
        "benchmarks/amplitudes/{process}/train.tsv"
    threads: RES["train_amplitude"]["threads"]
    resources:
        mem_mb=RES["train_amplitude"]["mem_mb"],
        runtime=RES["train_amplitude"]["runtime"],
        gpu=gpu_request(config),
    conda:
        "../envs/amplitudes.yaml"
    script:
        "../scripts/amplitudes_train.py"


rule evaluate_amplitude:
    input:
        code=script_sources("amplitudes_evaluate"),
        data="results/amplitudes/{process}/data.h5",
        model="results/amplitudes/{process}/model.pt",
    output:
        metrics="results/amplitudes/{process}/metrics.json",
        accuracy=report("results/amplitudes/{process}/accuracy.png", category="amplitudes", subcategory="{process}"),
        pulls=report("results/amplitudes/{process}/pulls.png", category="amplitudes", subcategory="{process}"),
    params:
        process=lambda w: config["processes"].get(w.process),
        device=config["device"],
    log:
        "logs/amplitudes/{process}/evaluate.log",
    benchmark:
        "benchmarks/amplitudes/{process}/evaluate.tsv"
    threads: RES["evaluate_amplitude"]["threads"]
    resources:
        mem_mb=RES["evaluate_amplitude"]["mem_mb"],
        runtime=RES["evaluate_amplitude"]["runtime"],
        gpu=gpu_request(config),
    conda:
        "../envs/amplitudes.yaml"
    script:
        "../scripts/amplitudes_evaluate.py"
