r"""Population (N -> infinity) NC1 of a kernel on balanced Gaussian classes, in two exact limits.

For C balanced classes, N -> infinity turns the block sums of ``collapse.nc1_from_kernel`` into
expectations: with a_c = E[k(x, x)] for x ~ class c and E_cc' = E[k(x, x')] for independent
x ~ c, x' ~ c',

    Tr Sigma_W -> (1/C) sum_c (a_c - E_cc),    Tr Sigma_B -> (1/C) sum_c E_cc - (1/C^2) sum_cc' E_cc'.

* d0 = 1: the expectations are integrals over one or two Gaussian coordinates, computed with
  Gauss-Hermite quadrature (exact to rounding for the smooth erf kernels at order ~100).
* d0 -> infinity: x.x'/d0 concentrates on m_c m_c' (x != x') and |x|^2/d0 on m_c^2 + s^2 for means
  m_c 1 and per-coordinate std s, so every kernel that depends on its inputs through K1 becomes a
  block matrix with known entries.

Derived in book chapter ``04_ntk_vs_nngp``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from .duals import get_activation
from .two_layer import ntk_from_parts
from ..metrics import UndefinedNC1Error
from ..validation import check_choice, check_int, check_matrix, check_nonnegative, check_positive, check_vector

__all__ = ["PopulationNC1", "nc1_from_class_expectations", "population_nc1_1d", "population_nc1_large_d0", "KERNEL_KINDS"]

KERNEL_KINDS = ("data", "nngp", "ntk")


@dataclass(frozen=True, init=False)
class PopulationNC1:
    """(trace_within, trace_between, nc1) of the population limit (eq. ``nvn-pop``); built from the two traces,
    nc1 = trace_within / trace_between; iterable and indexable in that order (``tw, tb, nc1 = r``)."""

    trace_within: float
    trace_between: float
    nc1: float

    def __init__(self, trace_within: float, trace_between: float):
        tw, tb = float(trace_within), float(trace_between)
        object.__setattr__(self, "trace_within", tw)
        object.__setattr__(self, "trace_between", tb)
        object.__setattr__(self, "nc1", tw / tb)

    def __iter__(self):
        return iter((self.trace_within, self.trace_between, self.nc1))

    def __len__(self):
        return 3

    def __getitem__(self, i):
        return (self.trace_within, self.trace_between, self.nc1)[i]


def nc1_from_class_expectations(diag, cross) -> PopulationNC1:
    """Population NC1 of balanced classes from a_c = E[k(x,x)] (C,) and E_cc' (C, C), uniform weights.

    Eq. ``nvn-pop`` of chapter ``04_ntk_vs_nngp``.
    """
    diag = check_vector(diag, "diag").to(torch.float64).cpu().numpy()
    C = diag.shape[0]
    if C < 2:
        raise ValueError(f"diag must hold at least two classes, got {C}")
    cross = check_matrix(cross, "cross", symmetric=True).to(torch.float64).cpu().numpy()
    if cross.shape != (C, C):
        raise ValueError(f"cross must have shape ({C}, {C}), got {cross.shape}")
    tw = float(np.mean(diag - np.diag(cross)))
    tb = float(np.mean(np.diag(cross)) - cross.mean())
    if not tb > 0:
        raise UndefinedNC1Error(f"the between-class trace is {tb:.3g} (the class means coincide in feature space); "
                         "the population NC1 is undefined")
    return PopulationNC1(tw, tb)


def _check_means(means) -> torch.Tensor:
    m = check_vector(means, "means").to(torch.float64)
    if m.numel() < 2:
        raise ValueError(f"means must list at least two class means, got {m.numel()}")
    return m


def population_nc1_1d(kernel: Callable, means=(-2.0, 2.0), std: float = 0.5, *, order: int = 120) -> PopulationNC1:
    r"""Population NC1 of ``kernel(X, Z) -> (n, m)`` for balanced 1-D Gaussian classes N(m_c, std^2).

    E_cc' = sum_kl w_k w_l k(x_ck, x_c'l) with Gauss-Hermite nodes x_ck = m_c + sqrt(2) std t_k and
    weights w_k / sqrt(pi); a_c likewise with k(x, x).
    Eq. ``nvn-pop`` of chapter ``04_ntk_vs_nngp``.
    """
    if not callable(kernel):
        raise TypeError(f"kernel must be a callable kernel(X, Z) -> (n, m), got {type(kernel).__name__}")
    means = _check_means(means).tolist()
    std = check_positive(std, "std")
    order = check_int(order, "order", minimum=2)
    t, w = np.polynomial.hermite.hermgauss(order)
    w = torch.as_tensor(w / np.sqrt(np.pi), dtype=torch.float64)
    nodes = [torch.as_tensor(m + np.sqrt(2.0) * std * t, dtype=torch.float64)[:, None] for m in means]
    C = len(nodes)
    cross = np.empty((C, C))
    diag = np.empty(C)
    for c in range(C):
        diag[c] = float(w @ torch.stack([kernel(x[None], None)[0, 0] for x in nodes[c]]))
        for c2 in range(C):
            cross[c, c2] = float(w @ kernel(nodes[c], nodes[c2]) @ w)
    return nc1_from_class_expectations(diag, cross)


def population_nc1_large_d0(
    kind: str,
    *,
    activation: str = "erf",
    means=(-2.0, 2.0),
    std: float = 0.5,
    sigma_w: float = 1.0,
    sigma_b: float = 0.0,
    sigma_a: float = 1.0,
) -> PopulationNC1:
    r"""Population NC1 as d0 -> infinity for classes N(m_c 1, std^2 I) of kernel ``kind``.

    kind: "data" (the linear kernel x.x'/d0), "nngp" or "ntk" (of ``activation``).
    K1 blocks: diagonal sigma_b^2 + sigma_w^2 (m_c^2 + s^2), off-diagonal sigma_b^2 + sigma_w^2 m_c m_c'.
    Eq. ``nvn-blocks`` of chapter ``04_ntk_vs_nngp``.
    """
    check_choice(kind, "kind", KERNEL_KINDS)
    std = check_positive(std, "std")
    sigma_w, sigma_b, sigma_a = (check_nonnegative(v, n) for v, n in ((sigma_w, "sigma_w"), (sigma_b, "sigma_b"), (sigma_a, "sigma_a")))
    m = _check_means(means)
    var = sigma_b**2 + sigma_w**2 * (m * m + std**2)  # (C,) K1 on the diagonal
    K1 = sigma_b**2 + sigma_w**2 * m[:, None] * m[None, :]  # (C, C) K1 between distinct samples
    if kind == "data":
        return nc1_from_class_expectations((m * m + std**2).numpy(), (m[:, None] * m[None, :]).numpy())
    act = get_activation(activation)
    v1, v2 = var[:, None], var[None, :]
    diag = act.dual(var, var, var)
    cross = act.dual(K1, v1, v2)
    if kind == "ntk":
        diag = ntk_from_parts(diag, act.dual_derivative(var, var, var), var, sigma_a)
        cross = ntk_from_parts(cross, act.dual_derivative(K1, v1, v2), K1, sigma_a)
    return nc1_from_class_expectations(diag.numpy(), cross.numpy())
