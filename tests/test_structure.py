"""The package's shape is a contract: layers import one way, chapters stay thin, docstrings cite the book.

These tests read the source (ast, jupytext); they fail when a module imports from a layer above its own,
imports another module's private name, when a chapter defines a function or grows a long code cell, or
when a public function's docstring cites no equation label or chapter of the book (or cites one that
does not exist).
"""
from __future__ import annotations

import ast
import inspect
import pathlib
import re

import jupytext
import pytest

import nckernels

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "nckernels"
BOOK = ROOT / "book"

# The layer of every module (nckernels/__init__.py's docstring draws the same map).
LAYERS = {"errors": 0, "validation": 0, "data": 1, "metrics": 2, "kernels": 3, "models": 4, "experiments": 5,
          "plotting": 6, "style": 6, "__main__": 7}
MAX_CELL_LINES = 40
MATH_LAYERS = (1, 2, 3, 4)  # data, metrics, kernels, models: each object is derived somewhere in the book


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if len(parts) < 2:
        return None  # the package itself re-exports everything
    return LAYERS[parts[1]]


def _imports(path: pathlib.Path):
    """(line, imported module, names) of every import of a nckernels module in ``path``."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] == "nckernels":
                yield node.lineno, target, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "nckernels":
                    yield node.lineno, alias.name, []


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_go_down_the_layers(path):
    own = _layer(_module_name(path))
    for line, target, names in _imports(path):
        there = _layer(target)
        if there is None:
            continue
        assert there <= own, f"{path.name}:{line} imports {target} (layer {there}) from layer {own}"
        if target != _module_name(path):
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            assert not private, f"{path.name}:{line} imports private names {private} from {target}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_docstring_names_its_layer(path):
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    assert doc, f"{path.name} has no module docstring"


def _chapters():
    return sorted(p for p in BOOK.glob("[0-9][0-9]_*.md"))


def _code_cells(chapter):
    nb = jupytext.read(chapter)
    return [c for c in nb.cells if c.cell_type == "code"]


@pytest.mark.parametrize("chapter", _chapters(), ids=lambda p: p.stem)
def test_chapters_are_thin(chapter):
    cells = _code_cells(chapter)
    assert cells and "parameters" in cells[0].metadata.get("tags", []), "first code cell must be tagged parameters"
    for number, cell in enumerate(cells):
        source = cell.source
        tree = ast.parse(source)
        defined = [n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
        assert not defined, f"{chapter.name} cell {number} defines {defined}: move them into nckernels"
        lines = [ln for ln in source.splitlines() if ln.strip() and not ln.strip().startswith("#")]
        assert len(lines) <= MAX_CELL_LINES, f"{chapter.name} cell {number} has {len(lines)} code lines (max {MAX_CELL_LINES})"


def _book_labels() -> set[str]:
    labels = set()
    for md in BOOK.glob("*.md"):
        text = md.read_text(encoding="utf-8")
        labels.add(md.stem)
        labels.update(re.findall(r"^\s*:label:\s*(\S+)", text, flags=re.M))
        labels.update(re.findall(r"^\(([\w-]+)\)=", text, flags=re.M))
    return labels


def _public_callables():
    seen = {}
    for name in sorted(dir(nckernels)):
        obj = getattr(nckernels, name)
        if name.startswith("_") or not (inspect.isfunction(obj) or inspect.isclass(obj)):
            continue
        module = getattr(obj, "__module__", "")
        if not module.startswith("nckernels") or _layer(module) not in MATH_LAYERS:
            continue
        if inspect.isclass(obj) and issubclass(obj, BaseException):
            continue
        seen.setdefault(id(obj), (name, obj))
    return sorted(seen.values(), key=lambda t: t[0])


def _cited(doc: str, labels: set[str]) -> tuple[set[str], set[str]]:
    """(labels the docstring cites that exist, tokens that look like book citations but do not exist)."""
    cited = set(re.findall(r"``([\w-]+)``", doc)) | set(re.findall(r"\b(\d\d_[a-z0-9_]+)\b", doc))
    cited |= set(re.findall(r"eq\.?\s+([a-z0-9]+-[\w-]+)", doc))
    good = {c for c in cited if c in labels}
    bad = {c for c in re.findall(r"\b(\d\d_[a-z0-9_]+)\b", doc) if c not in labels}
    bad |= {c for c in re.findall(r"eq\.?\s+``?([a-z0-9]+-[\w-]+)", doc) if c not in labels}
    return good, bad


def test_every_public_function_cites_the_book():
    labels = _book_labels()
    missing, broken = [], []
    for name, obj in _public_callables():
        doc = inspect.getdoc(obj) or ""
        good, bad = _cited(doc, labels)
        if bad:
            broken.append(f"{name}: {sorted(bad)}")
        if not good:
            missing.append(name)
    assert not broken, "docstrings cite labels the book does not have: " + "; ".join(broken)
    assert not missing, f"{len(missing)} public names cite no book label or chapter: {missing}"


def test_the_label_check_can_fail():
    labels = {"02_nc1_from_kernel", "nc1k-def"}
    assert _cited("Book chapter ``02_nc1_from_kernel``, eq. ``nc1k-def``.", labels) == ({"02_nc1_from_kernel", "nc1k-def"}, set())
    assert _cited("Derived in 09_no_such_chapter.", labels)[1] == {"09_no_such_chapter"}
    assert _cited("No citation at all.", labels) == (set(), set())


def _literalincludes():
    for md in sorted(BOOK.glob("*.md")):
        text = md.read_text(encoding="utf-8")
        for m in re.finditer(r"```\{literalinclude\}\s+(\S+)\n((?::[\w-]+:.*\n)*)", text):
            options = dict(re.findall(r":([\w-]+):\s*(.*)", m.group(2)))
            yield md.name, m.group(1), options.get("pyobject")


@pytest.mark.parametrize("chapter,path,pyobject", list(_literalincludes()))
def test_literalincludes_show_code_that_exists(chapter, path, pyobject):
    source = (BOOK / path).resolve()
    assert source.is_file(), f"{chapter} includes {path}, which does not exist"
    if pyobject:
        names = {n.name for n in ast.walk(ast.parse(source.read_text(encoding="utf-8")))
                 if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        assert pyobject in names, f"{chapter} includes {pyobject} from {path}, which does not define it"
