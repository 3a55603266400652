# Stage simulate: Pythia 8 + FastJet + fast detector -> results/sim/{sample}/chunk{i}.root


rule simulate:
    input:
        code=script_sources("simulate_chunk"),
        lhe=lambda w: [config["samples"][w.sample]["lhe_file"]] if config["samples"][w.sample]["process"] == "lhe" else [],
    output:
        root="results/sim/{sample}/chunk{chunk}.root",
        stats="results/sim/{sample}/chunk{chunk}.json",
    params:
        sample=lambda w: config["samples"][w.sample],
        seed=config["seed"],
        detector=config["simulate"]["detector"],
        jets=config["simulate"]["jets"],
        batch_size=config["simulate"]["batch_size"],
    log:
        "logs/simulate/{sample}/chunk{chunk}.log",
    benchmark:
        "benchmarks/simulate/{sample}/chunk{chunk}.tsv"
    threads: RES["simulate"]["threads"]
    resources:
        mem_mb=RES["simulate"]["mem_mb"],
        runtime=RES["simulate"]["runtime"],
    conda:
        "../envs/simulate.yaml"
    wildcard_constraints:
        chunk=r"\d+",
    script:
        "../scripts/simulate_chunk.py"


rule simulate_summary:
    input:
        code=script_sources("simulate_summary"),
        roots=lambda w: chunk_files(config, w.sample, "root"),
        stats=lambda w: chunk_files(config, w.sample, "json"),
    output:
        metrics="results/sim/{sample}/metrics.json",
        muon_response=report("results/sim/{sample}/muon_response.png", category="simulate", subcategory="{sample}"),
        jet_substructure=report("results/sim/{sample}/jet_substructure.png", category="simulate", subcategory="{sample}"),
        met=report("results/sim/{sample}/met.png", category="simulate", subcategory="{sample}"),
    params:
        detector=config["simulate"]["detector"],
    log:
        "logs/simulate/{sample}/summary.log",
    benchmark:
        "benchmarks/simulate/{sample}/summary.tsv"
    threads: RES["simulate_summary"]["threads"]
    resources:
        mem_mb=RES["simulate_summary"]["mem_mb"],
        runtime=RES["simulate_summary"]["runtime"],
    conda:
        "../envs/simulate.yaml"
    script:
        "../scripts/simulate_summary.py"
