# Baseline results (docs/estimation.md): the TWFE baseline, dual versus single pilots, the event study, the
# duration effects and the descriptive statistics. Every estimate is written once in the tidy format
# (results/estimates/<analysis>.csv); tables and figures are rendered from those files only.


rule estimate_baseline:
    input:
        panel=rules.build_panel.output.parquet,
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
    resources:
        **JOB_RESOURCES,
    params:
        controls=config["controls"],
        estimation=config["estimation"],
        bootstrap=config["baseline"]["bootstrap"],
    script:
        "../scripts/estimate_baseline.py"


rule estimate_single_vs_dual:
    input:
        panel=rules.build_panel.output.parquet,
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
    benchmark:
        "benchmarks/estimate_single_vs_dual.tsv"
    conda:
        "../../envs/analysis.yaml"
    resources:
        **JOB_RESOURCES,
    params:
        dual=DUAL,
        controls=config["controls"],
        estimation=config["estimation"],
    script:
        "../scripts/estimate_single_vs_dual.py"


rule estimate_event_study:
    input:
        panel=rules.build_panel.output.parquet,
    output:
        estimates=report(
            "results/estimates/event_study.csv",
            caption="../report/event_study.rst",
            category="2 Baseline",
            subcategory="Tables",
            labels={"analysis": "event study", "type": "table"},
        ),
        # the vcov of the event-time coefficients, which rule estimate_honestdid reads
        vcov="results/estimates/event_study_vcov.csv",
    log:
        "logs/estimate_event_study.log",
    benchmark:
        "benchmarks/estimate_event_study.tsv"
    conda:
        "../../envs/analysis.yaml"
    resources:
        **JOB_RESOURCES,
    params:
        dual=DUAL,
        controls=config["controls"],
        estimation=config["estimation"],
        event_study=config["event_study"],
    script:
        "../scripts/estimate_event_study.py"


rule estimate_duration:
    input:
        panel=rules.build_panel.output.parquet,
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
    benchmark:
        "benchmarks/estimate_duration.tsv"
    conda:
        "../../envs/analysis.yaml"
    resources:
        **JOB_RESOURCES,
    params:
        controls=config["controls"],
        estimation=config["estimation"],
        bins=config["duration"]["bins"],
    script:
        "../scripts/estimate_duration.py"


rule describe_panel:
    """Descriptive statistics of the panel (the numbers; render_baseline formats them)."""
    input:
        panel=rules.build_panel.output.parquet,
    output:
        csv=report(
            "results/tables/descriptives.csv",
            caption="../report/descriptives.rst",
            category="1 Data",
            subcategory="Tables",
            labels={"analysis": "descriptive statistics", "type": "table"},
        ),
    log:
        "logs/describe_panel.log",
    benchmark:
        "benchmarks/describe_panel.tsv"
    conda:
        "../../envs/analysis.yaml"
    resources:
        **JOB_RESOURCES,
    params:
        descriptives=config["descriptives"],
    script:
        "../scripts/describe_panel.py"


rule render_baseline:
    """Every table and figure of the baseline stage, drawn from the tidy estimates (no estimation)."""
    input:
        **reference("specs"),
        labels=LABELS,
        baseline=rules.estimate_baseline.output.estimates,
        single_vs_dual=rules.estimate_single_vs_dual.output.estimates,
        event_study=rules.estimate_event_study.output.estimates,
        duration=rules.estimate_duration.output.estimates,
        descriptives=rules.describe_panel.output.csv,
        treatment_summary=rules.summarise_treatment.output.csv,
    output:
        **table_outputs(BASELINE_ANALYSES, "2 Baseline"),
        **table_outputs(["descriptives", "treatment_summary"], "1 Data"),
        event_study_png=report(
            "results/figures/event_study.png",
            caption="../report/event_study_figure.rst",
            category="2 Baseline",
            subcategory="Figures",
            labels={"analysis": "event study", "type": "figure"},
        ),
        event_study_pdf="results/figures/event_study.pdf",
        duration_png=report(
            "results/figures/duration.png",
            caption="../report/duration_figure.rst",
            category="2 Baseline",
            subcategory="Figures",
            labels={"analysis": "duration", "type": "figure"},
        ),
        duration_pdf="results/figures/duration.pdf",
    log:
        "logs/render_baseline.log",
    benchmark:
        "benchmarks/render_baseline.tsv"
    conda:
        "../../envs/analysis.yaml"
    resources:
        **JOB_RESOURCES,
    params:
        programmes=config["programmes"],
        dual=DUAL,
        analyses=BASELINE_ANALYSES,
        tables=config["tables"],
        figures=config["figures"],
        base=config["event_study"]["base"],
        outcome_industry=config["outcome_industry"],  # whose location quotient lq is, in labels and notes
    script:
        "../scripts/render_baseline.py"


rule baseline:
    """Aggregate target: every baseline result (estimates, tables, figures)."""
    input:
        rules.estimate_baseline.output,
        rules.estimate_single_vs_dual.output,
        rules.estimate_event_study.output,
        rules.estimate_duration.output,
        rules.describe_panel.output,
        rules.render_baseline.output,


localrules:
    baseline,
