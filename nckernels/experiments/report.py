"""What a re-run says: its glued values as a table, compared with the built book's, and as a standalone page.

Layer 5, experiments; imports :mod:`nckernels.experiments.sweeps` (the glue harvest) and, for the page,
nbconvert. Used by ``python -m nckernels run CHAPTER --compare`` and ``--html PAGE``.

A chapter's prose cites its numbers with ``{glue:text}`key:format``` roles, which only the book build
resolves; :func:`render_html` substitutes them from the executed notebook, so a re-run at another scale or
with other parameters reads like the book page with its own numbers.
"""
from __future__ import annotations

import json
import math
import pathlib
import re
import warnings
from typing import Mapping

import pandas as pd

from .sweeps import glued_scalar, harvest_glue

__all__ = ["book_glue", "book_macros", "compare_glue", "format_glue_table", "render_html", "substitute_glue"]

_ROLE = re.compile(r"\{glue(?::text|:any|)\}`([^`]+)`")
_MATH_BLOCK = re.compile(r"```\{math\}\n((?::[\w-]+:[^\n]*\n)*)(.*?)```", re.S)
_OTHER_ROLES = re.compile(r"\{(numref|ref|eq|doc|cite:t|cite:p|cite|py:func|py:class|py:mod|term)\}`([^`]+)`")


def book_glue(chapter, build_dir="_build") -> dict:
    """The glued scalars of ``chapter`` in the last book build (``BUILD/jupyter_execute/book/NAME.glue.json``)."""
    chapter = pathlib.Path(chapter)
    path = pathlib.Path(build_dir) / "jupyter_execute" / chapter.parent.name / f"{chapter.stem}.glue.json"
    if not path.is_file():
        raise ValueError(f"no built book to compare with: {path} does not exist (run `make book` first, or pass "
                         "--compare BUILD_DIR)")
    found = {}
    for name, output in json.loads(path.read_text(encoding="utf-8")).items():
        text = output.get("data", {}).get("text/plain")
        if text is not None:
            value = glued_scalar(text if isinstance(text, str) else "".join(text))
            if value is not None:
                found[name] = value
    return found


def compare_glue(run: Mapping, book: Mapping, *, rtol: float = 1e-9) -> pd.DataFrame:
    """One row per glued key of either side: book, run, absolute and relative difference, and ``same``.

    Numbers are the same within ``rtol`` (relative) or both NaN; other values when equal. Keys only one
    side has are rows with the other side missing (``same`` False).
    """
    rows = []
    for key in sorted(set(run) | set(book)):
        a, b = book.get(key), run.get(key)
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b))
        if numeric:
            diff = b - a
            rel = abs(diff) / abs(a) if a else (0.0 if diff == 0 else math.inf)
            same = (math.isnan(a) and math.isnan(b)) or abs(diff) <= rtol * max(abs(a), abs(b))
        else:
            diff, rel, same = None, None, (key in run and key in book and a == b)
        rows.append({"key": key, "book": a, "run": b, "difference": diff, "relative": rel, "same": bool(same)})
    return pd.DataFrame(rows, columns=["key", "book", "run", "difference", "relative", "same"])


def _shown(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)[:60]


def format_glue_table(values: Mapping | pd.DataFrame) -> str:
    """A plain-text table of glued values (a mapping) or of :func:`compare_glue`'s frame, for the terminal."""
    if isinstance(values, pd.DataFrame):
        lines = [(r.key, _shown(r.book), _shown(r.run), "" if r.same else "differs") for r in values.itertuples()]
        head = ("key", "book", "this run", "")
    else:
        lines = [(k, _shown(v)) for k, v in values.items()]
        head = ("key", "value")
    widths = [max(len(str(row[i])) for row in [head, *lines]) for i in range(len(head))]
    out = ["  ".join(str(c).ljust(w) for c, w in zip(head, widths)).rstrip()]
    out += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in lines]
    return "\n".join(out)


def _format(value, spec: str) -> str:
    if not spec:
        return str(value)
    try:
        return format(value, spec)
    except (TypeError, ValueError):
        return str(value)


def substitute_glue(text: str, glued: Mapping) -> str:
    """``text`` with every ``{glue:text}`key:fmt``` (and ``{glue}`key```) replaced by the formatted value;
    cross-references and citations become their plain target text. An unknown key stays visible as [key?]."""
    def glue(m):
        key, _, spec = m.group(1).partition(":")
        if "::" in m.group(1):  # another document's value: not in this notebook
            return f"[{m.group(1)}]"
        return _format(glued[key], spec) if key in glued else f"[{key}?]"

    text = _ROLE.sub(glue, text)
    text = _MATH_BLOCK.sub(lambda m: "$$\n" + m.group(2).strip() + "\n$$", text)
    return _OTHER_ROLES.sub(lambda m: f"({m.group(2)})" if m.group(1) in ("numref", "eq", "ref") else m.group(2), text)


_MATHJAX3_CONFIG = ("<script>window.MathJax = {tex: {inlineMath: [['$', '$'], ['\\\\(', '\\\\)']], "
                    "displayMath: [['$$', '$$'], ['\\\\[', '\\\\]']]}};</script>")


def _local_mathjax() -> str | None:
    """file:// URL of the MathJax shipped in the environment (the book's offline copy), or None."""
    try:
        import mathjax  # django-static-mathjax: the static files only
    except ImportError:
        return None
    script = pathlib.Path(mathjax.__file__).parent / "static" / "mathjax" / "es5" / "tex-chtml-full.js"
    return script.as_uri() if script.is_file() else None


def book_macros(config="_config.yml") -> dict:
    """The TeX macros the book defines (``sphinx.config.mathjax3_config.tex.macros`` of ``config``); {} without one."""
    path = pathlib.Path(config)
    if not path.is_file():
        return {}
    import yaml

    table = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return dict(table.get("sphinx", {}).get("config", {}).get("mathjax3_config", {}).get("tex", {}).get("macros", {}))


def render_html(notebook, out, *, macros: Mapping | None = None) -> pathlib.Path:
    """Write the executed ``notebook`` as one standalone HTML page with its glued values in the prose.

    ``macros``: TeX macros (name -> definition) the prose uses; default :func:`book_macros` of ./_config.yml.
    """
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(notebook), as_version=4)
    glued = harvest_glue(nb)
    macros = book_macros() if macros is None else macros
    if macros:  # MathJax reads \newcommand inside math: one hidden definition block at the top
        defs = "".join(f"\\newcommand{{\\{name}}}{{{body}}}" for name, body in macros.items())
        nb.cells.insert(0, nbformat.v4.new_markdown_cell(f'<div style="display:none">$${defs}$$</div>'))
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = substitute_glue(cell.source, glued)
        else:  # as in the book: warnings on stderr are not part of the page
            cell.outputs = [o for o in cell.get("outputs", []) if o.get("name") != "stderr"]
    exporter = HTMLExporter(template_name="lab")
    mathjax = _local_mathjax()
    if mathjax is not None:  # the page renders its equations offline, like the book
        exporter.mathjax_url = mathjax
    with warnings.catch_warnings():  # glue's papermill.record outputs have no HTML form: said once per output
        warnings.filterwarnings("ignore", message=".*is not able to be represented", category=UserWarning)
        body, _ = exporter.from_notebook_node(nb)
    # The template configures MathJax 2; the MathJax shipped here is 3, which reads window.MathJax before loading.
    body = body.replace("<!-- Load mathjax -->", _MATHJAX3_CONFIG + "<!-- Load mathjax -->", 1)
    out = pathlib.Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(body, encoding="utf-8")
    return out
