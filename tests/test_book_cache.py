"""`make book` re-executes exactly the chapters whose inputs changed (book/_ext/chapter_deps.py).

A toy book with the real _config.yml and extensions: one chapter that reads ../results/toy/results.csv
and logs each execution. Built four times: first build executes; an unchanged rebuild executes
nothing; a changed results file re-executes and the new value is in the HTML; a changed package file
re-executes. A failing cell and a Sphinx warning still fail the build.
"""
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time

import pytest
from helpers import MYST_HEADER

ROOT = pathlib.Path(__file__).resolve().parents[1]
JB = pathlib.Path(sys.executable).with_name("jupyter-book")
pytestmark = pytest.mark.skipif(not JB.exists(), reason="jupyter-book not installed")

HEADER = MYST_HEADER

CHAPTER = HEADER + """
# Toy chapter

```{code-cell} ipython3
:tags: [parameters]

results_dir = "../results"
```

```{code-cell} ipython3
import pathlib
with open("../executions.log", "a") as log:
    log.write("run\\n")
value = pathlib.Path(results_dir, "toy", "results.csv").read_text().splitlines()[1]
print(f"TOY-VALUE={value}")
```
"""


def make_book(root: pathlib.Path, chapter: str = CHAPTER) -> pathlib.Path:
    (root / "book" / "_ext").mkdir(parents=True)
    for ext in (ROOT / "book" / "_ext").glob("*.py"):
        shutil.copy(ext, root / "book" / "_ext")
    shutil.copy(ROOT / "book" / "references.bib", root / "book")
    config = (ROOT / "_config.yml").read_text()
    assert "execute_notebooks: cache" in config
    (root / "_config.yml").write_text(config.replace("book/06_trained_networks:", "book/ch:"))
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/ch\n")
    (root / "book" / "ch.md").write_text(chapter)
    (root / "book" / "scales").mkdir()
    (root / "book" / "scales" / "ch.yml").write_text("smoke: {}\npaper: {}\n")
    (root / "nckernels").mkdir()
    (root / "nckernels" / "toy.py").write_text("X = 1\n")
    (root / "results" / "toy").mkdir(parents=True)
    (root / "results" / "toy" / "results.csv").write_text("value\nfirst\n")
    return root


def build(root: pathlib.Path):
    start = time.perf_counter()
    env = dict(os.environ, MPLBACKEND="Agg")
    res = subprocess.run([str(JB), "build", ".", "--builder", "html", "-W", "-n", "--keep-going"],
                         cwd=root, capture_output=True, text=True, env=env)
    return res, time.perf_counter() - start


def executions(root):
    log = root / "executions.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


def html(root):
    return (root / "_build" / "html" / "book" / "ch.html").read_text()


def test_rebuild_executes_only_what_changed(tmp_path):
    root = make_book(tmp_path)
    # the chapter_deps entry of _config.yml (renamed to book/ch above) declares the results it reads
    config = (root / "_config.yml").read_text()
    assert re.search(r"^\s*book/ch: \[.*\]$", config, flags=re.M), "the real config declares chapter 6's results"
    (root / "_config.yml").write_text(re.sub(r"^(\s*)book/ch: \[.*\]$", r'\1book/ch: ["results/toy/*.csv"]', config,
                                             flags=re.M))

    res, first = build(root)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert executions(root) == 1 and "TOY-VALUE=first" in html(root)

    res, second = build(root)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert executions(root) == 1, "an unchanged book re-executed its chapter"
    assert "0 added, 0 changed, 0 removed" in res.stdout, "an unchanged book re-read a page"

    (root / "results" / "toy" / "results.csv").write_text("value\nsecond\n")
    res, _ = build(root)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert executions(root) == 2, "a changed results file did not re-execute the chapter"
    assert "TOY-VALUE=second" in html(root) and "TOY-VALUE=first" not in html(root)

    (root / "nckernels" / "toy.py").write_text("X = 2\n")
    res, _ = build(root)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert executions(root) == 3, "a changed package file did not re-execute the chapter"
    assert "chapter_deps" not in html(root), "the dependency hash leaked into the page"
    print(f"first build {first:.1f} s, unchanged rebuild {second:.1f} s")


@pytest.mark.parametrize("broken", ["cell", "warning"])
def test_a_failing_cell_or_a_warning_fails_the_build(tmp_path, broken):
    chapter = CHAPTER.replace('print(f"TOY-VALUE={value}")', "raise RuntimeError('boom')") if broken == "cell" \
        else CHAPTER + "\nSee {ref}`no-such-label`.\n"
    root = make_book(tmp_path, chapter)
    res, _ = build(root)
    assert res.returncode != 0
    out = res.stdout + res.stderr
    assert ("boom" in out or "Executing notebook failed" in out) if broken == "cell" else "no-such-label" in out


def test_dependency_globs_of_a_chapter(tmp_path):
    """Which files a chapter's hash covers: the common globs, its scale file, the chapter_deps entry of
    _config.yml and a `depends_on:` list in its front matter; a file appearing changes the hash."""
    from types import SimpleNamespace

    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    try:
        import chapter_deps
    finally:
        sys.path.pop(0)
    root = make_book(tmp_path, CHAPTER.replace("kernelspec:", "depends_on: [extra/*.txt]\nkernelspec:"))
    (root / "book" / "notes.md").write_text("# Notes\n")
    config = SimpleNamespace(chapter_deps_common=["nckernels/**/*.py"], chapter_deps_per_chapter=["book/scales/{name}.yml"],
                             chapter_deps={"book/ch": ["results/toy/*.csv"]})
    app = SimpleNamespace(config=config, confdir=str(root))
    env = SimpleNamespace(found_docs={"book/ch", "book/notes"}, doc2path=lambda d: str(root / f"{d}.md"))
    patterns = chapter_deps._patterns(app, "book/ch", root / "book" / "ch.md")
    assert patterns == ["nckernels/**/*.py", "book/scales/ch.yml", "results/toy/*.csv", "extra/*.txt"]
    assert chapter_deps._patterns(app, "book/notes", root / "book" / "notes.md") is None  # not executable

    before = chapter_deps._current_hashes(app, env)
    assert set(before) == {"book/ch"}
    (root / "extra").mkdir()
    (root / "extra" / "input.txt").write_text("1")
    assert chapter_deps._current_hashes(app, env) != before
    (root / "extra" / "input.txt").unlink()
    assert chapter_deps._current_hashes(app, env) == before
    (root / "nckernels" / "__pycache__").mkdir()
    (root / "nckernels" / "__pycache__" / "toy.cpython-311.pyc").write_bytes(b"\0")
    assert chapter_deps._current_hashes(app, env) == before, "bytecode is not an input"


def test_hash_goes_into_the_first_code_cell_metadata():
    """Every real chapter: the hash lands in the parameters cell's metadata, the cell sources are
    unchanged and no line moves (warnings keep the file's line numbers)."""
    from myst_nb.core.read import read_myst_markdown_notebook

    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    try:
        import chapter_deps
    finally:
        sys.path.pop(0)
    chapters = [p for p in sorted((ROOT / "book").glob("*.md")) if chapter_deps._is_executable(p)]
    assert chapters
    for path in chapters:
        text = path.read_text()
        out = chapter_deps._with_cell_metadata(text, "0123abcd")
        assert out.count("\n") == text.count("\n"), path.name
        before, after = read_myst_markdown_notebook(text), read_myst_markdown_notebook(out)
        assert [c.source for c in before.cells] == [c.source for c in after.cells], path.name
        first = next(c for c in after.cells if c.cell_type == "code")
        assert first.metadata["chapter_deps"] == "0123abcd" and "parameters" in first.metadata["tags"]
