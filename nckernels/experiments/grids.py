"""Kernel NC1 over grids of data sets (sample sizes or class splits x input dimensions x draws).

Every grid cell is a row; a kernel that fails in a cell is recorded as a row with ``status="failed"``
and its error, never dropped. Used by book chapter ``04_ntk_vs_nngp``.
"""
from __future__ import annotations

import math
import zlib
from typing import Callable, Mapping, Sequence

import pandas as pd
import torch

from ..metrics import NC1Result, nc1_from_block_sums, nc1_from_features, nc1_from_kernel
from ..data.synthetic import gaussian_classes
from ..kernels.reference import erf_derivative_as_coded_from_preactivation
from ..kernels.two_layer import _family_from_preactivation, _scales
from ..validation import check_grid, check_labels, check_matrix, check_nonnegative

__all__ = ["two_layer_family_nc1", "cell_seed", "kernel_nc1_grid", "summarize_grid"]


def two_layer_family_nc1(
    X,
    labels,
    *,
    activations=("erf", "relu"),
    sigma_w: float = 1.0,
    sigma_b: float = 0.0,
    sigma_a: float = 1.0,
    include_as_coded: bool = True,
    between_weights: str = "uniform",
    chunk: int = 256,
) -> dict[str, NC1Result]:
    """NC1 of the NNGP and NTK of each activation (and the reference's erf NTK) without forming N x N kernels.

    Rows of K1 are computed ``chunk`` at a time and every kernel of the family is reduced at once to
    its diagonal and per-class row sums (the inputs of :func:`collapse.nc1_from_block_sums`), so the
    working set stays in cache and memory is O(chunk N). Coincident points get c = v exactly, as in the
    symmetric path of :func:`two_layer.nngp`; results equal ``nc1_from_kernel(ntk(X), labels)`` etc.
    to rounding.
    """
    X = check_matrix(X, "X")
    if not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk must be a positive integer, got {chunk!r}")
    sigma_w, sigma_b = _scales(sigma_w, sigma_b)
    sigma_a = check_nonnegative(sigma_a, "sigma_a")
    N, d0 = X.shape
    index, sizes = check_labels(labels, N, device=X.device)
    C = sizes.numel()
    Y = torch.nn.functional.one_hot(index, C).to(X.dtype)  # (N, C)
    v = sigma_b**2 + (sigma_w**2 / d0) * (X * X).sum(1)  # (N,) K1(x, x)
    coded_scale = torch.dot(1 + 2 * v, 1 + 2 * v) if include_as_coded else None
    row_class_sums: dict[str, torch.Tensor] = {}
    traces: dict[str, torch.Tensor] = {}
    for start in range(0, N, chunk):
        stop = min(start + chunk, N)
        local = torch.arange(stop - start, device=X.device)
        K1 = sigma_b**2 + (sigma_w**2 / d0) * (X[start:stop] @ X.T)  # (B, d0) @ (d0, N) -> (B, N)
        K1[local, start + local] = v[start:stop]
        fam = _family_from_preactivation(K1, v[start:stop, None], v[None, :], activations, sigma_a)
        if include_as_coded and "NNGP erf" in fam:
            coded_dot = (4 / math.pi) * torch.rsqrt(coded_scale - 4 * K1 * K1)
            fam["NTK erf (as coded)"] = sigma_a**2 * (fam["NNGP erf"] + K1 * coded_dot)
        for name, K in fam.items():
            if name not in row_class_sums:
                row_class_sums[name] = X.new_zeros(N, C)
                traces[name] = X.new_zeros(())
            row_class_sums[name][start:stop] = K @ Y  # (B, N) @ (N, C) -> (B, C)
            traces[name] += K[local, start + local].sum()
    out = {}
    for name, P in row_class_sums.items():
        S_c = (Y * P).sum(0)  # sum over i in c of sum over j in c
        R_c = Y.T @ P.sum(1)
        out[name] = nc1_from_block_sums(traces[name], S_c, R_c, P.sum(), sizes, between_weights=between_weights)
    return out


def cell_seed(*parts) -> int:
    """A deterministic 31-bit seed from the cell's identifying values (stable across processes)."""
    return zlib.crc32(repr(parts).encode()) & 0x7FFFFFFF


def kernel_nc1_grid(
    splits: Sequence[Sequence[int]],
    d0s: Sequence[int],
    draws: int,
    *,
    kernels: Callable[[torch.Tensor], Mapping[str, torch.Tensor]] | None = None,
    means=(-2.0, 2.0),
    std: float = 0.5,
    seed: int = 0,
    between_weights: str = "uniform",
    dtype: torch.dtype = torch.float64,
    device=None,
    progress: bool = False,
) -> pd.DataFrame:
    """NC1 of the data (features) and of each kernel for every (split, d0, draw).

    Args:
        splits: class sizes per data set, e.g. [[64, 64], [128, 128]] or [[256, 1792], ...].
        d0s: input dimensions.
        draws: independent data draws per (split, d0).
        kernels: a function X (N, d0) -> {name: K (N, N)}; default: erf/relu NNGP and NTK and the
            reference code's erf NTK, streamed by :func:`two_layer_family_nc1`.

    Returns:
        A long DataFrame, one row per (split, d0, draw, kernel) with columns N, split, n_min, d0,
        draw, kernel, nc1, log10_nc1, trace_within, trace_between, nc1_pinv (data only), status, error.
    """
    check_grid(splits, d0s, draws)
    cells = [(tuple(int(n) for n in s), int(d0), r) for s in splits for d0 in d0s for r in range(draws)]
    rows = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(cells), desc="kernel NC1 grid", unit="cell")
    for split, d0, draw in cells:
        gen = torch.Generator().manual_seed(cell_seed(seed, split, d0, draw))
        data = gaussian_classes(split, d0, means=means, std=std, generator=gen, dtype=dtype, device=device)
        base = {"N": sum(split), "split": "/".join(map(str, split)), "n_min": min(split), "d0": d0, "draw": draw}
        try:
            if kernels is None:
                jobs = [("data", None)] + list(two_layer_family_nc1(data.X, data.labels, between_weights=between_weights).items())
            else:
                jobs = [("data", None)] + list(kernels(data.X).items())
        except Exception as exc:  # noqa: BLE001 - the whole family failed: one failed row says so
            jobs = [("data", None), ("kernels", exc)]
        for name, K in jobs:
            row = dict(base, kernel=name, status="ok", error="")
            try:
                if isinstance(K, Exception):
                    raise K
                if K is None:
                    res = nc1_from_features(data.X, data.labels, between_weights=between_weights)
                elif isinstance(K, NC1Result):
                    res = K
                else:
                    res = nc1_from_kernel(K, data.labels, between_weights=between_weights)
                if not math.isfinite(res.nc1):
                    raise FloatingPointError(f"non-finite NC1 {res.nc1}")
                row.update(nc1=res.nc1, log10_nc1=math.log10(res.nc1), trace_within=res.trace_within,
                           trace_between=res.trace_between, nc1_pinv=res.nc1_pinv)
            except Exception as exc:  # noqa: BLE001 - recorded as a failed row, never dropped
                row.update(nc1=math.nan, log10_nc1=math.nan, trace_within=math.nan, trace_between=math.nan,
                           nc1_pinv=None, status="failed", error=f"{type(exc).__name__}: {exc}")
            rows.append(row)
        if bar is not None:
            bar.update()
    if bar is not None:
        bar.close()
    return pd.DataFrame(rows)


def summarize_grid(frame: pd.DataFrame, by: Sequence[str] = ("kernel", "N", "d0")) -> pd.DataFrame:
    """Mean, std and count of log10 NC1 over draws for the successful rows, plus the failure count."""
    ok = frame[frame["status"] == "ok"]
    stats = ok.groupby(list(by))["log10_nc1"].agg(["mean", "std", "count"])
    failed = frame[frame["status"] != "ok"].groupby(list(by)).size().rename("failed")
    return stats.join(failed, how="outer").fillna({"failed": 0}).astype({"failed": int})
