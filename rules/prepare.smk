# Stage prepare: ROOT (ours, NanoAOD, Delphes) or LHE -> results/data/{name}/*.parquet + metadata


rule prepare:
    input:
        code=script_sources("prepare"),
        events=lambda w: prepare_inputs(config, w.name),
    output:
        train="results/data/{name}/train.parquet",
        val="results/data/{name}/val.parquet",
        test="results/data/{name}/test.parquet",
        metadata="results/data/{name}/metadata.json",
        cutflow=report("results/data/{name}/cutflow.csv", category="prepare", subcategory="{name}"),
        metrics="results/data/{name}/metrics.json",
        mll_plot=report("results/data/{name}/mll.png", category="prepare", subcategory="{name}"),
        jets_plot=report("results/data/{name}/jet_pt.png", category="prepare", subcategory="{name}"),
        cutflow_plot=report("results/data/{name}/cutflow.png", category="prepare", subcategory="{name}"),
    params:
        settings=lambda w: prepare_settings(config, w.name),
        seed=config["seed"],
    log:
        "logs/prepare/{name}.log",
    benchmark:
        "benchmarks/prepare/{name}.tsv"
    threads: RES["prepare"]["threads"]
    resources:
        mem_mb=RES["prepare"]["mem_mb"],
        runtime=RES["prepare"]["runtime"],
    conda:
        "../envs/prepare.yaml"
    script:
        "../scripts/prepare.py"
