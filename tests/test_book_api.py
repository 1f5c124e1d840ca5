"""The API page (book/api.md) renders with -W -n, has an anchor and a [source] link per function, and
a figure caption's {py:func}`nk.NAME` (in the cell's mystnb figure metadata) resolves to it
(book/_ext/api_reference.py); glued numbers in scientific notation are typeset (book/_ext/glue_numbers.py)."""
import pathlib
import re
import shutil
import subprocess
import sys

import pytest
from helpers import MYST_HEADER

import nckernels

ROOT = pathlib.Path(__file__).resolve().parents[1]
JB = pathlib.Path(sys.executable).with_name("jupyter-book")

PAGE = MYST_HEADER + """
# Figures

The kernels are {py:func}`nckernels.ntk` and {py:func}`~nckernels.nngp`; {numref}`fig-toy` names its function.

```{code-cell} ipython3
---
mystnb:
  figure:
    name: fig-toy
    caption: A toy figure, drawn by {py:func}`nk.ntk`.
---
%matplotlib inline
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(1, 1))
ax.plot([0, 1])
plt.show()
```

```{code-cell} ipython3
from myst_nb import glue
glue("tiny", 7.6e-11, display=False)
glue("cells", "σ² = 1e-06; f_tol 5e-4; commit 1234e56", display=False)
```

The residual is {glue:text}`tiny:.1e`; the failed cells: {glue:text}`cells`.
"""


@pytest.mark.skipif(not JB.exists(), reason="jupyter-book not installed")
def test_api_page_links_functions_to_their_source(tmp_path):
    (tmp_path / "book" / "_ext").mkdir(parents=True)
    for ext in (ROOT / "book" / "_ext").glob("*.py"):
        shutil.copy(ext, tmp_path / "book" / "_ext")
    for name in ("references.bib", "api.md"):
        shutil.copy(ROOT / "book" / name, tmp_path / "book")
    shutil.copy(ROOT / "_config.yml", tmp_path)
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/figures\nchapters:\n  - file: book/api\n")
    (tmp_path / "book" / "figures.md").write_text(PAGE)
    res = subprocess.run([str(JB), "build", ".", "--builder", "html", "-W", "-n", "--keep-going"],
                         cwd=tmp_path, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-3000:]

    out = tmp_path / "_build" / "html"
    api = (out / "book" / "api.html").read_text()
    ntk = nckernels.ntk
    canonical = f"{ntk.__module__}.{ntk.__qualname__}"
    assert f'id="{canonical}"' in api, f"no anchor {canonical}"
    source = f"../_modules/{ntk.__module__.replace('.', '/')}.html#{ntk.__qualname__}"
    assert f'href="{source}"' in api, f"no viewcode link {source}"
    module_page = out / "_modules" / f"{ntk.__module__.replace('.', '/')}.html"
    assert module_page.is_file() and f'id="{ntk.__qualname__}"' in module_page.read_text()
    # every module of the package has its section
    assert f'id="module-{ntk.__module__}"' in api and 'id="module-nckernels.metrics"' in api

    figures = (out / "book" / "figures.html").read_text()
    links = re.findall(r'href="api\.html#([\w.]+)"', figures)
    assert links.count(canonical) == 2 and len(links) == 3, links
    caption = re.search(r"<figcaption>.*?</figcaption>", figures, flags=re.S).group(0)
    assert f'href="api.html#{canonical}"' in caption, "the figure caption does not link its function"
    # glued numbers in the prose are typeset (book/_ext/glue_numbers.py); the rest of a glued text is left alone
    figures = figures.replace("&#160;", "\u00a0").replace("&nbsp;", "\u00a0")  # however the writer spells U+00A0
    assert '<span class="pasted-text">7.6\u00a0×\u00a010⁻¹¹</span>' in figures
    assert '<span class="pasted-text">σ² = 10⁻⁶; f_tol 5e-4; commit 1234e56</span>' in figures


@pytest.mark.parametrize("text, typeset", [
    ("7.6e-11", "7.6\u00a0×\u00a010⁻¹¹"), ("1e-06", "10⁻⁶"), ("2.5E+09", "2.5\u00a0×\u00a010⁹"),
    ("1.0e-11", "1.0\u00a0×\u00a010⁻¹¹"),
    ("3e+00 runs", "3 runs"), ("h = 1, σ² = 1e-06; x", "h = 1, σ² = 10⁻⁶; x"),
    ("f_tol 5e-4", "f_tol 5e-4"), ("commit 1234e56", "commit 1234e56"), ("x1e-06", "x1e-06"), ("v1.2e-05.3", "v1.2e-05.3")])
def test_glued_scientific_notation_is_typeset_and_nothing_else(text, typeset):
    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    try:
        from glue_numbers import typeset_numbers
    finally:
        sys.path.pop(0)
    assert typeset_numbers(text) == typeset
