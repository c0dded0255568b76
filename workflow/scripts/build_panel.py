"""Build the city-year panel from a raw directory (rule build_panel).

Reads every edition of the yearbook extracts in `raw_dir`, validates them (all problems are reported at once,
with file, line and column), derives the variables of docs/raw-data.md, codes the two pilot programmes of config `dual:`, and
writes the panel as Parquet, CSV and Stata .dta with its manifest, sample and quality tables.
"""

import dataclasses
import logging

from dualpilot.workflow.runner import run

log = logging.getLogger("dualpilot.build_panel")


def main(inputs, outputs, params):
    from dualpilot.data import panel, programmes, reference, treatment, yearbook

    master = reference.load_city_master(inputs.city_master)
    crosswalk = reference.load_name_crosswalk(inputs.name_crosswalk)
    years = tuple(params.years)
    rules = treatment.rules_from_config(params.policy)
    pair_programmes = programmes.dual_programmes(params.programmes, params.dual)
    pair = programmes.Pair.of(params.dual)
    lists = {}
    for p in pair_programmes:
        shipped_list = inputs.get(f"list_{p.key}")
        path, shipped = reference.choose_policy_file(params.raw_dir, p.pilot_list, shipped_list)
        log.info(
            "%s pilot list: %s%s", p.name, path, " (shipped)" if shipped else " (from raw_dir)"
        )
        if path.name.startswith("synthetic_"):
            log.warning(
                "%s pilot list %s is SYNTHETIC (an illustration, not the programme's real pilots): "
                "results coded from it are not findings",
                p.name,
                path,
            )
        # every code in the master in its policy year, name and code agreeing (docs/treatment-coding.md)
        lists[p.key] = reference.load_checked_pilot_list(
            path, master=master, crosswalk=crosswalk, batch_years=p.batch_map
        )
        if p.official_counts is not None:
            counts = reference.load_smart_city_batches(inputs[f"counts_{p.key}"])
            against = "official"
        elif shipped_list is not None:
            counts = treatment.list_batch_counts(reference.load_pilot_list(shipped_list))
            against = "shipped list's"
        else:
            counts = treatment.list_batch_counts(lists[p.key])
            against = "supplied list's own"
        coverage = treatment.smart_city_coverage(lists[p.key], counts)
        log.info("%s", treatment.batch_counts_report(p.name, coverage, against))
        warning = (
            treatment.coverage_warning(coverage, p.short_en, p.pilot_list)
            if p.official_counts is not None and shipped
            else None
        )
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
    coded = treatment.code_dual(
        build.panel,
        lists,
        master,
        pair=pair,
        batch_years={p.key: p.batch_map for p in pair_programmes},
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
        labels=inputs.labels,
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
