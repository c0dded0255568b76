# Baseline results (docs/estimation.md): the TWFE baseline, dual versus single pilots, the event study, the
# duration effects and the descriptive statistics. Every estimate is written once in the tidy format
# (results/estimates/<analysis>.csv); tables and figures are rendered from those files only.


rule estimate_baseline:
    input:
        panel="results/panel/panel.parquet",
    output:
        estimates=report(
            "results/estimates/baseline.csv",
            caption="../report/baseline.rst",
            category="2 Baseline",
            subcategory="Tables",
            labels={"analysis": "baseline DID", "type": "table"},
        ),
    log:
        "logs/estimate_baseline.log",
    benchmark:
        "benchmarks/estimate_baseline.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        controls=config["controls"],
        estimation=config["estimation"],
        bootstrap=config["baseline"]["bootstrap"],
    script:
        "../scripts/estimate_baseline.py"


rule estimate_single_vs_dual:
    input:
        panel="results/panel/panel.parquet",
    output:
        estimates=report(
            "results/estimates/single_vs_dual.csv",
            caption="../report/single_vs_dual.rst",
            category="2 Baseline",
            subcategory="Tables",
            labels={"analysis": "dual vs single pilots", "type": "table"},
        ),
    log:
        "logs/estimate_single_vs_dual.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        controls=config["controls"],
        estimation=config["estimation"],
    script:
        "../scripts/estimate_single_vs_dual.py"


rule estimate_event_study:
    input:
        panel="results/panel/panel.parquet",
    output:
        estimates=report(
            "results/estimates/event_study.csv",
            caption="../report/event_study.rst",
            category="2 Baseline",
            subcategory="Tables",
            labels={"analysis": "event study", "type": "table"},
        ),
    log:
        "logs/estimate_event_study.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        controls=config["controls"],
        estimation=config["estimation"],
        event_study=config["event_study"],
    script:
        "../scripts/estimate_event_study.py"


rule estimate_duration:
    input:
        panel="results/panel/panel.parquet",
    output:
        estimates=report(
            "results/estimates/duration.csv",
            caption="../report/duration.rst",
            category="2 Baseline",
            subcategory="Tables",
            labels={"analysis": "duration", "type": "table"},
        ),
    log:
        "logs/estimate_duration.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        controls=config["controls"],
        estimation=config["estimation"],
        bins=config["duration"]["bins"],
    script:
        "../scripts/estimate_duration.py"


rule describe_panel:
    input:
        panel="results/panel/panel.parquet",
        labels="resources/labels/terms.csv",
    output:
        csv=report(
            "results/tables/descriptives.csv",
            caption="../report/descriptives.rst",
            category="1 Data",
            subcategory="Tables",
            labels={"analysis": "descriptive statistics", "type": "table"},
        ),
        tex="results/tables/descriptives.tex",
        md="results/tables/descriptives.md",
    log:
        "logs/describe_panel.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        descriptives=config["descriptives"],
        tables=config["tables"],
    script:
        "../scripts/describe_panel.py"


rule make_table:
    """A three-line table (LaTeX and Markdown) rendered from one tidy estimate file."""
    input:
        estimates="results/estimates/{analysis}.csv",
        labels="resources/labels/terms.csv",
        specs="resources/labels/tables.csv",
    output:
        tex="results/tables/{analysis}.tex",
        md="results/tables/{analysis}.md",
    log:
        "logs/make_table/{analysis}.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        analysis=lambda wildcards: wildcards.analysis,
        tables=config["tables"],
    script:
        "../scripts/make_table.py"


rule plot_event_study:
    input:
        estimates="results/estimates/event_study.csv",
        labels="resources/labels/terms.csv",
    output:
        png=report(
            "results/figures/event_study.png",
            caption="../report/event_study_figure.rst",
            category="2 Baseline",
            subcategory="Figures",
            labels={"analysis": "event study", "type": "figure"},
        ),
        pdf="results/figures/event_study.pdf",
    log:
        "logs/plot_event_study.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        base=config["event_study"]["base"],
        figures=config["figures"],
        language=config["tables"]["language"],
    script:
        "../scripts/plot_event_study.py"


rule plot_duration:
    input:
        estimates="results/estimates/duration.csv",
        labels="resources/labels/terms.csv",
    output:
        png=report(
            "results/figures/duration.png",
            caption="../report/duration_figure.rst",
            category="2 Baseline",
            subcategory="Figures",
            labels={"analysis": "duration", "type": "figure"},
        ),
        pdf="results/figures/duration.pdf",
    log:
        "logs/plot_duration.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        figures=config["figures"],
        language=config["tables"]["language"],
    script:
        "../scripts/plot_duration.py"


rule baseline:
    """Aggregate target: every baseline result (estimates, tables, figures)."""
    input:
        expand("results/estimates/{analysis}.csv", analysis=BASELINE_ANALYSES),
        expand(
            "results/tables/{analysis}.{ext}",
            analysis=BASELINE_ANALYSES,
            ext=["tex", "md"],
        ),
        rules.describe_panel.output,
        rules.plot_event_study.output,
        rules.plot_duration.output,


localrules:
    baseline,
