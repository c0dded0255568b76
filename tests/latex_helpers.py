"""Compiling generated LaTeX tables with XeLaTeX and the preamble documented in
docs/tables-and-figures.md (tests of the table renderers)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs" / "tables-and-figures.md"
SKIP_REASON = (
    "needs xelatex, xeCJK and fonts-noto-cjk (Debian: texlive-xetex texlive-lang-cjk "
    "texlive-lang-chinese fonts-noto-cjk; .ci/run installs them)"
)


def xelatex_ready() -> bool:
    """Whether xelatex, the xeCJK package and the Noto Serif CJK SC font are installed."""
    if shutil.which("xelatex") is None or shutil.which("kpsewhich") is None:
        return False
    found = subprocess.run(["kpsewhich", "xeCJK.sty"], capture_output=True, text=True)
    fonts = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True)
    return bool(found.stdout.strip()) and "Noto Serif CJK SC" in fonts.stdout


def compile_documented(body: str, workdir: Path, timeout: int = 300) -> str:
    """Compile `body` inside the documented minimal preamble (in place of its \\input line) in
    `workdir`; assert that xelatex succeeds without a missing glyph and return the log."""
    block = re.search(r"```latex\n(.*?)```", DOCS.read_text("utf-8"), re.S)
    assert block is not None, "docs/tables-and-figures.md must hold the minimal preamble"
    doc = block.group(1).replace("\\input{results/tables/baseline.tex}", body)
    (workdir / "doc.tex").write_text(doc, encoding="utf-8")
    run = subprocess.run(
        ["xelatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    log_text = (workdir / "doc.log").read_text("utf-8", errors="replace")
    assert run.returncode == 0, log_text[-3000:]
    assert "Missing character" not in log_text
    return log_text
