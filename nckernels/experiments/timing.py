"""Measured cost: power-law fits of recorded timings, and the execution time of every chapter of a build.

Layer 5, experiments; imports nothing from the package. Used by the appendix ``appendix_scaling`` (book
chapter ``appendix_scaling``), which reads the benchmarks' recorded output (``book/data/benchmarks/*.json``,
written by ``benchmarks/bench_scaling.py`` and ``benchmarks/bench_eos.py``), the book's execution cache and the
provenance of the committed paper-scale result sets (``book/results/*.provenance.json``, written by ``make paper``).
"""
from __future__ import annotations

import json
import math
import pathlib

import numpy as np
import pandas as pd

__all__ = ["fit_power_law", "value_span", "load_timings", "chapter_times", "paper_times", "wall_time_floor", "paper_work"]


def fit_power_law(sizes, seconds) -> tuple[float, float]:
    """(exponent p, prefactor c) of the least-squares fit seconds = c * size^p on log-log axes.

    Chapter ``appendix_scaling``. Needs at least two distinct positive sizes and positive times.
    """
    x, y = np.asarray(sizes, dtype=float), np.asarray(seconds, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"sizes and seconds must be 1-D of one length, got shapes {x.shape} and {y.shape}")
    if len(np.unique(x)) < 2:
        raise ValueError("sizes must hold at least two distinct values to fit a power law")
    if not (np.all(np.isfinite(x)) and np.all(x > 0) and np.all(np.isfinite(y)) and np.all(y > 0)):
        raise ValueError("sizes and seconds must be finite and positive")
    p, logc = np.polyfit(np.log(x), np.log(y), 1)
    return float(p), float(math.exp(logc))


def value_span(values, fmt: str) -> str:
    """One recorded value formatted with ``fmt``, or "lo to hi" where the values differ (e.g. timings over draws).

    Chapter ``appendix_scaling``.
    """
    x = pd.Series(values)
    if x.empty:
        raise ValueError("values must hold at least one value")
    lo, hi = x.min(), x.max()
    return format(lo, fmt) if lo == hi else f"{lo:{fmt}} to {hi:{fmt}}"


def load_timings(path) -> tuple[pd.DataFrame, dict]:
    """(rows, machine) of a benchmark's recorded JSON: ``{"machine": {...}, "rows": [{...}, ...]}``.

    Chapter ``appendix_scaling``.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise ValueError(f"no recorded timings at {path}: run the benchmark that writes it (see benchmarks/)")
    table = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(table, dict) or "rows" not in table:
        raise ValueError(f"{path}: expected a JSON object with 'rows' (and 'machine')")
    return pd.DataFrame(table["rows"]), dict(table.get("machine") or {})


def chapter_times(cache_dir) -> pd.DataFrame:
    """Execution seconds of each chapter in a book build's jupyter-cache (the latest record per chapter).

    Columns: chapter (file stem), seconds, executed (timestamp). Empty when there is no cache yet.
    Chapter ``appendix_scaling``.
    """
    cache_dir = pathlib.Path(cache_dir)
    columns = ["chapter", "seconds", "executed"]
    if not cache_dir.is_dir():
        return pd.DataFrame(columns=columns)
    from jupyter_cache import get_cache

    rows = [{"chapter": pathlib.Path(r.uri).stem, "seconds": float(r.data.get("execution_seconds", math.nan)),
             "executed": r.created} for r in get_cache(str(cache_dir)).list_cache_records()]
    if not rows:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(rows).sort_values("executed").drop_duplicates("chapter", keep="last")
    return frame.sort_values("chapter").reset_index(drop=True)[columns]


def paper_times(results_dir) -> tuple[pd.DataFrame, float, int]:
    """What ``make paper`` cost, from the provenance files of the committed result sets in ``results_dir``.

    Returns (one row per set: set, runs, failed, run_seconds (the runs' wall times added up),
    longest_run_seconds, workers, threads_per_run, device, finished (date of its last run)), the wall time of
    the ``make paper`` sessions that produced them (each session counted once, also when it ran several sets),
    and the number of those sessions. Empty frame, 0.0 and 0 when no set is committed. Chapter ``appendix_scaling``.
    """
    results_dir = pathlib.Path(results_dir)
    columns = ["set", "runs", "failed", "run_seconds", "longest_run_seconds", "workers", "threads_per_run", "device",
               "finished"]
    rows, sessions = [], {}
    for path in sorted(results_dir.glob("*.provenance.json")) if results_dir.is_dir() else []:
        prov = json.loads(path.read_text(encoding="utf-8"))
        runs = [float(r["seconds"]) for r in prov.get("runs") or [] if isinstance(r.get("seconds"), (int, float))]
        rows.append({"set": prov.get("name", path.name.split(".")[0]), "runs": int(prov.get("n_runs", 0)),
                     "failed": int(prov.get("failed_runs", 0)), "run_seconds": float(prov.get("run_seconds") or 0.0),
                     "longest_run_seconds": max(runs, default=math.nan),
                     "workers": prov.get("workers"), "threads_per_run": prov.get("threads_per_run"),
                     "device": prov.get("device"), "finished": str(prov.get("last_finished", ""))[:10]})
        for session in prov.get("sessions") or []:
            sessions[session.get("started", id(session))] = float(session.get("seconds") or 0.0)
    return pd.DataFrame(rows, columns=columns), float(sum(sessions.values())), len(sessions)


def wall_time_floor(sets: pd.DataFrame, workers: int) -> float:
    """The least wall time ``workers`` runs at a time can take for the runs of ``sets`` (a
    :func:`paper_times` frame), at the runs' recorded times: the longest run, or the summed run time shared
    evenly, whichever is more. Chapter ``appendix_scaling``.
    """
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    if sets.empty:
        return 0.0
    return float(max(sets["run_seconds"].sum() / workers, sets["longest_run_seconds"].max()))


def paper_work(results_dir, sets: pd.DataFrame) -> pd.DataFrame:
    """The run time of each committed set split by kind of work, from the seconds of its rows
    (``RESULTS/NAME.csv``) and its run time (``sets``, a :func:`paper_times` frame).

    One row per set: set, nets_seconds (rows of kernel "trained net"), eos_seconds (rows of an adaptive kernel,
    failed solves included), other_seconds (the rest of the run time: kernels, data, notebook start-up, figures),
    eos_solves, eos_reused (adaptive rows read from the EoS solve store, column ``reused``; NaN where the rows have
    no such column). A set whose rows have no ``kernel`` column counts as other. Chapter ``appendix_scaling``.
    """
    results_dir = pathlib.Path(results_dir)
    rows = []
    for s in sets.itertuples():
        path = results_dir / f"{s.set}.csv"
        frame = pd.read_csv(path) if path.is_file() else pd.DataFrame()
        nets = eos = 0.0
        solves, reused = 0, math.nan  # NaN: the rows do not record reads from the store
        if {"kernel", "seconds"} <= set(frame.columns):
            kind = frame["kernel"].astype(str)
            seconds = pd.to_numeric(frame["seconds"], errors="coerce").fillna(0.0)
            nets = float(seconds[kind == "trained net"].sum())
            is_eos = kind.str.startswith("adaptive") & (frame.get("status", "ok") != "skipped")
            eos = float(seconds[is_eos].sum())
            solves = int(is_eos.sum())
            if "reused" in frame.columns:
                reused = int(frame.loc[is_eos, "reused"].astype(str).str.lower().eq("true").sum())
        if solves == 0:
            reused = 0
        rows.append({"set": s.set, "nets_seconds": nets, "eos_seconds": eos,
                     "other_seconds": max(0.0, float(s.run_seconds) - nets - eos), "eos_solves": solves,
                     "eos_reused": reused})
    return pd.DataFrame(rows, columns=["set", "nets_seconds", "eos_seconds", "other_seconds", "eos_solves", "eos_reused"])
