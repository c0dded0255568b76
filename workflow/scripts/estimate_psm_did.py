"""PSM-DID under each matching design, with the balance before and after matching and the propensity
scores (rule estimate_psm_did); rule render_psm draws the tables and the score densities."""

from dualpilot.workflow.runner import run


def main(inputs, outputs, params):
    from dualpilot.analyses import psm
    from dualpilot.data.panel import read_panel

    options = dict(params.psm)
    designs = options.pop("designs")
    result = psm.run_all_designs(
        read_panel(inputs.panel), controls=params.controls, designs=designs, **options
    )
    result.tidy.to_csv(outputs.estimates, index=False)
    result.balance.to_csv(outputs.balance, index=False)
    result.summary.to_csv(outputs.summary, index=False)
    result.matched.to_parquet(outputs.matched, index=False)
    result.scores.to_parquet(outputs.scores, index=False)


if __name__ == "__main__" or "snakemake" in globals():
    run(main, globals())
