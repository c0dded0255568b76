# Staggered-adoption robustness: the Goodman-Bacon decomposition, heterogeneity-robust staggered estimators
# next to the TWFE event study, HonestDiD sensitivity, the two-treatment design (pilot order and pilot states)
# and the robustness grid. docs/robustness.md explains what each estimator identifies and how to read each
# figure.


rule estimate_bacon:
    input:
        panel=rules.build_panel.output.parquet,
    output:
        decomposition="results/estimates/bacon.csv",
        summary=report(
            "results/estimates/bacon_summary.csv",
            caption="../report/bacon.rst",
            category="3 Robustness",
            subcategory="Tables",
            labels={"analysis": "Bacon decomposition", "type": "table"},
        ),
    log:
        "logs/estimate_bacon.log",
    benchmark:
        "benchmarks/estimate_bacon.tsv"
    conda:
        "../../envs/analysis.yaml"
    resources:
        **JOB_RESOURCES,
    params:
        estimation=config["estimation"],
        treatment=config["headline"]["term"],
    script:
        "../scripts/estimate_bacon.py"


rule estimate_staggered:
    input:
        panel=rules.build_panel.output.parquet,
    output:
        estimates=report(
            "results/estimates/staggered.csv",
            caption="../report/staggered.rst",
            category="3 Robustness",
            subcategory="Tables",
            labels={"analysis": "staggered DID estimators", "type": "table"},
        ),
        # the vcov of the imputation event study, which rule estimate_honestdid reads by default
        vcov="results/estimates/imputation_event_study_vcov.csv",
    log:
        "logs/estimate_staggered.log",
    benchmark:
        "benchmarks/estimate_staggered.tsv"
    conda:
        "../../envs/analysis.yaml"
    resources:
        **JOB_RESOURCES,
    params:
        dual=DUAL,
        controls=config["controls"],
        estimation=config["estimation"],
        options=config["robustness"]["staggered"],
        adjust_single_pilots=config["event_study"]["adjust_single_pilots"],
    script:
        "../scripts/estimate_staggered.py"


# The event study HonestDiD analyses (robustness: honestdid: event_study): its estimates and their vcov.
HONESTDID_EVENT_STUDY = {
    "imputation": {
        "event_study": rules.estimate_staggered.output.estimates,
        "vcov": rules.estimate_staggered.output.vcov,
    },
    "twfe": {
        "event_study": rules.estimate_event_study.output.estimates,
        "vcov": rules.estimate_event_study.output.vcov,
    },
}[config["robustness"]["honestdid"]["event_study"]]


rule estimate_honestdid:
    """HonestDiD on a reported event study (its estimates and vcov): imputation by default, or TWFE."""
    input:
        **HONESTDID_EVENT_STUDY,
    output:
        estimates=report(
            "results/estimates/honestdid.csv",
            caption="../report/honestdid.rst",
            category="3 Robustness",
            subcategory="Tables",
            labels={"analysis": "HonestDiD", "type": "table"},
        ),
    log:
        "logs/estimate_honestdid.log",
    benchmark:
        "benchmarks/estimate_honestdid.tsv"
    conda:
        "../../envs/analysis.yaml"
    resources:
        **JOB_RESOURCES,
    params:
        base=config["event_study"]["base"],
        window=config["event_study"]["window"],
        honestdid=config["robustness"]["honestdid"],
    script:
        "../scripts/estimate_honestdid.py"


rule estimate_pilot_order:
    input:
        panel=rules.build_panel.output.parquet,
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
    resources:
        **JOB_RESOURCES,
    params:
        dual=DUAL,
        controls=config["controls"],
        estimation=config["estimation"],
    script:
        "../scripts/estimate_pilot_order.py"


rule estimate_robustness:
    input:
        **reference("city_master"),
        **programme_inputs(),
        # the user's <raw_dir>/policy/ lists, if any, replace the shipped ones (as in build_panel)
        panel=rules.build_panel.output.parquet,
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
    log:
        "logs/estimate_robustness.log",
    benchmark:
        "benchmarks/estimate_robustness.tsv"
    conda:
        "../../envs/analysis.yaml"
    resources:
        **JOB_RESOURCES,
    params:
        programmes=config["programmes"],
        dual=DUAL,
        raw_dir=config["raw_dir"],
        years=YEARS,
        policy=config["policy"],
        controls=config["controls"],
        estimation=config["estimation"],
        specs=config["robustness"]["grid"]["specs"],
        bootstrap=config["robustness"]["grid"]["bootstrap"],
    script:
        "../scripts/estimate_robustness.py"


rule render_robustness:
    """Every table and figure of the robustness stage, drawn from the estimation rules' files."""
    input:
        **reference("specs"),
        labels=LABELS,
        bacon=rules.estimate_bacon.output.decomposition,
        bacon_summary=rules.estimate_bacon.output.summary,
        event_study=rules.estimate_event_study.output.estimates,
        staggered=rules.estimate_staggered.output.estimates,
        honestdid=rules.estimate_honestdid.output.estimates,
        pilot_order=rules.estimate_pilot_order.output.estimates,
        robustness=rules.estimate_robustness.output.estimates,
        robustness_specs=rules.estimate_robustness.output.specs,
    output:
        **table_outputs(["honestdid", "pilot_order", "robustness"], "3 Robustness"),
        bacon_png=report(
            "results/figures/bacon.png",
            caption="../report/bacon_figure.rst",
            category="3 Robustness",
            subcategory="Figures",
            labels={"analysis": "Bacon decomposition", "type": "figure"},
        ),
        bacon_pdf="results/figures/bacon.pdf",
        estimators_png=report(
            "results/figures/event_study_estimators.png",
            caption="../report/event_study_estimators.rst",
            category="3 Robustness",
            subcategory="Figures",
            labels={"analysis": "event study estimators", "type": "figure"},
        ),
        estimators_pdf="results/figures/event_study_estimators.pdf",
        honestdid_png=report(
            "results/figures/honestdid.png",
            caption="../report/honestdid_figure.rst",
            category="3 Robustness",
            subcategory="Figures",
            labels={"analysis": "HonestDiD", "type": "figure"},
        ),
        honestdid_pdf="results/figures/honestdid.pdf",
    log:
        "logs/render_robustness.log",
    benchmark:
        "benchmarks/render_robustness.tsv"
    conda:
        "../../envs/analysis.yaml"
    resources:
        **JOB_RESOURCES,
    params:
        tables=config["tables"],
        figures=config["figures"],
        series=config["robustness"]["staggered_plot"],
        event_study=config["event_study"],
        cs_base_period=config["robustness"]["staggered"]["cs_base_period"],
        honestdid=config["robustness"]["honestdid"],
        bootstrap=config["robustness"]["grid"]["bootstrap"],
        outcome_industry=config["outcome_industry"],  # whose location quotient lq is, in labels and notes
    script:
        "../scripts/render_robustness.py"


rule robustness:
    """Aggregate target: every output of the robustness stage."""
    input:
        rules.estimate_bacon.output,
        rules.estimate_staggered.output,
        rules.estimate_honestdid.output,
        rules.estimate_pilot_order.output,
        rules.estimate_robustness.output,
        rules.render_robustness.output,


localrules:
    robustness,
