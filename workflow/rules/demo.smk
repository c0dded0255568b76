# Demo extracts: raw yearbook tables in exactly the layout of docs/raw-data.md, generated from the documented
# data-generating process of docs/demo-data.md with the planted effects of config `demo:`, and the demo's
# recovery table. Demo results are never the study's findings. Included after the stages: the recovery table
# reads their estimates (rules.<rule>.output).


rule make_demo_extracts:
    input:
        **reference(
            "city_master", "name_crosswalk", "header_aliases", "low_carbon", "usd_cny"
        ),
    output:
        raw=directory(DEMO_RAW_DIR),
        truth="results/demo/truth.parquet",
        summary="results/demo/truth.json",
    log:
        "logs/make_demo_extracts.log",
    benchmark:
        "benchmarks/make_demo_extracts.tsv"
    conda:
        "../../envs/data.yaml"
    resources:
        **JOB_RESOURCES,
    params:
        years=YEARS,
        demo=config["demo"],
        programmes=config["programmes"],
        policy=config["policy"],
        outcome_industry=config["outcome_industry"],  # printed in every edition, like the IT sector
    script:
        "../scripts/make_demo_extracts.py"


# The demo's recovery table (docs/demo-data.md, "What the workflow recovers"): built only when raw_dir is
# the demo (aggregate target demo_recovery), since it compares the estimates with the generator's truth.
rule estimate_demo_recovery:
    """Each estimator's ATT of the dual pilot beside the true ATT on its sample; reads estimates only."""
    input:
        truth=rules.make_demo_extracts.output.truth,
        panel=rules.build_panel.output.parquet,
        baseline=rules.estimate_baseline.output.estimates,
        staggered=rules.estimate_staggered.output.estimates,
    output:
        table=report(
            "results/tables/demo_recovery.csv",
            caption="../report/demo_recovery.rst",
            category="3 Robustness",
            subcategory="Tables",
            labels={"analysis": "demo recovery", "type": "table"},
        ),
    log:
        "logs/estimate_demo_recovery.log",
    benchmark:
        "benchmarks/estimate_demo_recovery.tsv"
    conda:
        "../../envs/analysis.yaml"
    resources:
        **JOB_RESOURCES,
    params:
        controls=config["controls"],
        estimation=config["estimation"],
        staggered_use_controls=config["robustness"]["staggered"]["use_controls"],
        cs_control_groups=config["robustness"]["staggered"]["cs_control_groups"],
        twfe_model=config["headline"]["model"],
        treatment=config["headline"]["term"],
        outcome_industry=config["outcome_industry"],  # the effects are planted on the IT sector's lq only
    script:
        "../scripts/estimate_demo_recovery.py"


rule demo_recovery:
    """Aggregate target: the demo's recovery table (nothing when raw_dir is not the demo, when the outcome
    industry is not the IT sector, or when the dual pair is not the demo's sc and lc: the truth holds the
    dual effect of sc and lc on the IT sector only)."""
    input:
        (
            rules.estimate_demo_recovery.output
            if raw_dir_is_demo()
            and config["outcome_industry"] == "it_emp"
            and DUAL == ["sc", "lc"]
            else []
        ),


localrules:
    demo_recovery,
