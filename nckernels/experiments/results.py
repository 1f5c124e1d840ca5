"""Reading a sweep's results back into the grids' summary schema, and the per-cell scalars a run glues.

Layer 5, experiments. May import the layers below it and :mod:`nckernels.experiments.cells` and
:mod:`nckernels.experiments.sweeps` (only :func:`~nckernels.experiments.sweeps.read_results`).

A paper-scale sweep of a grid chapter runs the chapter once per grid cell; each run glues the summary of
its one cell as scalars ``{prefix}{slug}_{log|rel}_{mean|std|count}`` and ``{prefix}{slug}_failed``
(:func:`cell_scalars`). :func:`read_cell_results` turns ``DIR/results.csv`` back into the rows of
:func:`~nckernels.experiments.cells.summarize`, with a provenance line. From a summary (computed, or read from
the paper-scale result sets), :func:`closest_kernel_verdict` names the kernel closest to the trained network in
each cell; :func:`factor_sweep_summary` reduces a one-factor sweep to where the network leaves the NNGP most.
Book chapter ``06_trained_networks``.
"""
from __future__ import annotations

import json
import math
import pathlib
from dataclasses import dataclass
from typing import Mapping

import pandas as pd

from .sweeps import read_results

__all__ = ["TRAINED_GRID_SLUGS", "SweepSummary", "cell_scalars", "read_cell_results", "KernelVerdict",
           "closest_kernel_verdict", "factor_sweep_summary"]

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


@dataclass(frozen=True)
class KernelVerdict:
    """Which kernel's NC1 is closest to the trained network's, cell by cell (:func:`closest_kernel_verdict`).

    ``means``: mean log10 NC1 per cell (index (group, d0)) and kernel (columns: the compared kernels, then
    the reference). ``cells``: per cell the difference kernel - reference in dex for each kernel (NaN where the
    kernel has no value), ``closest`` (the kernel of smallest absolute difference among those present) and
    ``complete`` (every compared kernel present). ``counts``: cells won per kernel (every kernel listed, zeros
    included); ``mean_abs``: mean absolute difference in dex per kernel over its cells; ``missing``: cells
    per kernel without a value. Book chapter ``06_trained_networks``.
    """

    means: pd.DataFrame
    cells: pd.DataFrame
    counts: pd.Series
    mean_abs: pd.Series
    missing: pd.Series
    reference: str

    @property
    def n_cells(self) -> int:
        """The number of cells with a reference value."""
        return len(self.cells)

    @property
    def winner(self) -> str:
        """The kernel closest in the most cells (ties: the smaller mean absolute difference)."""
        order = sorted(self.counts.index, key=lambda k: (-int(self.counts[k]), float(self.mean_abs.get(k, math.inf))))
        return order[0]


def closest_kernel_verdict(summary: pd.DataFrame, *, group: str, kernels=("NNGP", "NTK", "adaptive"),
                           reference: str = "trained net", value: str = "log10_nc1") -> KernelVerdict:
    """Per (``group``, d0) cell: |mean log10 NC1(kernel) - mean log10 NC1(reference)| and the closest kernel.

    ``summary``: rows of :func:`~nckernels.experiments.cells.summarize` or :func:`read_cell_results` (columns
    kernel, ``group``, d0, ``{value}_mean``). Cells without a reference value are left out; a kernel without a
    value in a cell is missing there (counted in ``missing``, never a winner). Book chapter
    ``06_trained_networks`` (the verdict of section "Which kernel the network follows").
    """
    if not isinstance(summary, pd.DataFrame):
        raise ValueError(f"summary must be a DataFrame, got {type(summary).__name__}")
    col = f"{value}_mean"
    missing_cols = [c for c in ("kernel", group, "d0", col) if c not in summary.columns]
    if missing_cols:
        raise ValueError(f"summary has no column(s) {missing_cols} (group={group!r}, value={value!r})")
    kernels = [kernels] if isinstance(kernels, str) else list(kernels)
    if not kernels or reference in kernels:
        raise ValueError(f"kernels must name at least one kernel other than the reference {reference!r}, got {kernels!r}")
    means = summary.pivot_table(index=[group, "d0"], columns="kernel", values=col, aggfunc="mean", dropna=False)
    means = means.reindex(columns=[*kernels, reference])
    means = means[means[reference].notna()]
    diffs = means[kernels].sub(means[reference], axis=0)
    cells = diffs.copy()
    cells["closest"] = pd.Series([row.dropna().idxmin() if row.notna().any() else None
                                  for _, row in diffs.abs().iterrows()], index=diffs.index, dtype=object)
    cells["complete"] = diffs.notna().all(axis=1)
    counts = cells["closest"].value_counts().reindex(kernels, fill_value=0).astype(int)
    mean_abs = diffs.abs().mean().reindex(kernels)
    missing = diffs.isna().sum().reindex(kernels).astype(int)
    return KernelVerdict(means=means, cells=cells, counts=counts, mean_abs=mean_abs, missing=missing,
                         reference=reference)


def factor_sweep_summary(frame: pd.DataFrame, *, reference: str = "NNGP", net: str = "trained net",
                         follower: str = "adaptive") -> pd.DataFrame:
    """Per factor of a :func:`~nckernels.experiments.grids.network_factor_sweep`: where the net leaves ``reference`` most.

    One row per factor (in the frame's order), columns: ``value`` (the factor's value at which the mean log10
    NC1 of the trained nets is farthest from the reference's), ``net_shift`` (net - reference there, dex),
    ``follower_shift`` (``follower`` - reference at the same value, dex; NaN without one), ``gap``
    (net - follower), ``same_direction`` (the follower moves the way the net does), ``diverged`` (the
    smallest value at which every net failed; NaN if none) and ``values`` (how many values were run).
    Book chapter ``06_trained_networks`` (section "Past the paper").
    """
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"frame must be a DataFrame, got {type(frame).__name__}")
    missing = [c for c in ("factor", "value", "kernel", "status", "log10_nc1") if c not in frame.columns]
    if missing:
        raise ValueError(f"frame has no column(s) {missing}: pass the rows of network_factor_sweep")
    rows = []
    for factor in dict.fromkeys(frame["factor"]):
        sub = frame[frame["factor"] == factor]
        ok = sub[sub["status"] == "ok"]
        means = ok.pivot_table(index="value", columns="kernel", values="log10_nc1", aggfunc="mean")
        nets = sub[sub["kernel"] == net]
        failed = nets.groupby("value")["status"].apply(lambda s: bool((s != "ok").all()))
        diverged = float(min(failed.index[failed.to_numpy()])) if failed.any() else math.nan
        row = {"factor": factor, "value": math.nan, "net_shift": math.nan, "follower_shift": math.nan,
               "gap": math.nan, "same_direction": False, "diverged": diverged, "values": int(sub["value"].nunique())}
        if net in means and reference in means:
            shift = (means[net] - means[reference]).dropna()
            if len(shift):
                at = shift.abs().idxmax()
                row.update(value=float(at), net_shift=float(shift[at]))
                if follower in means and not math.isnan(means.loc[at, follower]):
                    fshift = float(means.loc[at, follower] - means.loc[at, reference])
                    row.update(follower_shift=fshift, gap=row["net_shift"] - fshift,
                               same_direction=bool(fshift * row["net_shift"] > 0))
        rows.append(row)
    return pd.DataFrame(rows).set_index("factor")
