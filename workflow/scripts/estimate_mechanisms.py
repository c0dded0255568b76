"""The dual pilot's effect on each mechanism variable, Romano-Wolf adjusted (rule estimate_mechanisms)."""

from dualpilot.workflow.runner import run


def main(inputs, outputs, params):
    from dualpilot.analyses import mechanisms
    from dualpilot.data.panel import read_panel

    spec = params.mechanisms
    tidy = mechanisms.mechanisms(
        read_panel(inputs.panel),
        params.controls,
        mediators=spec["mediators"],
        three_step_models=spec["three_step"],
        reps=spec["bootstrap"]["reps"],
        seed=spec["bootstrap"]["seed"],
        **mechanisms.estimation_options(params.estimation),
    )
    tidy.to_csv(outputs.estimates, index=False)


if __name__ == "__main__" or "snakemake" in globals():
    run(main, globals())
