"""The Snakemake report (issue 6.4): one self-contained HTML file whose figures render in a browser.

The whole study runs on a small configuration (OVERLAY) in a temporary copy of the workflow (the session
fixture `small_study`, shared with tests/test_workflow_render.py), then `snakemake --report report.html`
builds the report. The checks:

- content: every final table of the study and every PNG figure under results/figures is in the report,
  each with a caption, one of the five stage categories, the subcategory of its type and the labels
  {analysis, type}; captions follow the configuration (Jinja) and carry the demo-data sentence, which a
  report built for another raw_dir leaves out;
- browser: headless Chromium (Debian package `chromium`) opens the report and is driven through the
  DevTools protocol (over a pipe, standard library only). Every subcategory lists one row per result;
  clicking a figure's button shows it, decoded at the PNG's own size and not blank; every table's
  download link holds the file's exact bytes; each formatted table (results/tables/*.html, the same
  three-line table as the .tex and .md files) is shown inline, its table visible with the title and the
  cells of the Markdown rendering; each result's caption is shown; no JavaScript error.

A fast test renders every caption the way Snakemake does (Jinja, then docutils) under variants of the
configuration, so that every branch of the templates is exercised.

The browser tests are skipped, with the command to fix it, only where no Chromium is installed
(`apt-get update && apt-get install -y chromium`, as root).
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import select
import shutil
import struct
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml
from docutils.core import publish_parts

from study_build import OVERLAY_FILE, SMALL_OVERLAY
from workflow_helpers import REPO, snakemake

workflow = pytest.mark.workflow

# Small but complete: every stage runs, with few draws (about 2-3 minutes on 2 cores). Its tables and
# captions are English (`tables: language: en`), which these checks read; tests/test_report_captions.py
# renders every caption in both languages.
OVERLAY = SMALL_OVERLAY
DEMO_SENTENCE = (
    "Demo data: these results show that the workflow recovers planted effects; "
    "they are not the study's findings."
)
CATEGORIES = {
    "1 Data",
    "2 Baseline",
    "3 Robustness",
    "4 Mechanisms and heterogeneity",
    "5 Spatial pattern",
}
# The tables readers need as tables (issue 6.4); figures: every PNG the study writes.
FINAL_TABLES = {
    "results/estimates/baseline.csv",
    "results/estimates/single_vs_dual.csv",
    "results/estimates/event_study.csv",
    "results/estimates/duration.csv",
    "results/estimates/psm_did.csv",
    "results/estimates/mechanisms.csv",
    "results/estimates/heterogeneity.csv",
    "results/estimates/placebo_summary.csv",
    "results/tables/descriptives.csv",
    "results/tables/treatment_summary.csv",
    "results/panel/quality.csv",
    "results/tables/morans_i.csv",
    "results/tables/top_cities.csv",
    "results/tables/regional_trends.csv",
    "results/psm/balance.csv",
    "results/tables/demo_recovery.csv",  # the demo's recovery table (raw_dir is the demo here)
}
# What each kind of result is (the `type` label) and the subcategory that lists it.
KINDS = {"image/png": "figure", "text/csv": "table", "text/html": "formatted table"}
SUBCATEGORIES = {"figure": "Figures", "table": "Tables", "formatted table": "Formatted tables"}
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


# --------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def work(small_study: Path) -> Path:
    """The temporary copy of the workflow with the whole study built on OVERLAY, and its report."""
    snakemake(small_study, "--report", "report.html", "--configfile", OVERLAY_FILE)
    return small_study


@pytest.fixture(scope="module")
def report(work: Path) -> dict[str, Any]:
    return read_report(work / "report.html")


@pytest.fixture(scope="module")
def browser(work: Path, tmp_path_factory) -> dict[str, Any]:
    """What headless Chromium shows when the report is driven by PROBE (see `drive_report`)."""
    exe = next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)
    if exe is None:
        pytest.skip(
            "no Chromium found (tried chromium, chromium-browser, google-chrome); as root: "
            "apt-get update && apt-get install -y chromium"
        )
    return drive_report(exe, work / "report.html", tmp_path_factory.mktemp("chromium_profile"))


# ------------------------------------------------------------------------------------------ the report


def read_report(path: Path) -> dict[str, Any]:
    """The data the report's app is built from: results, categories, workflow description."""
    text = path.read_text(encoding="utf-8")

    def variable(script_id: str, name: str) -> Any:
        pattern = rf'<script id="{script_id}">\s*var {name} = (.*?);\s*</script>'
        match = re.search(pattern, text, re.S)
        assert match, f"no <script id={script_id!r}> in {path}"
        return json.loads(match.group(1))

    return {
        "html": text,
        "results": variable("results", "results"),
        "categories": variable("categories", "categories"),
        "description": variable("workflow-desc", "workflow_desc"),
    }


def plain(fragment: str) -> str:
    """Text of an HTML fragment, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", fragment)).split())


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", path
    return struct.unpack(">II", head[16:24])


class _Links(HTMLParser):
    """Every src and href attribute of the document's tags (script and style bodies are not parsed)."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.links += [value or "" for name, value in attrs if name in ("src", "href")]


@workflow
def test_report_is_one_self_contained_file(report: dict[str, Any]):
    # Scripts, styles and results are inline: no tag loads anything from a file or the network.
    parser = _Links()
    parser.feed(report["html"])
    assert [u for u in parser.links if not u.startswith(("data:", "#", "javascript:"))] == []
    for path, result in report["results"].items():
        assert result["data_uri"].startswith(f"data:{result['mime_type']};"), path


@workflow
def test_every_final_table_and_figure_is_in_the_report(work: Path, report: dict[str, Any]):
    results = report["results"]
    figures = {str(p.relative_to(work)) for p in (work / "results/figures").glob("*.png")}
    assert figures, "the build wrote no figures"
    images = {p for p, r in results.items() if r["mime_type"] == "image/png"}
    assert images == figures, {"not in report": figures - images, "unexpected": images - figures}
    tables = {p for p, r in results.items() if r["mime_type"] == "text/csv"}
    assert FINAL_TABLES <= tables, sorted(FINAL_TABLES - tables)
    # every formatted table the study writes is in the report as an HTML page, shown inline
    formatted = {str(p.relative_to(work)) for p in (work / "results/tables").glob("*.html")}
    assert len(formatted) >= 13, formatted
    pages = {p for p, r in results.items() if r["mime_type"] == "text/html"}
    assert pages == formatted, {"not in report": formatted - pages, "unexpected": pages - formatted}
    for page in pages:  # each page is the .md file's table in HTML (same stem)
        assert (work / page).with_suffix(".md").exists(), page
    assert set(results) == images | tables | pages, sorted(set(results) - images - tables - pages)
    # The categories list each result exactly once.
    listed = [p for subs in report["categories"].values() for paths in subs.values() for p in paths]
    assert sorted(listed) == sorted(results)


@workflow
def test_items_have_caption_category_subcategory_and_labels(report: dict[str, Any]):
    where = {
        path: (category, subcategory)
        for category, subs in report["categories"].items()
        for subcategory, paths in subs.items()
        for path in paths
    }
    assert set(report["categories"]) == CATEGORIES
    seen: set[tuple[str, str, str, str]] = set()
    for path, result in report["results"].items():
        kind = KINDS[result["mime_type"]]
        category, subcategory = where[path]
        assert subcategory == SUBCATEGORIES[kind], path
        labels = result["labels"]
        assert set(labels) == {"analysis", "type"} and labels["type"] == kind, (path, labels)
        # Label rows must be unique in a subcategory: the report shows one row per distinct labels.
        key = (category, subcategory, labels["analysis"], kind)
        assert key not in seen, f"{path}: labels {labels} repeat in {category} / {subcategory}"
        seen.add(key)
        caption = plain(result["caption"])
        assert len(caption) > len(DEMO_SENTENCE) + 60, (path, caption)
        assert DEMO_SENTENCE in caption, (path, caption)
        assert "system-message" not in result["caption"], (path, caption)  # a docutils error


@workflow
def test_captions_follow_the_configuration(report: dict[str, Any]):
    results = report["results"]
    draws = OVERLAY["placebo"]["draws"]
    space = plain(results["results/figures/placebo_space.png"]["caption"])
    assert f"({draws} draws)" in space and "permuted across cities" in space
    time_kind = plain(results["results/figures/placebo_time.png"]["caption"])
    assert "1, 2, 3, 4, 5 years earlier" in time_kind
    maps = plain(results["results/figures/spatial_maps.png"]["caption"])
    assert "in 2006, 2023:" in maps
    moran = plain(results["results/tables/morans_i.csv"]["caption"])
    assert f"({OVERLAY['spatial']['permutations']} permutations" in moran
    description = plain(report["description"])
    assert description.startswith("Dual pilots and digital-industry agglomeration")
    assert "Demo data:" in description and "they are not the study's findings" in description


@workflow
def test_report_for_other_raw_data_has_no_demo_sentence(work: Path):
    # The same results reported for a raw_dir that is not the demo's: captions drop the sentence.
    raw = work / "raw_extracts"
    if not raw.exists():
        shutil.copytree(work / "results/demo/raw", raw)
    snakemake(
        work,
        "--report",
        "report_raw.html",
        "--configfile",
        "overlay.yaml",
        "--config",
        f"raw_dir={raw.name}",
    )
    other = read_report(work / "report_raw.html")
    # the same results, but the demo's recovery table (built and reported for the demo data only)
    demo_only = {"results/tables/demo_recovery.csv"}
    assert set(other["results"]) == set(read_report(work / "report.html")["results"]) - demo_only
    for path, result in other["results"].items():
        assert "Demo data" not in plain(result["caption"]), path
    description = plain(other["description"])
    assert "Demo data" not in description and f"Raw extracts: {raw.name}" in description


# ------------------------------------------------------------------------------- captions, without a run

CAPTIONS = REPO / "workflow/report"
PLACEBO_KINDS = ["space", "time", "time_random", "mixed_unrestricted", "mixed_restricted"]
# Variants of config.yaml (deep-merged) that take every branch of the caption templates.
VARIANTS: list[dict[str, Any]] = [
    {},
    {"raw_dir": "./results/demo/raw/"},
    {"raw_dir": "/data/yearbook_extracts"},
    {
        "estimation": {"vcov": "hetero"},
        "event_study": {"control_group": "not_yet", "adjust_single_pilots": False},
        "psm": {"method": "kernel", "did_weights": "unweighted"},
        "mechanisms": {"three_step": True, "bootstrap": {"reps": 0}},
        "spatial": {"hotspot_years": [2010, 2020], "pilot_map_year": 2015, "k_islands": 2},
        "descriptives": {"by": None},
        "robustness": {
            "staggered": {"use_controls": False},
            "honestdid": {"exclude_endpoints": False},
        },
    },
    {"estimation": {"vcov": "iid"}, "psm": {"replacement": False}},
]


def merged(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """`base` updated by `overlay` recursively, as Snakemake merges --configfile overlays."""
    out = dict(base)
    for key, value in overlay.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and key in out else value
    return out


def render_caption(path: Path, config: dict[str, Any], kind: str | None = None) -> str:
    """A caption as Snakemake renders it: a Jinja template (same environment options), then docutils.

    The category links Snakemake appends to every caption are appended here too.
    """
    links = "".join(f"\n.. _{c}: javascript:app.showCategory('{c}')" for c in sorted(CATEGORIES))
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    snakemake_object = type(
        "Snakemake", (), {"config": config, "wildcards": type("W", (), {"kind": kind})}
    )
    rst = env.from_string(path.read_text(encoding="utf-8") + "\n" + links).render(
        snakemake=snakemake_object
    )
    return publish_parts(rst, writer="html")["html_body"]


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: ",".join(v) or "default")
def test_captions_render_under_every_configuration(variant: dict[str, Any]):
    english = {"tables": {"language": "en"}}  # the Chinese captions: tests/test_report_captions.py
    config = merged(
        merged(yaml.safe_load((REPO / "config/config.yaml").read_text()), english), variant
    )
    demo = config["raw_dir"].rstrip("/").endswith("results/demo/raw")
    files = sorted(CAPTIONS.glob("*.rst"))
    assert len(files) >= 24 and (CAPTIONS / "workflow.rst") in files
    for path in files:
        for kind in PLACEBO_KINDS if path.name == "placebo.rst" else [None]:
            body = render_caption(path, config, kind)
            text = plain(body)
            where = (path.name, kind, variant)
            assert "system-message" not in body and "problematic" not in body, (where, text)
            assert "{{" not in text and "{%" not in text and "None" not in text.split(), (
                where,
                text,
            )
            if path.name == "workflow.rst":
                assert ("Demo data:" in text) == demo, where
            else:
                assert (DEMO_SENTENCE in text) == demo, where
                assert len(text) > 80 + (len(DEMO_SENTENCE) if demo else 0), (where, text)
    # The branches render what the configuration says.
    if variant.get("psm", {}).get("method") == "kernel":
        assert "kernel matching (Epanechnikov, bandwidth 0.06)" in plain(
            render_caption(CAPTIONS / "psm_did.rst", config)
        )
    time_random = plain(render_caption(CAPTIONS / "placebo.rst", config, "time_random"))
    assert "(between 1 and 5)" in time_random


# ------------------------------------------------------------------------------------------ the browser


class Chromium:
    """Headless Chromium driven through the DevTools protocol over a pipe (fds 3 and 4)."""

    def __init__(self, exe: str, profile: Path):
        profile.mkdir(parents=True, exist_ok=True)
        self._log = profile / "chromium.log"
        command_read, self._command_write = os.pipe()
        self._reply_read, reply_write = os.pipe()

        def map_pipes() -> None:  # in the child: Chromium reads commands on fd 3, answers on fd 4
            os.dup2(command_read, 3)
            os.dup2(reply_write, 4)

        flags = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1600,1000",
            f"--user-data-dir={profile}",
            "--remote-debugging-pipe",
        ]
        with self._log.open("wb") as log:  # a file, not a pipe: a full pipe would block Chromium
            self.process = subprocess.Popen(
                [exe, *flags, "about:blank"],
                pass_fds=(3, 4),
                preexec_fn=map_pipes,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        os.close(command_read)
        os.close(reply_write)
        self._buffer = b""
        self._last_id = 0
        self.events: list[dict[str, Any]] = []

    def send(
        self,
        method: str,
        params: dict | None = None,
        session: str | None = None,
        timeout: float = 60,
    ) -> dict[str, Any]:
        """Send one command and return its result; events that arrive meanwhile go to `events`."""
        self._last_id += 1
        message: dict[str, Any] = {"id": self._last_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        os.write(self._command_write, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            for reply in self._receive(deadline):
                if reply.get("id") == self._last_id:
                    if "error" in reply:
                        raise RuntimeError(f"{method}: {reply['error']}")
                    return reply["result"]
                self.events.append(reply)

    def wait_for(self, event: str, timeout: float = 60) -> dict[str, Any]:
        """Return (and remove) the first received event named `event`, waiting for it if needed."""
        deadline = time.monotonic() + timeout
        while True:
            for i, message in enumerate(self.events):
                if message.get("method") == event:
                    return self.events.pop(i)
            self.events.extend(self._receive(deadline))

    def _receive(self, deadline: float) -> list[dict[str, Any]]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("Chromium did not answer in time")
            if select.select([self._reply_read], [], [], left)[0]:
                chunk = os.read(self._reply_read, 1 << 20)
                if not chunk:
                    raise RuntimeError(
                        "Chromium exited: " + self._log.read_text(errors="replace")[-2000:]
                    )
                self._buffer += chunk
        *messages, self._buffer = self._buffer.split(b"\0")
        return [json.loads(m) for m in messages]

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=10)
            self.process.wait(10)
        except (RuntimeError, TimeoutError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        finally:
            os.close(self._command_write)
            os.close(self._reply_read)


# Runs in the report's page: walks every subcategory as a reader would, clicks each figure's button and
# measures the image shown, reads each table's download link, opens each result's description.
PROBE = r"""
(async () => {
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const until = async (test, ms = 15000) => {
    for (const t0 = Date.now(); Date.now() - t0 < ms; await sleep(25)) {
      if (!document.querySelector("#app").childElementCount) {
        throw new Error("the report's page crashed: its app is gone");
      }
      const value = test();
      if (value) return value;
    }
    return null;
  };
  const spread = (img) => {  // standard deviation of the grey level on a 64 x 64 thumbnail
    const canvas = document.createElement("canvas");
    canvas.width = 64;
    canvas.height = 64;
    const context = canvas.getContext("2d");
    context.drawImage(img, 0, 0, 64, 64);
    const px = context.getImageData(0, 0, 64, 64).data;
    const grey = [];
    for (let i = 0; i < px.length; i += 4) grey.push((px[i] + px[i + 1] + px[i + 2]) / 3);
    const mean = grey.reduce((a, b) => a + b, 0) / grey.length;
    return Math.sqrt(grey.reduce((a, b) => a + (b - mean) ** 2, 0) / grey.length);
  };
  const out = { start: document.querySelector("#app").innerText, rows: [], info: {} };
  for (const [category, subcategories] of Object.entries(categories)) {
    for (const subcategory of Object.keys(subcategories)) {
      app.setView({ navbarMode: "menu" });  // leave the previous list, so the new one is built afresh
      await sleep(50);
      app.setView({ navbarMode: "subcategory", category: category, subcategory: subcategory });
      const rows = await until(() => {
        const found = document.querySelectorAll("table tbody tr");
        return found.length ? [...found] : null;
      });
      for (const row of rows ?? []) {
        const cells = [...row.querySelectorAll("td")];
        const button = cells[cells.length - 1].querySelector("a");
        const record = {
          category, subcategory,
          labels: cells.slice(0, -1).map((td) => td.innerText.trim()),
          href: button.getAttribute("href"),
        };
        if (record.href === "#") {
          const before = app.state.resultPath;
          button.click();
          const path = await until(() =>
            ["img", "html"].includes(app.state.content) && app.state.resultPath !== before
              ? app.state.resultPath : null);
          record.path = path;
          if (path && app.state.content === "html") {  // a formatted table: shown in an iframe
            const frame = await until(() => [...document.querySelectorAll("iframe")].find(
              (el) => el.src === results[path].data_uri));
            const box = frame && frame.getBoundingClientRect();
            record.frame = frame ? { width: box.width, height: box.height } : null;
          }
          const img = path && app.state.content === "img" && await until(() => [...document.images].find(
            (el) => el.src === results[path].data_uri && el.complete && el.naturalWidth > 0));
          if (img) {
            await img.decode();
            record.image = {
              width: img.naturalWidth, height: img.naturalHeight,
              shownWidth: img.getBoundingClientRect().width, spread: spread(img),
            };
          }
        }
        out.rows.push(record);
      }
    }
  }
  for (const path of Object.keys(results)) {
    app.setView({ navbarMode: "resultinfo", resultPath: path });
    await until(() => {
      const text = document.querySelector("#app").innerText;
      return text.includes(path) && text.includes("DESCRIPTION");
    }, 5000);
    out.info[path] = document.querySelector("#app").innerText;
  }
  return JSON.stringify(out);
})()
"""


# Runs inside a formatted table's iframe: is the three-line table there and visible, and what does it say.
FRAME_PROBE = r"""
(() => {
  const table = document.querySelector("table.three-line");
  if (!table) return JSON.stringify({ table: false, text: document.body ? document.body.innerText : "" });
  const box = table.getBoundingClientRect();
  const style = getComputedStyle(table);
  return JSON.stringify({
    table: true,
    width: box.width, height: box.height, top: box.top, viewport: [innerWidth, innerHeight],
    visible: style.visibility === "visible" && style.display !== "none" && style.opacity !== "0",
    borderTop: style.borderTopWidth, borderBottom: style.borderBottomWidth,
    caption: table.caption ? table.caption.innerText.trim() : null,
    cells: [...table.querySelectorAll("tr")].map((tr) => [...tr.children].map((c) => c.innerText.trim())),
  });
})()
"""


def inspect_formatted_table(browser: Chromium, session: str, path: str) -> dict[str, Any]:
    """Show the formatted table `path` as its button does, then run FRAME_PROBE in its iframe (the page
    is a data: URL, an opaque origin the report's script cannot read; DevTools can, in an isolated
    world of that frame)."""
    show = (
        f"app.setView({{content: 'html', contentPath: results[{json.dumps(path)}].data_uri, "
        f"resultPath: {json.dumps(path)}}})"
    )
    browser.send("Runtime.evaluate", {"expression": show}, session=session)
    deadline = time.monotonic() + 30
    while True:
        tree = browser.send("Page.getFrameTree", session=session)["frameTree"]
        frames = [c["frame"] for c in tree.get("childFrames", [])]
        frame = next((f for f in frames if f.get("url", "").startswith("data:text/html")), None)
        if frame is not None:
            world = browser.send(
                "Page.createIsolatedWorld", {"frameId": frame["id"]}, session=session
            )
            reply = browser.send(
                "Runtime.evaluate",
                {
                    "expression": FRAME_PROBE,
                    "contextId": world["executionContextId"],
                    "returnByValue": True,
                },
                session=session,
            )
            found = json.loads(reply["result"]["value"])
            if found["table"] or time.monotonic() > deadline:
                return found
        elif time.monotonic() > deadline:
            return {"table": False, "text": f"no iframe among {frames}"}
        time.sleep(0.1)


def drive_report(exe: str, report_html: Path, profile: Path) -> dict[str, Any]:
    """Open the report in headless Chromium, run PROBE, return its findings and the page's errors; then
    look inside each formatted table's iframe (FRAME_PROBE)."""
    browser = Chromium(exe, profile)
    try:
        targets = browser.send("Target.getTargets")["targetInfos"]
        page = next(t["targetId"] for t in targets if t["type"] == "page")
        session = browser.send("Target.attachToTarget", {"targetId": page, "flatten": True})[
            "sessionId"
        ]
        browser.send("Runtime.enable", session=session)
        browser.send("Page.enable", session=session)
        browser.send("Page.navigate", {"url": report_html.resolve().as_uri()}, session=session)
        browser.wait_for("Page.loadEventFired")
        reply = browser.send(
            "Runtime.evaluate",
            {"expression": PROBE, "awaitPromise": True, "returnByValue": True},
            session=session,
            timeout=240,
        )
        errors = [
            e["params"]
            for e in browser.events
            if e.get("method") == "Runtime.exceptionThrown"
            or (
                e.get("method") == "Runtime.consoleAPICalled"
                and e["params"]["type"] in ("error", "assert")
            )
        ]
        if "exceptionDetails" in reply:
            detail = reply["exceptionDetails"].get("exception", {}).get("description")
            raise AssertionError(f"driving the report failed: {detail}; page errors: {errors}")
        found = json.loads(reply["result"]["value"])
        found["errors"] = errors
        pages = [
            p
            for p, r in read_report(report_html)["results"].items()
            if r["mime_type"] == "text/html"
        ]
        found["pages"] = {p: inspect_formatted_table(browser, session, p) for p in pages}
        return found
    finally:
        browser.close()


@workflow
def test_report_opens_without_javascript_errors(browser: dict[str, Any]):
    assert browser["errors"] == []
    # The start page shows the menu of categories and the workflow description.
    for category in CATEGORIES:
        assert category in browser["start"]
    assert "Dual pilots and digital-industry agglomeration" in browser["start"]


@workflow
def test_every_result_is_listed_once(browser: dict[str, Any], report: dict[str, Any]):
    # One row per result in each subcategory: no result hidden behind another's labels or a toggle.
    for category, subs in report["categories"].items():
        for subcategory, paths in subs.items():
            rows = [
                r
                for r in browser["rows"]
                if (r["category"], r["subcategory"]) == (category, subcategory)
            ]
            expected = sorted(
                [report["results"][p]["labels"][k] for k in ("analysis", "type")] for p in paths
            )
            assert sorted(r["labels"] for r in rows) == expected, (category, subcategory)
    assert len(browser["rows"]) == len(report["results"])


@workflow
def test_figures_render(work: Path, browser: dict[str, Any], report: dict[str, Any]):
    images = {p for p, r in report["results"].items() if r["mime_type"] == "image/png"}
    shown = {r["path"]: r for r in browser["rows"] if r["href"] == "#" and r["path"] in images}
    assert set(shown) == images
    for path, row in shown.items():
        image = row["image"]
        assert image is not None, f"{path} was not displayed"
        assert (image["width"], image["height"]) == png_size(work / path), path
        assert image["shownWidth"] > 200, (path, image)
        assert image["spread"] > 5, f"{path} renders blank: {image}"


@workflow
def test_formatted_tables_are_shown_inline(
    work: Path, browser: dict[str, Any], report: dict[str, Any]
):
    pages = {p for p, r in report["results"].items() if r["mime_type"] == "text/html"}
    assert pages and set(browser["pages"]) == pages
    # the button of each formatted table shows it in the page, in a frame of a readable size
    frames = {r["path"]: r["frame"] for r in browser["rows"] if r.get("path") in pages}
    assert set(frames) == pages
    for path, frame in frames.items():
        assert frame and frame["width"] > 400 and frame["height"] > 300, (path, frame)
    for path in sorted(pages):
        shown = browser["pages"][path]
        assert shown["table"], (path, shown)
        # visible: laid out with a real size, inside the frame, in the three-line style
        assert shown["visible"] and shown["width"] > 150 and shown["height"] > 40, (path, shown)
        assert 0 <= shown["top"] < shown["viewport"][1], (path, shown)
        assert shown["borderTop"] == "2px" and shown["borderBottom"] == "2px", (path, shown)
        # the same table as the Markdown file: its title, its panel titles and every row's cells in order
        md = (work / path).with_suffix(".md").read_text(encoding="utf-8").splitlines()
        assert shown["caption"] == unescape_md(md[0].strip("*")), (path, shown["caption"], md[0])
        md_rows = [
            [unescape_md(c) for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            for line in md
            if line.startswith("|") and ":--" not in line
        ]
        width = len(md_rows[0])
        md_panels = [r[0].strip("*") for r in md_rows if r[0].startswith("**") and not any(r[1:])]
        md_cells = [r for r in md_rows if not (r[0].startswith("**") and not any(r[1:]))]
        assert [row for row in shown["cells"] if len(row) == width] == md_cells, path
        assert [row[0] for row in shown["cells"] if len(row) == 1] == md_panels, path


def unescape_md(cell: str) -> str:
    """A Markdown table cell as text: backslash escapes undone, spaces trimmed."""
    return re.sub(r"\\(.)", r"\1", cell).strip()


@workflow
def test_table_links_hold_the_files(work: Path, browser: dict[str, Any], report: dict[str, Any]):
    links = [r["href"] for r in browser["rows"] if r["href"] != "#"]
    tables = {p for p, r in report["results"].items() if r["mime_type"] == "text/csv"}
    assert len(links) == len(tables)
    by_name = {Path(p).name: p for p in tables}
    for href in links:
        header, _, payload = href.partition("base64,")
        name = re.search(r"filename=([^;]+);", header).group(1)
        assert header.startswith("data:text/csv;"), header
        assert base64.b64decode(payload) == (work / by_name[name]).read_bytes(), name


@workflow
def test_captions_are_shown(browser: dict[str, Any], report: dict[str, Any]):
    for path, result in report["results"].items():
        shown = " ".join(browser["info"][path].split())
        first_sentence = plain(result["caption"]).split(":")[0]
        assert first_sentence in shown, (path, first_sentence)
        assert DEMO_SENTENCE in shown, path
