# Placebo permutations (docs/placebo.md): N draws per kind split into K shards. The randomness of draw d
# comes only from (seed, kind, d), so results are identical for any number of shards and wherever the
# shards run. Shards share the group "placebo": on a cluster they reach the scheduler as a few jobs.


rule placebo_shard:
    input:
        panel="results/panel/panel.parquet",
    output:
        "results/placebo/{kind}/shard_{shard}.parquet",
    log:
        "logs/placebo_shard/{kind}_{shard}.log",
    benchmark:
        "benchmarks/placebo_shard/{kind}_{shard}.tsv"
    group:
        "placebo"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=lambda wildcards: config["placebo"]["memory_mb"] + 1000,
        runtime=30,
    params:
        kind=lambda wildcards: wildcards.kind,
        shard=lambda wildcards: int(wildcards.shard),
        n_shards=lambda wildcards: placebo_shards(wildcards.kind),
        n_draws=lambda wildcards: placebo_draws(wildcards.kind),
        seed=config["placebo"]["seed"],
        options=PLACEBO_OPTIONS,
        memory_mb=config["placebo"]["memory_mb"],
        controls=config["controls"],
        estimation=config["estimation"],
    script:
        "../scripts/placebo_shard.py"


rule gather_placebo:
    input:
        lambda wildcards: expand(
            "results/placebo/{kind}/shard_{shard}.parquet",
            kind=wildcards.kind,
            shard=range(placebo_shards(wildcards.kind)),
        ),
    output:
        "results/placebo/{kind}/draws.parquet",
    log:
        "logs/gather_placebo/{kind}.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        n_draws=lambda wildcards: placebo_draws(wildcards.kind),
    script:
        "../scripts/gather_placebo.py"


rule summarise_placebo:
    input:
        draws=expand("results/placebo/{kind}/draws.parquet", kind=PLACEBO_KINDS),
        baseline="results/estimates/baseline.csv",
    output:
        summary=report(
            "results/estimates/placebo_summary.csv",
            caption="../report/placebo_summary.rst",
            category="3 Robustness",
            subcategory="Tables",
            labels={"analysis": "placebo summary", "type": "table"},
        ),
    log:
        "logs/summarise_placebo.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        kinds=PLACEBO_KINDS,
        true_model="(2)",
    script:
        "../scripts/summarise_placebo.py"


rule render_placebo:
    """The figure of one placebo kind, drawn from its draws (one job per kind: each has its caption)."""
    input:
        draws="results/placebo/{kind}/draws.parquet",
        baseline="results/estimates/baseline.csv",
    output:
        png=report(
            "results/figures/placebo_{kind}.png",
            caption="../report/placebo.rst",
            category="3 Robustness",
            subcategory="Figures",
            labels={"analysis": "placebo: {kind}", "type": "figure"},
        ),
        pdf="results/figures/placebo_{kind}.pdf",
    log:
        "logs/render_placebo/{kind}.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        true_model="(2)",
        language=config["tables"]["language"],
        dpi=config["figures"]["dpi"],
    script:
        "../scripts/render_placebo.py"


rule placebo:
    """Aggregate target: every placebo kind's draws, the summary and the figures."""
    input:
        rules.summarise_placebo.output,
        expand(
            "results/figures/placebo_{kind}.{ext}",
            kind=PLACEBO_KINDS,
            ext=["png", "pdf"],
        ),


localrules:
    placebo,
    gather_placebo,
