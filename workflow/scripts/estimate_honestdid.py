"""HonestDiD sensitivity of an event study (rule estimate_honestdid).

Reads the event study chosen by `robustness: honestdid: event_study`: the imputation event study of rule
estimate_staggered (staggered.csv, imputation_event_study_vcov.csv; re-expressed relative to the base
period) or the TWFE event study of rule estimate_event_study (event_study.csv, event_study_vcov.csv),
checks that estimates and vcov belong together, and writes robust confidence sets for the first post-period and the average post-period effect under
relative-magnitude and smoothness restrictions; rule render_robustness draws the table and the figure.
"""

import logging

from dualpilot.workflow.runner import run

log = logging.getLogger("dualpilot.estimate_honestdid")


def main(inputs, outputs, params):
    import pandas as pd

    from dualpilot.analyses import honest_sensitivity

    opts = params.honestdid
    coef, vcov, exclude = honest_sensitivity.honest_event_study(
        pd.read_csv(inputs.event_study),
        pd.read_csv(inputs.vcov, index_col="term"),
        source=opts["event_study"],
        base=params.base,
        window=params.window,
        exclude_endpoints=opts["exclude_endpoints"],
    )
    result = honest_sensitivity.honest_sensitivity(
        coef,
        vcov,
        base=params.base,
        source=opts["event_study"],
        exclude_terms=exclude,
        Mbar_grid=opts["Mbar"],
        M_grid=opts["M"],
        alpha=opts["alpha"],
        seed=opts["seed"],
        n_draws=opts["n_draws"],
    )
    result.to_csv(outputs.estimates, index=False)
    log.info(
        "HonestDiD on the %s event study: %d confidence sets for %s (excluded: %s)",
        opts["event_study"],
        len(result),
        ", ".join(dict.fromkeys(result["target"])),
        ", ".join(exclude) or "none",
    )


if __name__ == "__main__" or "snakemake" in globals():
    run(main, globals())
