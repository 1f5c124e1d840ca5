r"""The whole paper in one command: every paper-scale sweep of a manifest, one progress line, tidy exports.

Layer 5, experiments; imports :mod:`nckernels.experiments.scales`, :mod:`nckernels.experiments.sweeps`,
:mod:`nckernels.experiments.cells` and :mod:`nckernels.experiments.grids` (the cheap re-computation of a cell).

The manifest (``book/paper.yml``) lists the sweeps the book shows at paper scale::

    results: book/results        # tracked folder of the exported result sets (CSV + provenance)
    work: results/paper          # working folder (ignored): one sweep directory per result set
    sweeps:
      - {name: 06_balanced, chapter: book/06_trained_networks.md, grid: book/grids/06_balanced.yml}

:func:`run_paper` runs every point of every grid (resumable: a run with a record is skipped, through
:func:`~nckernels.experiments.sweeps.run_sweep`), ``workers`` at a time across all sweeps, with one tqdm line
over all runs. A chapter hands its rows out through its parameter ``rows_out``: when the chapter's
``parameters`` cell assigns ``rows_out``, every paper run gets a file of its own
(``WORK/NAME/rows/<key>.csv``, ``<key>`` the run name of its other parameters) and the chapter calls
:func:`save_rows` once. :func:`export_paper` concatenates the rows of the successful runs into
``RESULTS/NAME.csv`` (one row per (cell, draw, kernel), the columns of
:data:`~nckernels.experiments.cells.ROW_COLUMNS` first, then ``run``) and writes
``RESULTS/NAME.provenance.json`` (commit and whether the tree was dirty, command, wall time, threads and
device, date, grid and each run's parameters). :func:`paper_results` reads a set back with a one-line
caption (:func:`provenance_caption`); :func:`~nckernels.experiments.reproduce.reproduce_cell` re-computes a cheap part of a
set from its recorded parameters (``tests/test_paper.py``). Book chapters
``05_adaptive_kernel``, ``06_trained_networks`` and ``09_empirical_ntk`` to ``13_hard_data``.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import math
import os
import pathlib
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import pandas as pd

from .cells import ROW_COLUMNS
from .scales import load_yaml_file, parameter_names, check_parameters
from .scales import environment
from .solves import SOLVE_STORE_ENV
from .sweeps import (THREAD_VARIABLES, SweepGrid, grid_points, init_worker, load_grid, read_records, run_key, run_sweep,
                     write_atomic)
from ..validation import check_device

__all__ = ["PAPER_ROOT", "PAPER_MANIFEST", "PAPER_RESULTS", "PaperSweep", "PaperManifest", "PaperResults",
           "load_manifest", "paper_runs", "expected_seconds", "save_rows", "run_paper", "export_paper", "restore_paper",
           "paper_results", "provenance_caption"]

PAPER_ROOT = pathlib.Path(__file__).resolve().parents[2]
"""The repository root (the package is installed in place): manifest and folders are relative to it."""
PAPER_MANIFEST = PAPER_ROOT / "book" / "paper.yml"
PAPER_RESULTS = PAPER_ROOT / "book" / "results"
ROWS_PARAMETER = "rows_out"


@dataclass(frozen=True)
class PaperSweep:
    """One result set of the paper: ``name`` (its files' stem), the ``chapter`` run, the ``grid`` file, the
    sweep directory ``out`` (records, notebooks, logs, rows)."""

    name: str
    chapter: pathlib.Path
    grid: pathlib.Path
    out: pathlib.Path
    after: tuple[str, ...] = ()  # result sets whose runs are queued before this set's (it reuses their solves)


@dataclass(frozen=True)
class PaperManifest:
    """The paper's sweeps, the tracked ``results`` folder, the manifest's ``source`` path and the ``work`` folder
    (None: the parent of the first sweep's folder)."""

    sweeps: tuple[PaperSweep, ...]
    results: pathlib.Path
    source: pathlib.Path
    work: pathlib.Path | None = None

    @property
    def solves(self) -> pathlib.Path:
        """``WORK/solves``: the EoS solve store of every run (:mod:`~nckernels.experiments.solves`)."""
        return (self.work if self.work is not None else self.sweeps[0].out.parent) / "solves"


@dataclass(frozen=True)
class PaperResults:
    """A committed result set: ``frame`` (one row per cell, draw and kernel), its ``provenance`` (the JSON
    as written) and ``caption``, the one-line description of :func:`provenance_caption`."""

    name: str
    frame: pd.DataFrame
    provenance: Mapping[str, Any]
    caption: str


def load_manifest(path=None) -> PaperManifest:
    """Read the manifest (default ``book/paper.yml``); paths in it are relative to the manifest's
    repository (the folder holding ``book/``). ValueError naming the file and key when malformed."""
    path = pathlib.Path(path) if path is not None else PAPER_MANIFEST
    if not path.is_file():
        raise ValueError(f"manifest {path} does not exist")
    table = load_yaml_file(path) or {}
    if not isinstance(table, Mapping):
        raise ValueError(f"manifest {path}: the YAML document must be a mapping")
    unknown = set(table) - {"description", "results", "work", "sweeps"}
    if unknown:
        raise ValueError(f"manifest {path}: unknown key(s) {sorted(map(str, unknown))}; expected results, work, sweeps")
    root = path.resolve().parent
    root = root.parent if root.name == "book" else root
    results = root / str(table.get("results", "book/results"))
    work = root / str(table.get("work", "results/paper"))
    entries = table.get("sweeps") or []
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"manifest {path}: 'sweeps' must be a non-empty list")
    sweeps, names = [], set()
    for i, entry in enumerate(entries):
        if not isinstance(entry, Mapping) or set(entry) - {"name", "chapter", "grid", "after"} or not {"name", "chapter", "grid"} <= set(entry):
            raise ValueError(f"manifest {path}: sweeps[{i}] must be a mapping of name, chapter, grid (and after); "
                             f"got {entry!r}")
        name = str(entry["name"])
        if not name.replace("_", "").replace("-", "").isalnum() or name in names:
            raise ValueError(f"manifest {path}: sweeps[{i}] name {name!r} must be a unique word (letters, digits, _ -)")
        names.add(name)
        chapter, grid = root / str(entry["chapter"]), root / str(entry["grid"])
        for what, p in (("chapter", chapter), ("grid", grid)):
            if not p.is_file():
                raise ValueError(f"manifest {path}: sweeps[{i}] ({name}) {what} {p} does not exist")
        after = entry.get("after", [])
        if not isinstance(after, list) or not all(isinstance(a, str) and a != name for a in after):
            raise ValueError(f"manifest {path}: sweeps[{i}] ({name}) after must be a list of other result sets' names, "
                             f"got {after!r}")
        sweeps.append(PaperSweep(name, chapter, grid, work / name, tuple(after)))
    _check_after(sweeps, path)
    return PaperManifest(tuple(sweeps), results, path, work)


def _check_after(sweeps: list[PaperSweep], path) -> None:
    """Every name in an ``after`` list is a set of the manifest, and no set waits on itself through others."""
    after = {s.name: s.after for s in sweeps}
    for s in sweeps:
        unknown = [a for a in s.after if a not in after]
        if unknown:
            raise ValueError(f"manifest {path}: {s.name} after {unknown}: no such result set")
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name, trail):
        if state.get(name) == 1:
            raise ValueError(f"manifest {path}: 'after' forms a cycle: {' -> '.join([*trail, name])}")
        if state.get(name) != 2:
            state[name] = 1
            for a in after[name]:
                visit(a, [*trail, name])
            state[name] = 2

    for s in sweeps:
        visit(s.name, [])


DEVICE_PARAMETER = "device"
"""The chapter parameter ``make paper DEVICE=...`` sets (a chapter without it runs on the CPU)."""


def paper_runs(sweep: PaperSweep, device: str | None = None) -> list[tuple[str, dict]]:
    """The runs of one result set: (run name, parameters), duplicates removed, every point checked.

    ``device`` (e.g. "cuda"): set as the parameter ``device`` of every run whose chapter has one (the run names
    then differ from the CPU runs'); chapters without it run on the CPU.

    When the chapter has the parameter ``rows_out``, each run's is ``<sweep out>/rows/<key>.csv`` relative to
    the chapter's folder (papermill's working directory), ``<key>`` the run name of its other parameters.
    """
    grid = load_grid(sweep.grid)
    names = parameter_names(sweep.chapter)
    runs, seen = [], set()
    for params in grid_points(grid, sweep.chapter):
        if device is not None and DEVICE_PARAMETER in names:
            params[DEVICE_PARAMETER] = str(device)
        if ROWS_PARAMETER in names:
            rows = sweep.out.resolve() / "rows" / f"{run_key(sweep.chapter, params)}.csv"
            params[ROWS_PARAMETER] = os.path.relpath(rows, sweep.chapter.resolve().parent)
        check_parameters(sweep.chapter, params, source=f"{grid.source}: parameter", names=names)
        key = run_key(sweep.chapter, params)
        if key not in seen:
            seen.add(key)
            runs.append((key, params))
    return runs


def save_rows(rows_out, rows) -> pathlib.Path | None:
    """Write a chapter's rows (a DataFrame, or {part: DataFrame}, concatenated with a column ``part``) to
    ``rows_out`` as CSV, atomically; nothing when ``rows_out`` is None (book and smoke scale). Returns the path.

    The one call a chapter makes for :func:`export_paper`: ``nk.save_rows(rows_out, frame)``.
    Book chapters ``05_adaptive_kernel`` and ``06_trained_networks``.
    """
    if rows_out is None:
        return None
    if isinstance(rows, Mapping):
        parts = [f.assign(part=str(k)) for k, f in rows.items() if f is not None]
        for frame in parts:
            if not isinstance(frame, pd.DataFrame):
                raise ValueError(f"rows: every part must be a DataFrame, got {type(frame).__name__}")
        rows = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(ROW_COLUMNS))
    if not isinstance(rows, pd.DataFrame):
        raise ValueError(f"rows must be a DataFrame or a mapping of DataFrames, got {type(rows).__name__}")
    path = pathlib.Path(rows_out)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, rows.to_csv(index=False))
    return path


# ------------------------------------------------------------------------------------------------- runs


def _git(*args) -> str:
    try:
        return subprocess.run(["git", *args], cwd=PAPER_ROOT, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _code_state() -> dict:
    commit = _git("rev-parse", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no", "--", "nckernels", "book")) if commit else None
    return {"commit": commit or "unknown", "dirty": dirty}


def _command_line() -> str:
    """The command that started this process, as typed: ``python -m nckernels ...`` for the package's entry point."""
    name = pathlib.Path(sys.argv[0]).name
    head = ["python", "-m", "nckernels"] if name == "__main__.py" else [name]
    return " ".join([*head, *sys.argv[1:]])


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _instant(stamp):
    """An ISO time stamp as an aware datetime (a naive one, as run records write, in this machine's zone); None if unreadable."""
    try:
        t = _dt.datetime.fromisoformat(str(stamp))
    except ValueError:
        return None
    return t.astimezone() if t.tzinfo is None else t


def _contributing_sessions(sessions: list, records: list) -> list:
    """The ``make paper`` sessions that made at least one of a set's current runs: a run counts for a session when it
    finished between the session's start and finish (a restored run keeps its committed finish time, and the
    committed sessions come with it). A session whose runs were all redone later drops out, so its commit and dirty
    tree no longer describe the set. When no run can be placed (no readable times), every session is kept.

    Chapter ``appendix_scaling`` (the paper sets' provenance).
    """
    done = [t for t in (_instant(r.get("finished")) for r in records) if t is not None]
    slack = _dt.timedelta(seconds=5)
    keep = []
    for s in sessions:
        start, end = _instant(s.get("started")), _instant(s.get("finished"))
        if start is not None and end is not None and any(start - slack <= t <= end + slack for t in done):
            keep.append(s)
    return keep or list(sessions)


def _run_point(chapter: str, key: str, params: dict, out: str, retry_failed: bool) -> dict:
    """Run one point through the sweep engine (record, notebook, log); returns its record."""
    run_sweep(chapter, SweepGrid(points=[params], source=f"run {key}"), out, workers=1,
              retry_failed=retry_failed, progress=False)
    return read_records(out).get(key, {"run": key, "status": "failed", "error": "no record written"})


def _thread_env(threads: int):
    """OMP/MKL/OpenBLAS thread counts of the kernels started inside, restored after."""
    return environment({n: str(threads) for n in THREAD_VARIABLES})


def run_paper(manifest=None, *, workers: int = 1, names: Sequence[str] | None = None,
              retry_failed: bool = False, progress: bool = True, device: str | None = None) -> pd.DataFrame:
    """Run every paper-scale sweep of ``manifest`` (a path or :class:`PaperManifest`; default ``book/paper.yml``).

    ``device``: a torch device ("cuda") for every chapter with a ``device`` parameter (:func:`paper_runs`;
    checked first: a device this machine lacks raises ValueError); the sets of other chapters run on the CPU and
    are named on stderr.

    All points of all sweeps are checked first, then run ``workers`` at a time (processes, each run's kernel
    with cpu_count // min(workers, runs to do) threads, recorded in the session), one tqdm line over all runs;
    finished runs are skipped (resume). Runs start longest first, by :func:`expected_seconds` (so the workers
    finish close together); a chapter that sets more threads than its share is named on stderr.
    ``names`` restricts to some result sets. Every run's kernel gets the EoS solve store ``WORK/solves``
    (:data:`~nckernels.experiments.solves.SOLVE_STORE_ENV`, unless already set): a solve another run (or an
    interrupted attempt) made is read back. Writes ``WORK/NAME/paper_sessions.json`` (code state, workers,
    threads, wall time of each session). Returns one row per run: name, run, status, error, seconds.
    """
    manifest = manifest if isinstance(manifest, PaperManifest) else load_manifest(manifest)
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    sweeps = [s for s in manifest.sweeps if names is None or s.name in names]
    if names is not None and len(sweeps) != len(set(names)):
        missing = sorted(set(names) - {s.name for s in manifest.sweeps})
        raise ValueError(f"names: {missing} not in manifest {manifest.source}")
    if device is not None:
        device = str(check_device(device))
        cpu_only = [s.name for s in sweeps if DEVICE_PARAMETER not in parameter_names(s.chapter)]
        if cpu_only and progress:
            print(f"paper: on the CPU (their chapters have no device parameter): {', '.join(cpu_only)}", file=sys.stderr)
    todo, total, done, records_of = [], 0, 0, {}
    for sweep in sweeps:
        runs = paper_runs(sweep, device)  # checks every point before anything runs
        records = records_of[sweep.name] = read_records(sweep.out)
        total += len(runs)
        for key, params in runs:
            status = records.get(key, {}).get("status")
            if status == "ok" or (status is not None and not retry_failed):
                done += 1
            else:
                todo.append((sweep, key, params))
    # the cores are split between the runs that run at once (all of them for a single run), in both paths below
    threads = max(1, (os.cpu_count() or 1) // max(1, min(workers, len(todo))))
    todo = _longest_first(manifest, todo, records_of)
    _warn_oversubscribed(todo, threads, progress)
    session = {"started": _now(), **_code_state(), "workers": workers, "threads_per_run": threads,
               "cpu_count": os.cpu_count(), "command": _command_line(),
               "python": platform.python_version(), "machine": platform.platform()}
    start = time.perf_counter()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, initial=done, desc=f"paper ({len(sweeps)} sets)", unit="run", dynamic_ncols=True)
    rows, failed = [], 0

    def finished(sweep, key, record):
        nonlocal failed
        rows.append({"name": sweep.name, "run": key, "status": record.get("status"), "error": record.get("error", ""),
                     "seconds": record.get("seconds")})
        if record.get("status") != "ok":
            failed += 1
            if bar is not None:
                bar.write(f"{sweep.name} run {key} failed: {str(record.get('error', '')).splitlines()[0][:300] if record.get('error') else ''}"
                          f" (see {sweep.out / 'logs' / (key + '.log')})", file=sys.stderr)
        if bar is not None:
            bar.update()
            bar.set_postfix(failed=failed, last=sweep.name)

    scope = contextlib.ExitStack()  # every run's kernel (pool workers are spawned inside) gets the solve store
    scope.enter_context(environment({SOLVE_STORE_ENV: str(manifest.solves)}, keep_existing=True))
    try:
        if workers == 1 or len(todo) <= 1:
            with _thread_env(threads):  # the chapter's kernel inherits it, as in a pool worker (init_worker)
                for sweep, key, params in todo:
                    finished(sweep, key, _run_point(str(sweep.chapter), key, params, str(sweep.out), retry_failed))
        else:
            import concurrent.futures as cf
            import multiprocessing as mp

            pool = cf.ProcessPoolExecutor(min(workers, len(todo)), mp_context=mp.get_context("spawn"),
                                          initializer=init_worker, initargs=(threads, os.getpid()))
            futures = {}
            try:
                futures = {pool.submit(_run_point, str(s.chapter), k, p, str(s.out), retry_failed): (s, k)
                           for s, k, p in todo}
                for fut in cf.as_completed(futures):
                    sweep, key = futures[fut]
                    try:
                        record = fut.result()
                    except cf.process.BrokenProcessPool as exc:
                        raise RuntimeError(f"the paper's worker processes died ({exc}); finished runs are recorded; "
                                           "run the same command again to resume") from exc
                    except Exception as exc:  # noqa: BLE001 - an error outside the notebook is a failed row
                        record = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
                    finished(sweep, key, record)
            except BaseException:
                for fut in futures:
                    fut.cancel()
                for proc in list((getattr(pool, "_processes", None) or {}).values()):
                    proc.terminate()
                pool.shutdown(wait=False, cancel_futures=True)
                raise
            pool.shutdown(wait=True)
    finally:
        scope.close()
        if bar is not None:
            bar.close()
        session.update(finished=_now(), seconds=round(time.perf_counter() - start, 1), runs=len(rows),
                       failed=failed)
        for sweep in sweeps:
            ran_here = sum(r["name"] == sweep.name for r in rows)
            if sweep.out.is_dir() and ran_here:
                path = sweep.out / "paper_sessions.json"
                try:
                    sessions = json.loads(path.read_text()) if path.is_file() else []
                except ValueError:
                    sessions = []
                path.write_text(json.dumps([*sessions, {**session, "runs_of_set": ran_here}], indent=1))
    return pd.DataFrame(rows, columns=["name", "run", "status", "error", "seconds"])


THREAD_PARAMETERS = ("threads", "torch_threads")
"""Chapter parameters that set torch's thread count; at paper scale they are null, so the session decides."""


def expected_seconds(manifest: PaperManifest, sweep: PaperSweep, records: Mapping[str, dict] | None = None
                     ) -> dict[str, float]:
    """Each run's expected time: its last record's ``seconds`` on this machine (``records``, as
    :func:`~nckernels.experiments.sweeps.read_records` returns them; None: read), else the committed
    provenance's (``RESULTS/NAME.provenance.json``, on a fresh clone); {} where neither has one."""
    known = {}
    path = manifest.results / f"{sweep.name}.provenance.json"
    try:
        runs = json.loads(path.read_text()).get("runs", []) if path.is_file() else []
    except ValueError:
        runs = []
    for run in runs:
        if isinstance(run, Mapping) and isinstance(run.get("seconds"), (int, float)):
            known[str(run.get("run"))] = float(run["seconds"])
    for key, record in (read_records(sweep.out) if records is None else records).items():
        if isinstance(record.get("seconds"), (int, float)):
            known[key] = float(record["seconds"])
    return known


def _longest_first(manifest: PaperManifest, todo: list, records_of: Mapping[str, Mapping] | None = None) -> list:
    """``todo`` ordered by expected time, longest first (a pool then ends its session with the short runs,
    so the workers finish close together). A run with no recorded time gets its set's mean, or goes first
    when its set has none (it may be long). Ties keep the manifest's order. A set with ``after`` (manifest) is
    queued after every run of those sets: its runs start once theirs have started (not finished), so that it reads
    most of their EoS solves from the store (:mod:`~nckernels.experiments.solves`) without a worker waiting."""
    records_of = records_of or {}
    times = {s.name: expected_seconds(manifest, s, records_of.get(s.name))
             for s in {id(s): s for s, _, _ in todo}.values()}

    def expected(item):
        sweep, key, _ = item
        known = times[sweep.name]
        if key in known:
            return known[key]
        return sum(known.values()) / len(known) if known else math.inf

    pending = sorted(todo, key=lambda item: -expected(item))
    ordered = []  # longest first, but a set's runs only once no run of a set it is 'after' is left to queue
    while pending:
        queued = {sweep.name for sweep, _, _ in pending}
        i = next(i for i, (sweep, _, _) in enumerate(pending) if not queued.intersection(sweep.after))
        ordered.append(pending.pop(i))
    return ordered


def _warn_oversubscribed(todo: list, threads: int, progress: bool):
    """A run whose chapter sets more torch threads than the session gives it shares its cores with the other
    runs' threads, which is many times slower (05_adaptive's traced solve took 263 s for 11 s of work with
    threads = 2 next to another run). Named on stderr, with the fix."""
    if not progress:
        return
    seen = set()
    for sweep, key, params in todo:
        for name in THREAD_PARAMETERS:
            value = params.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value > threads and (sweep.name, name) not in seen:
                seen.add((sweep.name, name))
                print(f"paper: {sweep.name} sets {name} = {value}, more than the {threads} thread(s) this session gives "
                      f"each run: its cores are oversubscribed; set {name}: null in its scale or grid file", file=sys.stderr)


# ----------------------------------------------------------------------------------------------- export


def _json_default(value):
    if isinstance(value, pathlib.Path):
        return str(value)
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def _common(values: list) -> Any:
    """The value all runs share, else the distinct values in run order (as JSON-able data)."""
    texts = list(dict.fromkeys(json.dumps(v, sort_keys=True, default=_json_default) for v in values))
    return json.loads(texts[0]) if len(texts) == 1 else [json.loads(t) for t in texts]


def _threads(params: list, session_threads):
    """Torch threads of the runs: the chapter's own setting (torch_threads / threads) when it gives one, else
    the session's cores per run."""
    for name in ("torch_threads", "threads"):
        values = {p.get(name) for p in params if isinstance(p.get(name), int) and not isinstance(p.get(name), bool)}
        if values:
            return max(values) if session_threads is None else min(max(values), session_threads)
    return session_threads


def _constant(node):
    """The value of a literal, or of arithmetic on literals (``1 / 128``, ``2**10``); ValueError otherwise."""
    import ast
    import operator

    ops = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.Pow: operator.pow, ast.FloorDiv: operator.floordiv, ast.USub: operator.neg, ast.UAdd: operator.pos}
    if isinstance(node, ast.BinOp) and type(node.op) in ops:
        return ops[type(node.op)](_constant(node.left), _constant(node.right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in ops:
        return ops[type(node.op)](_constant(node.operand))
    return ast.literal_eval(node)


def _cell_defaults(source: str) -> dict:
    """Names a parameters cell assigns to data (literals or arithmetic on them), with their values."""
    import ast

    try:
        tree = ast.parse("\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))))
    except SyntaxError:
        return {}
    out = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            try:
                out[stmt.targets[0].id] = _constant(stmt.value)
            except (ValueError, TypeError, SyntaxError, ZeroDivisionError, OverflowError):
                pass
    return out


def _effective_parameters(sweep: PaperSweep, record: Mapping[str, Any], params: Mapping[str, Any]) -> dict:
    """Every parameter a run ran with: the defaults of the parameters cell it executed (from its notebook,
    else the chapter as it is now), updated with the injected ``params``; ``rows_out`` left out."""
    import nbformat

    source = None
    notebook = sweep.out / str(record.get("notebook") or "")
    if record.get("notebook") and notebook.is_file():
        try:
            nb = nbformat.read(notebook, as_version=4)
            source = next(c.source for c in nb.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", []))
        except (StopIteration, OSError, ValueError):
            source = None
    if source is None:
        from .scales import read_chapter

        source = next(c.source for c in read_chapter(sweep.chapter).cells if c.cell_type == "code")
    out = {**_cell_defaults(source), **dict(params)}
    out.pop(ROWS_PARAMETER, None)
    return out


def _write_if_changed(path: pathlib.Path, text: str):
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return
    write_atomic(path, text)


def export_paper(manifest=None, *, names: Sequence[str] | None = None, command: str | None = None,
                 progress: bool = True, device: str | None = None) -> pd.DataFrame:
    """Write ``RESULTS/NAME.csv`` and ``RESULTS/NAME.provenance.json`` of every result set with rows.

    The CSV holds the rows of the latest successful attempt of each run of the current grid (``run`` names
    it), columns :data:`~nckernels.experiments.cells.ROW_COLUMNS` first. A set whose chapter has no
    ``rows_out`` parameter, or whose runs wrote no rows, is not written (its line says why). Returns one row
    per set: name, written (bool), rows, runs, failed, reason. ``device``: the runs of ``run_paper(device=...)``.
    """
    manifest = manifest if isinstance(manifest, PaperManifest) else load_manifest(manifest)
    out_rows = []
    for sweep in manifest.sweeps:
        if names is not None and sweep.name not in names:
            continue
        runs = paper_runs(sweep, device)
        records = read_records(sweep.out)
        line = {"name": sweep.name, "written": False, "rows": 0, "runs": len(runs), "failed": 0, "reason": ""}
        ran = [(k, p, records[k]) for k, p in runs if k in records]
        line["failed"] = sum(r.get("status") != "ok" for _, _, r in ran)
        frames, missing = [], []
        for key, params, record in ran:
            if record.get("status") != "ok":
                continue
            rows_file = params.get(ROWS_PARAMETER)
            path = (sweep.chapter.parent / rows_file) if rows_file else None
            if path is None or not path.is_file():
                missing.append(key)
                continue
            frames.append(pd.read_csv(path).assign(run=key))
        if ROWS_PARAMETER not in parameter_names(sweep.chapter):
            line["reason"] = f"{sweep.chapter.name} has no '{ROWS_PARAMETER}' parameter (nothing to export)"
        elif len(ran) < len(runs):
            line["reason"] = f"{len(runs) - len(ran)} of {len(runs)} runs not run yet (make paper)"
        elif missing:
            line["reason"] = f"{len(missing)} successful run(s) wrote no rows (does the chapter call nk.save_rows?)"
        elif not frames:
            line["reason"] = "no successful run"
        if line["reason"]:
            out_rows.append(line)
            if progress:
                print(f"{sweep.name}: not exported: {line['reason']}", file=sys.stderr)
            continue
        frame = pd.concat(frames, ignore_index=True)
        first = [c for c in ROW_COLUMNS if c in frame.columns]
        frame = frame[first + [c for c in frame.columns if c not in first]]
        manifest.results.mkdir(parents=True, exist_ok=True)
        csv = manifest.results / f"{sweep.name}.csv"
        sessions_file = sweep.out / "paper_sessions.json"
        sessions = json.loads(sessions_file.read_text()) if sessions_file.is_file() else []
        sessions = _contributing_sessions(sessions, [r for _, _, r in ran])  # not those whose runs were all redone
        ran = [(k, _effective_parameters(sweep, r, p), r) for k, p, r in ran]
        params = [p for _, p, _ in ran]
        keys = list(dict.fromkeys(k for p in params for k in p))
        last = sessions[-1] if sessions else {}
        finished = sorted(str(r.get("finished", "")) for _, _, r in ran)
        provenance = {
            "name": sweep.name, "chapter": sweep.chapter.relative_to(PAPER_ROOT).as_posix()
            if sweep.chapter.is_relative_to(PAPER_ROOT) else str(sweep.chapter),
            "grid_file": sweep.grid.relative_to(PAPER_ROOT).as_posix() if sweep.grid.is_relative_to(PAPER_ROOT) else str(sweep.grid),
            "grid": load_yaml_file(sweep.grid),
            "parameters": {k: _common([p.get(k) for p in params]) for k in keys},
            "runs": [{"run": k, "status": r.get("status"), "seconds": r.get("seconds"), "finished": r.get("finished"),
                      "parameters": p} for k, p, r in ran],
            "n_runs": len(ran), "failed_runs": line["failed"], "rows": len(frame),
            "run_seconds": round(sum(float(r.get("seconds") or 0) for _, _, r in ran), 1),
            "first_finished": finished[0] if finished else None, "last_finished": finished[-1] if finished else None,
            "commit": last.get("commit", _code_state()["commit"]), "dirty": any(x.get("dirty") for x in sessions),
            "commits": list(dict.fromkeys(x.get("commit", "unknown") for x in sessions)),
            "workers": last.get("workers"), "threads_per_run": _threads(params, last.get("threads_per_run")),
            "cpu_count": last.get("cpu_count"), "device": _common([p.get("device") or "cpu" for p in params]),
            "command": last.get("command", command),
            "session_seconds": round(sum(float(x.get("seconds") or 0) for x in sessions), 1), "sessions": sessions,
        }
        # written only when changed: an unchanged set keeps its files (and the book its cache)
        _write_if_changed(csv, frame.to_csv(index=False))
        _write_if_changed(manifest.results / f"{sweep.name}.provenance.json",
                          json.dumps(provenance, indent=1, default=_json_default) + "\n")
        line.update(written=True, rows=len(frame))
        out_rows.append(line)
        if progress:
            print(f"{sweep.name}: {len(frame)} rows from {len(ran)} runs -> {csv}", file=sys.stderr)
    return pd.DataFrame(out_rows, columns=["name", "written", "rows", "runs", "failed", "reason"])


def restore_paper(manifest=None, *, names: Sequence[str] | None = None, progress: bool = True) -> pd.DataFrame:
    """Seed the (ignored) work folder of each result set from its committed export, so that a fresh clone re-runs
    only what it lacks: ``make paper PAPER_ARGS="--restore"``, after removing ``WORK/NAME/records/<run>.json`` of
    the runs to redo (or with a changed grid, whose new points have no committed run).

    A run is restored when the committed provenance lists it as successful under the name the current grid and
    chapter give it (:func:`paper_runs`), its rows are in ``RESULTS/NAME.csv`` and the work folder has no
    record of it yet: its record (status, seconds and finish time as committed, ``restored_from`` the CSV) and
    its rows file are written atomically. The committed sessions seed ``paper_sessions.json`` when it is
    missing, so a later export keeps the set's history. Returns one row per committed run: name, run,
    restored (bool), reason (why not).
    """
    manifest = manifest if isinstance(manifest, PaperManifest) else load_manifest(manifest)
    out = []
    for sweep in manifest.sweeps:
        if names is not None and sweep.name not in names:
            continue
        csv = manifest.results / f"{sweep.name}.csv"
        if not (manifest.results / f"{sweep.name}.provenance.json").is_file():
            continue
        committed_set = paper_results(sweep.name, manifest.results)  # None when the CSV is absent
        if committed_set is None:
            continue
        frame, provenance = committed_set.frame, committed_set.provenance
        runs = dict(paper_runs(sweep))
        records = read_records(sweep.out)
        restored = 0
        for committed in provenance.get("runs", []):
            key = committed.get("run")
            line = {"name": sweep.name, "run": key, "restored": False, "reason": ""}
            rows = frame[frame["run"] == key].drop(columns=["run"]) if "run" in frame.columns else frame.iloc[:0]
            if key not in runs:
                line["reason"] = "not a run of the current grid and chapter"
            elif committed.get("status") != "ok":
                line["reason"] = f"committed as {committed.get('status')}"
            elif key in records:
                line["reason"] = "already in the work folder"
            elif rows.empty:
                line["reason"] = f"no rows in {csv.name}"
            else:
                params = runs[key]
                (sweep.out / "records").mkdir(parents=True, exist_ok=True)
                rows_file = params.get(ROWS_PARAMETER)
                if rows_file:
                    path = sweep.chapter.parent / rows_file
                    path.parent.mkdir(parents=True, exist_ok=True)
                    write_atomic(path, rows.to_csv(index=False))
                record = {"run": key, "status": "ok", "error": "", "seconds": committed.get("seconds"),
                          "finished": committed.get("finished"), "notebook": "", "parameters": params,
                          "restored_from": csv.relative_to(PAPER_ROOT).as_posix() if csv.is_relative_to(PAPER_ROOT)
                          else str(csv)}
                write_atomic(sweep.out / "records" / f"{key}.json", json.dumps(record, indent=1, default=_json_default))
                line["restored"] = True
                restored += 1
            out.append(line)
        sessions = sweep.out / "paper_sessions.json"
        if restored and not sessions.is_file():
            write_atomic(sessions, json.dumps(provenance.get("sessions", []), indent=1))
        if progress:
            print(f"{sweep.name}: restored {restored} of {len(provenance.get('runs', []))} committed runs into {sweep.out}",
                  file=sys.stderr)
    return pd.DataFrame(out, columns=["name", "run", "restored", "reason"])


# ----------------------------------------------------------------------------------------------- reading


def provenance_caption(provenance: Mapping[str, Any], sizes: Mapping[str, str] | None = None) -> str:
    """One line for a figure caption: "paper scale: 20 runs of 10 draws and 1000 epochs, 0 failed runs, 11.2 min of
    run time; commit abc1234, 2026-11-30, 2 threads" (the grid's scale; draws and epochs when the runs have them;
    the summed run time when recorded; "+dirty" for a dirty tree; the device instead of threads when not the CPU).
    ``sizes``: {parameter: word} of the run sizes to name (default draws and epochs; a chapter whose set has parts
    names the part a figure shows, e.g. ``{"grid_draws": "draws"}`` for a grid without training). Book chapters
    ``06_trained_networks`` and ``12_depth_and_activation``."""
    params = provenance.get("parameters") or {}
    if sizes is None:
        sizes = {"draws": "draws", "epochs": "epochs"}
    if not isinstance(sizes, Mapping):
        raise ValueError(f"sizes must be a mapping of parameter name to word, got {sizes!r}")
    size = []
    for key, word in sizes.items():
        value = params.get(key)
        if value is not None:
            size.append(f"{value} {word}" if not isinstance(value, list) else f"{'/'.join(map(str, value))} {word}")
    what = f"{provenance.get('n_runs', '?')} run{'s' if provenance.get('n_runs') != 1 else ''}"
    if size:
        what += " of " + " and ".join(size)
    commit = str(provenance.get("commit") or "unknown")[:7] + ("+dirty" if provenance.get("dirty") else "")
    date = str(provenance.get("last_finished") or "")[:10]
    threads = provenance.get("threads_per_run")
    device = provenance.get("device")
    where = f"{threads} thread{'s' if threads != 1 else ''}" if threads else "threads unknown"
    if device not in (None, "cpu"):
        where = f"{device}" if not isinstance(device, list) else "/".join(map(str, device))
    grid = provenance.get("grid")
    scale = (grid.get("scale") or "book") if isinstance(grid, Mapping) else "paper"
    seconds = provenance.get("run_seconds")
    took = f", {float(seconds) / 60:.1f} min of run time" if seconds is not None else ""
    failed = provenance.get("failed_runs", 0)
    return f"{scale} scale: {what}, {failed} failed run{'s' if failed != 1 else ''}{took}; commit {commit}, {date}, {where}"


def paper_results(name: str, folder=None) -> PaperResults | None:
    """The committed result set ``name`` (``book/results/NAME.csv`` and its provenance), or None when absent.

    Book chapters ``05_adaptive_kernel`` and ``06_trained_networks`` read their paper-scale figures here.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    folder = pathlib.Path(folder) if folder is not None else PAPER_RESULTS
    csv, prov = folder / f"{name}.csv", folder / f"{name}.provenance.json"
    if not csv.is_file():
        return None
    if not prov.is_file():
        raise ValueError(f"{csv} has no provenance {prov.name}; run `python -m nckernels paper --export-only`")
    text_columns = {c: str for c in ("split", "kernel", "status", "error", "run", "part")}
    frame = pd.read_csv(csv, dtype=text_columns, keep_default_na=False,
                        na_values={c: ["", "nan", "NaN"] for c in pd.read_csv(csv, nrows=0).columns if c not in text_columns})
    provenance = json.loads(prov.read_text())
    return PaperResults(name, frame, provenance, provenance_caption(provenance))
