"""Measured cost: power-law fits of recorded timings, and the execution time of every chapter of a build.

Layer 5, experiments; imports nothing from the package. Used by the appendix ``appendix_scaling`` (book
chapter ``appendix_scaling``), which reads the benchmarks' recorded output (``book/data/benchmarks/*.json``,
written by ``benchmarks/bench_scaling.py`` and ``benchmarks/bench_eos.py``) and the book's execution cache.
"""
from __future__ import annotations

import json
import math
import pathlib

import numpy as np
import pandas as pd

__all__ = ["fit_power_law", "load_timings", "chapter_times"]


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
