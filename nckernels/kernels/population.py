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

from typing import Callable

import numpy as np
import torch

from .duals import get_activation
from ..validation import check_nonnegative, check_positive, check_choice

__all__ = ["PopulationNC1", "nc1_from_class_expectations", "population_nc1_1d", "population_nc1_large_d0", "KERNEL_KINDS"]

KERNEL_KINDS = ("data", "nngp", "ntk")


class PopulationNC1(tuple):
    """(trace_within, trace_between, nc1) of the population limit."""

    __slots__ = ()

    def __new__(cls, trace_within: float, trace_between: float):
        return super().__new__(cls, (float(trace_within), float(trace_between), float(trace_within) / float(trace_between)))

    trace_within = property(lambda self: self[0])
    trace_between = property(lambda self: self[1])
    nc1 = property(lambda self: self[2])


def nc1_from_class_expectations(diag, cross) -> PopulationNC1:
    """Population NC1 of balanced classes from a_c = E[k(x,x)] (C,) and E_cc' (C, C), uniform weights."""
    diag = np.asarray(diag, dtype=float)
    cross = np.asarray(cross, dtype=float)
    C = diag.shape[0]
    if cross.shape != (C, C):
        raise ValueError(f"cross must have shape ({C}, {C}), got {cross.shape}")
    tw = float(np.mean(diag - np.diag(cross)))
    tb = float(np.mean(np.diag(cross)) - cross.mean())
    return PopulationNC1(tw, tb)


def population_nc1_1d(kernel: Callable, means=(-2.0, 2.0), std: float = 0.5, *, order: int = 120) -> PopulationNC1:
    r"""Population NC1 of ``kernel(X, Z) -> (n, m)`` for balanced 1-D Gaussian classes N(m_c, std^2).

    E_cc' = sum_kl w_k w_l k(x_ck, x_c'l) with Gauss-Hermite nodes x_ck = m_c + sqrt(2) std t_k and
    weights w_k / sqrt(pi); a_c likewise with k(x, x).
    """
    std = check_positive(std, "std")
    if not isinstance(order, int) or order < 2:
        raise ValueError(f"order must be an integer >= 2, got {order!r}")
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
    """
    check_choice(kind, "kind", KERNEL_KINDS)
    std = check_positive(std, "std")
    sigma_w, sigma_b, sigma_a = (check_nonnegative(v, n) for v, n in ((sigma_w, "sigma_w"), (sigma_b, "sigma_b"), (sigma_a, "sigma_a")))
    m = torch.as_tensor(means, dtype=torch.float64)
    var = sigma_b**2 + sigma_w**2 * (m * m + std**2)  # (C,) K1 on the diagonal
    K1 = sigma_b**2 + sigma_w**2 * m[:, None] * m[None, :]  # (C, C) K1 between distinct samples
    if kind == "data":
        return nc1_from_class_expectations((m * m + std**2).numpy(), (m[:, None] * m[None, :]).numpy())
    act = get_activation(activation)
    v1, v2 = var[:, None], var[None, :]
    diag = act.dual(var, var, var)
    cross = act.dual(K1, v1, v2)
    if kind == "ntk":
        diag = sigma_a**2 * (diag + var * act.dual_derivative(var, var, var))
        cross = sigma_a**2 * (cross + K1 * act.dual_derivative(K1, v1, v2))
    return nc1_from_class_expectations(diag.numpy(), cross.numpy())
