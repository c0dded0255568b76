"""The demo's recovery table: each estimator's ATT beside the true ATT on its sample (rule
estimate_demo_recovery; only when raw_dir is the demo)."""

import logging

from dualpilot.workflow.runner import run

log = logging.getLogger("dualpilot.estimate_demo_recovery")


def main(inputs, outputs, params):
    import pandas as pd

    from dualpilot.data.panel import read_panel
    from dualpilot.demo import recovery

    if params.outcome_industry != "it_emp":
        raise ValueError(
            f"outcome_industry is {params.outcome_industry!r}: the demo plants its effects on the IT "
            "sector's location quotient only, so there is no true effect to recover for another industry "
            "(rule demo_recovery builds nothing then)"
        )
    table = recovery.demo_recovery(
        pd.read_parquet(inputs.truth),
        read_panel(inputs.panel),
        {"baseline": pd.read_csv(inputs.baseline), "staggered": pd.read_csv(inputs.staggered)},
        recovery.recovered_estimators(params.cs_control_groups, params.twfe_model),
        outcome=params.estimation["outcome"],
        twfe_controls=params.controls,
        staggered_covariates=params.controls if params.staggered_use_controls else (),
        unit=params.estimation["unit"],
        time=params.estimation["time"],
        treatment=params.treatment,
    )
    table.to_csv(outputs.table, index=False)
    for row in table.itertuples():
        log.info(
            "%s: %.4f [%.4f, %.4f], true ATT %.4f, %s",
            row.estimator,
            row.estimate,
            row.conf_low,
            row.conf_high,
            row.truth,
            "covered" if row.covered else "NOT covered",
        )


if __name__ == "__main__" or "snakemake" in globals():
    run(main, globals())
