# Robustness II (issue 5): the Goodman-Bacon decomposition, heterogeneity-robust staggered estimators next to
# the TWFE event study, HonestDiD sensitivity, the two-treatment design (pilot order and pilot states) and the
# robustness grid. docs/robustness.md explains what each estimator identifies and how to read each figure.


rule estimate_bacon:
    input:
        panel="results/panel/panel.parquet",
    output:
        decomposition="results/estimates/bacon.csv",
        summary=report(
            "results/estimates/bacon_summary.csv",
            caption="../report/bacon.rst",
            category="3 Robustness",
            subcategory="Tables",
            labels={"analysis": "Bacon decomposition", "type": "table"},
        ),
        png=report(
            "results/figures/bacon.png",
            caption="../report/bacon_figure.rst",
            category="3 Robustness",
            subcategory="Figures",
            labels={"analysis": "Bacon decomposition", "type": "figure"},
        ),
        pdf="results/figures/bacon.pdf",
    log:
        "logs/estimate_bacon.log",
    benchmark:
        "benchmarks/estimate_bacon.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        estimation=config["estimation"],
        treatment="dual_post",
        language=config["tables"]["language"],
        figures=config["figures"],
    script:
        "../scripts/estimate_bacon.py"


rule estimate_staggered:
    input:
        panel="results/panel/panel.parquet",
    output:
        estimates=report(
            "results/estimates/staggered.csv",
            caption="../report/staggered.rst",
            category="3 Robustness",
            subcategory="Tables",
            labels={"analysis": "staggered DID estimators", "type": "table"},
        ),
    log:
        "logs/estimate_staggered.log",
    benchmark:
        "benchmarks/estimate_staggered.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        controls=config["controls"],
        estimation=config["estimation"],
        options=config["robustness"]["staggered"],
    script:
        "../scripts/estimate_staggered.py"


rule plot_staggered:
    input:
        twfe="results/estimates/event_study.csv",
        staggered="results/estimates/staggered.csv",
    output:
        png=report(
            "results/figures/event_study_estimators.png",
            caption="../report/event_study_estimators.rst",
            category="3 Robustness",
            subcategory="Figures",
            labels={"analysis": "event study estimators", "type": "figure"},
        ),
        pdf="results/figures/event_study_estimators.pdf",
    log:
        "logs/plot_staggered.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        series=config["robustness"]["staggered_plot"],
        event_study=config["event_study"],
        figures=config["figures"],
        language=config["tables"]["language"],
    script:
        "../scripts/plot_staggered.py"


rule estimate_honestdid:
    input:
        panel="results/panel/panel.parquet",
        event_study="results/estimates/event_study.csv",
    output:
        estimates=report(
            "results/estimates/honestdid.csv",
            caption="../report/honestdid.rst",
            category="3 Robustness",
            subcategory="Tables",
            labels={"analysis": "HonestDiD", "type": "table"},
        ),
        tex="results/tables/honestdid.tex",
        md="results/tables/honestdid.md",
        png=report(
            "results/figures/honestdid.png",
            caption="../report/honestdid_figure.rst",
            category="3 Robustness",
            subcategory="Figures",
            labels={"analysis": "HonestDiD", "type": "figure"},
        ),
        pdf="results/figures/honestdid.pdf",
    log:
        "logs/estimate_honestdid.log",
    benchmark:
        "benchmarks/estimate_honestdid.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        controls=config["controls"],
        estimation=config["estimation"],
        event_study=config["event_study"],
        honestdid=config["robustness"]["honestdid"],
        language=config["tables"]["language"],
        figures=config["figures"],
    script:
        "../scripts/estimate_honestdid.py"


rule estimate_pilot_order:
    input:
        panel="results/panel/panel.parquet",
    output:
        estimates=report(
            "results/estimates/pilot_order.csv",
            caption="../report/pilot_order.rst",
            category="3 Robustness",
            subcategory="Tables",
            labels={"analysis": "pilot order", "type": "table"},
        ),
    log:
        "logs/estimate_pilot_order.log",
    benchmark:
        "benchmarks/estimate_pilot_order.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        controls=config["controls"],
        estimation=config["estimation"],
    script:
        "../scripts/estimate_pilot_order.py"


rule estimate_robustness:
    input:
        panel="results/panel/panel.parquet",
        city_master="resources/cities/city_master.csv",
        smart_city="resources/policy/smart_city_pilots.csv",
        low_carbon="resources/policy/low_carbon_pilots.csv",
        labels="resources/labels/terms.csv",
        # the user's <raw_dir>/policy/ lists, if any, replace the shipped ones (as in build_panel)
        raw=raw_inputs,
    output:
        estimates=report(
            "results/estimates/robustness.csv",
            caption="../report/robustness.rst",
            category="3 Robustness",
            subcategory="Tables",
            labels={"analysis": "robustness grid", "type": "table"},
        ),
        specs="results/estimates/robustness_specs.csv",
        tex="results/tables/robustness.tex",
        md="results/tables/robustness.md",
    log:
        "logs/estimate_robustness.log",
    benchmark:
        "benchmarks/estimate_robustness.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        raw_dir=config["raw_dir"],
        years=YEARS,
        policy=config["policy"],
        controls=config["controls"],
        estimation=config["estimation"],
        specs=config["robustness"]["grid"]["specs"],
        bootstrap=config["robustness"]["grid"]["bootstrap"],
        tables=config["tables"],
    script:
        "../scripts/estimate_robustness.py"


rule robustness:
    """Aggregate target: every output of the Robustness II stage."""
    input:
        rules.estimate_bacon.output,
        rules.estimate_staggered.output,
        rules.plot_staggered.output,
        rules.estimate_honestdid.output,
        rules.estimate_pilot_order.output,
        rules.estimate_robustness.output,


localrules:
    robustness,
