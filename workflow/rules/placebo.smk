# Placebo permutations (docs/placebo.md): N draws per kind split into K shards. The randomness of draw d
# comes only from (seed, kind, d), so results are identical for any number of shards and wherever the
# shards run. Shards share the group "placebo": on a cluster they reach the scheduler as a few jobs.


rule placebo_shard:
    input:
        panel=rules.build_panel.output.parquet,
    output:
        shard="results/placebo/{kind}/shard_{shard}.parquet",
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
            rules.placebo_shard.output.shard,
            kind=wildcards.kind,
            shard=range(placebo_shards(wildcards.kind)),
        ),
    output:
        draws="results/placebo/{kind}/draws.parquet",
    log:
        "logs/gather_placebo/{kind}.log",
    benchmark:
        "benchmarks/gather_placebo/{kind}.tsv"
    conda:
        "../../envs/analysis.yaml"
    resources:
        **JOB_RESOURCES,
    params:
        n_draws=lambda wildcards: placebo_draws(wildcards.kind),
    script:
        "../scripts/gather_placebo.py"


rule summarise_placebo:
    input:
        draws=expand(rules.gather_placebo.output.draws, kind=PLACEBO_KINDS),
        baseline=rules.estimate_baseline.output.estimates,
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
    benchmark:
        "benchmarks/summarise_placebo.tsv"
    conda:
        "../../envs/analysis.yaml"
    resources:
        **JOB_RESOURCES,
    params:
        kinds=PLACEBO_KINDS,
        headline=config["headline"],
    script:
        "../scripts/summarise_placebo.py"


rule render_placebo:
    """The figure of one placebo kind, drawn from its draws (one job per kind: each has its caption)."""
    input:
        draws=rules.gather_placebo.output.draws,
        baseline=rules.estimate_baseline.output.estimates,
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
    benchmark:
        "benchmarks/render_placebo/{kind}.tsv"
    conda:
        "../../envs/analysis.yaml"
    resources:
        **JOB_RESOURCES,
    params:
        headline=config["headline"],
        language=config["tables"]["language"],
        dpi=config["figures"]["dpi"],
    script:
        "../scripts/render_placebo.py"


rule placebo:
    """Aggregate target: every placebo kind's draws, the summary and the figures."""
    input:
        rules.summarise_placebo.output,
        expand(rules.render_placebo.output, kind=PLACEBO_KINDS),


localrules:
    placebo,
    gather_placebo,
