"""HonestDiD sensitivity of the TWFE event study (rule estimate_honestdid).

Reads the event study that rule estimate_event_study reported (results/estimates/event_study.csv) and the
vcov of its event-time coefficients (event_study_vcov.csv), checks that the two belong together, and
writes robust confidence sets for the first post-period and the average post-period effect under
relative-magnitude and smoothness restrictions; rule render_robustness draws the table and the figure.
"""

import logging

from dualpilot.runner import run

log = logging.getLogger("dualpilot.estimate_honestdid")


def main(inputs, outputs, params):
    import pandas as pd

    from dualpilot import robustness

    vcov = pd.read_csv(inputs.vcov, index_col="term")
    coef = robustness.event_study_estimates(pd.read_csv(inputs.event_study), vcov)
    opts = params.honestdid
    # the binned endpoints (earliest and latest event time) pool several event times
    by_time = sorted(coef.index, key=lambda term: int(term.removeprefix("rel_")))
    exclude = [by_time[0], by_time[-1]] if opts["exclude_endpoints"] else []
    result = robustness.honest_sensitivity(
        coef,
        vcov,
        base=params.base,
        exclude_terms=exclude,
        Mbar_grid=opts["Mbar"],
        M_grid=opts["M"],
        alpha=opts["alpha"],
        seed=opts["seed"],
        n_draws=opts["n_draws"],
    )
    result.to_csv(outputs.estimates, index=False)
    log.info(
        "HonestDiD: %d confidence sets for %s (excluded: %s)",
        len(result),
        ", ".join(dict.fromkeys(result["target"])),
        ", ".join(exclude) or "none",
    )


if __name__ == "__main__" or "snakemake" in globals():
    run(main, globals())
