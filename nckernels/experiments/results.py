"""Reading a sweep's results back into the grids' summary schema, and the per-cell scalars a run glues.

Layer 5, experiments. May import the layers below it and :mod:`nckernels.experiments.cells` and
:mod:`nckernels.experiments.sweeps` (only :func:`~nckernels.experiments.sweeps.read_results`).

A paper-scale sweep of a grid chapter runs the chapter once per grid cell; each run glues the summary of
its one cell as scalars ``{prefix}{slug}_{log|rel}_{mean|std|count}`` and ``{prefix}{slug}_failed``
(:func:`cell_scalars`). :func:`read_cell_results` turns ``DIR/results.csv`` back into the rows of
:func:`~nckernels.experiments.cells.summarize`, with a provenance line. Book chapter ``06_trained_networks``.
"""
from __future__ import annotations

import json
import math
import pathlib
from dataclasses import dataclass
from typing import Mapping

import pandas as pd

from .sweeps import read_results

__all__ = ["TRAINED_GRID_SLUGS", "SweepSummary", "cell_scalars", "read_cell_results"]

TRAINED_GRID_SLUGS = {"data": "data", "NNGP": "nngp", "NTK": "ntk", "adaptive": "adaptive", "trained net": "net"}
"""Kernel name -> glue-key slug of the trained-network grid (book chapter ``06_trained_networks``)."""

_VALUES = (("log10_nc1", "log"), ("relative", "rel"))
_STATS = ("mean", "std", "count")


@dataclass(frozen=True)
class SweepSummary:
    """A sweep read back: ``summary`` in :func:`~nckernels.experiments.cells.summarize`'s schema, run counts and a
    provenance line (``source``, glued as ``tn_source_*`` by book chapter ``06_trained_networks``)."""

    summary: pd.DataFrame
    runs: int
    failed_runs: int
    draws: int | None
    epochs: int | None
    source: str


def cell_scalars(summary: pd.DataFrame, *, group: str, slugs: Mapping[str, str] = TRAINED_GRID_SLUGS,
                 prefix: str = "tn_cell_") -> dict:
    """The glued scalars of a grid's last cell (last ``group`` value of the sorted summary, largest d0).

    ``{prefix}{slug}_{log|rel}_{mean|std}`` (float, NaN when the kernel has no row there),
    ``..._count`` and ``{prefix}{slug}_failed`` (int). A paper-scale sweep run computes exactly one cell, so
    these are its results (:func:`read_cell_results` reads them back). Book chapter ``06_trained_networks``.
    """
    if group not in summary.columns:
        raise ValueError(f"group: summary has no column {group!r}")
    cell = summary[(summary[group] == summary[group].iloc[-1]) & (summary["d0"] == summary["d0"].max())]
    out = {}
    for kind, slug in slugs.items():
        r = cell[cell["kernel"] == kind]
        for col, short in _VALUES:
            for s in _STATS:
                value = float(r[f"{col}_{s}"].iloc[0]) if len(r) and f"{col}_{s}" in r else math.nan
                out[f"{prefix}{slug}_{short}_{s}"] = value if s != "count" else (0 if math.isnan(value) else int(value))
        out[f"{prefix}{slug}_failed"] = int(r["failed"].iloc[0]) if len(r) else 0
    return out


def _first(value):
    """The first element of a JSON list cell (a sweep's one-element grid parameter), else the value."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    return value[0] if isinstance(value, list) and value else value


def read_cell_results(out, *, group: str, group_param: str, d0_param: str = "d0_values",
                      slugs: Mapping[str, str] = TRAINED_GRID_SLUGS, prefix: str = "tn_cell_",
                      draws: int | None = None, epochs: int | None = None, label: str | None = None
                      ) -> SweepSummary | None:
    """A grid sweep's ``out/results.csv`` as :func:`~nckernels.experiments.cells.summarize` rows (kernel, ``group``, d0, stats, failed).

    One row per (successful run, kernel): ``group`` is the first element of the run's ``group_param``
    (a split list is written "n1/n2"), d0 the first of ``d0_param``; the statistics are the run's glued
    :func:`cell_scalars`. ``draws``/``epochs``: values for the provenance when the runs' rows lack them.
    Returns None when there is no results.csv. Book chapter ``06_trained_networks``.
    """
    out = pathlib.Path(out)
    if not (out / "results.csv").is_file():
        return None
    runs = read_results(out)
    rows = []
    for _, run in runs[runs["status"] == "ok"].iterrows():
        key = _first(run[group_param])
        if isinstance(key, list):
            key = "/".join(map(str, key))
        row = {"kernel": None, group: key, "d0": _first(run[d0_param])}
        for kind, slug in slugs.items():
            stats = {f"{col}_{s}": run.get(f"{prefix}{slug}_{short}_{s}", math.nan)
                     for col, short in _VALUES for s in _STATS}
            rows.append({**row, "kernel": kind, **stats, "failed": run.get(f"{prefix}{slug}_failed", 0)})
    columns = ["kernel", group, "d0"] + [f"{c}_{s}" for c, _ in _VALUES for s in _STATS] + ["failed"]
    summary = pd.DataFrame(rows, columns=columns)
    failed = int((runs["status"] != "ok").sum())
    first = runs.iloc[0] if len(runs) else pd.Series(dtype=object)
    n_draws = int(first.get("draws", draws)) if first.get("draws", draws) is not None else None
    n_epochs = int(first.get("epochs", epochs)) if first.get("epochs", epochs) is not None else None
    label = label or f"{out.parent.name}/{out.name}"
    source = f"read from {label}: {len(runs)} runs of {n_draws} draws and {n_epochs} epochs each, {failed} failed"
    return SweepSummary(summary, len(runs), failed, n_draws, n_epochs, source)
