"""Numbers pasted into the prose in scientific notation read as a paper writes them: 7.6e-11 becomes 7.6 × 10⁻¹¹.

A chapter glues numbers (``glue("key", value)``, shown by ``{glue:text}`key:.1e```) and sentences it builds
from them; Python writes a small number as ``7.6e-11`` or ``1e-06``. Once each page's references (and the
values it pastes from other pages) are resolved, this extension
rewrites every such number inside a pasted value (MyST-NB's ``pasted-text`` inline) with a multiplication sign
and Unicode superscripts; a bare mantissa 1 becomes the power alone (``1e-06`` -> ``10⁻⁶``; ``1.0e-11`` keeps
its digits: 1.0 × 10⁻¹¹), and an exponent 0 leaves the mantissa. Only the form
Python's ``e``/``g`` formats produce is touched: a signed exponent of at least two digits (``e-06``,
``e+09``), so identifiers, hashes and code in the text are left as they are. Tables (cell outputs) and code are
not pasted text and keep Python's notation.
"""
from __future__ import annotations

import re

from docutils import nodes

PATTERN = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)[eE]([+-])(\d{2,})(?![\w.])")
_SUPERSCRIPT = str.maketrans("0123456789-+", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺")


def _typeset(match: re.Match) -> str:
    mantissa, sign, exponent = match.groups()
    if int(exponent) == 0:
        return mantissa
    power = "10" + (("-" if sign == "-" else "") + str(int(exponent))).translate(_SUPERSCRIPT)
    return power if mantissa == "1" else f"{mantissa} × {power}"


def typeset_numbers(text: str) -> str:
    """``text`` with every number in Python's scientific notation (``7.6e-11``, ``1e-06``, ``2.5E+09``, ``3e+00``)
    written as ``7.6 × 10⁻¹¹``, ``10⁻⁶``, ``2.5 × 10⁹``, ``3``; anything else unchanged."""
    return PATTERN.sub(_typeset, text)


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
