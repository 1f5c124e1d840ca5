r"""Grids beyond the paper's setting: deep kernels and deep nets against depth and activation (book chapter
``12_depth_and_activation``), and the harder data families of :mod:`nckernels.data.hard` (book chapter
``13_hard_data``).

Layer 5, experiments. May import the layers below it (data, metrics, kernels, models) and, within the layer,
:mod:`nckernels.experiments.cells` and :mod:`nckernels.experiments.grids`. Every grid returns the rows of
:func:`~nckernels.experiments.cells.run_grid` (schema ``ROW_COLUMNS``): failures are rows, never dropped.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import pandas as pd
import torch

from ..data.hard import anisotropic_gaussian_classes, concentric_shells, four_class_gaussians, xor_clusters
from ..kernels.deep import deep_kernels, deep_population_nc1_1d, deep_population_nc1_large_d0, deep_recursion
from ..kernels.quadrature import resolve_activation
from ..kernels.two_layer import nngp, ntk
from ..models.deep_net import train_deep_network
from ..models.training import TrainingConfig, train_networks
from ..validation import check_choice, check_device, check_grid, check_int
from .cells import Cell, Measure, cell_seed, run_grid
from .grids import adaptive_measure

__all__ = ["deep_population_table", "deep_fixed_point", "deep_kernel_grid",
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
                     std: float = 0.5, seed: int = 0, sigma_a: float = 1.0, device=None,
                     progress: bool = False) -> pd.DataFrame:
    """NC1 of the data and of the depth-L NNGP and NTK ("NNGP act", "NTK act") per (split, d0, draw, depth, activation).

    The cells are chapter 4's draws (``Cell(split, d0, draw, seed)``); one expanding measure per (activation,
    depth), extra columns ``depth`` and ``activation``. Kernels by :func:`~nckernels.kernels.deep.deep_kernels`
    (sigma_w = 1, sigma_b = 0, read-out ``sigma_a``). ``device``: where the data are drawn and the kernels computed
    (None: the CPU; the draws are the same on every device). Book chapter ``12_depth_and_activation``.
    """
    check_grid(splits, d0s, draws)
    device = check_device(device)

    def family(act, depth):
        def fn(data):
            k = deep_kernels(data.X, activation=act, depth=depth, sigma_a=sigma_a)
            return {f"NNGP {act}": k.nngp, f"NTK {act}": k.ntk}
        return fn

    measures = [Measure(f"{act} depth {L}", family(act, int(L)), columns={"depth": int(L), "activation": act},
                        expands=True) for act in activations for L in depths]
    cells = [Cell(tuple(int(n) for n in s), int(d0), draw, seed=seed, means=tuple(means), std=std, device=device)
             for s in splits for d0 in d0s for draw in range(draws)]
    return run_grid(cells, measures, progress=progress, desc="deep kernel grid")


def deep_network_grid(splits, d0s, draws: int, depths: Sequence[int], config: TrainingConfig = TrainingConfig(), *,
                      means=(-2.0, 2.0), std: float = 0.5, seed: int = 0, train_dtype: torch.dtype = torch.float64,
                      device=None, progress: bool = False) -> pd.DataFrame:
    """NC1 of the data, the depth-L NNGP and NTK and a trained depth-L net's last hidden layer, on the same draws.

    Per (split, d0, draw) of chapter 4's cells and each depth L: "NNGP act", "NTK act" (sigma_a of ``config``),
    "trained net" (:func:`train_deep_network`, extra columns loss, accuracy, nc1_init; seed
    ``cell_seed(seed, split, d0, draw, depth, "init")``), trained in ``train_dtype`` (a floating torch dtype; the kernels are
    always float64). Extra column ``depth``. A diverged run is a failed row. ``device``: where the data are drawn,
    the kernels computed and the nets trained (None: the CPU). Book chapter ``12_depth_and_activation``.
    """
    check_grid(splits, d0s, draws)
    device = check_device(device)
    act = config.activation
    if not (isinstance(train_dtype, torch.dtype) and train_dtype.is_floating_point):
        raise ValueError(f"train_dtype must be a floating torch dtype (torch.float32, torch.float64), got {train_dtype!r}")

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
                X = data.X.to(train_dtype)
                r = train_deep_network(X, data.labels, depth=L, config=config,
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
    cells = [Cell(tuple(int(n) for n in s), int(d0), draw, seed=seed, means=tuple(means), std=std, device=device)
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
                   train: bool = True, device=None, progress: bool = False) -> pd.DataFrame:
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
        train: False leaves the trained nets out (the kernels only, e.g. to re-compute a committed cell).
        device: where the data are drawn, the kernels and the EoS solved and the nets trained (None: the CPU).

    Returns:
        :func:`~nckernels.experiments.cells.run_grid` rows with the extra column ``family``; kernels "data",
        "NNGP act", "NTK act", "adaptive" (failed rows carry "kappa=...: cause", plus residual, evaluations),
        "trained net" (loss, accuracy). Book chapter ``13_hard_data``.
    """
    check_grid([list(v) for v in families.values()], d0s, draws)
    device = check_device(device)
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

    if train:
        measures.append(Measure("trained net", trained, batched=True))
    cells = [HardCell(tuple(int(n) for n in split), int(d0), draw, seed=seed, family=fam,
                      options=tuple(dict(options.get(fam, {})).items()), device=device)
             for fam, split in families.items() for d0 in d0s for draw in range(draws)]
    return run_grid(cells, measures, progress=progress, desc="hard data grid")
