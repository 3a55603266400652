# Stage symbolic: the optimal observable of the CP-odd coupling in WBF Higgs production.
# results/symbolic/{process}/{score_data.parquet, score_data.json, score_vs_observables.png,
#                             pareto_front.json, pareto_front.md, pareto_front.png,
#                             metrics.json, residuals.png, likelihood.png, sally.pt}  (parton level)
# results/symbolic/{process}/{level}/ the same at detector level (symbolic.detector), plus constants.{json,md}
# Regression and evaluation run in either folder ({folder}: {process} or {process}/{level}).

SYMBOLIC_DETECTOR = config["symbolic"]["detector"]
SYMBOLIC_FOLDERS = SYMBOLIC + ([f"{p}/{SYMBOLIC_DETECTOR['level']}" for p in SYMBOLIC] if SYMBOLIC_DETECTOR["sample"] else [])


rule symbolic_data:
    input:
        code=script_sources("symbolic_data"),
        events=lambda w: [f"results/madnis/{w.process}/events.parquet"] if config["symbolic"]["events"] == "madnis" else [],
    output:
        data="results/symbolic/{process}/score_data.parquet",
        summary="results/symbolic/{process}/score_data.json",
        figure=report("results/symbolic/{process}/score_vs_observables.png", category="symbolic", subcategory="{process}"),
    params:
        process=lambda w: process_spec(config, w.process),
        settings=lambda w: {k: config["symbolic"][k] for k in ("events", "test_fraction")}
        | ({"n_events": config["symbolic"]["n_events"]} if config["symbolic"]["events"] == "physics" else {}),
        device=config["device"],
        seed=config["seed"],
    log:
        "logs/symbolic/{process}/data.log",
    benchmark:
        "benchmarks/symbolic/{process}/data.tsv"
    threads: RES["symbolic_data"]["threads"]
    resources:
        mem_mb=RES["symbolic_data"]["mem_mb"],
        runtime=RES["symbolic_data"]["runtime"],
    conda:
        "../envs/symbolic.yaml"
    wildcard_constraints:
        process=constraint(config["symbolic"]["processes"]),
    script:
        "../scripts/symbolic_data.py"


rule symbolic_regression:
    input:
        code=script_sources("symbolic_regression"),
        data="results/symbolic/{folder}/score_data.parquet",
    output:
        json="results/symbolic/{folder}/pareto_front.json",
        markdown="results/symbolic/{folder}/pareto_front.md",
        figure=report("results/symbolic/{folder}/pareto_front.png", category="symbolic", subcategory="{folder}"),
    params:
        settings=config["symbolic"]["regression"],
        seed=config["seed"],
    log:
        "logs/symbolic/{folder}/regression.log",
    benchmark:
        "benchmarks/symbolic/{folder}/regression.tsv"
    threads: RES["symbolic_regression"]["threads"]
    resources:
        mem_mb=RES["symbolic_regression"]["mem_mb"],
        runtime=RES["symbolic_regression"]["runtime"],
    conda:
        "../envs/symbolic.yaml"
    wildcard_constraints:
        folder=constraint(SYMBOLIC_FOLDERS),
    script:
        "../scripts/symbolic_regression.py"


rule symbolic_evaluate:
    input:
        code=script_sources("symbolic_evaluate"),
        data="results/symbolic/{folder}/score_data.parquet",
        front="results/symbolic/{folder}/pareto_front.json",
    output:
        metrics="results/symbolic/{folder}/metrics.json",
        residuals=report("results/symbolic/{folder}/residuals.png", category="symbolic", subcategory="{folder}"),
        likelihood=report("results/symbolic/{folder}/likelihood.png", category="symbolic", subcategory="{folder}"),
        sally="results/symbolic/{folder}/sally.pt",
    params:
        settings=lambda w: config["symbolic"]["evaluation"]
        | ({"branching_ratio": SYMBOLIC_DETECTOR["branching_ratio"]} if "/" in w.folder else {}),
        seed=config["seed"],
    log:
        "logs/symbolic/{folder}/evaluate.log",
    benchmark:
        "benchmarks/symbolic/{folder}/evaluate.tsv"
    threads: RES["symbolic_evaluate"]["threads"]
    resources:
        mem_mb=RES["symbolic_evaluate"]["mem_mb"],
        runtime=RES["symbolic_evaluate"]["runtime"],
    conda:
        "../envs/symbolic.yaml"
    wildcard_constraints:
        folder=constraint(SYMBOLIC_FOLDERS),
    script:
        "../scripts/symbolic_evaluate.py"


rule symbolic_detector_data:
    input:
        code=script_sources("symbolic_detector_data"),
        events="results/madnis/{process}/events.parquet",
        prepared=expand("results/data/{name}/{split}.parquet", name=SYMBOLIC_DETECTOR["sample"] or [], split=["train", "val", "test"]),
    output:
        data="results/symbolic/{process}/{level}/score_data.parquet",
        summary="results/symbolic/{process}/{level}/score_data.json",
        figure=report("results/symbolic/{process}/{level}/score_vs_observables.png", category="symbolic", subcategory="{process}/{level}"),
    params:
        process=lambda w: process_spec(config, w.process),
        settings=lambda w: {"level": w.level, "test_fraction": config["symbolic"]["test_fraction"],
                            "n_simulated": config["samples"][SYMBOLIC_DETECTOR["sample"]]["n_events"]},
        device=config["device"],
        seed=config["seed"],
    log:
        "logs/symbolic/{process}/{level}/data.log",
    benchmark:
        "benchmarks/symbolic/{process}/{level}/data.tsv"
    threads: RES["symbolic_data"]["threads"]
    resources:
        mem_mb=RES["symbolic_data"]["mem_mb"],
        runtime=RES["symbolic_data"]["runtime"],
    conda:
        "../envs/symbolic.yaml"
    wildcard_constraints:
        process=constraint(config["symbolic"]["processes"]),
        level=constraint([SYMBOLIC_DETECTOR["level"]]),
    script:
        "../scripts/symbolic_detector_data.py"


rule symbolic_constants:
    input:
        code=script_sources("symbolic_constants"),
        front="results/symbolic/{process}/pareto_front.json",
        data="results/symbolic/{process}/{level}/score_data.parquet",
    output:
        json="results/symbolic/{process}/{level}/constants.json",
        markdown="results/symbolic/{process}/{level}/constants.md",
    params:
        settings={"chosen_complexity_max": config["symbolic"]["evaluation"]["chosen_complexity_max"],
                  "bootstrap": SYMBOLIC_DETECTOR["bootstrap"]},
        seed=config["seed"],
    log:
        "logs/symbolic/{process}/{level}/constants.log",
    benchmark:
        "benchmarks/symbolic/{process}/{level}/constants.tsv"
    threads: RES["symbolic_evaluate"]["threads"]
    resources:
        mem_mb=RES["symbolic_evaluate"]["mem_mb"],
        runtime=RES["symbolic_evaluate"]["runtime"],
    conda:
        "../envs/symbolic.yaml"
    wildcard_constraints:
        process=constraint(config["symbolic"]["processes"]),
        level=constraint([SYMBOLIC_DETECTOR["level"]]),
    script:
        "../scripts/symbolic_constants.py"
