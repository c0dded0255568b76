"""Build the city-year panel from a raw directory (rule build_panel).

Reads every edition of the yearbook extracts in `raw_dir`, validates them (all problems are reported at once,
with file, line and column), derives the variables of docs/raw-data.md, codes the two pilot programmes, and
writes the panel as Parquet, CSV and Stata .dta with its manifest, sample and quality tables.
"""

import dataclasses
import logging

from dualpilot.workflow.runner import run

log = logging.getLogger("dualpilot.build_panel")


def main(inputs, outputs, params):
    from dualpilot.data import panel, reference, treatment, yearbook

    master = reference.load_city_master(inputs.city_master)
    crosswalk = reference.load_name_crosswalk(inputs.name_crosswalk)
    years = tuple(params.years)
    rules = treatment.rules_from_config(params.policy)
    lists = {}
    for key, name in (
        ("smart_city", "smart_city_pilots.csv"),
        ("low_carbon", "low_carbon_pilots.csv"),
    ):
        path, shipped = reference.choose_policy_file(params.raw_dir, name, inputs[key])
        log.info("%s pilot list: %s%s", key, path, " (shipped)" if shipped else " (from raw_dir)")
        # every code in the master in its policy year, name and code agreeing (docs/treatment-coding.md)
        lists[key] = reference.load_checked_pilot_list(
            path,
            master=master,
            crosswalk=crosswalk,
            batch_years=rules["sc_batch_years" if key == "smart_city" else "lc_batch_years"],
        )
        if key == "smart_city":
            counts = reference.load_smart_city_batches(inputs.smart_city_batches)
            against = "official"
        else:
            counts = treatment.list_batch_counts(reference.load_pilot_list(inputs[key]))
            against = "shipped (complete) list's"
        coverage = treatment.smart_city_coverage(lists[key], counts)
        log.info("%s", treatment.batch_counts_report(key, coverage, against))
        warning = treatment.coverage_warning(coverage) if key == "smart_city" and shipped else None
        if warning:
            log.warning(warning)

    aliases = yearbook.load_aliases(inputs.header_aliases)
    build = panel.build_panel(
        params.raw_dir,
        years=years,
        sample_rule=params.sample_rule,
        master=master,
        crosswalk=crosswalk,
        aliases=aliases,
        usd_cny=reference.load_usd_cny(inputs.usd_cny),
        bounds=yearbook.load_bounds(inputs.plausibility, aliases),
        jump_factor=params.jump_factor,
        truncation_ratio=params.truncation_ratio,
        outcome_industry=params.outcome_industry,
    )
    coded = treatment.code_treatment(
        build.panel,
        lists["smart_city"],
        lists["low_carbon"],
        master,
        **rules,
        last_year=years[1],
    )
    panel.write_panel(
        dataclasses.replace(build, panel=coded),
        outputs.parquet,
        outputs.csv,
        outputs.dta,
        out_manifest=outputs.manifest,
        out_sample=outputs.sample,
        out_industries=outputs.industries,
        out_quality=outputs.quality,
        outcome_industry=params.outcome_industry,
    )
    log.info(
        "panel: %d cities x %d years = %d rows; groups: %s",
        coded["city_code"].nunique(),
        coded["year"].nunique(),
        len(coded),
        coded.drop_duplicates("city_code")["group"].value_counts().to_dict(),
    )


if __name__ == "__main__" or "snakemake" in globals():
    run(main, globals())
