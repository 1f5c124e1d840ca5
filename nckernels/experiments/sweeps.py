r"""Parameter sweeps of a chapter with papermill: one executed notebook and one record per grid point.

Layer 5, experiments; imports :mod:`nckernels.experiments.scales`.

A grid file (YAML, floats as YAML 1.2 reads them: ``1e-3`` is a float) names the runs::

    scale: paper            # optional: start from book/scales/<chapter>.yml at this scale
    parameters:             # optional: fixed overrides for every run
      draws: 10
    grid:                   # the cartesian product of these lists
      N_values: [[128], [256]]
      d0_values: [[1], [128]]
    points:                 # optional: extra explicit points (each a dict of overrides)
      - {N_values: [2048]}

Every name must be a parameter the chapter's ``parameters`` cell assigns and every value data; both are
checked for every point before anything runs (:func:`nckernels.scales.check_parameters`).

Each run is named by a hash of (chapter name, its full parameter dict), ``<run>`` (12 hex digits), and owns
three files in ``DIR``: ``runs/<run>.ipynb`` (the executed notebook; a failure keeps its partial notebook as
``runs/<run>.failed.ipynb``), ``logs/<run>.log`` (what its cells wrote to stderr) and ``records/<run>.json``:
its parameters, ``status`` ("ok" or "failed"), ``error``, ``seconds``, ``finished``, ``notebook`` and every
scalar the notebook glued (``myst_nb.glue``), in JSON, so types survive (a string "007" stays a string).
A record is written atomically by the process that ran it (a unique temporary file in ``records/`` then
``os.replace``), so nothing is lost whatever happens to the sweep, and two sweeps can share one ``DIR``.

``DIR/results.csv`` is a view: after every run it is merged from all records under an inter-process lock and
replaced atomically; :func:`read_results` reads the records themselves. Finished runs (ok or failed) are
skipped when the sweep is run again, so an interrupted sweep resumes; ``retry_failed`` re-runs the failed
ones (their earlier attempts stay in the record and as earlier rows of ``results.csv``; :func:`read_results`
keeps the last attempt). Interrupting a sweep (Ctrl-C, SIGTERM) cancels the queue and ends the workers and
their kernels; a worker whose sweep process dies (kill -9) ends itself and its kernel. Used by
``python -m nckernels sweep`` and ``make paper`` (book chapter ``07_reference_code`` shows why failures
must be rows).
"""
from __future__ import annotations

import ast
import datetime as _dt
import hashlib
import io
import itertools
import json
import math
import os
import pathlib
import re
import signal
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import pandas as pd

from .scales import SCALES, load_yaml_file, check_parameters, parameter_names, scale_parameters

__all__ = ["SweepGrid", "load_grid", "grid_points", "run_key", "harvest_glue", "glued_scalar", "execute_run", "run_sweep",
           "read_results", "read_records", "write_results_view", "write_atomic", "RESULT_COLUMNS",
           "THREAD_VARIABLES"]

RESULT_COLUMNS = ("run", "status", "error", "seconds", "finished", "notebook")
_TEXT_COLUMNS = ("run", "status", "error", "finished", "notebook")
_GLUE_PREFIX = "application/papermill.record/"
_KEY = re.compile(r"[0-9a-f]{12}")


@dataclass(frozen=True)
class SweepGrid:
    """A sweep: base ``scale`` (or None for book scale), fixed ``parameters``, a cartesian ``grid``, extra ``points``;
    ``source`` names where it was read from (in error messages)."""

    grid: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    parameters: Mapping[str, Any] = field(default_factory=dict)
    points: Sequence[Mapping[str, Any]] = ()
    scale: str | None = None
    source: str = "grid"


def load_grid(source) -> SweepGrid:
    """Read a grid from a YAML file path or a dict (keys: scale, parameters, grid, points, description)."""
    if isinstance(source, (str, os.PathLike)):
        path = pathlib.Path(source)
        if not path.is_file():
            raise ValueError(f"grid file {path} does not exist")
        table = load_yaml_file(path) or {}
        where = f"grid {path}"
    elif isinstance(source, Mapping):
        table, where = dict(source), "grid"
    else:
        raise ValueError(f"grid must be a YAML path or a mapping, got {type(source).__name__}")
    if not isinstance(table, Mapping):
        raise ValueError(f"{where}: the YAML document must be a mapping")
    unknown = set(table) - {"scale", "parameters", "grid", "points", "description"}
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {sorted(map(str, unknown))}; expected scale, parameters, grid, points")
    scale = table.get("scale")
    if scale is not None and scale not in SCALES:
        raise ValueError(f"{where}: scale must be one of {SCALES}, got {scale!r}")
    grid = table.get("grid") or {}
    if not isinstance(grid, Mapping):
        raise ValueError(f"{where}: grid must be a mapping of parameter lists")
    grid = dict(grid)
    for name, values in grid.items():
        if not isinstance(values, (list, tuple)) or not values:
            raise ValueError(f"{where}: grid key {name!r} must be a non-empty list of values, got {values!r}")
    points = table.get("points") or []
    if not isinstance(points, (list, tuple)) or not all(isinstance(p, Mapping) for p in points):
        raise ValueError(f"{where}: points must be a list of mappings")
    params = table.get("parameters") or {}
    if not isinstance(params, Mapping):
        raise ValueError(f"{where}: parameters must be a mapping")
    if not grid and not points:
        raise ValueError(f"{where}: give at least one of 'grid' (lists to combine) or 'points'")
    return SweepGrid(grid, dict(params), list(points), scale, where)


def grid_points(grid: SweepGrid, chapter=None) -> list[dict]:
    """The full parameter dict of every run: scale overrides, then ``parameters``, then the point."""
    base = dict(scale_parameters(chapter, grid.scale)) if (grid.scale and chapter is not None) else {}
    base.update(grid.parameters)
    names = list(grid.grid)
    combos = [dict(zip(names, values)) for values in itertools.product(*(grid.grid[n] for n in names))] if names else []
    out = []
    for point in combos + [dict(p) for p in grid.points]:
        params = dict(base)
        params.update(point)
        out.append(params)
    return out


def _canonical(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def run_key(chapter, parameters: Mapping[str, Any]) -> str:
    """12 hex digits of sha256 over the chapter's name and the canonical JSON of its parameters."""
    text = pathlib.Path(chapter).stem + "\n" + _canonical(dict(parameters))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def glued_scalar(text: str):
    """A Python scalar from a glued text/plain repr (numbers, bools, strings, numpy scalars), else None."""
    text = text.strip()
    m = re.fullmatch(r"np\.(?:float|int|bool_?)\w*\((.*)\)", text)
    if m:
        text = m.group(1)
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        if text in ("nan", "inf", "-inf"):
            return float(text)
        return None
    if isinstance(value, (bool, int, float, str)):
        return value
    return None


def harvest_glue(nb) -> dict:
    """Every scalar a notebook glued with ``myst_nb.glue``: name -> value (figures and tables skipped)."""
    found = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            meta = output.get("metadata", {}).get("scrapbook")
            if not meta or "name" not in meta:
                continue
            data = output.get("data", {})
            text = data.get(_GLUE_PREFIX + "text/plain", data.get("text/plain"))
            if text is None:
                continue
            value = glued_scalar(text if isinstance(text, str) else "".join(text))
            if value is not None:
                found[meta["name"]] = value
    return found


def _cell_value(value):
    """Parameters as table cells: scalars as they are, lists and dicts as canonical JSON."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return _canonical(value)


def _now() -> str:
    return _dt.datetime.now().isoformat(timespec="seconds")


def execute_run(chapter, parameters: Mapping[str, Any], notebook, *, log=None) -> dict:
    """Execute ``chapter`` with ``parameters`` into ``notebook``; return its result (never raises on a
    failing notebook: the result has status "failed" and the error). ``log`` receives the cells' stderr."""
    import nbformat

    from .scales import run_chapter

    chapter, notebook = pathlib.Path(chapter), pathlib.Path(notebook)
    row = {"status": "ok", "error": ""}
    start = time.perf_counter()
    try:
        run_chapter(chapter, notebook, dict(parameters), progress=False, log=log)
        row.update(harvest_glue(nbformat.read(notebook, as_version=4)))
    except Exception as exc:  # noqa: BLE001 - a failed run is a row
        row["status"] = "failed"
        row["error"] = _describe(exc)
    row["seconds"] = round(time.perf_counter() - start, 3)
    row["finished"] = _now()
    return row


def _describe(exc: BaseException) -> str:
    ename, evalue = getattr(exc, "ename", None), getattr(exc, "evalue", None)
    if ename:
        return f"{ename}: {evalue}"[:2000]
    last = traceback.format_exception_only(type(exc), exc)[-1].strip()
    return last[:2000]


# ----------------------------------------------------------------------------------------------- files


def _folder(out: pathlib.Path, name: str) -> pathlib.Path:
    """``out/name``, created; refused when it is a symlink (a run's files stay inside ``out``)."""
    path = out / name
    if path.is_symlink():
        raise ValueError(f"{path} is a symlink; a sweep writes only inside its --out directory")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _run_file(out: pathlib.Path, folder: str, key: str, suffix: str) -> pathlib.Path:
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise ValueError(f"run name {key!r} is not 12 hex digits")
    return out / folder / f"{key}{suffix}"


def write_atomic(path: pathlib.Path, text: str | bytes):
    """Write ``text`` (str as UTF-8, or bytes) to ``path`` through a unique temporary file in the same folder
    (created with O_EXCL, so no symlink is followed) and ``os.replace`` (which replaces a symlink at ``path``
    rather than its target)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with (os.fdopen(fd, "wb") if isinstance(text, bytes) else os.fdopen(fd, "w", encoding="utf-8", newline="")) as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise


def _read_record(path: pathlib.Path) -> dict | None:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("run") != path.stem or not _KEY.fullmatch(path.stem):
        return None
    return record


def read_records(out) -> dict[str, dict]:
    """Every run's record in ``DIR/records/`` (run name -> record as written, types kept)."""
    folder = pathlib.Path(out) / "records"
    if not folder.is_dir():
        return {}
    records = {}
    for path in sorted(folder.glob("*.json")):
        record = _read_record(path)
        if record is not None:
            records[record["run"]] = record
    return records


def _attempt_row(out: pathlib.Path, record: dict, attempt: dict) -> dict:
    notebook = attempt.get("notebook") or ""
    if notebook and not (out / notebook).is_file():
        notebook = ""  # e.g. the partial notebook of a failure that a retry replaced
    row = {"run": record["run"], "status": attempt.get("status", ""), "error": attempt.get("error", ""),
           "seconds": attempt.get("seconds"), "finished": attempt.get("finished", ""), "notebook": notebook}
    row.update({k: _cell_value(v) for k, v in (record.get("parameters") or {}).items() if k not in row})
    row.update({k: v for k, v in (attempt.get("glued") or {}).items() if k not in row})
    return row


def _frame(out: pathlib.Path, records: Mapping[str, dict], *, history: bool) -> pd.DataFrame:
    ordered = sorted(records.values(), key=lambda r: (str(r.get("finished", "")), r["run"]))
    rows, params, glued = [], {}, {}
    for record in ordered:
        params.update(dict.fromkeys(record.get("parameters") or {}))
        attempts = (list(record.get("previous") or []) if history else []) + [record]
        for attempt in attempts:
            glued.update(dict.fromkeys(attempt.get("glued") or {}))
            rows.append(_attempt_row(out, record, attempt))
    columns = list(RESULT_COLUMNS) + [c for c in params if c not in RESULT_COLUMNS]
    columns += [c for c in glued if c not in columns]
    frame = pd.DataFrame(rows, columns=columns)
    for col in _TEXT_COLUMNS:
        frame[col] = frame[col].astype(object)
    return frame


def _lock(out: pathlib.Path):
    from filelock import FileLock

    return FileLock(str(out / ".results.lock"), timeout=600)


def write_results_view(out) -> pathlib.Path:
    """Merge every record of ``DIR`` into ``DIR/results.csv`` (every attempt, oldest first) under an
    inter-process lock, replaced atomically; returns its path."""
    out = pathlib.Path(out)
    path = out / "results.csv"
    with _lock(out):
        frame = _frame(out, read_records(out), history=True)
        buf = io.StringIO()
        frame.to_csv(buf, index=False)
        write_atomic(path, buf.getvalue())
    return path


def _legacy_rows(path: pathlib.Path) -> pd.DataFrame:
    """A results.csv written before records existed: text columns as text, never type-guessed."""
    header = list(pd.read_csv(path, nrows=0).columns)
    text = [c for c in _TEXT_COLUMNS if c in header]
    return pd.read_csv(path, dtype={c: str for c in text}, keep_default_na=False,
                       na_values={c: ["", "nan", "NaN"] for c in header if c not in text})


def _migrate_legacy(out: pathlib.Path, chapter: pathlib.Path, points: Sequence[Mapping[str, Any]]):
    """Turn the rows of a results.csv from before records into records (once, under the lock)."""
    path = out / "results.csv"
    if not path.is_file() or (out / "records").exists():
        return
    with _lock(out):
        if (out / "records").exists():
            return
        by_key = {run_key(chapter, p): dict(p) for p in points}
        frame = _legacy_rows(path)
        records = {}
        for raw in frame.to_dict("records"):
            key = raw.get("run", "")
            if not _KEY.fullmatch(str(key)):
                continue
            params = by_key.get(key, {})
            attempt = {"status": raw.get("status", ""), "error": raw.get("error", ""),
                       "seconds": None if pd.isna(raw.get("seconds")) else raw.get("seconds"),
                       "finished": raw.get("finished", ""), "notebook": raw.get("notebook", ""),
                       "glued": {k: v for k, v in raw.items()
                                 if k not in RESULT_COLUMNS and k not in params and not (isinstance(v, float) and math.isnan(v))}}
            previous = records.get(key)
            record = {"run": key, "chapter": chapter.stem, "parameters": params, **attempt, "legacy": True}
            if previous is not None:
                record["previous"] = previous.pop("previous", []) + [previous]
                previous.pop("run"), previous.pop("chapter"), previous.pop("parameters"), previous.pop("legacy")
            records[key] = record
        folder = _folder(out, "records")
        for key, record in records.items():
            write_atomic(folder / f"{key}.json", json.dumps(record, indent=1))


def read_results(out) -> pd.DataFrame:
    """One row per run of ``DIR`` (the last attempt) from its records, parameters and glued values with the
    types they were written with (lists and mappings as JSON text); a ``results.csv`` from before records is
    read with its text columns as text. An empty frame when there is nothing."""
    out = pathlib.Path(out)
    records = read_records(out)
    if records:
        return _frame(out, records, history=False).reset_index(drop=True)
    path = out / "results.csv"
    if path.is_file():
        return _legacy_rows(path).drop_duplicates("run", keep="last").reset_index(drop=True)
    return pd.DataFrame(columns=list(RESULT_COLUMNS))


# ------------------------------------------------------------------------------------------------ runs


def _run_one(chapter, key: str, params: Mapping[str, Any], out, retry_failed: bool) -> dict | None:
    """Run one point and write its record; None when another sweep holds it or finished it meanwhile."""
    from filelock import FileLock, Timeout

    chapter, out = pathlib.Path(chapter), pathlib.Path(out)
    record_path = _run_file(out, "records", key, ".json")
    claim = FileLock(str(out / "records" / f".{key}.lock"), timeout=0)
    try:
        claim.acquire()
    except Timeout:
        return None  # another sweep on this DIR is running this point; it writes the record
    try:
        old = _read_record(record_path) if record_path.exists() else None
        if old is not None and (old.get("status") == "ok" or not retry_failed):
            return None  # finished by another sweep since this one looked
        notebook = _run_file(out, "runs", key, ".ipynb")
        log = _run_file(out, "logs", key, ".log")
        row = execute_run(chapter, params, notebook, log=log)
        status = row.pop("status")
        attempt = {"status": status, "error": row.pop("error", ""), "seconds": row.pop("seconds", None),
                   "finished": row.pop("finished", _now())}
        failed = notebook.with_name(f"{key}.failed.ipynb")
        attempt["notebook"] = (f"runs/{notebook.name}" if status == "ok" and notebook.is_file()
                               else f"runs/{failed.name}" if failed.is_file() else "")
        attempt["glued"] = row
        record = {"run": key, "chapter": chapter.stem, "parameters": dict(params), **attempt,
                  "log": f"logs/{log.name}"}
        if old is not None:
            earlier = dict(old)
            for k in ("run", "chapter", "parameters", "previous", "log", "legacy"):
                earlier.pop(k, None)
            record["previous"] = list(old.get("previous") or []) + [earlier]
        write_atomic(record_path, json.dumps(record, indent=1))
        return record
    finally:
        claim.release()


def _lost(key: str, params: Mapping[str, Any], chapter: pathlib.Path, out: pathlib.Path, exc: BaseException) -> dict:
    """The record of a run whose worker was lost (it never wrote one)."""
    record_path = _run_file(out, "records", key, ".json")
    if record_path.exists():
        record = _read_record(record_path)
        if record is not None:
            return record
    record = {"run": key, "chapter": chapter.stem, "parameters": dict(params), "status": "failed",
              "error": f"worker lost: {_describe(exc)}", "seconds": None, "finished": _now(), "notebook": "",
              "glued": {}}
    write_atomic(record_path, json.dumps(record, indent=1))
    return record


def watch_parent(parent: int):
    while True:
        if os.getppid() != parent:  # the sweep process died (kill -9): end this worker; its kernel follows
            os._exit(70)
        time.sleep(0.2)


#: The environment variables that set a kernel's BLAS/OpenMP threads (pool workers and in-process paper runs).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def init_worker(threads: int, parent: int):
    """A pool worker's start: ``threads`` BLAS/OpenMP threads, Ctrl-C left to the parent, exit when the parent dies."""
    # the chapter's kernel inherits this environment: split the cores between parallel runs
    for var in THREAD_VARIABLES:
        os.environ[var] = str(threads)
    # Ctrl-C reaches the whole terminal group: the sweep process handles it and ends the workers
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=watch_parent, args=(parent,), daemon=True, name="nckernels-parent-watch").start()


class _Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C."""


def _raise_terminated(signum, frame):
    raise _Terminated(f"signal {signum}")


def _end_pool(pool, futures):
    for fut in futures:
        fut.cancel()
    procs = list((getattr(pool, "_processes", None) or {}).values())
    for proc in procs:
        try:
            proc.terminate()  # its kernel sees its parent go and exits within a second
        except (OSError, ValueError):
            pass
    pool.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + 5
    for proc in procs:
        proc.join(max(0.0, deadline - time.monotonic()))
        if proc.is_alive():
            proc.kill()


def run_sweep(
    chapter,
    grid,
    out,
    *,
    workers: int = 1,
    scheduler: str | None = None,
    retry_failed: bool = False,
    progress: bool = True,
) -> pd.DataFrame:
    """Run every point of ``grid`` (a :class:`SweepGrid`, a mapping or a YAML path) on ``chapter``.

    Args:
        chapter: path to the chapter's ``.md``.
        out: output directory (``records/``, ``runs/``, ``logs/``, ``results.csv``).
        workers: parallel processes on this machine (each run's kernel gets cores // workers threads).
        scheduler: address of a running Dask distributed scheduler; runs are submitted there instead
            (``chapter`` and ``out`` must be visible to its workers at the same paths).
        retry_failed: re-run points whose last attempt failed.
        progress: one tqdm line for the sweep, and one line per failed run.

    Every point's names and values are checked against the chapter before anything runs (ValueError).

    Returns:
        :func:`read_results` of ``out`` after the sweep.
    """
    chapter = pathlib.Path(chapter)
    if not chapter.is_file():
        raise ValueError(f"chapter {chapter} does not exist")
    chapter = chapter.resolve()
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    grid = grid if isinstance(grid, SweepGrid) else load_grid(grid)
    points = grid_points(grid, chapter)
    names = parameter_names(chapter)
    for params in points:  # every point is checked before anything runs
        check_parameters(chapter, params, source=f"{grid.source}: parameter", names=names)
    out = pathlib.Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    out = out.resolve()
    for name in ("runs", "logs"):
        _folder(out, name)
    _migrate_legacy(out, chapter, points)
    _folder(out, "records")
    done_before = read_records(out)
    todo, seen = [], set()
    for params in points:
        key = run_key(chapter, params)
        if key in seen:
            continue
        seen.add(key)
        status = done_before.get(key, {}).get("status")
        if status == "ok" or (status is not None and not retry_failed):
            continue
        todo.append((key, params))
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc=f"{chapter.stem} ({len(seen) - len(todo)} done before)", unit="run",
                   dynamic_ncols=True)
    failed = 0

    def record(key, params, rec):
        nonlocal failed
        if rec is not None and rec.get("status") != "ok":
            failed += 1
            if bar is not None:
                bar.write(f"{chapter.stem} run {key} failed: {str(rec.get('error', '')).splitlines()[0][:300]}"
                          + (f" (see {out / rec['notebook']})" if rec.get("notebook") else ""), file=sys.stderr)
        write_results_view(out)
        if bar is not None:
            bar.update()
            bar.set_postfix(failed=failed)

    in_main = threading.current_thread() is threading.main_thread()
    before = signal.signal(signal.SIGTERM, _raise_terminated) if in_main else None
    try:
        if scheduler:
            from distributed import Client, as_completed

            with Client(scheduler) as client:
                futures = {client.submit(_run_one, str(chapter), key, params, str(out), retry_failed,
                                         key=f"nckernels-run-{key}-{time.time_ns()}", pure=False):
                           (key, params) for key, params in todo}
                try:
                    for fut in as_completed(futures):
                        key, params = futures[fut]
                        try:
                            rec = fut.result()
                        except Exception as exc:  # noqa: BLE001 - a lost worker is a failed row
                            rec = _lost(key, params, chapter, out, exc)
                        record(key, params, rec)
                except BaseException:
                    client.cancel(list(futures))
                    raise
        elif workers > 1 and len(todo) > 1:
            import concurrent.futures as cf
            import multiprocessing as mp

            threads = max(1, (os.cpu_count() or 1) // workers)
            pool = cf.ProcessPoolExecutor(min(workers, len(todo)), mp_context=mp.get_context("spawn"),
                                          initializer=init_worker, initargs=(threads, os.getpid()))
            futures = {}
            try:
                futures = {pool.submit(_run_one, chapter, key, params, out, retry_failed): (key, params)
                           for key, params in todo}
                for fut in cf.as_completed(futures):
                    key, params = futures[fut]
                    try:
                        rec = fut.result()
                    except cf.process.BrokenProcessPool as exc:
                        # the pool is gone (a worker died or could not start): which runs it took down is
                        # unknown, so none is recorded as failed; the unrecorded ones run on the next resume
                        raise RuntimeError(f"the sweep's worker processes died ({exc}); finished runs are recorded "
                                           f"in {out}; run the same command again to resume") from exc
                    except Exception as exc:  # noqa: BLE001 - an error outside the notebook is a failed row
                        rec = _lost(key, params, chapter, out, exc)
                    record(key, params, rec)
            except BaseException:
                _end_pool(pool, futures)
                raise
            pool.shutdown(wait=True)
        else:
            for key, params in todo:
                record(key, params, _run_one(chapter, key, params, out, retry_failed))
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, before)
        if bar is not None:
            bar.close()
        if (out / "records").is_dir():
            write_results_view(out)
    return read_results(out)
