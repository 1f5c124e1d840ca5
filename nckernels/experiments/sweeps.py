r"""Parameter sweeps of a chapter with papermill: one executed notebook and one results row per grid point.

A grid file (YAML) names the runs::

    scale: paper            # optional: start from book/scales/<chapter>.yml at this scale
    parameters:             # optional: fixed overrides for every run
      draws: 10
    grid:                   # the cartesian product of these lists
      N_values: [[128], [256]]
      d0_values: [[1], [128]]
    points:                 # optional: extra explicit points (each a dict of overrides)
      - {N_values: [2048]}

Each run is named by a hash of (chapter name, its full parameter dict): ``DIR/runs/<run>.ipynb`` is the
executed notebook and ``DIR/results.csv`` gets one row per run with its parameters, ``status``
("ok" or "failed"), ``error``, ``seconds`` and every scalar the notebook glued (``myst_nb.glue``).
Finished runs (ok or failed) are skipped when the sweep is run again, so an interrupted sweep resumes;
``retry_failed`` re-runs the failed ones (their old rows stay; :func:`read_results` keeps the last row
per run). ``results.csv`` is rewritten atomically (temporary file + ``os.replace``) after every run, and
the executed notebook is written atomically by :func:`nckernels.scales.run_chapter`, so neither is ever
left half written. Used by ``python -m nckernels sweep`` and ``make paper`` (book chapter
``07_reference_code`` shows why failures must be rows).
"""
from __future__ import annotations

import ast
import datetime as _dt
import hashlib
import itertools
import json
import math
import os
import pathlib
import re
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import pandas as pd
import yaml

from .scales import SCALES, scale_parameters

__all__ = ["SweepGrid", "load_grid", "grid_points", "run_key", "harvest_glue", "execute_run", "run_sweep",
           "read_results", "RESULT_COLUMNS"]

RESULT_COLUMNS = ("run", "status", "error", "seconds", "finished", "notebook")
_GLUE_PREFIX = "application/papermill.record/"


@dataclass(frozen=True)
class SweepGrid:
    """A sweep: base ``scale`` (or None for book scale), fixed ``parameters``, a cartesian ``grid``, extra ``points``."""

    grid: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    parameters: Mapping[str, Any] = field(default_factory=dict)
    points: Sequence[Mapping[str, Any]] = ()
    scale: str | None = None


def load_grid(source) -> SweepGrid:
    """Read a grid from a YAML file path or a dict (keys: scale, parameters, grid, points)."""
    if isinstance(source, (str, os.PathLike)):
        path = pathlib.Path(source)
        if not path.is_file():
            raise ValueError(f"grid file {path} does not exist")
        table = yaml.safe_load(path.read_text()) or {}
    elif isinstance(source, Mapping):
        table = dict(source)
    else:
        raise ValueError(f"grid must be a YAML path or a mapping, got {type(source).__name__}")
    if not isinstance(table, Mapping):
        raise ValueError("grid: the YAML document must be a mapping")
    unknown = set(table) - {"scale", "parameters", "grid", "points", "description"}
    if unknown:
        raise ValueError(f"grid: unknown key(s) {sorted(unknown)}; expected scale, parameters, grid, points")
    scale = table.get("scale")
    if scale is not None and scale not in SCALES:
        raise ValueError(f"grid: scale must be one of {SCALES}, got {scale!r}")
    grid = dict(table.get("grid") or {})
    for name, values in grid.items():
        if not isinstance(values, (list, tuple)) or not values:
            raise ValueError(f"grid: {name!r} must be a non-empty list of values, got {values!r}")
    points = list(table.get("points") or [])
    if not all(isinstance(p, Mapping) for p in points):
        raise ValueError("grid: points must be a list of mappings")
    params = table.get("parameters") or {}
    if not isinstance(params, Mapping):
        raise ValueError("grid: parameters must be a mapping")
    if not grid and not points:
        raise ValueError("grid: give at least one of 'grid' (lists to combine) or 'points'")
    return SweepGrid(grid, dict(params), points, scale)


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


def _scalar(text: str):
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
            value = _scalar(text if isinstance(text, str) else "".join(text))
            if value is not None:
                found[meta["name"]] = value
    return found


def _cell_value(value):
    """Parameters as CSV cells: scalars as they are, lists and dicts as JSON."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return _canonical(value)


def execute_run(chapter, parameters: Mapping[str, Any], notebook) -> dict:
    """Execute ``chapter`` with ``parameters`` into ``notebook``; return its results row (never raises on a
    failing notebook: the row has status "failed" and the error)."""
    import nbformat

    from .scales import run_chapter

    chapter, notebook = pathlib.Path(chapter), pathlib.Path(notebook)
    row = {"status": "ok", "error": ""}
    start = time.perf_counter()
    try:
        run_chapter(chapter, notebook, dict(parameters), progress=False)
        row.update(harvest_glue(nbformat.read(notebook, as_version=4)))
    except Exception as exc:  # noqa: BLE001 - a failed run is a row
        row["status"] = "failed"
        row["error"] = _describe(exc)
    row["seconds"] = round(time.perf_counter() - start, 3)
    row["finished"] = _dt.datetime.now().isoformat(timespec="seconds")
    return row


def _describe(exc: BaseException) -> str:
    ename, evalue = getattr(exc, "ename", None), getattr(exc, "evalue", None)
    if ename:
        return f"{ename}: {evalue}"[:2000]
    last = traceback.format_exception_only(type(exc), exc)[-1].strip()
    return last[:2000]


def read_results(out) -> pd.DataFrame:
    """``DIR/results.csv`` with one row per run (the last attempt); empty frame when there is none."""
    path = pathlib.Path(out) / "results.csv"
    if not path.is_file():
        return pd.DataFrame(columns=list(RESULT_COLUMNS))
    frame = pd.read_csv(path)
    return frame.drop_duplicates("run", keep="last").reset_index(drop=True)


def _write_csv(rows: list[dict], path: pathlib.Path, param_names: Sequence[str]):
    frame = pd.DataFrame(rows)
    first = [c for c in RESULT_COLUMNS if c in frame] + [c for c in param_names if c in frame and c not in RESULT_COLUMNS]
    frame = frame[first + [c for c in frame.columns if c not in first]]
    tmp = path.with_name(f".{path.name}.tmp")
    frame.to_csv(tmp, index=False)
    os.replace(tmp, path)


def _worker_init(threads: int):
    # the chapter's kernel inherits this environment: split the cores between parallel runs
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)


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
        out: output directory (``results.csv`` and ``runs/``).
        workers: parallel processes on this machine (each run's kernel gets cores // workers threads).
        scheduler: address of a running Dask distributed scheduler; runs are submitted there instead
            (``chapter`` and ``out`` must be visible to its workers at the same paths).
        retry_failed: re-run points whose last row is "failed".

    Returns:
        :func:`read_results` of ``out`` after the sweep.
    """
    chapter = pathlib.Path(chapter).resolve()
    if not chapter.is_file():
        raise ValueError(f"chapter {chapter} does not exist")
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    grid = grid if isinstance(grid, SweepGrid) else load_grid(grid)
    out = pathlib.Path(out).resolve()
    (out / "runs").mkdir(parents=True, exist_ok=True)
    csv = out / "results.csv"
    rows = pd.read_csv(csv).to_dict("records") if csv.is_file() else []
    last = {}
    for r in rows:
        last[r["run"]] = r.get("status")
    points = grid_points(grid, chapter)
    param_names = list(dict.fromkeys(n for p in points for n in p))
    todo, seen = [], set()
    for params in points:
        key = run_key(chapter, params)
        if key in seen:
            continue
        seen.add(key)
        status = last.get(key)
        if status == "ok" or (status is not None and not retry_failed):
            continue
        todo.append((key, params))
    done, failed = len(points) - len(todo), 0
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc=f"{chapter.stem} ({done} done before)", unit="run")

    def record(key, params, row):
        nonlocal failed
        full = {"run": key, **row, "notebook": f"runs/{key}.ipynb"}
        full.update({k: _cell_value(v) for k, v in params.items()})
        if row["status"] != "ok":
            failed += 1
        rows.append(full)
        _write_csv(rows, csv, param_names)
        if bar is not None:
            bar.update()
            bar.set_postfix(failed=failed)

    try:
        if scheduler:
            from distributed import Client, as_completed

            with Client(scheduler) as client:
                futures = {client.submit(execute_run, str(chapter), params, str(out / "runs" / f"{key}.ipynb"),
                                         key=f"nckernels-run-{key}-{time.time_ns()}", pure=False):
                           (key, params) for key, params in todo}
                for fut in as_completed(futures):
                    key, params = futures[fut]
                    try:
                        row = fut.result()
                    except Exception as exc:  # noqa: BLE001 - a lost worker is a failed row
                        row = {"status": "failed", "error": _describe(exc), "seconds": math.nan,
                               "finished": _dt.datetime.now().isoformat(timespec="seconds")}
                    record(key, params, row)
        elif workers > 1 and len(todo) > 1:
            import concurrent.futures as cf
            import multiprocessing as mp

            threads = max(1, (os.cpu_count() or 1) // workers)
            with cf.ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_worker_init,
                                        initargs=(threads,)) as pool:
                futures = {pool.submit(execute_run, chapter, params, out / "runs" / f"{key}.ipynb"):
                           (key, params) for key, params in todo}
                for fut in cf.as_completed(futures):
                    key, params = futures[fut]
                    try:
                        row = fut.result()
                    except Exception as exc:  # noqa: BLE001
                        row = {"status": "failed", "error": _describe(exc), "seconds": math.nan,
                               "finished": _dt.datetime.now().isoformat(timespec="seconds")}
                    record(key, params, row)
        else:
            for key, params in todo:
                record(key, params, execute_run(chapter, params, out / "runs" / f"{key}.ipynb"))
    finally:
        if bar is not None:
            bar.close()
    return read_results(out)
