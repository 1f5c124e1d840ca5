"""Collect every chapter (book/*.md) as an nbval notebook executed at smoke scale.

The chapter is read with jupytext, the smoke-scale overrides of ``book/scales/<chapter>.yml`` are
injected through papermill's parameter mechanism, and nbval runs each code cell in one kernel (in the
current environment, outputs not compared): a cell that raises, the checks cell included, fails.
"""
from __future__ import annotations

import os
from collections import defaultdict

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


def _is_chapter(path) -> bool:
    if path.suffix != ".md" or path.parent.name != "book":
        return False
    head = path.read_text(encoding="utf-8")[:400]
    return "jupytext" in head and "kernelspec" in head


def pytest_collect_file(file_path, parent):
    if _is_chapter(file_path):
        return ChapterNotebook.from_parent(parent, path=file_path)
    return None


try:
    from nbval.plugin import IPyNbCell, IPyNbFile
except ImportError:  # pragma: no cover - nbval is in the lock
    IPyNbFile = None


if IPyNbFile is not None:

    class ChapterNotebook(IPyNbFile):
        """A MyST chapter at smoke scale, one pytest item per code cell."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.compare_outputs = False

        def setup(self):
            self.config.option.nbval_current_env = True
            super().setup()

        def collect(self):
            from nckernels.scales import parameterized_notebook, scale_parameters

            self.nb = parameterized_notebook(self.path, scale_parameters(self.path, "smoke"))
            cells = [c for c in self.nb.cells if c.cell_type == "code"]
            for num, cell in enumerate(cells):
                options = defaultdict(bool, check=False)
                yield IPyNbCell.from_parent(self, name=f"Cell {num}", cell_num=num, cell=cell, options=options)
