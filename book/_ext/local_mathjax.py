"""Serve MathJax 3 from the built site so math typesets with no network.

MathJax comes from the ``django-static-mathjax`` wheel (pinned in the lock; it has no Django
dependency at run time). Its ``es5`` folder is copied to ``_static/mathjax`` and Sphinx's
``mathjax_path`` points there (Sphinx resolves a relative path against ``_static``).
"""
from __future__ import annotations

import pathlib
import shutil

LOCAL_PATH = "mathjax/tex-chtml.js"


def _es5_dir() -> pathlib.Path:
    import mathjax  # the static-files package

    es5 = pathlib.Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    if not (es5 / "tex-chtml.js").is_file():
        raise RuntimeError(f"MathJax not found at {es5}; run `make env`")
    return es5


def _config_inited(app, config):
    _es5_dir()
    config.mathjax_path = LOCAL_PATH


def _build_finished(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    target = pathlib.Path(app.outdir) / "_static" / "mathjax"
    if not (target / "tex-chtml.js").is_file():
        shutil.copytree(_es5_dir(), target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("sre", "a11y"))


def setup(app):
    app.connect("config-inited", _config_inited, priority=900)
    app.connect("build-finished", _build_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
