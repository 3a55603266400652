# Stage symbolic: the optimal observable of the CP-odd coupling in WBF Higgs production.
# results/symbolic/{process}/{score_data.parquet, score_data.json, score_vs_observables.png,
#                             pareto_front.json, pareto_front.md, pareto_front.png,
#                             metrics.json, residuals.png, likelihood.png, sally.pt}


rule symbolic_data:
    input:
        code=stage_sources("symbolic", "physics", "madnis"),
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
        code=stage_sources("symbolic"),
        data="results/symbolic/{process}/score_data.parquet",
    output:
        json="results/symbolic/{process}/pareto_front.json",
        markdown="results/symbolic/{process}/pareto_front.md",
        figure=report("results/symbolic/{process}/pareto_front.png", category="symbolic", subcategory="{process}"),
    params:
        settings=config["symbolic"]["regression"],
        seed=config["seed"],
    log:
        "logs/symbolic/{process}/regression.log",
    benchmark:
        "benchmarks/symbolic/{process}/regression.tsv"
    threads: RES["symbolic_regression"]["threads"]
    resources:
        mem_mb=RES["symbolic_regression"]["mem_mb"],
        runtime=RES["symbolic_regression"]["runtime"],
    conda:
        "../envs/symbolic.yaml"
    wildcard_constraints:
        process=constraint(config["symbolic"]["processes"]),
    script:
        "../scripts/symbolic_regression.py"


rule symbolic_evaluate:
    input:
        code=stage_sources("symbolic", "generate"),
        data="results/symbolic/{process}/score_data.parquet",
        front="results/symbolic/{process}/pareto_front.json",
    output:
        metrics="results/symbolic/{process}/metrics.json",
        residuals=report("results/symbolic/{process}/residuals.png", category="symbolic", subcategory="{process}"),
        likelihood=report("results/symbolic/{process}/likelihood.png", category="symbolic", subcategory="{process}"),
        sally="results/symbolic/{process}/sally.pt",
    params:
        settings=config["symbolic"]["evaluation"],
        seed=config["seed"],
    log:
        "logs/symbolic/{process}/evaluate.log",
    benchmark:
        "benchmarks/symbolic/{process}/evaluate.tsv"
    threads: RES["symbolic_evaluate"]["threads"]
    resources:
        mem_mb=RES["symbolic_evaluate"]["mem_mb"],
        runtime=RES["symbolic_evaluate"]["runtime"],
    conda:
        "../envs/symbolic.yaml"
    wildcard_constraints:
        process=constraint(config["symbolic"]["processes"]),
    script:
        "../scripts/symbolic_evaluate.py"
