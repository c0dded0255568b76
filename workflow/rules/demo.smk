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
