"""One grid engine: cells (a data draw each), measures (what is computed on a cell) and one row schema.

Layer 5, experiments. May import the layers below it: :mod:`nckernels.errors`, :mod:`nckernels.validation`,
:mod:`nckernels.data`, :mod:`nckernels.metrics` (kernels and models enter only through the measures).

A :class:`Cell` is one data set, two Gaussian classes drawn with the seed ``cell_seed(seed, split, d0,
draw)``; a :class:`Measure` maps the cell's data to an NC1 result. :func:`run_grid` evaluates every measure
on every cell and returns one row per (cell, measure) with the columns :data:`ROW_COLUMNS` (plus each
measure's extra columns); a measure that raises is a ``"failed"`` row with its error and one that returns
None is a ``"skipped"`` row: nothing is dropped. :func:`summarize` reduces such rows over draws. Every grid
of the book (chapters ``04_ntk_vs_nngp``, ``05_adaptive_kernel``, ``06_trained_networks``,
``07_reference_code``) is built on these.
"""
from __future__ import annotations

import dataclasses
import math
import time
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import pandas as pd
import torch

from ..data.synthetic import gaussian_classes
from ..errors import DivergenceError
from ..metrics import NC1Result, nc1_from_features, nc1_from_kernel
from ..validation import check_int

__all__ = ["ROW_COLUMNS", "STATUSES", "cell_seed", "Cell", "Measure", "describe_error", "run_grid", "summarize"]

ROW_COLUMNS = ("N", "split", "n_min", "minority", "d0", "draw", "kernel", "status", "error", "nc1", "log10_nc1",
               "relative", "trace_within", "trace_between", "nc1_pinv", "seconds")
"""The columns every grid row has (measure-specific columns such as loss, accuracy, evaluations follow)."""

STATUSES = ("ok", "failed", "skipped")
_RESULT_FIELDS = ("nc1", "trace_within", "trace_between", "nc1_pinv")


def cell_seed(*parts) -> int:
    """A deterministic 31-bit seed from the cell's identifying values (stable across processes).

    ``crc32(repr(parts))``; book chapters ``04_ntk_vs_nngp`` to ``07_reference_code`` draw every grid cell
    with ``cell_seed(seed, split, d0, draw)`` (split a tuple of ints), so a cell's data never depend on
    the rest of the grid.
    """
    return zlib.crc32(repr(parts).encode()) & 0x7FFFFFFF


@dataclass(frozen=True)
class Cell:
    """One grid cell: two (or more) Gaussian classes of sizes ``split`` in ``d0`` dimensions, draw ``draw``.

    The data are ``gaussian_classes(split, d0, means=means, std=std)`` with the generator seeded by
    ``cell_seed(seed, split, d0, draw)``, or by ``cell_seed(*seed_key)`` when ``seed_key`` is given (the
    convergence map of chapter ``05_adaptive_kernel`` uses ``(seed, N, d0)``). Book chapters ``04`` to ``07``.
    """

    split: tuple[int, ...]
    d0: int
    draw: int = 0
    seed: Any = 0
    means: tuple = (-2.0, 2.0)
    std: float = 0.5
    dtype: torch.dtype = torch.float64
    device: Any = None
    seed_key: tuple | None = None

    def __post_init__(self):
        if isinstance(self.split, (str, bytes)) or not isinstance(self.split, Iterable):
            raise ValueError(f"split must be a sequence of class sizes, got {self.split!r}")
        split = tuple(check_int(n, "split") for n in self.split)
        if len(split) < 2:
            raise ValueError(f"split must name at least two classes, got {self.split!r}")
        object.__setattr__(self, "split", split)
        object.__setattr__(self, "d0", check_int(self.d0, "d0"))
        object.__setattr__(self, "draw", check_int(self.draw, "draw", minimum=0))
        object.__setattr__(self, "means", tuple(self.means))
        if self.seed_key is not None:
            object.__setattr__(self, "seed_key", tuple(self.seed_key))

    @property
    def generator_seed(self) -> int:
        """The seed of this cell's data: ``cell_seed(seed, split, d0, draw)`` (or of ``seed_key``)."""
        if self.seed_key is not None:
            return cell_seed(*self.seed_key)
        return cell_seed(self.seed, self.split, self.d0, self.draw)

    def data(self):
        """The cell's data set (a ``ClassData``: X (N, d0), labels (N,), y (N,))."""
        gen = torch.Generator().manual_seed(self.generator_seed)
        return gaussian_classes(self.split, self.d0, means=self.means, std=self.std, generator=gen,
                                dtype=self.dtype, device=self.device)

    def columns(self) -> dict:
        """The cell's identifying columns of a grid row: N, split ("n1/n2"), n_min, minority, d0, draw."""
        N = sum(self.split)
        return {"N": N, "split": "/".join(map(str, self.split)), "n_min": min(self.split),
                "minority": min(self.split) / N, "d0": self.d0, "draw": self.draw}


@dataclass(frozen=True, eq=False)
class Measure:
    """What a grid computes on a cell; its ``name`` is the rows' ``kernel`` column.

    ``fn(data)`` returns one of: an :class:`~nckernels.metrics.NC1Result`; an (N, N) kernel tensor (its NC1
    is taken with the cell's labels); a dict with ``"result"`` (either of those) or ``"nc1"`` (and optionally
    trace_within, trace_between, nc1_pinv, seconds) plus extra columns, or with a non-empty ``"error"`` (a
    failed row that keeps its extra columns); or None (a skipped row). An exception is a failed row.

    ``columns``: constant extra columns of every row of this measure (e.g. width, noise_var).
    ``draws``: evaluate only draws ``< draws`` of each cell (None: all).
    ``batched``: ``fn(cells, datas)`` gets all draws of a cell group at once and returns one result per draw.
    ``expands``: ``fn(data)`` returns ``{name: result}``, one row per entry (named by the key); when it raises,
    one failed row named ``name``. Book chapters ``04_ntk_vs_nngp`` to ``07_reference_code``.
    """

    name: str
    fn: Callable
    columns: Mapping[str, Any] = field(default_factory=dict)
    draws: int | None = None
    batched: bool = False
    expands: bool = False

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty string, got {self.name!r}")
        if not callable(self.fn):
            raise ValueError(f"fn must be callable, got {type(self.fn).__name__}")
        check_int(self.draws, "draws", minimum=0, allow_none=True)
        if self.batched and self.expands:
            raise ValueError("batched and expands cannot both be set")


def describe_error(exc: BaseException) -> str:
    """The ``error`` cell of a failed row: "diverged at epoch k" for a DivergenceError, else "Type: message".

    Book chapters ``06_trained_networks`` and ``07_reference_code`` (failures are rows, never dropped).
    """
    if isinstance(exc, DivergenceError):
        return f"diverged at epoch {exc.epoch}" if exc.epoch is not None else f"diverged: {exc}"
    return f"{type(exc).__name__}: {exc}"


def _empty(base: dict, name: str, status: str, error: str, seconds: float) -> dict:
    return {**base, "kernel": name, "status": status, "error": error, "nc1": math.nan, "log10_nc1": math.nan,
            "relative": math.nan, "trace_within": math.nan, "trace_between": math.nan, "nc1_pinv": math.nan,
            "seconds": seconds}


def _row(base: dict, name: str, result, *, labels, data_log: float | None, seconds: float,
         between_weights: str, extra: Mapping[str, Any]) -> dict:
    """One row from a measure's result (see :class:`Measure`); never raises."""
    if result is None:
        return {**_empty(base, name, "skipped", "", seconds), **extra}
    columns: dict[str, Any] = dict(extra)
    try:
        if isinstance(result, Mapping):
            result = dict(result)
            error = result.pop("error", "") or ""
            seconds = float(result.pop("seconds", seconds))
            inner = result.pop("result", None)
            values = {k: result.pop(k) for k in _RESULT_FIELDS if k in result}
            columns.update(result)
            if error:
                return {**_empty(base, name, "failed", str(error), seconds), **columns}
            result = inner if inner is not None else values
        if isinstance(result, torch.Tensor):
            result = nc1_from_kernel(result, labels, between_weights=between_weights)
        if isinstance(result, NC1Result):
            values = {"nc1": result.nc1, "trace_within": result.trace_within,
                      "trace_between": result.trace_between, "nc1_pinv": result.nc1_pinv}
        elif isinstance(result, Mapping) and "nc1" in result:
            values = dict(result)
        else:
            raise TypeError(f"measure {name!r} returned {type(result).__name__}; expected an NC1Result, a kernel, "
                            "a dict with 'result' or 'nc1', or None")
        nc1 = float(values["nc1"])
        if not math.isfinite(nc1):
            raise FloatingPointError(f"non-finite NC1 {nc1}")
        if nc1 <= 0:
            raise FloatingPointError(f"non-positive NC1 {nc1}")
    except Exception as exc:  # noqa: BLE001 - a failure is a row, never dropped
        return {**_empty(base, name, "failed", describe_error(exc), seconds), **columns}
    log10_nc1 = math.log10(nc1)
    pinv = values.get("nc1_pinv")
    row = {**base, "kernel": name, "status": "ok", "error": "", "nc1": nc1, "log10_nc1": log10_nc1,
           "relative": log10_nc1 - data_log if data_log is not None else math.nan,
           "trace_within": float(values.get("trace_within", math.nan)),
           "trace_between": float(values.get("trace_between", math.nan)),
           "nc1_pinv": math.nan if pinv is None else float(pinv), "seconds": seconds}
    return {**row, **columns}


def _groups(cells: Sequence[Cell]) -> list[list[Cell]]:
    """Cells that differ only in their draw, in order of first appearance."""
    groups: dict[Cell, list[Cell]] = {}
    for cell in cells:
        groups.setdefault(dataclasses.replace(cell, draw=0), []).append(cell)
    return list(groups.values())


def run_grid(cells: Sequence[Cell], measures: Sequence[Measure], *, between_weights: str = "uniform",
             data_rows: bool = True, progress: bool = False, desc: str = "grid") -> pd.DataFrame:
    """Every measure on every cell, one row each in the schema :data:`ROW_COLUMNS` (+ extra columns).

    For each group of cells that differ only in their draw: the data of every draw, the data's own NC1
    (``nc1_from_features``, kernel "data", relative 0; omitted from the frame when ``data_rows`` is false but
    still the reference of ``relative``), then each measure on each draw (a batched measure on all draws at
    once). ``relative`` = log10 NC1 - log10 NC1 of the cell's data. Failed and skipped measures are rows
    (status "failed" with ``error``, "skipped"). Book chapters ``04_ntk_vs_nngp``, ``05_adaptive_kernel``,
    ``06_trained_networks`` and ``07_reference_code``.

    Args:
        cells: the :class:`Cell` s of the grid (non-empty).
        measures: the :class:`Measure` s evaluated on each cell.
        between_weights: the between-class weights of every NC1 ("uniform" or "class_size").
        progress: a tqdm bar over the cell groups.

    Returns:
        A DataFrame with one row per (cell, measure) (an expanding measure: one per returned name).
    """
    cells, measures = list(cells), list(measures)
    if not cells:
        raise ValueError("cells must not be empty")
    for cell in cells:
        if not isinstance(cell, Cell):
            raise ValueError(f"cells must hold Cell objects, got {type(cell).__name__}")
    for m in measures:
        if not isinstance(m, Measure):
            raise ValueError(f"measures must hold Measure objects, got {type(m).__name__}")
    groups = _groups(cells)
    if progress:
        from tqdm.auto import tqdm

        groups = tqdm(groups, desc=desc, unit="cell")
    rows: list[dict] = []
    for group in groups:
        datas = [cell.data() for cell in group]
        bases = [cell.columns() for cell in group]
        data_logs: list[float | None] = []
        for base, data in zip(bases, datas):
            t0 = time.perf_counter()
            try:
                res = nc1_from_features(data.X, data.labels, between_weights=between_weights)
            except Exception as exc:  # noqa: BLE001
                res = exc
            seconds = time.perf_counter() - t0
            if isinstance(res, Exception):
                row = _empty(base, "data", "failed", describe_error(res), seconds)
            else:
                row = _row(base, "data", res, labels=data.labels, data_log=None, seconds=seconds,
                           between_weights=between_weights, extra={})
            ok = row["status"] == "ok"
            if ok:
                row["relative"] = 0.0
            data_logs.append(row["log10_nc1"] if ok else None)
            if data_rows:
                rows.append(row)
        for m in measures:
            idx = [i for i, cell in enumerate(group) if m.draws is None or cell.draw < m.draws]
            if not idx:
                continue
            if m.batched:
                t0 = time.perf_counter()
                try:
                    results = list(m.fn([group[i] for i in idx], [datas[i] for i in idx]))
                    if len(results) != len(idx):
                        raise ValueError(f"batched measure {m.name!r} returned {len(results)} results for {len(idx)} draws")
                except Exception as exc:  # noqa: BLE001 - every draw of the group fails with it
                    seconds = (time.perf_counter() - t0) / len(idx)
                    rows.extend({**_empty(bases[i], m.name, "failed", describe_error(exc), seconds), **m.columns}
                                for i in idx)
                    continue
                seconds = (time.perf_counter() - t0) / len(idx)
                for i, res in zip(idx, results):
                    rows.append(_row(bases[i], m.name, res, labels=datas[i].labels, data_log=data_logs[i],
                                     seconds=seconds, between_weights=between_weights, extra=m.columns))
                continue
            for i in idx:
                t0 = time.perf_counter()
                try:
                    res = m.fn(datas[i])
                except Exception as exc:  # noqa: BLE001 - recorded as a failed row, never dropped
                    rows.append({**_empty(bases[i], m.name, "failed", describe_error(exc),
                                          time.perf_counter() - t0), **m.columns})
                    continue
                seconds = time.perf_counter() - t0
                if m.expands and res is not None:
                    items = list(dict(res).items())
                    for name, r in items:
                        rows.append(_row(bases[i], name, r, labels=datas[i].labels, data_log=data_logs[i],
                                         seconds=seconds / max(len(items), 1), between_weights=between_weights,
                                         extra=m.columns))
                else:
                    rows.append(_row(bases[i], m.name, res, labels=datas[i].labels, data_log=data_logs[i],
                                     seconds=seconds, between_weights=between_weights, extra=m.columns))
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=list(ROW_COLUMNS))
    return frame[list(ROW_COLUMNS) + [c for c in frame.columns if c not in ROW_COLUMNS]]


def summarize(frame: pd.DataFrame, by: Sequence[str] = ("kernel", "N", "d0"), *,
              values: Sequence[str] = ("log10_nc1", "relative"), index: bool = False) -> pd.DataFrame:
    """Mean, std and count over draws of each value column (ok rows only), plus failed and skipped counts.

    Columns ``{value}_mean``, ``{value}_std``, ``{value}_count`` for each of ``values`` present in ``frame``,
    ``failed`` and ``skipped``; one row per ``by`` group that has any row (a group with no successful row
    has NaN statistics and count 0), sorted by ``by``. ``index=True`` keeps ``by`` as the index. Serves the
    grids of book chapters ``04_ntk_vs_nngp``, ``05_adaptive_kernel`` and ``06_trained_networks`` and the
    sweeps' results (:func:`nckernels.experiments.results.read_cell_results` returns this schema).
    """
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"frame must be a DataFrame, got {type(frame).__name__}")
    by = [by] if isinstance(by, str) else list(by)
    missing = [c for c in [*by, "status"] if c not in frame.columns]
    if missing:
        raise ValueError(f"by: frame has no column(s) {missing}")
    values = [v for v in ([values] if isinstance(values, str) else values) if v in frame.columns]
    ok = frame[frame["status"] == "ok"]
    stats = ok.groupby(by)[values].agg(["mean", "std", "count"])
    stats.columns = [f"{a}_{b}" for a, b in stats.columns]
    counts = (frame.assign(failed=frame["status"] == "failed", skipped=frame["status"] == "skipped")
              .groupby(by)[["failed", "skipped"]].sum())
    out = stats.join(counts, how="outer").sort_index()
    for v in values:
        out[f"{v}_count"] = out[f"{v}_count"].fillna(0).astype(int)
    out[["failed", "skipped"]] = out[["failed", "skipped"]].fillna(0).astype(int)
    return out if index else out.reset_index()
