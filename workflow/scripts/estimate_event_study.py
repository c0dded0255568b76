"""Event study around the dual-pilot start, endpoints binned, joint test of the leads, and the vcov of the
event-time coefficients for HonestDiD (rule estimate_event_study)."""

from dualpilot.workflow.runner import run


def main(inputs, outputs, params):
    from dualpilot.analyses import baseline as analyses
    from dualpilot.analyses import staggered_did
    from dualpilot.data.panel import read_panel
    from dualpilot.data.programmes import Pair

    spec = params.event_study
    # Single-pilot years of not-yet-dual cities are not clean controls: absorb their own effects (the same
    # switch applies to the robust event studies of rule estimate_staggered).
    controls = [
        *params.controls,
        *staggered_did.single_pilot_controls(spec["adjust_single_pilots"], Pair.of(params.dual)),
    ]
    tidy, vcov = analyses.event_study_with_vcov(
        read_panel(inputs.panel),
        controls,
        window=tuple(spec["window"]),
        base=spec["base"],
        control_group=spec["control_group"],
        options=params.estimation,
    )
    tidy.to_csv(outputs.estimates, index=False)
    vcov.to_csv(outputs.vcov, index_label="term")


if __name__ == "__main__" or "snakemake" in globals():
    run(main, globals())
