# Stage madnis: MadNIS (madnis library) against VEGAS and flat sampling -> unweighted events
# (exact |M|^2, and two-stage with the amplitude surrogate when `amplitudes` trains one).
# results/madnis/{process}/{integrator.pt, metrics.json, weights.png, channels.png,
#                           events.lhe.gz, events.parquet, unweight.json, distributions.png}


rule madnis_integrate:
    input:
        code=script_sources("madnis_integrate"),
    output:
        checkpoint="results/madnis/{process}/integrator.pt",
        metrics="results/madnis/{process}/metrics.json",
        weights=report("results/madnis/{process}/weights.png", category="madnis", subcategory="{process}"),
        channels=report("results/madnis/{process}/channels.png", category="madnis", subcategory="{process}"),
    params:
        process=lambda w: process_spec(config, w.process),
        settings=lambda w: madnis_settings(config, w.process),
        evaluation=config["madnis"]["evaluation"],
        reference=config["madnis"]["reference"],
        device=config["device"],
        seed=config["seed"],
    log:
        "logs/madnis/{process}/integrate.log",
    benchmark:
        "benchmarks/madnis/{process}/integrate.tsv"
    threads: RES["madnis_integrate"]["threads"]
    resources:
        mem_mb=RES["madnis_integrate"]["mem_mb"],
        runtime=RES["madnis_integrate"]["runtime"],
        gpu=gpu_request(config),
    conda:
        "../envs/madnis.yaml"
    wildcard_constraints:
        process=constraint(config["processes"]),
    script:
        "../scripts/madnis_integrate.py"


rule madnis_unweight:
    input:
        code=script_sources("madnis_unweight"),
        checkpoint="results/madnis/{process}/integrator.pt",
        surrogate=lambda w: madnis_surrogate(config, w.process),
    output:
        lhe="results/madnis/{process}/events.lhe.gz",
        parquet="results/madnis/{process}/events.parquet",
        metrics="results/madnis/{process}/unweight.json",
        distributions=report("results/madnis/{process}/distributions.png", category="madnis", subcategory="{process}"),
    params:
        settings=config["madnis"]["events"],
        device=config["device"],
        seed=config["seed"],
    log:
        "logs/madnis/{process}/unweight.log",
    benchmark:
        "benchmarks/madnis/{process}/unweight.tsv"
    threads: RES["madnis_unweight"]["threads"]
    resources:
        mem_mb=RES["madnis_unweight"]["mem_mb"],
        runtime=RES["madnis_unweight"]["runtime"],
        gpu=gpu_request(config),
    conda:
        "../envs/madnis.yaml"
    wildcard_constraints:
        process=constraint(config["processes"]),
    script:
        "../scripts/madnis_unweight.py"
