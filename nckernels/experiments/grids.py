"""The book's grids, each a :func:`~nckernels.experiments.cells.run_grid` of cells and measures.

Layer 5, experiments. May import the layers below it: :mod:`nckernels.validation`, :mod:`nckernels.data`,
:mod:`nckernels.metrics`, :mod:`nckernels.kernels`, :mod:`nckernels.models`, and
:mod:`nckernels.experiments.cells`.

Kernel NC1 over (split, d0, draw) grids (chapter ``04_ntk_vs_nngp``), the adaptive kernel's grids and
convergence map (chapter ``05_adaptive_kernel``), trained networks against kernels (chapter
``06_trained_networks``). Every grid returns the one row schema of :data:`~nckernels.experiments.cells.ROW_COLUMNS`;
a measure that fails in a cell is a row with ``status="failed"`` and its error, never dropped.
"""
from __future__ import annotations

import math
from typing import Callable, Mapping, Sequence

import pandas as pd
import torch

from ..metrics import NC1Result, nc1_from_block_sums
from ..kernels.two_layer import check_scales as _scales, kernel_family_from_preactivation as _family_from_preactivation
from ..kernels.two_layer import nngp, ntk, ntk_from_parts
from ..kernels.population import population_nc1_1d, population_nc1_large_d0
from ..models.adaptive import LABEL_TERMS, resolve_variances, solve_adaptive_kernel
from ..models.training import TrainingConfig, train_networks
from ..validation import check_device, check_grid, check_int, check_labels, check_matrix, check_nonnegative
from .solves import stored_solve
from .cells import Cell, Measure, cell_seed, run_grid, summarize  # noqa: F401 - cell_seed: nckernels.grids.cell_seed

__all__ = ["two_layer_family_nc1", "kernel_nc1_grid", "summarize_grid", "kernel_by_name", "population_limits",
           "network_kernels", "trained_network_grid", "adaptive_measure", "adaptive_nc1_grid", "eos_convergence_map"]


def streaming_chunk(N: int, *, entries: int = 2**19, largest: int = 256, smallest: int = 8) -> int:
    """Rows per block of :func:`two_layer_family_nc1` at N samples: ``entries // N`` clipped to [smallest, largest],
    so that each (rows, N) float64 array of the family is about 4 MiB and a block's arrays stay in cache."""
    return max(smallest, min(largest, entries // check_int(N, "N")))


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
    chunk: int | None = None,
) -> dict[str, NC1Result]:
    """NC1 of the NNGP and NTK of each activation (and the reference's erf NTK) without forming N x N kernels.

    Rows of K1 are computed ``chunk`` at a time and every kernel of the family is reduced at once to
    its diagonal and per-class row sums (the inputs of :func:`~nckernels.metrics.nc1_from_block_sums`), so the
    working set stays in cache and memory is O(chunk N). ``chunk`` None picks :func:`streaming_chunk` (N): about
    2^19 kernel entries per (chunk, N) array, at most 256 rows, at least 8. A fixed 256 rows fell out of cache above
    N = 8192 (2 cores: 32.5 s at N = 16384 against 8.8 s with 32 rows; benchmarks/bench_scaling.py). Coincident points get c = v exactly, as in the
    symmetric path of :func:`~nckernels.kernels.two_layer.nngp`; results equal ``nc1_from_kernel(ntk(X), labels)`` etc.
    to rounding.
    """
    X = check_matrix(X, "X")
    chunk = check_int(chunk, "chunk", allow_none=True)
    sigma_w, sigma_b = _scales(sigma_w, sigma_b)
    sigma_a = check_nonnegative(sigma_a, "sigma_a")
    N, d0 = X.shape
    chunk = streaming_chunk(N) if chunk is None else chunk
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
            fam["NTK erf (as coded)"] = ntk_from_parts(fam["NNGP erf"], coded_dot, K1, sigma_a)
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


def _cells(splits, d0s, draws: int, **kw) -> list[Cell]:
    """The cells (split, d0, draw) of a grid, split-major, with ``Cell`` keyword arguments ``kw``."""
    check_grid(splits, d0s, draws)
    return [Cell(tuple(int(n) for n in s), int(d0), r, **kw) for s in splits for d0 in d0s for r in range(draws)]


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
    """NC1 of the data (features) and of each kernel for every (split, d0, draw). Book chapter ``04_ntk_vs_nngp``.

    Args:
        splits: class sizes per data set, e.g. [[64, 64], [128, 128]] or [[256, 1792], ...].
        d0s: input dimensions.
        draws: independent data draws per (split, d0).
        kernels: a function X (N, d0) -> {name: K (N, N)}; default: erf/relu NNGP and NTK and the
            reference code's erf NTK, streamed by :func:`two_layer_family_nc1`. When it raises, the cell has
            one failed row named "kernels".

    Returns:
        :func:`~nckernels.experiments.cells.run_grid` rows (schema ``ROW_COLUMNS``), one per (split, d0,
        draw, kernel), kernel "data" included.
    """
    if kernels is None:
        def family(data):
            return two_layer_family_nc1(data.X, data.labels, between_weights=between_weights)
    else:
        def family(data):
            return kernels(data.X)
    cells = _cells(splits, d0s, draws, seed=seed, means=means, std=std, dtype=dtype, device=device)
    return run_grid(cells, [Measure("kernels", family, expands=True)], between_weights=between_weights,
                    progress=progress, desc="kernel NC1 grid")


def summarize_grid(frame: pd.DataFrame, by: Sequence[str] = ("kernel", "N", "d0")) -> pd.DataFrame:
    """:func:`~nckernels.experiments.cells.summarize` of log10 NC1 with the short column names mean, std, count, failed (indexed by ``by``).

    Kept for callers of versions <= 0.1; book chapter ``04_ntk_vs_nngp`` uses :func:`~nckernels.experiments.cells.summarize`.
    """
    out = summarize(frame, by, values=("log10_nc1",), index=True)
    out = out.rename(columns={"log10_nc1_mean": "mean", "log10_nc1_std": "std", "log10_nc1_count": "count"})
    return out[["mean", "std", "count", "failed"]]


def kernel_by_name(name: str, **kw) -> Callable:
    """``(X, Z=None) -> K (n, m)`` for "data" (the linear kernel X Z^T) or "NNGP act" / "NTK act".

    ``kw`` go to :func:`~nckernels.kernels.two_layer.nngp` / ``ntk``. Book chapter ``04_ntk_vs_nngp``
    (population values at d0 = 1).
    """
    if name == "data":
        return lambda X, Z=None: X @ (X if Z is None else Z).T
    kind, act = _kernel_kind(name)
    fn = {"nngp": nngp, "ntk": ntk}[kind]
    return lambda X, Z=None: fn(X, Z, activation=act, **kw)


def _kernel_kind(name: str) -> tuple[str, str]:
    parts = name.split() if isinstance(name, str) else []
    if name == "data":
        return "data", "erf"
    if len(parts) != 2 or parts[0].lower() not in ("nngp", "ntk"):
        raise ValueError(f"name must be 'data', 'NNGP <activation>' or 'NTK <activation>', got {name!r}")
    return parts[0].lower(), parts[1]


def population_limits(names: Sequence[str], means=(-2.0, 2.0), std: float = 0.5) -> dict[str, dict[str, float]]:
    """log10 population NC1 of each named kernel at d0 = 1 (quadrature) and d0 -> infinity (block limit).

    ``{name: {"d0=1": log10 NC1, "d0=inf": log10 NC1}}`` for names as in :func:`kernel_by_name`; eqs.
    ``nvn-pop`` and ``nvn-blocks`` of book chapter ``04_ntk_vs_nngp``.
    """
    out = {}
    for name in names:
        kind, act = _kernel_kind(name)
        out[name] = {"d0=1": math.log10(population_nc1_1d(kernel_by_name(name), means, std).nc1),
                     "d0=inf": math.log10(population_nc1_large_d0(kind, activation=act, means=means, std=std).nc1)}
    return out


def network_kernels(config: TrainingConfig = TrainingConfig(), *, adaptive_max_N: int = 0) -> dict[str, Callable]:
    """The kernels a trained network is compared with: {"NNGP", "NTK", "adaptive"}, each data -> (N, N).

    NNGP and NTK of ``config``'s activation and scales; "adaptive" is the EoS kernel of width
    ``config.width`` (:func:`~nckernels.models.adaptive.solve_adaptive_kernel`), None (a skipped row) for
    data sets with more than ``adaptive_max_N`` samples (0: never solved). A solve warm-starts from the previous
    solve when that was for data of the same class sizes and d0 (the previous draw; see :func:`adaptive_measure`).
    Book chapter ``06_trained_networks``.
    """
    check_int(adaptive_max_N, "adaptive_max_N", minimum=0)
    kw = dict(activation=config.activation, sigma_w=config.sigma_w, sigma_b=config.sigma_b)
    solve = _draw_to_draw_solver()

    def adaptive(data):
        if data.X.shape[0] > adaptive_max_N:
            return None
        return solve(data, width=config.width)[0].kernel  # a failed solve raises (strict): a failed row

    return {"NNGP": lambda d: nngp(d.X, **kw), "NTK": lambda d: ntk(d.X, sigma_a=config.sigma_a, **kw),
            "adaptive": adaptive}


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
    """NC1 of the data, of kernels and of trained nets' hidden features on the same draws. Book chapter
    ``06_trained_networks``.

    The data of (split, d0, draw) is the draw of :func:`kernel_nc1_grid` with the same seed (chapter 4's
    data); the ``draws`` networks of a cell are trained as one batch in ``train_dtype`` (a batched
    :class:`~nckernels.experiments.cells.Measure`), network seeds ``cell_seed(seed, split, d0, draw, "init")``.

    Args:
        splits, d0s, draws: class sizes per data set, input dimensions, draws per cell.
        config: the training configuration (the net's NC1 is the last recorded epoch).
        kernels: name -> function(ClassData) -> (N, N) kernel (or None: a "skipped" row); default
            NNGP and NTK of ``config.activation`` named "NNGP <act>", "NTK <act>".
        kernel_draws: name -> how many draws of each cell that kernel is evaluated on (default all).

    Returns:
        :func:`~nckernels.experiments.cells.run_grid` rows, kernel "data", each kernel, "trained net" (extra columns loss, accuracy).
        A DivergenceError of the training is a failed row "diverged at epoch k" for each draw of the cell.
    """
    check_grid(splits, d0s, draws)
    if kernels is None:
        k = network_kernels(config)
        kernels = {f"NNGP {config.activation}": k["NNGP"], f"NTK {config.activation}": k["NTK"]}
    kernel_draws = dict(kernel_draws or {})
    unknown = set(kernel_draws) - set(kernels)
    if unknown:
        raise ValueError(f"kernel_draws names unknown kernels {sorted(unknown)}")

    def trained(cells, datas):
        X = torch.stack([d.X for d in datas]).to(train_dtype)
        labels = torch.stack([d.labels for d in datas])
        seeds = [cell_seed(c.seed, c.split, c.d0, c.draw, "init") for c in cells]
        result = train_networks(X, labels, seeds, config)
        return [{"nc1": net["nc1"], "nc1_pinv": net["nc1_pinv"], "loss": net["loss"], "accuracy": net["accuracy"],
                 "seconds": result.seconds / len(cells)} for _, net in result.final().iterrows()]

    measures = [Measure(name, fn, draws=kernel_draws.get(name)) for name, fn in kernels.items()]
    measures.append(Measure("trained net", trained, batched=True))
    cells = _cells(splits, d0s, draws, seed=seed, means=means, std=std, device=device)
    return run_grid(cells, measures, between_weights=config.between_weights, progress=progress,
                    desc="trained-net grid")


def _draw_to_draw_solver(warm: bool = True) -> Callable:
    """solve(data, **solver_kw) -> (the EoS result, whether it was read from the solve store), started from the
    previous call's converged Sigma when that call was for data of the same class sizes and d0 (in a grid: the
    previous draw of the cell); cold when ``warm`` is False. Through :func:`~nckernels.experiments.solves.stored_solve`:
    with a store (``make paper``), a solve already made is read back. Chapters ``05_adaptive_kernel`` and
    ``06_trained_networks``."""
    previous: dict = {}  # {(class sizes, d0): Sigma} of the previous solve only

    def solve(data, **kw):
        key = (tuple(torch.bincount(data.labels).tolist()), int(data.X.shape[1]))
        init = previous.pop(key, None) if warm else None
        previous.clear()
        res, reused = stored_solve(data.X, data.y, labels=data.labels, init=init, **kw)
        if res.converged:
            previous[key] = res.Sigma
        return res, reused

    return solve


def adaptive_measure(label_term: str = "eos", *, warm_start: bool = True, **solver) -> Callable:
    """A measure: the adaptive (EoS) kernel of a cell's data, solved with ``strict=False``.

    Returns a dict with the kernel ("result") and the columns residual, evaluations, trace_sigma, reused (the
    solve was read from the store of :mod:`~nckernels.experiments.solves`, its evaluations those of the run that
    made it; False without a store); when the
    solve does not converge, the dict's ``error`` is "kappa=<last kappa>: <cause>" (a failed row that keeps
    those columns). ``solver``: keyword arguments of :func:`~nckernels.models.adaptive.solve_adaptive_kernel`.
    ``warm_start``: a solve starts from the previous solve's converged Sigma when that was for data of the same
    class sizes and d0 (in a grid, the previous draw of the same cell: the draws are the innermost loop);
    ``init`` of the solver, which falls back to the NNGP start when the jump fails. A converged answer is a fixed point to the solver's tol either way; measured at N = 1024, d0 = 1:
    10 evaluations instead of 106, the same Sigma to 4e-12 (relative). Book chapter ``05_adaptive_kernel``.
    """
    solve = _draw_to_draw_solver(warm_start and solver.get("schedule", "adaptive") in (None, "adaptive"))

    def measure(data):
        res, reused = solve(data, label_term=label_term, strict=False, **solver)
        out = {"residual": res.residual, "evaluations": res.evaluations,
               "trace_sigma": float(res.Sigma.diagonal().sum()), "reused": reused}
        if not res.converged:
            last = res.history.iloc[-1]
            return {**out, "error": f"kappa={last.kappa:g}: {last.cause}"}
        return {**out, "result": res.kernel}

    return measure


def _solver_scales(sigma_w, sigma_a, solver) -> dict:
    """The scale keywords for the solver: standard deviations, or the deprecated variances popped from ``solver``."""
    return {"sigma_w": sigma_w, "sigma_a": sigma_a, "sigma_w2": solver.pop("sigma_w2", None),
            "sigma_a2": solver.pop("sigma_a2", None)}


def adaptive_nc1_grid(splits, d0s, draws: int, *, label_terms=LABEL_TERMS, width: float = 500,
                      noise_var: float = 1e-6, sigma_w: float | None = None, sigma_a: float | None = None,
                      seed: int = 0, device=None, progress: bool = False, **solver) -> pd.DataFrame:
    """NC1 of the data, the erf NNGP and the adaptive kernel (each label term) per (split, d0, draw).

    :func:`~nckernels.experiments.cells.run_grid` rows with kernel "data", "NNGP", "adaptive (eos)", "adaptive (reference)"; the
    adaptive rows add residual, evaluations, trace_sigma, and a solve that does not converge is a failed
    row whose error is "kappa=...: cause". Data: ``gaussian_classes`` (means -2, +2, std 0.5), one seed per
    cell (drawn on the CPU, then moved to ``device``: the same data on every device). Book chapters
    ``05_adaptive_kernel`` and ``07_reference_code``.
    """
    check_int(draws, "draws")
    device = check_device(device)
    scales = _solver_scales(sigma_w, sigma_a, solver)  # solver may hold the deprecated sigma_w2 / sigma_a2
    sigma_w_nngp = math.sqrt(resolve_variances(**scales)[0])
    measures = [Measure("NNGP", lambda d: nngp(d.X, sigma_w=sigma_w_nngp))]
    measures += [Measure(f"adaptive ({lt})", adaptive_measure(lt, width=width, noise_var=noise_var, **scales, **solver))
                 for lt in label_terms]
    return run_grid(_cells(splits, d0s, draws, seed=seed, device=device), measures, progress=progress,
                    desc="adaptive NC1 grid")


def eos_convergence_map(N: int, d0s, widths, noise_vars, *, label_terms=("eos",), sigma_w: float | None = None,
                        sigma_a: float | None = None, seed: int = 0, device=None, progress: bool = False,
                        **solver) -> pd.DataFrame:
    """Solve the EoS on balanced two-class data for every (d0, width, noise_var, label term); one row each.

    :func:`~nckernels.experiments.cells.run_grid` rows (no "data" rows), kernel "adaptive (<label term>)", extra columns width, noise_var,
    label_term, residual, evaluations, trace_sigma; status "ok" or "failed" (error "kappa=...: cause").
    The data of each d0 are drawn with ``cell_seed(seed, N, d0)`` (on ``device``). Book chapters ``05_adaptive_kernel``
    (fig. ``fig-ak-map``) and ``07_reference_code``.
    """
    check_int(N, "N", minimum=2)
    if not len(d0s):
        raise ValueError("d0s must list at least one input dimension")
    device = check_device(device)
    cells = [Cell((N // 2, N - N // 2), int(d0), seed=seed, seed_key=(seed, N, int(d0)), device=device) for d0 in d0s]
    scales = _solver_scales(sigma_w, sigma_a, solver)  # solver may hold the deprecated sigma_w2 / sigma_a2
    measures = [Measure(f"adaptive ({lt})",
                        adaptive_measure(lt, width=float(w), noise_var=float(nv), **scales, **solver),
                        columns={"width": float(w), "noise_var": float(nv), "label_term": lt})
                for w in widths for nv in noise_vars for lt in label_terms]
    return run_grid(cells, measures, data_rows=False, progress=progress, desc="EoS convergence map")


# --- past the paper: one training factor at a time (chapter 06_trained_networks) ---------------------
__all__ += ["network_factor_sweep"]


def network_factor_sweep(
    split: Sequence[int],
    d0: int,
    draws: int,
    config: TrainingConfig = TrainingConfig(),
    *,
    factors: Mapping[str, Sequence],
    along: Mapping[str, Mapping] | None = None,
    adaptive: bool = True,
    seed: int = 0,
    train_dtype: torch.dtype = torch.float64,
    device=None,
    progress: bool = False,
) -> pd.DataFrame:
    """One cell, one training factor varied at a time: NC1 of the trained nets, the NNGP and the adaptive kernel.

    For each ``factor`` (a :class:`~nckernels.models.training.TrainingConfig` field: ``lr``, ``epochs``,
    ``momentum``, ``sigma_a``, ``width``, ...) and each of its values, ``config`` with that field (and the
    fields of ``along[factor]``, e.g. ``{"epochs": {"momentum": 0.9}}``) replaced is trained on the same
    ``draws`` data draws of the cell (:func:`trained_network_grid`, chapter 4's data for ``seed``). The NNGP
    (of ``config``'s scales) and the adaptive (EoS) kernel of width ``h`` = the run's width (the solver's
    default read-out prior; it changes only with the width, through kappa) are evaluated on the same draws;
    each adaptive solve is done once per (width, draw). Book chapter ``06_trained_networks``.

    Returns:
        :func:`~nckernels.experiments.cells.run_grid` rows (kernels "data", "NNGP", "adaptive", "trained net")
        with the extra columns ``factor`` and ``value`` (the factor's value, a float).
    """
    check_int(d0, "d0")
    check_int(draws, "draws")
    if not isinstance(config, TrainingConfig):
        raise ValueError(f"config must be a TrainingConfig, got {type(config).__name__}")
    if not isinstance(factors, Mapping) or not factors:
        raise ValueError("factors must be a non-empty mapping of TrainingConfig fields to values")
    along = dict(along or {})
    fields = set(TrainingConfig.__dataclass_fields__)
    for name, values in factors.items():
        if name not in fields or name in ("record_epochs", "activation", "between_weights"):
            raise ValueError(f"factors: {name!r} is not a numeric TrainingConfig field")
        if isinstance(values, (str, bytes)) or not len(values):
            raise ValueError(f"factors[{name!r}] must be a non-empty sequence of values")
    for name, extra in along.items():
        if name not in factors or not isinstance(extra, Mapping) or not set(extra) <= fields:
            raise ValueError(f"along[{name!r}] must map TrainingConfig fields of a factor, got {extra!r}")
    from dataclasses import replace

    kw = dict(activation=config.activation, sigma_w=config.sigma_w, sigma_b=config.sigma_b)
    solved: dict = {}

    def adaptive_of(width):
        def fn(data):
            key = (float(width), data.X.cpu().numpy().tobytes())
            if key not in solved:
                solved[key] = solve_adaptive_kernel(data.X, data.y, width=float(width), labels=data.labels).kernel
            return solved[key]
        return fn

    frames = []
    runs = [(name, value) for name, values in factors.items() for value in values]
    if progress:
        from tqdm.auto import tqdm

        runs = tqdm(runs, desc="factor sweep", unit="run")
    for name, value in runs:
        cfg = replace(config, record_epochs=None, **{name: value, **along.get(name, {})})
        kernels = {"NNGP": lambda d: nngp(d.X, **kw)}
        if adaptive:
            kernels["adaptive"] = adaptive_of(cfg.width)
        frame = trained_network_grid([split], [d0], draws, cfg, kernels=kernels, seed=seed,
                                     train_dtype=train_dtype, device=device)
        frames.append(frame.assign(factor=name, value=float(value)))
    return pd.concat(frames, ignore_index=True)
