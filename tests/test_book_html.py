"""The book's HTML typesets math with a MathJax served from the site itself (no network)."""
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
JB = pathlib.Path(sys.executable).with_name("jupyter-book")


@pytest.mark.skipif(not JB.exists(), reason="jupyter-book not installed")
def test_built_html_loads_mathjax_locally(tmp_path):
    (tmp_path / "book" / "_ext").mkdir(parents=True)
    for ext in (ROOT / "book" / "_ext").glob("*.py"):  # _config.yml loads every local extension
        shutil.copy(ext, tmp_path / "book" / "_ext")
    shutil.copy(ROOT / "book" / "references.bib", tmp_path / "book")
    config = (ROOT / "_config.yml").read_text().replace("execute_notebooks: cache", "execute_notebooks: "+"off")
    (tmp_path / "_config.yml").write_text(config)
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/page\n")
    (tmp_path / "book" / "page.md").write_text("# Page\n\nInline $\\NC = \\tr\\SigW/\\tr\\SigB$ and\n\n$$\\Kphi(x, x')$$\n")
    res = subprocess.run([str(JB), "build", ".", "-W", "-n", "--keep-going"], cwd=tmp_path, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    html = (tmp_path / "_build" / "html" / "book" / "page.html").read_text()
    scripts = re.findall(r'<script[^>]*src="([^"]*mathjax[^"]*)"', html, flags=re.I)
    assert scripts, "no MathJax script in the page"
    for src in scripts:
        assert not re.match(r"(https?:)?//", src), f"MathJax loaded from the network: {src}"
        assert (tmp_path / "_build" / "html" / "book" / src).resolve().is_file(), f"missing {src}"
    fonts = list((tmp_path / "_build" / "html" / "_static" / "mathjax" / "output" / "chtml" / "fonts").rglob("*.woff"))
    assert fonts, "MathJax fonts not copied"
    assert "SigW" in html, "the shared TeX macros are not configured"
