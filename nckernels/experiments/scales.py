"""One parameter mechanism for three scales: smoke (tests), book (the rendered book), paper (papermill).

Layer 5, experiments; imports no other nckernels module.

A chapter's ``parameters`` cell holds the **book** scale. ``book/scales/<chapter>.yml`` holds the
overrides for the other scales under the keys ``smoke`` and ``paper``; they are injected with
papermill's parameter mechanism (a cell after the ``parameters`` cell), whether by the test collector
(``conftest.py``), by ``python -m nckernels run`` or by a sweep.

Parameters are data, never code: a name must be one the chapter's ``parameters`` cell assigns
(:func:`parameter_names`), a value must be YAML/JSON data (None, bool, int, float, str, lists, mappings
with string keys), and the injected cell is parsed back and compared with the values before anything
runs (:func:`check_parameters`). Every YAML file is read with :func:`load_yaml`, which reads ``1e-3``
as the float YAML 1.2 says it is (PyYAML's YAML 1.1 resolver reads it as a string).
"""
from __future__ import annotations

import ast
import contextlib
import keyword
import logging
import math
import os
import pathlib
import re
import tempfile
from typing import Any, Mapping

import yaml

__all__ = ["SCALES", "scale_parameters", "read_chapter", "parameter_names", "check_parameters",
           "parameterized_notebook", "run_chapter", "load_yaml", "load_yaml_file", "parse_value", "QUIET_KERNEL_ARGUMENTS",
           "ALLOCATOR_ENV", "kernel_environment"]

SCALES = ("smoke", "book", "paper")

# The kernel's IPKernelApp logs "Kernel is running over TCP without encryption" (a WARNING) and its start-up
# INFO lines to its own stderr, which is the terminal: run it with only errors logged.
QUIET_KERNEL_ARGUMENTS = ("--IPKernelApp.log_level=ERROR",)

#: glibc malloc settings of a chapter's kernel (:func:`kernel_environment`; ``make`` exports the same for the book
#: build and the tests). glibc serves a request of at least its mmap threshold, which it never raises past 32 MiB,
#: with a fresh mapping that is unmapped when freed, so every N x N float64 temporary from N = 2048 on (32 MiB) is
#: page-faulted in at first touch; below that its default trimming returns freed heap to the system. With mmap off
#: and trimming deferred, freed arrays stay in the heap and the next one reuses them. Measured
#: (``benchmarks/bench_allocator.py``, N = 2048, one thread): the erf NNGP 2.18x and NTK 2.56x faster, one EoS
#: evaluation 1.14x; a process keeps the memory it peaked at. Other C libraries ignore these variables.
ALLOCATOR_ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(2**36)}


@contextlib.contextmanager
def environment(values: Mapping[str, str], *, keep_existing: bool = False):
    """``values`` in ``os.environ`` while processes are started inside (``keep_existing``: a variable already set
    keeps its value); every variable as it was afterwards."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update({k: v for k, v in values.items() if not (keep_existing and saved[k] is not None)})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def kernel_environment():
    """:data:`ALLOCATOR_ENV` in ``os.environ`` (where not already set) while a kernel is started inside; restored after."""
    return environment(ALLOCATOR_ENV, keep_existing=True)


class _Loader(yaml.SafeLoader):
    """SafeLoader whose floats follow YAML 1.2 (``1e-3``, ``1E5``, ``.5``, ``-2.``, ``.inf``, ``.nan``)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                    |[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                    |[-+]?\.(?:inf|Inf|INF)
                    |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."),
)


def load_yaml(text: str, source: str):
    """Parse YAML ``text`` (read from ``source``, named in errors) with YAML 1.2 floats; ValueError if malformed."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ValueError(f"{source}: malformed YAML{where}: {problem}") from None


def load_yaml_file(path) -> Any:
    """The YAML file at ``path`` parsed by :func:`load_yaml`; ValueError naming the file if unreadable or malformed."""
    path = pathlib.Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot be read ({exc.__class__.__name__}: {exc})") from None
    return load_yaml(text, str(path))


def parse_value(text: str, name: str = "value"):
    """A command-line value parsed as YAML (``3``, ``1e-3``, ``[1, 2]``, ``true``, ``cuda``); checked as data."""
    value = load_yaml(text, f"parameter {name}")
    _check_value(value, f"parameter {name}")
    return value


def _check_value(value, where: str):
    if value is None or isinstance(value, (bool, int, float, str)):
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            _check_value(item, where)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{where}: mapping keys must be strings, got {key!r}")
            _check_value(item, where)
        return
    raise ValueError(f"{where}: value {value!r} of type {type(value).__name__} is not data "
                     "(use null, booleans, numbers, strings, lists or mappings)")


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
    table = load_yaml_file(path) or {}
    if not isinstance(table, Mapping):
        raise ValueError(f"{path}: the YAML document must be a mapping of scales")
    unknown = set(table) - set(SCALES)
    if unknown:
        raise ValueError(f"{path}: unknown scale key(s) {sorted(map(str, unknown))}; expected {SCALES}")
    overrides = table.get(scale) or {}
    if not isinstance(overrides, Mapping):
        raise ValueError(f"{path}: {scale!r} must be a mapping of parameter overrides")
    for name, value in overrides.items():
        _check_value(value, f"{path}: {scale}.{name}")
    return dict(overrides)


def read_chapter(chapter):
    """Read a MyST text notebook (jupytext) into an nbformat notebook; checks the parameters cell."""
    import jupytext

    chapter = pathlib.Path(chapter)
    if not chapter.is_file():
        raise ValueError(f"chapter {chapter} does not exist")
    try:
        nb = jupytext.read(chapter)
    except Exception as exc:  # noqa: BLE001 - name the file
        raise ValueError(f"chapter {chapter}: cannot be read as a notebook ({exc.__class__.__name__}: {exc})") from None
    code = [c for c in nb.cells if c.cell_type == "code"]
    if not code or "parameters" not in code[0].metadata.get("tags", []):
        raise ValueError(f"chapter {chapter}: the first code cell must be tagged 'parameters'")
    return nb


def parameter_names(chapter) -> tuple[str, ...]:
    """The names the ``parameters`` cell of ``chapter`` assigns at top level (parsed with ast), in order."""
    nb = read_chapter(chapter)
    source = next(c for c in nb.cells if c.cell_type == "code").source
    lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    try:
        tree = ast.parse("\n".join(lines))
    except SyntaxError as exc:
        raise ValueError(f"chapter {chapter}: the parameters cell is not valid Python ({exc.msg}, line {exc.lineno})") from None
    names = []

    def targets(node):
        if isinstance(node, ast.Name):
            yield node.id
        elif isinstance(node, (ast.Tuple, ast.List)):
            for elt in node.elts:
                yield from targets(elt)
        elif isinstance(node, ast.Starred):
            yield from targets(node.value)

    for stmt in tree.body:
        if isinstance(stmt, ast.Assign):
            found = [n for t in stmt.targets for n in targets(t)]
        elif isinstance(stmt, (ast.AnnAssign, ast.AugAssign)):
            found = list(targets(stmt.target))
        else:
            continue
        names.extend(n for n in found if n not in names)
    return tuple(names)


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if type(a) is not type(b) and not (isinstance(a, (list, tuple)) and isinstance(b, (list, tuple))):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, Mapping):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


def _literal(node):
    # papermill writes float('nan') / float('inf') for non-finite floats
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "float"
            and len(node.args) == 1 and not node.keywords and isinstance(node.args[0], ast.Constant)
            and node.args[0].value in ("nan", "inf", "-inf")):
        return float(node.args[0].value)
    if isinstance(node, ast.List):
        return [_literal(e) for e in node.elts]
    if isinstance(node, ast.Dict):
        return {_literal(k): _literal(v) for k, v in zip(node.keys, node.values)}
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_literal(node.operand)
    return ast.literal_eval(node)


def check_parameters(chapter, parameters: Mapping[str, Any], *, source: str = "parameter", names=None) -> dict:
    """Check ``parameters`` against ``chapter`` before anything runs; return them as a dict.

    Every name is an identifier the chapter's ``parameters`` cell assigns; every value is data; and the
    cell papermill would inject is parsed back and must assign exactly these values (so a string can
    never become code). ``source`` names where the parameters come from in the error (a file, a key);
    ``names`` are the chapter's :func:`parameter_names` when the caller has them already.
    """
    from papermill.translators import PythonTranslator

    known = tuple(names) if names is not None else parameter_names(chapter)
    parameters = dict(parameters)
    for name, value in parameters.items():
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            raise ValueError(f"{source} name {name!r} is not a Python identifier")
        if name not in known:
            raise ValueError(f"{source} {name!r} is not a parameter of {pathlib.Path(chapter).name}; "
                             f"its parameters are: {', '.join(known)}")
        _check_value(value, f"{source} {name}")
    if not parameters:
        return parameters
    code = PythonTranslator.codify(parameters)
    try:
        tree = ast.parse(code)
        assigned = {}
        for stmt in tree.body:
            if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)):
                raise ValueError("not a plain assignment")
            assigned[stmt.targets[0].id] = _literal(stmt.value)
    except (SyntaxError, ValueError, TypeError) as exc:
        raise ValueError(f"{source}: the injected parameters do not parse back as data ({exc})") from None
    if assigned.keys() != parameters.keys() or not all(_same(assigned[k], parameters[k]) for k in parameters):
        bad = [k for k in parameters if k not in assigned or not _same(assigned[k], parameters[k])]
        raise ValueError(f"{source} {', '.join(bad)}: the injected value does not read back as written")
    return parameters


def parameterized_notebook(chapter, parameters: dict):
    """The chapter as a notebook with ``parameters`` (checked by :func:`check_parameters`) injected after its
    ``parameters`` cell."""
    from papermill.parameterize import parameterize_notebook

    nb = read_chapter(chapter)
    for cell in nb.cells:  # papermill looks up metadata.tags on every cell
        cell.metadata.setdefault("tags", [])
    nb.metadata.setdefault("papermill", {})
    nb.metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3", "language": "python"})
    nb.metadata["kernelspec"]["name"] = "python3"
    if not parameters:
        return nb
    parameters = check_parameters(chapter, parameters)
    return parameterize_notebook(nb, dict(parameters))


def _quiet_papermill():
    # papermill logs every cell and its start-up at INFO; a command line shows one progress line instead
    for name in ("papermill", "nbclient", "traitlets", "asyncio"):
        logger = logging.getLogger(name)
        if logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)


def _literal_path(path) -> str:
    # papermill formats its paths with the parameters (str.format): braces in a path are literal here
    return str(path).replace("{", "{{").replace("}", "}}")


def run_chapter(chapter, output, parameters: dict | None = None, *, kernel_name: str = "python3",
                progress: bool = True, log=None):
    """Execute a chapter with papermill and write the executed notebook atomically to ``output``.

    ``parameters`` are checked (:func:`check_parameters`) before the kernel starts. A failing notebook is
    kept as ``OUTPUT_STEM.failed.ipynb`` and the error re-raised. The kernel logs only errors; ``log``
    (a path) receives what the cells print to stderr. The kernel starts with :data:`ALLOCATOR_ENV` (where the
    environment does not set those variables already).
    """
    import nbformat
    import papermill

    _quiet_papermill()
    chapter = pathlib.Path(chapter).resolve()
    output = pathlib.Path(output)
    nb = parameterized_notebook(chapter, dict(parameters or {}))  # checks names and values first
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        source = pathlib.Path(tmp) / f"{chapter.stem}.ipynb"
        nbformat.write(nb, source)
        fd, partial = tempfile.mkstemp(dir=output.parent, prefix=f".{output.stem}.", suffix=".partial.ipynb")
        os.close(fd)
        partial = pathlib.Path(partial)
        os.chmod(partial, 0o644)
        stderr = open(log, "a", encoding="utf-8") if log is not None else None  # noqa: SIM115
        try:
            with kernel_environment():  # the kernel process reads its malloc settings at start
                papermill.execute_notebook(
                    _literal_path(source),
                    _literal_path(partial),
                    parameters=None,  # injected and checked above
                    kernel_name=kernel_name,
                    cwd=str(chapter.parent),
                    progress_bar=progress,
                    stderr_file=stderr,
                    extra_arguments=list(QUIET_KERNEL_ARGUMENTS),
                )
        except BaseException:
            if partial.exists() and partial.stat().st_size:
                os.replace(partial, output.with_name(f"{output.stem}.failed.ipynb"))
            partial.unlink(missing_ok=True)
            raise
        finally:
            if stderr is not None:
                stderr.close()
        os.replace(partial, output)
        output.with_name(f"{output.stem}.failed.ipynb").unlink(missing_ok=True)  # a stale failure of this run
    return output
