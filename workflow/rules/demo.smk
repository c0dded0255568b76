# Demo extracts: raw yearbook tables in exactly the layout of docs/raw-data.md, generated from the documented
# data-generating process of docs/demo-data.md with the planted effects of config `demo:`.
# Demo results are never the study's findings.


rule make_demo_extracts:
    input:
        city_master="resources/cities/city_master.csv",
        name_crosswalk="resources/cities/name_crosswalk.csv",
        header_aliases="resources/yearbook/header_aliases.csv",
        low_carbon="resources/policy/low_carbon_pilots.csv",
        usd_cny="resources/macro/usd_cny.csv",
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
    params:
        years=YEARS,
        demo=config["demo"],
        policy=config["policy"],
    script:
        "../scripts/make_demo_extracts.py"


# The demo's recovery table (docs/demo-data.md, "What the workflow recovers"): only when raw_dir is the
# demo, since it compares the estimates with the generator's truth.
DEMO_RECOVERY = ["results/tables/demo_recovery.csv"] if raw_dir_is_demo() else []


rule estimate_demo_recovery:
    """Each estimator's ATT of the dual pilot beside the true ATT on its sample; reads estimates only."""
    input:
        truth="results/demo/truth.parquet",
        panel="results/panel/panel.parquet",
        baseline="results/estimates/baseline.csv",
        staggered="results/estimates/staggered.csv",
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
    params:
        controls=config["controls"],
        estimation=config["estimation"],
        staggered_use_controls=config["robustness"]["staggered"]["use_controls"],
        cs_control_groups=config["robustness"]["staggered"]["cs_control_groups"],
        twfe_model="(2)",
    script:
        "../scripts/estimate_demo_recovery.py"


rule demo_recovery:
    """Aggregate target: the demo's recovery table (nothing when raw_dir is not the demo)."""
    input:
        DEMO_RECOVERY,


localrules:
    demo_recovery,
