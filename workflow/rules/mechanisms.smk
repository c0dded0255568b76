# Mechanisms and heterogeneity (docs/mechanisms-heterogeneity.md): the dual pilot's effect on digital
# innovation, green innovation and human capital (江艇 2022 two-step, Romano-Wolf adjusted), and its
# heterogeneity across groups fixed before the policy, with bdiff-style permutation tests run as shards.


rule estimate_mechanisms:
    input:
        panel=rules.build_panel.output.parquet,
    output:
        estimates=report(
            "results/estimates/mechanisms.csv",
            caption="../report/mechanisms.rst",
            category="4 Mechanisms and heterogeneity",
            subcategory="Tables",
            labels={"analysis": "mechanisms", "type": "table"},
        ),
    log:
        "logs/estimate_mechanisms.log",
    benchmark:
        "benchmarks/estimate_mechanisms.tsv"
    conda:
        "../../envs/analysis.yaml"
    resources:
        **JOB_RESOURCES,
    params:
        controls=config["controls"],
        estimation=config["estimation"],
        mechanisms=config["mechanisms"],
    script:
        "../scripts/estimate_mechanisms.py"


rule permute_group_labels:
    """One shard of the permutation draws of every between-group gap of one heterogeneity dimension."""
    input:
        panel=rules.build_panel.output.parquet,
    output:
        shard="results/heterogeneity/permutations/{dimension}/shard_{shard}.parquet",
    log:
        "logs/permute_group_labels/{dimension}_{shard}.log",
    benchmark:
        "benchmarks/permute_group_labels/{dimension}_{shard}.tsv"
    group:
        "permutations"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=1500,
        runtime=30,
    params:
        dimension=lambda wildcards: wildcards.dimension,
        shard=lambda wildcards: int(wildcards.shard),
        controls=config["controls"],
        estimation=config["estimation"],
        heterogeneity=config["heterogeneity"],
    script:
        "../scripts/permute_group_labels.py"


rule estimate_heterogeneity:
    input:
        panel=rules.build_panel.output.parquet,
        permutations=expand(
            rules.permute_group_labels.output.shard,
            dimension=HETEROGENEITY_DIMENSIONS,
            shard=range(config["heterogeneity"]["shards"]),
        ),
    output:
        estimates=report(
            "results/estimates/heterogeneity.csv",
            caption="../report/heterogeneity.rst",
            category="4 Mechanisms and heterogeneity",
            subcategory="Tables",
            labels={"analysis": "heterogeneity", "type": "table"},
        ),
        groups="results/heterogeneity/groups.csv",
    log:
        "logs/estimate_heterogeneity.log",
    benchmark:
        "benchmarks/estimate_heterogeneity.tsv"
    conda:
        "../../envs/analysis.yaml"
    resources:
        **JOB_RESOURCES,
    params:
        controls=config["controls"],
        estimation=config["estimation"],
        heterogeneity=config["heterogeneity"],
    script:
        "../scripts/estimate_heterogeneity.py"


rule render_mechanisms_heterogeneity:
    """The mechanism and heterogeneity tables and the heterogeneity figure, drawn from the estimates."""
    input:
        **reference("specs"),
        labels=LABELS,
        mechanisms=rules.estimate_mechanisms.output.estimates,
        heterogeneity=rules.estimate_heterogeneity.output.estimates,
    output:
        **table_outputs(
            ["mechanisms", "heterogeneity", "heterogeneity_tests"],
            "4 Mechanisms and heterogeneity",
        ),
        png=report(
            "results/figures/heterogeneity.png",
            caption="../report/heterogeneity_figure.rst",
            category="4 Mechanisms and heterogeneity",
            subcategory="Figures",
            labels={"analysis": "heterogeneity", "type": "figure"},
        ),
        pdf="results/figures/heterogeneity.pdf",
    log:
        "logs/render_mechanisms_heterogeneity.log",
    benchmark:
        "benchmarks/render_mechanisms_heterogeneity.tsv"
    conda:
        "../../envs/analysis.yaml"
    resources:
        **JOB_RESOURCES,
    params:
        groups=sorted(
            {
                g
                for d in config["heterogeneity"]["dimensions"].values()
                for g in d["groups"]
            }
        ),
        treatment=config["headline"]["term"],
        tables=config["tables"],
        figures=config["figures"],
        outcome_industry=config["outcome_industry"],  # whose location quotient lq is, in labels and notes
    script:
        "../scripts/render_mechanisms_heterogeneity.py"


rule mechanisms_heterogeneity:
    """Aggregate target: mechanism and heterogeneity estimates, tables and figure."""
    input:
        rules.estimate_mechanisms.output,
        rules.estimate_heterogeneity.output,
        rules.render_mechanisms_heterogeneity.output,


localrules:
    mechanisms_heterogeneity,
