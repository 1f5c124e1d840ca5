"""Kernel NC1 over grids of data sets (sample sizes or class splits x input dimensions x draws).

Every grid cell is a row; a kernel that fails in a cell is recorded as a row with ``status="failed"``
and its error, never dropped. Used by book chapter ``04_ntk_vs_nngp``.
"""
from __future__ import annotations

import math
import time
import zlib
from typing import Callable, Mapping, Sequence

import pandas as pd
import torch

from ..metrics import NC1Result, nc1_from_block_sums, nc1_from_features, nc1_from_kernel
from ..data.synthetic import gaussian_classes
from ..kernels.reference import erf_derivative_as_coded_from_preactivation
from ..kernels.two_layer import _family_from_preactivation, _scales
from ..kernels.two_layer import nngp, ntk
from ..models.adaptive import LABEL_TERMS, solve_adaptive_kernel
from ..models.training import TrainingConfig, train_networks
from ..validation import check_grid, check_labels, check_matrix, check_nonnegative

__all__ = ["two_layer_family_nc1", "cell_seed", "kernel_nc1_grid", "summarize_grid", "trained_network_grid",
           "adaptive_nc1_grid", "eos_convergence_map"]


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


def trained_network_grid(
    splits: Sequence[Sequence[int]],
    d0s: Sequence[int],
    draws: int,
    config: TrainingConfig = TrainingConfig(),
    *,
    kernels: Mapping[str, Callable] | None = None,
    kernel_draws: Mapping[str, int] | None = None,
    means=(-2.0, 2.0),
    std: float = 0.5,
    seed: int = 0,
    train_dtype: torch.dtype = torch.float64,
    device=None,
    progress: bool = False,
) -> pd.DataFrame:
    """NC1 of the data, of kernels and of trained nets' hidden features on the same draws, per grid cell.

    The data of (split, d0, draw) is the draw of ``nckernels.grids.kernel_nc1_grid`` with the same seed
    (chapter 4's data); the ``draws`` networks of a cell are trained as one batch in ``train_dtype``,
    network seeds ``cell_seed(seed, split, d0, draw, "init")``.

    Args:
        splits, d0s, draws: class sizes per data set, input dimensions, draws per cell.
        config: the training configuration (the net's NC1 is the last recorded epoch).
        kernels: name -> function(ClassData) -> (N, N) kernel (or None: a "skipped" row); default
            NNGP and NTK of ``config.activation`` with its sigma_w, sigma_b, sigma_a.
        kernel_draws: name -> how many draws of each cell that kernel is evaluated on (default all).

    Returns:
        A long DataFrame, one row per (split, d0, draw, kernel) with columns N, split, n_min, d0, draw,
        kernel ("data", each kernel, "trained net"), nc1, log10_nc1, relative (log10 NC1 - log10 NC1 of
        the data), loss, accuracy (trained net), seconds, status ("ok", "failed", "skipped"), error.
        Failures are rows, never dropped.
    """

    check_grid(splits, d0s, draws)
    if kernels is None:
        kw = dict(activation=config.activation, sigma_w=config.sigma_w, sigma_b=config.sigma_b)
        kernels = {f"NNGP {config.activation}": lambda d: nngp(d.X, **kw),
                   f"NTK {config.activation}": lambda d: ntk(d.X, sigma_a=config.sigma_a, **kw)}
    kernel_draws = dict(kernel_draws or {})
    unknown = set(kernel_draws) - set(kernels)
    if unknown:
        raise ValueError(f"kernel_draws names unknown kernels {sorted(unknown)}")
    cells = [(tuple(int(n) for n in s), int(d0)) for s in splits for d0 in d0s]
    rows = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(cells), desc="trained-net grid", unit="cell")

    def failed_row(base, name, exc):
        return dict(base, kernel=name, nc1=math.nan, log10_nc1=math.nan, relative=math.nan, status="failed",
                    error=f"{type(exc).__name__}: {exc}")

    for split, d0 in cells:
        datas = []
        for draw in range(draws):
            gen = torch.Generator().manual_seed(cell_seed(seed, split, d0, draw))
            datas.append(gaussian_classes(split, d0, means=means, std=std, generator=gen, device=device))
        bases = [{"N": sum(split), "split": "/".join(map(str, split)), "n_min": min(split), "d0": d0, "draw": r}
                 for r in range(draws)]
        data_log = []
        for base, data in zip(bases, datas):
            res = nc1_from_features(data.X, data.labels, between_weights=config.between_weights)
            data_log.append(math.log10(res.nc1))
            rows.append(dict(base, kernel="data", nc1=res.nc1, log10_nc1=data_log[-1], relative=0.0,
                             nc1_pinv=res.nc1_pinv, status="ok", error=""))
        for name, fn in kernels.items():
            for draw, (base, data) in enumerate(zip(bases, datas)):
                if draw >= kernel_draws.get(name, draws):
                    continue
                t0 = time.perf_counter()
                try:
                    K = fn(data)
                    if K is None:  # the kernel declines this cell (e.g. too large to solve here)
                        rows.append(dict(base, kernel=name, nc1=math.nan, log10_nc1=math.nan, relative=math.nan,
                                         status="skipped", error=""))
                        continue
                    res = nc1_from_kernel(K, data.labels, between_weights=config.between_weights)
                    if not (math.isfinite(res.nc1) and res.nc1 > 0):
                        raise FloatingPointError(f"NC1 is {res.nc1}")
                    lg = math.log10(res.nc1)
                    rows.append(dict(base, kernel=name, nc1=res.nc1, log10_nc1=lg, relative=lg - data_log[draw],
                                     seconds=time.perf_counter() - t0, status="ok", error=""))
                except Exception as exc:  # noqa: BLE001 - a failure is a row
                    rows.append(failed_row(base, name, exc))
        X = torch.stack([d.X for d in datas]).to(train_dtype)
        labels = torch.stack([d.labels for d in datas])
        seeds = [cell_seed(seed, split, d0, r, "init") for r in range(draws)]
        try:
            result = train_networks(X, labels, seeds, config)
            fin = result.final()
            for base, (_, net) in zip(bases, fin.iterrows()):
                lg = math.log10(net["nc1"])
                rows.append(dict(base, kernel="trained net", nc1=net["nc1"], log10_nc1=lg,
                                 relative=lg - data_log[base["draw"]], nc1_pinv=net["nc1_pinv"], loss=net["loss"],
                                 accuracy=net["accuracy"], seconds=result.seconds / draws, status="ok", error=""))
        except Exception as exc:  # noqa: BLE001
            rows.extend(failed_row(base, "trained net", exc) for base in bases)
        if bar is not None:
            bar.update()
    if bar is not None:
        bar.close()
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------------
# Adaptive-kernel sweeps: every cell is a row, failures included (status "failed" and their cause)
# --------------------------------------------------------------------------------------------------



def _solve_row(X, y, labels, *, label_term, **solver):
    """One solve as a dict: status, cause, residual, evaluations, NC1 of Q1 (nan when it failed)."""
    res = solve_adaptive_kernel(X, y, label_term=label_term, labels=labels, strict=False, **solver)
    last = res.history.iloc[-1]
    return {
        "label_term": label_term,
        "status": "converged" if res.converged else "failed",
        "cause": "" if res.converged else f"kappa={last.kappa:g}: {last.cause}",
        "residual": res.residual,
        "evaluations": res.evaluations,
        "nc1": nc1_from_kernel(res.kernel, labels).nc1 if res.converged else math.nan,
        "trace_sigma": float(res.Sigma.diagonal().sum()),
    }, res


def adaptive_nc1_grid(splits, d0s, draws: int, *, label_terms=LABEL_TERMS, width: float = 500,
                      noise_var: float = 1e-6, sigma_w2: float = 1.0, sigma_a2: float = 1 / 128, seed: int = 0,
                      progress: bool = False, **solver) -> pd.DataFrame:
    """log10 NC1 of the data, the erf NNGP and the adaptive kernel (each label term) per (split, d0, draw).

    Rows: split, N, d0, draw, kernel ("data", "NNGP", "adaptive (eos)", ...), status, cause, nc1,
    log10 nc1, evaluations. A failed solve is a row with status "failed", its cause and nc1 = nan.
    Data: two Gaussian classes (``gaussian_classes``, means -2, +2, std 0.5), one seed per cell.
    """
    if not isinstance(draws, int) or draws < 1:
        raise ValueError(f"draws must be a positive integer, got {draws!r}")
    cells = [(tuple(int(n) for n in split), int(d0), draw) for split in splits for d0 in d0s for draw in range(draws)]
    if progress:
        from tqdm.auto import tqdm

        cells = tqdm(cells, desc="adaptive NC1 grid")
    rows = []
    for split, d0, draw in cells:
        gen = torch.Generator().manual_seed(cell_seed(seed, split, d0, draw))
        data = gaussian_classes(split, d0, generator=gen)
        base = {"split": "/".join(map(str, split)), "N": sum(split), "minority": min(split) / sum(split),
                "d0": d0, "draw": draw}
        rows.append({**base, "kernel": "data", "status": "converged", "cause": "",
                     "nc1": nc1_from_features(data.X, data.labels).nc1, "evaluations": 0})
        K = nngp(data.X, sigma_w=math.sqrt(sigma_w2))
        rows.append({**base, "kernel": "NNGP", "status": "converged", "cause": "",
                     "nc1": nc1_from_kernel(K, data.labels).nc1, "evaluations": 0})
        for lt in label_terms:
            row, _ = _solve_row(data.X, data.y, data.labels, label_term=lt, width=width, noise_var=noise_var,
                                sigma_w2=sigma_w2, sigma_a2=sigma_a2, **solver)
            rows.append({**base, "kernel": f"adaptive ({lt})", **{k: row[k] for k in ("status", "cause", "nc1", "evaluations")}})
    frame = pd.DataFrame(rows)
    frame["log10 nc1"] = frame["nc1"].map(lambda v: math.log10(v) if v > 0 else math.nan)
    return frame


def eos_convergence_map(N: int, d0s, widths, noise_vars, *, label_terms=("eos",), sigma_w2: float = 1.0,
                        sigma_a2: float = 1 / 128, seed: int = 0, progress: bool = False, **solver) -> pd.DataFrame:
    """Solve the EoS on balanced two-class data for every (d0, width, noise_var, label term); one row each.

    Rows: d0, width, noise_var, label_term, status ("converged" / "failed"), cause, residual,
    evaluations, nc1 (of Q1; nan when failed), trace_sigma.
    """
    cells = [(int(d0), float(w), float(nv), lt) for d0 in d0s for w in widths for nv in noise_vars for lt in label_terms]
    if progress:
        from tqdm.auto import tqdm

        cells = tqdm(cells, desc="EoS convergence map")
    rows, data = [], {}
    for d0, w, nv, lt in cells:
        if d0 not in data:
            data[d0] = gaussian_classes([N // 2, N - N // 2], d0, generator=torch.Generator().manual_seed(cell_seed(seed, N, d0)))
        X, y, labels = data[d0]
        row, _ = _solve_row(X, y, labels, label_term=lt, width=w, noise_var=nv, sigma_w2=sigma_w2,
                            sigma_a2=sigma_a2, **solver)
        rows.append({"d0": d0, "width": w, "noise_var": nv, **row})
    return pd.DataFrame(rows)
