"""Write the configuration in effect to results/config_used.yaml (rule save_config)."""

from dualpilot.runner import run


def main(inputs, outputs, params):
    import yaml

    with open(outputs[0], "w", encoding="utf-8") as fh:
        yaml.safe_dump(dict(params.config), fh, allow_unicode=True, sort_keys=False)


if __name__ == "__main__" or "snakemake" in globals():
    run(main, globals())
