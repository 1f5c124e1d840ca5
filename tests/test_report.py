"""A re-run's report: glued values compared with the book's, and a standalone page with the numbers in the prose."""
import json

import nbformat
import pytest

from nckernels.experiments.report import book_glue, compare_glue, format_glue_table, render_html, substitute_glue


def test_compare_flags_exactly_the_values_that_moved():
    book = {"a": 1.0, "b": 2.0, "c": "x", "d": float("nan"), "gone": 3}
    run = {"a": 1.0 + 1e-13, "b": 2.5, "c": "x", "d": float("nan"), "new": 1}
    table = compare_glue(run, book).set_index("key")
    assert table["same"].to_dict() == {"a": True, "b": False, "c": True, "d": True, "gone": False, "new": False}
    assert table.loc["b", "difference"] == pytest.approx(0.5) and table.loc["b", "relative"] == pytest.approx(0.25)
    text = format_glue_table(compare_glue(run, book))
    assert "differs" in text.splitlines()[2] and text.count("differs") == 3


def test_substitute_formats_values_and_flattens_roles():
    text = "NC1 is {glue:text}`k:.2f` ({numref}`fig-a`), see {cite:t}`paper`; {glue:text}`missing` and {glue}`s`."
    out = substitute_glue(text, {"k": 0.12345, "s": "word"})
    assert out == "NC1 is 0.12 ((fig-a)), see paper; [missing?] and word."


def test_book_glue_reads_the_build_and_says_when_there_is_none(tmp_path):
    with pytest.raises(ValueError, match="make book"):
        book_glue("book/02_x.md", tmp_path)
    folder = tmp_path / "jupyter_execute" / "book"
    folder.mkdir(parents=True)
    (folder / "02_x.glue.json").write_text(json.dumps({"k": {"data": {"text/plain": "0.5"}}, "s": {"data": {"text/plain": "'a'"}}}))
    assert book_glue("book/02_x.md", tmp_path) == {"k": 0.5, "s": "a"}


def test_render_html_puts_glued_numbers_in_the_prose(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("The value is {glue:text}`v:.3f`."),
                nbformat.v4.new_code_cell("glue('v', 0.25)")]
    nb.cells[1].outputs = [nbformat.v4.new_output("display_data", data={"text/plain": "0.25"},
                                                  metadata={"scrapbook": {"name": "v", "mime_prefix": ""}})]
    src = tmp_path / "run.ipynb"
    nbformat.write(nb, src)
    html = render_html(src, tmp_path / "page.html").read_text()
    assert "The value is 0.250." in html and "{glue" not in html
