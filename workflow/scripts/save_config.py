"""Write the configuration in effect to results/config_used.yaml (rule save_config): a copy of the snapshot
that workflow/rules/panel.smk writes at parse time (named by the configuration's sha256)."""

from dualpilot.workflow.runner import run


def main(inputs, outputs, params):
    import shutil

    shutil.copyfile(inputs[0], outputs[0])


if __name__ == "__main__" or "snakemake" in globals():
    run(main, globals())
