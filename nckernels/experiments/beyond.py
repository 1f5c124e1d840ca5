r"""Grids beyond the paper's setting: deep kernels and deep nets against depth and activation (book chapter
``12_depth_and_activation``), and the harder data families of :mod:`nckernels.data.hard` (book chapter
``13_hard_data``).

Layer 5, experiments. May import the layers below it (data, metrics, kernels, models) and, within the layer,
:mod:`nckernels.experiments.cells` and :mod:`nckernels.experiments.grids`. Every grid returns the rows of
:func:`~nckernels.experiments.cells.run_grid` (schema ``ROW_COLUMNS``): failures are rows, never dropped.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import pandas as pd
import torch

from ..data.hard import anisotropic_gaussian_classes, concentric_shells, four_class_gaussians, xor_clusters
from ..data.targets import class_targets
from ..errors import DivergenceError
from ..kernels.deep import deep_kernels, deep_population_nc1_1d, deep_population_nc1_large_d0, deep_recursion
from ..kernels.quadrature import resolve_activation
from ..kernels.two_layer import nngp, ntk
from ..metrics import nc1_from_features
from ..models.training import TrainingConfig, train_networks
from ..validation import check_choice, check_grid, check_int, check_labels
from .cells import Cell, Measure, cell_seed, run_grid
from .grids import adaptive_measure

__all__ = ["deep_population_table", "deep_fixed_point", "deep_kernel_grid", "DeepNetResult", "train_deep_network",
           "deep_network_grid", "HARD_FAMILIES", "HardCell", "hard_data_grid"]


# --- chapter 12_depth_and_activation ----------------------------------------------------------------

def deep_population_table(activations: Sequence[str], depths: Sequence[int], *, means=(-2.0, 2.0), std: float = 0.5,
                          d0_one: Sequence[str] = ("erf", "relu", "gelu"), order: int = 40) -> pd.DataFrame:
    """log10 population NC1 of the deep NNGP and NTK for every (activation, depth), at d0 -> infinity and d0 = 1.

    One row per (activation, depth, kind) with columns activation, depth, kind ("NNGP"/"NTK"), kernel
    ("NNGP erf"), limit ("d0=inf" or "d0=1"), log10_nc1. d0 = 1 (Gauss-Hermite with ``order`` nodes per class,
    :func:`~nckernels.kernels.deep.deep_population_nc1_1d`) only for the activations in ``d0_one``; d0 -> infinity by
    :func:`~nckernels.kernels.deep.deep_population_nc1_large_d0`. Book chapter ``12_depth_and_activation``.
    """
    order = check_int(order, "order", minimum=2)
    rows = []
    for act in activations:
        resolve_activation(act)
        for depth in depths:
            depth = check_int(depth, "depth")
            for kind in ("nngp", "ntk"):
                limits = {"d0=inf": deep_population_nc1_large_d0(kind, act, depth, means=means, std=std)}
                if act in d0_one:
                    limits["d0=1"] = deep_population_nc1_1d(kind, act, depth, means=means, std=std, order=order)
                for limit, res in limits.items():
                    rows.append({"activation": act, "depth": depth, "kind": kind.upper(),
                                 "kernel": f"{kind.upper()} {act}", "limit": limit,
                                 "log10_nc1": math.log10(res.nc1)})
    return pd.DataFrame(rows)


def deep_fixed_point(activation: str, depths: Sequence[int], *, means=(-2.0, 2.0), std: float = 0.5,
                     sigma_w: float = 1.0, sigma_b: float = 0.0) -> pd.DataFrame:
    """The d0 -> infinity NNGP blocks of two classes against depth: diagonal a, correlations b/a, e/a, and NC1.

    For classes N(-+mu 1, s^2 I) the depth-L NNGP is a block matrix with a on the diagonal, b within and e between
    the classes (eq. ``nvn-blocks``: NC1 = 2 (a - b) / (b - e)); the columns ``rho_within`` = b/a and
    ``rho_between`` = e/a are the correlations the layer map iterates towards its fixed point. One row per depth
    (columns activation, depth, a, rho_within, rho_between, nc1, log10_nc1). Book chapter ``12_depth_and_activation``.
    """
    m = [float(v) for v in means]
    if len(m) != 2:
        raise ValueError(f"means must hold two class means, got {means!r}")
    second = [v * v + std * std for v in m]
    var = torch.tensor([sigma_b**2 + sigma_w**2 * s for s in second], dtype=torch.float64)  # (2,)
    K1 = torch.tensor([[sigma_b**2 + sigma_w**2 * a * b for b in m] for a in m], dtype=torch.float64)  # (2, 2)
    rows = []
    for depth in depths:
        kw = dict(activation=activation, sigma_w=sigma_w, sigma_b=sigma_b, depth=check_int(depth, "depth"),
                  with_ntk=False)
        a = float(deep_recursion(var, var, var, **kw).nngp[0])
        blocks = deep_recursion(K1, var[:, None], var[None, :], **kw).nngp
        b, e = float(blocks[0, 0]), float(blocks[0, 1])
        nc1 = 2 * (a - b) / (b - e)
        rows.append({"activation": activation, "depth": int(depth), "a": a, "rho_within": b / a,
                     "rho_between": e / a, "nc1": nc1, "log10_nc1": math.log10(nc1)})
    return pd.DataFrame(rows)


def deep_kernel_grid(splits, d0s, draws: int, *, activations: Sequence[str], depths: Sequence[int], means=(-2.0, 2.0),
                     std: float = 0.5, seed: int = 0, sigma_a: float = 1.0, progress: bool = False) -> pd.DataFrame:
    """NC1 of the data and of the depth-L NNGP and NTK ("NNGP act", "NTK act") per (split, d0, draw, depth, activation).

    The cells are chapter 4's draws (``Cell(split, d0, draw, seed)``); one expanding measure per (activation,
    depth), extra columns ``depth`` and ``activation``. Kernels by :func:`~nckernels.kernels.deep.deep_kernels`
    (sigma_w = 1, sigma_b = 0, read-out ``sigma_a``). Book chapter ``12_depth_and_activation``.
    """
    check_grid(splits, d0s, draws)

    def family(act, depth):
        def fn(data):
            k = deep_kernels(data.X, activation=act, depth=depth, sigma_a=sigma_a)
            return {f"NNGP {act}": k.nngp, f"NTK {act}": k.ntk}
        return fn

    measures = [Measure(f"{act} depth {L}", family(act, int(L)), columns={"depth": int(L), "activation": act},
                        expands=True) for act in activations for L in depths]
    cells = [Cell(tuple(int(n) for n in s), int(d0), draw, seed=seed, means=tuple(means), std=std)
             for s in splits for d0 in d0s for draw in range(draws)]
    return run_grid(cells, measures, progress=progress, desc="deep kernel grid")


@dataclass(frozen=True)
class DeepNetResult:
    """A deep net trained by full-batch GD: last-hidden-layer NC1 at init and at the end, final loss and accuracy."""

    depth: int
    nc1_init: float
    nc1: float
    loss: float
    accuracy: float
    seconds: float


def train_deep_network(X, labels, *, depth: int, seed: int, config: TrainingConfig = TrainingConfig()) -> DeepNetResult:
    r"""Train f(x) = a^T h_L(x) + b_out, h_l = phi(W_l h_{l-1} + b_l), by full-batch GD on the MSE; NC1 of h_L.

    Standard parametrisation with the scales of ``config`` (chapter ``06_trained_networks``'s net for depth = 1):
    W_l ~ N(0, sigma_w^2 / fan_in), b_l ~ N(0, sigma_b^2), a ~ N(0, sigma_a^2 / h), b_out = 0, every hidden layer of
    width ``config.width``; targets +-1 (C = 2) or one-hot +-1, loss (1/(N k)) sum ||f - y||^2, SGD with
    ``config.lr``, ``weight_decay``, ``momentum`` for ``config.epochs`` full-batch steps (autograd, X's dtype).
    Raises :class:`nckernels.DivergenceError` when the loss leaves the finite numbers. Book chapter
    ``12_depth_and_activation``.
    """
    depth = check_int(depth, "depth")
    if not isinstance(config, TrainingConfig):
        raise ValueError(f"config must be a TrainingConfig, got {type(config).__name__}")
    index, sizes = check_labels(labels, X.shape[0], device=X.device)
    C = sizes.numel()
    Y = class_targets(index, C, encoding="pm1", dtype=X.dtype).reshape(X.shape[0], -1)  # (N, k)
    phi = resolve_activation(config.activation).phi
    gen = torch.Generator().manual_seed(int(seed))
    to = dict(dtype=X.dtype, device=X.device)
    dims = [X.shape[1]] + [config.width] * depth
    params = []
    for fan_in, fan_out in zip(dims[:-1], dims[1:]):
        W = torch.randn(fan_out, fan_in, generator=gen, dtype=torch.float64) * config.sigma_w / math.sqrt(fan_in)
        b = torch.randn(fan_out, generator=gen, dtype=torch.float64) * config.sigma_b
        params += [W.to(**to), b.to(**to)]
    a = torch.randn(config.width, Y.shape[1], generator=gen, dtype=torch.float64) * config.sigma_a / math.sqrt(config.width)
    params += [a.to(**to), X.new_zeros(Y.shape[1])]
    for p in params:
        p.requires_grad_(True)

    def hidden(ps):
        h = X
        for W, b in zip(ps[0:-2:2], ps[1:-2:2]):
            h = phi(h @ W.T + b)  # (N, width)
        return h

    t0 = time.perf_counter()
    with torch.no_grad():
        nc1_init = nc1_from_features(hidden(params), index).nc1
    opt = torch.optim.SGD(params, lr=config.lr, weight_decay=config.weight_decay, momentum=config.momentum)
    for epoch in range(1, config.epochs + 1):
        opt.zero_grad()
        loss = ((hidden(params) @ params[-2] + params[-1] - Y) ** 2).mean()
        if not math.isfinite(float(loss.detach())):
            raise DivergenceError(f"training diverged at epoch {epoch} (loss {float(loss.detach())}); lower lr", epoch=epoch,
                                  seeds=(int(seed),))
        loss.backward()
        opt.step()
    with torch.no_grad():
        H = hidden(params)
        f = H @ params[-2] + params[-1]
        loss = float(((f - Y) ** 2).mean())
        pred = (f[:, 0] > 0).long() if C == 2 else f.argmax(1)
        acc = float((pred == index).to(torch.float64).mean())
        nc1 = nc1_from_features(H, index).nc1
    if not math.isfinite(loss):
        raise DivergenceError(f"training diverged (final loss {loss}); lower lr", epoch=config.epochs, seeds=(int(seed),))
    return DeepNetResult(depth, float(nc1_init), float(nc1), loss, acc, time.perf_counter() - t0)


def deep_network_grid(splits, d0s, draws: int, depths: Sequence[int], config: TrainingConfig = TrainingConfig(), *,
                      means=(-2.0, 2.0), std: float = 0.5, seed: int = 0, progress: bool = False) -> pd.DataFrame:
    """NC1 of the data, the depth-L NNGP and NTK and a trained depth-L net's last hidden layer, on the same draws.

    Per (split, d0, draw) of chapter 4's cells and each depth L: "NNGP act", "NTK act" (sigma_a of ``config``),
    "trained net" (:func:`train_deep_network`, extra columns loss, accuracy, nc1_init; seed
    ``cell_seed(seed, split, d0, draw, depth, "init")``). Extra column ``depth``. A diverged run is a failed row.
    Book chapter ``12_depth_and_activation``.
    """
    check_grid(splits, d0s, draws)
    act = config.activation

    def kernels(L):
        def fn(data):
            k = deep_kernels(data.X, activation=act, sigma_w=config.sigma_w, sigma_b=config.sigma_b,
                             sigma_a=config.sigma_a, depth=L)
            return {f"NNGP {act}": k.nngp, f"NTK {act}": k.ntk}
        return fn

    def trained(L):
        def fn(cells, datas):
            out = []
            for cell, data in zip(cells, datas):
                r = train_deep_network(data.X, data.labels, depth=L, config=config,
                                       seed=cell_seed(cell.seed, cell.split, cell.d0, cell.draw, L, "init"))
                out.append({"nc1": r.nc1, "nc1_init": r.nc1_init, "loss": r.loss, "accuracy": r.accuracy,
                            "seconds": r.seconds})
            return out
        return fn

    measures = []
    for L in depths:
        L = check_int(L, "depths")
        measures += [Measure(f"kernels depth {L}", kernels(L), columns={"depth": L}, expands=True),
                     Measure("trained net", trained(L), columns={"depth": L}, batched=True)]
    cells = [Cell(tuple(int(n) for n in s), int(d0), draw, seed=seed, means=tuple(means), std=std)
             for s in splits for d0 in d0s for draw in range(draws)]
    return run_grid(cells, measures, progress=progress, desc="deep net grid")


# --- chapter 13_hard_data ------------------------------------------------------------------------------

HARD_FAMILIES = ("four-class", "anisotropic", "xor", "shells")
"""The data families of book chapter ``13_hard_data`` (:mod:`nckernels.data.hard`)."""


@dataclass(frozen=True)
class HardCell(Cell):
    """A grid cell whose data come from a family of :mod:`nckernels.data.hard` instead of two Gaussian classes.

    ``family`` in :data:`HARD_FAMILIES`; ``options``: (name, value) pairs passed to the family's sampler (e.g.
    ``(("stds", (0.25, 1.0)),)``). Four-class data carry the scalar targets -3, -1, 1, 3 (``y`` (N,)), the
    others +-1. Seed as for :class:`~nckernels.experiments.cells.Cell` with the family added. Book chapter
    ``13_hard_data``.
    """

    family: str = "xor"
    options: tuple = ()

    def __post_init__(self):
        super().__post_init__()
        check_choice(self.family, "family", HARD_FAMILIES)
        frozen = lambda v: tuple(frozen(u) for u in v) if isinstance(v, (list, tuple)) else v  # noqa: E731 - hashable
        object.__setattr__(self, "options", tuple((str(k), frozen(v)) for k, v in self.options))

    @property
    def generator_seed(self) -> int:
        return cell_seed(self.seed, self.family, self.split, self.d0, self.draw)

    def data(self):
        gen = torch.Generator().manual_seed(self.generator_seed)
        kw: dict[str, Any] = dict(self.options, generator=gen, dtype=self.dtype, device=self.device)
        if self.family == "four-class":
            return four_class_gaussians(self.split, self.d0, **kw)
        if self.family == "anisotropic":
            kw.setdefault("stds", (0.25, 1.0))
            return anisotropic_gaussian_classes(self.split, self.d0, means=self.means, **kw)
        if self.family == "xor":
            return xor_clusters(self.split, self.d0, **kw)
        return concentric_shells(self.split, self.d0, **kw)

    def columns(self) -> dict:
        return {**super().columns(), "family": self.family}


def hard_data_grid(families: Mapping[str, Sequence[int]], d0s, draws: int, *, config: TrainingConfig = TrainingConfig(),
                   options: Mapping[str, Mapping] | None = None, adaptive: Mapping | None = None,
                   adaptive_draws: int = 1, adaptive_d0s: Sequence[int] | None = None, seed: int = 0,
                   progress: bool = False) -> pd.DataFrame:
    """NC1 of the data, the two-layer NNGP and NTK, the adaptive (EoS) kernel and trained two-layer nets per family.

    Args:
        families: family name (:data:`HARD_FAMILIES`) -> class sizes.
        d0s, draws: input dimensions and draws per (family, d0).
        config: the two-layer net (:func:`~nckernels.models.training.train_networks`, chapter
            ``06_trained_networks``) and the kernels' activation and scales.
        options: family -> keyword arguments of its sampler.
        adaptive: keyword arguments of :func:`~nckernels.models.adaptive.solve_adaptive_kernel` (width defaults
            to ``config.width``); None: no adaptive rows. The targets are the cell's ``y`` (four-class: -3, -1, 1, 3).
        adaptive_draws: draws per cell with an adaptive solve; adaptive_d0s: the d0 solved (others: skipped rows; None: all).

    Returns:
        :func:`~nckernels.experiments.cells.run_grid` rows with the extra column ``family``; kernels "data",
        "NNGP act", "NTK act", "adaptive" (failed rows carry "kappa=...: cause", plus residual, evaluations),
        "trained net" (loss, accuracy). Book chapter ``13_hard_data``.
    """
    check_grid([list(v) for v in families.values()], d0s, draws)
    options = dict(options or {})
    act = config.activation
    kw = dict(activation=act, sigma_w=config.sigma_w, sigma_b=config.sigma_b)
    measures = [Measure(f"NNGP {act}", lambda d: nngp(d.X, **kw)),
                Measure(f"NTK {act}", lambda d: ntk(d.X, sigma_a=config.sigma_a, **kw))]
    if adaptive is not None:
        solver = {"width": config.width, **dict(adaptive)}
        solve = adaptive_measure("eos", **solver)

        def adaptive_fn(data):
            if adaptive_d0s is not None and data.X.shape[1] not in set(int(d) for d in adaptive_d0s):
                return None
            return solve(data)

        measures.append(Measure("adaptive", adaptive_fn, draws=check_int(adaptive_draws, "adaptive_draws", minimum=0)))

    def trained(cells, datas):
        X = torch.stack([d.X for d in datas])
        labels = torch.stack([d.labels for d in datas])
        seeds = [cell_seed(c.seed, c.family, c.split, c.d0, c.draw, "init") for c in cells]
        result = train_networks(X, labels, seeds, config)
        return [{"nc1": net["nc1"], "nc1_pinv": net["nc1_pinv"], "loss": net["loss"], "accuracy": net["accuracy"],
                 "seconds": result.seconds / len(cells)} for _, net in result.final().iterrows()]

    measures.append(Measure("trained net", trained, batched=True))
    cells = [HardCell(tuple(int(n) for n in split), int(d0), draw, seed=seed, family=fam,
                      options=tuple(dict(options.get(fam, {})).items()))
             for fam, split in families.items() for d0 in d0s for draw in range(draws)]
    return run_grid(cells, measures, progress=progress, desc="hard data grid")
