"""Numbers pasted into the prose in scientific notation read as a paper writes them: 7.6e-11 becomes 7.6 × 10⁻¹¹.

A chapter glues numbers (``glue("key", value)``, shown by ``{glue:text}`key:.1e```) and sentences it builds
from them; Python writes a small number as ``7.6e-11`` or ``1e-06``. Once each page's references (and the
values it pastes from other pages) are resolved, this extension rewrites every such number inside a pasted value
(MyST-NB's ``pasted-text`` inline) by :func:`nckernels.plotting.typeset_numbers`: a multiplication sign and Unicode
superscripts; a bare mantissa 1 becomes the power alone (``1e-06`` -> ``10⁻⁶``; ``1.0e-11`` keeps its digits:
1.0 × 10⁻¹¹), and an exponent 0 leaves the mantissa. Only the form Python's ``e``/``g`` formats produce is
touched: a signed exponent of at least two digits (``e-06``, ``e+09``), so identifiers, hashes and code in the
text are left as they are. Tables made by :func:`nckernels.plotting.format_table` are typeset the same way when
the chapter runs; code is not.
"""
from __future__ import annotations

from docutils import nodes

from nckernels.plotting import typeset_numbers

__all__ = ["typeset_numbers", "setup"]


def _doctree_resolved(app, doctree, docname):
    for inline in list(doctree.findall(nodes.inline)):
        if "pasted-text" not in inline.get("classes", []):
            continue
        for text in list(inline.findall(nodes.Text)):
            new = typeset_numbers(str(text))
            if new != str(text):
                text.parent.replace(text, nodes.Text(new))


def setup(app):
    app.connect("doctree-resolved", _doctree_resolved)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
