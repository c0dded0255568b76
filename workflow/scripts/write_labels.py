"""The label file of this run (rule write_labels): resources/labels/terms.csv with the labels of the terms
derived from the config's programmes (their keys' treatment columns, groups and models), so that tables,
figures and the .dta panel name the programmes of `dual:`."""

from dualpilot.workflow.runner import run


def main(inputs, outputs, params):
    from dualpilot.core.labels import write_label_entries
    from dualpilot.data import programmes
    from dualpilot.render import tables

    defined = [programmes.parse_programme(k, v) for k, v in params.programmes.items()]
    labels = tables.with_programme_labels(tables.load_labels(inputs.labels), defined)
    write_label_entries(labels.entries, outputs.labels)


if __name__ == "__main__" or "snakemake" in globals():
    run(main, globals())
