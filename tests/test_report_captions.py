"""Report captions follow `tables: language` (issue 12, item 4).

Each caption in workflow/report/*.rst is a Jinja template that Snakemake renders with the `snakemake` object
(config, wildcards) before docutils turns it into HTML. Here every caption is rendered the same way for the
shipped configuration in Chinese and in English (and for real extracts, without the demo notice): the
Chinese caption is Chinese, the English one holds no Chinese beyond cited names, and docutils reports no
error in either.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from types import SimpleNamespace

import jinja2
import pytest
import yaml
from docutils.core import publish_parts

REPO = Path(__file__).resolve().parents[1]
CAPTIONS = sorted((REPO / "workflow" / "report").glob("*.rst"))
CJK = re.compile(r"[\u4e00-\u9fff]")
#: Chinese a caption may cite in English: authors' names.
CITED = ("江艇",)


def config(language: str, demo: bool = True) -> dict:
    cfg = copy.deepcopy(yaml.safe_load((REPO / "config" / "config.yaml").read_text("utf-8")))
    cfg["tables"]["language"] = language
    if not demo:
        cfg["raw_dir"] = "/data/extracts"
    return cfg


def render(path: Path, cfg: dict, kind: str = "space") -> str:
    """The caption as Snakemake renders it: Jinja with `snakemake`, then docutils (errors raise)."""
    snakemake = SimpleNamespace(config=cfg, wildcards=SimpleNamespace(kind=kind))
    text = jinja2.Environment().from_string(path.read_text("utf-8")).render(snakemake=snakemake)
    # the report appends link targets for the categories named in workflow.rst
    targets = "\n".join(
        f".. _{c}: #" for c in re.findall(r"`([^`<]+)`_", text) if not c.startswith("http")
    )
    html = publish_parts(
        text + "\n\n" + targets,
        writer="html",
        settings_overrides={"halt_level": 2, "report_level": 2},
    )["body"]
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_every_caption_is_a_template_of_both_languages() -> None:
    assert len(CAPTIONS) > 30
    for path in CAPTIONS:
        assert 'tables"]["language"] == "zh"' in path.read_text("utf-8"), path.name


@pytest.mark.parametrize("path", CAPTIONS, ids=lambda p: p.name)
@pytest.mark.parametrize("demo", [True, False])
def test_caption_follows_the_table_language(path: Path, demo: bool) -> None:
    kinds = ["space", "time", "mixed_restricted"] if path.name == "placebo.rst" else ["space"]
    for kind in kinds:
        zh = render(path, config("zh", demo), kind)
        en = render(path, config("en", demo), kind)
        assert len(CJK.findall(zh)) > 10, f"{path.name} ({kind}): the Chinese caption is not Chinese"
        stripped = en
        for name in CITED:
            stripped = stripped.replace(name, "")
        assert not CJK.search(stripped), f"{path.name} ({kind}): Chinese in the English caption"
        assert ("演示数据" in zh) == demo and ("Demo data" in en) == demo
        assert "Demo data" not in zh and "演示数据" not in en


def test_time_placebo_caption_describes_a_coefficient_plot() -> None:
    path = REPO / "workflow" / "report" / "placebo.rst"
    en = render(path, config("en"), "time")
    assert "coefficient plot" in en and "no p-value" in en and "kernel density" not in en
    assert "不报告 p 值" in render(path, config("zh"), "time")


def test_captions_name_the_programmes_of_another_pair() -> None:
    """With the example overlay of docs/other-programmes.md (dual: [bb, lc]) the captions name the broadband
    programme and its columns, never the smart-city ones."""
    example = REPO / "config/examples/broadband_low_carbon.yaml"
    overlay = yaml.safe_load(example.read_text("utf-8"))
    for language in ("zh", "en"):
        cfg = config(language)
        cfg["programmes"].update(overlay["programmes"])
        cfg["dual"] = overlay["dual"]
        texts = {p.name: render(p, cfg) for p in CAPTIONS}
        smart = [n for n, t in texts.items() if "sc_" in t or "智慧城市" in t or "Smart" in t]
        assert smart == []
        broadband = "合成宽带中国" if language == "zh" else "Synthetic broadband"
        named = ["workflow.rst", "treatment_summary.rst", "pilot_order.rst", "single_vs_dual.rst"]
        for name in [*named, "spatial_pilot_map.rst"]:
            assert broadband in texts[name], (name, texts[name])
        assert "2014" in texts["treatment_summary.rst"] and "2016" in texts["workflow.rst"]
    assert "bb_only_post" in texts["single_vs_dual.rst"] and "bb_alone" in texts["single_vs_dual.rst"]
