"""One parameter mechanism for three scales: smoke (tests), book (the rendered book), paper (papermill).

A chapter's ``parameters`` cell holds the **book** scale. ``book/scales/<chapter>.yml`` holds the
overrides for the other scales under the keys ``smoke`` and ``paper``; they are injected with
papermill's parameter mechanism (a cell after the ``parameters`` cell), whether by the test collector
(``conftest.py``), by ``python -m nckernels run`` or by a sweep.
"""
from __future__ import annotations

import os
import pathlib
import tempfile

import yaml

__all__ = ["SCALES", "scale_parameters", "read_chapter", "parameterized_notebook", "run_chapter"]

SCALES = ("smoke", "book", "paper")


def _scales_file(chapter: pathlib.Path) -> pathlib.Path:
    return chapter.parent / "scales" / f"{chapter.stem}.yml"


def scale_parameters(chapter, scale: str) -> dict:
    """The parameter overrides of ``chapter`` (a path to its ``.md``) at ``scale``; {} for "book"."""
    chapter = pathlib.Path(chapter)
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    if scale == "book":
        return {}
    path = _scales_file(chapter)
    if not path.is_file():
        raise ValueError(f"chapter {chapter.name} has no scales file {path}; it runs at book scale only")
    table = yaml.safe_load(path.read_text()) or {}
    unknown = set(table) - set(SCALES)
    if unknown:
        raise ValueError(f"{path}: unknown scale key(s) {sorted(unknown)}; expected {SCALES}")
    return dict(table.get(scale) or {})


def read_chapter(chapter):
    """Read a MyST text notebook (jupytext) into an nbformat notebook; checks the parameters cell."""
    import jupytext

    chapter = pathlib.Path(chapter)
    if not chapter.is_file():
        raise ValueError(f"chapter {chapter} does not exist")
    nb = jupytext.read(chapter)
    code = [c for c in nb.cells if c.cell_type == "code"]
    if not code or "parameters" not in code[0].metadata.get("tags", []):
        raise ValueError(f"chapter {chapter}: the first code cell must be tagged 'parameters'")
    return nb


def parameterized_notebook(chapter, parameters: dict):
    """The chapter as a notebook with ``parameters`` injected after its ``parameters`` cell."""
    from papermill.parameterize import parameterize_notebook

    nb = read_chapter(chapter)
    for cell in nb.cells:  # papermill looks up metadata.tags on every cell
        cell.metadata.setdefault("tags", [])
    nb.metadata.setdefault("papermill", {})
    nb.metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3", "language": "python"})
    nb.metadata["kernelspec"]["name"] = "python3"
    if not parameters:
        return nb
    return parameterize_notebook(nb, dict(parameters))


def run_chapter(chapter, output, parameters: dict | None = None, *, kernel_name: str = "python3", progress: bool = True):
    """Execute a chapter with papermill and write the executed notebook atomically to ``output``."""
    import nbformat
    import papermill

    chapter = pathlib.Path(chapter).resolve()
    output = pathlib.Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    nb = parameterized_notebook(chapter, {})
    with tempfile.TemporaryDirectory() as tmp:
        source = pathlib.Path(tmp) / f"{chapter.stem}.ipynb"
        nbformat.write(nb, source)
        partial = output.with_name(f".{output.stem}.partial{output.suffix}")
        try:
            papermill.execute_notebook(
                str(source),
                str(partial),
                parameters=dict(parameters or {}),
                kernel_name=kernel_name,
                cwd=str(chapter.parent),
                progress_bar=progress,
            )
        except BaseException:
            if partial.exists():
                failed = output.with_name(f"{output.stem}.failed.ipynb")
                os.replace(partial, failed)
            raise
        os.replace(partial, output)
    return output
