"""The book's stylesheet, carried by this extension (no static folder to keep in step with the config).

Wide result tables scroll inside the text column instead of being cut off at its right edge, in a slightly
smaller font, and their headers wrap. Numbers and phrases pasted into the prose by ``{glue:text}`` keep the
weight of the sentence around them (MyST-NB sets them bold, so a sentence computed whole read as one bold block).
Written to ``_static/nckernels.css`` when the HTML build finishes and
linked from every page.
"""
from __future__ import annotations

import pathlib

CSS_FILE = "nckernels.css"
CSS = """\
/* nckernels book: tables of results fit the text column (a wide one scrolls instead of being cut off). */
.cell_output table {
  display: block;
  max-width: 100%;
  overflow-x: auto;
  font-size: 0.85em;
}
.cell_output table th {
  white-space: normal;
}
/* glued values read as part of their sentence, not in bold (MyST-NB's span.pasted-text default) */
.bd-article span.pasted-text {
  font-weight: inherit;
}
"""


def _build_finished(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    target = pathlib.Path(app.outdir) / "_static" / CSS_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(CSS, encoding="utf-8")


def setup(app):
    app.add_css_file(CSS_FILE)
    app.connect("build-finished", _build_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
