r"""Layer 3, kernels: NNGP and NTK of deep fully connected networks (``depth`` hidden layers), by the layer recursion
on the dual-activation contract, and their d0 -> infinity population limit on class blocks.

Network (NTK parametrisation, the two-layer conventions of ``03_two_layer_kernels``): depth hidden layers, each
Dense(sigma_w, sigma_b) then phi, then a read-out Dense(sigma_a) without bias. Recursion (book chapter
``12_depth_and_activation``), for a pair (x, z) with diagonals carried alongside:

    K^1       = sigma_b^2 + (sigma_w^2/d0) x.z                          Theta^1 = K^1
    Kphi^l    = E[phi(u) phi(v)],  Kdot^l = E[phi'(u) phi'(v)],        (u, v) ~ N(0, K^l on {x, z})
    K^{l+1}   = sigma_b^2 + sigma_w^2 Kphi^l                            Theta^{l+1} = K^{l+1} + sigma_w^2 Kdot^l Theta^l
    NNGP      = Kphi^depth                                              NTK = sigma_a^2 (Kphi^depth + Kdot^depth Theta^depth)

so depth = 1 is the two-layer :func:`nckernels.kernels.two_layer.nngp` / ``ntk`` (same functions, same
values). neural-tangents' ``stax.serial(*[Dense(W_std=sigma_w, b_std=sigma_b), Act()] * depth,
Dense(W_std=sigma_a, b_std=None))`` returns the same NTK and, as its nngp, the read-out's kernel
sigma_a^2 NNGP (checked against a stored fixture in ``tests/test_deep_kernels.py``).

May import: :mod:`nckernels.validation`, other :mod:`nckernels.kernels` modules.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .duals import check_covariance
from .population import KERNEL_KINDS, PopulationNC1, nc1_from_class_expectations, population_nc1_1d
from .quadrature import resolve_activation
from .two_layer import check_scales, ntk_from_parts, preactivation_parts
from ..validation import (as_float_tensor, check_choice, check_finite, check_int, check_nonnegative, check_pair,
                          check_positive)

__all__ = [
    "DeepKernels",
    "deep_recursion",
    "deep_kernels",
    "deep_nngp",
    "deep_ntk",
    "deep_population_nc1_large_d0",
    "deep_population_nc1_1d",
]


@dataclass(frozen=True)
class DeepKernels:
    """NNGP (last hidden layer's post-activation kernel) and NTK of a deep net, and the last pre-activation kernel; (n, m) each.

    Eqs. ``dep-rec`` and ``dep-ntk`` of chapter ``12_depth_and_activation``.
    """

    nngp: torch.Tensor
    ntk: torch.Tensor | None
    preactivation: torch.Tensor
    depth: int


def _self_dual(act, var, with_derivative):
    """E[phi(u)^2] (and E[phi'(u)^2]) for u ~ N(0, var): the dual on the diagonal c = v1 = v2."""
    if with_derivative:
        return act.dual(var, var, var), act.dual_derivative(var, var, var)
    return act.dual(var, var, var), None


def deep_recursion(K1, v1, v2, *, activation, sigma_w: float, sigma_b: float, sigma_a: float = 1.0, depth: int = 1,
                   with_ntk: bool = True, symmetric: bool = False) -> DeepKernels:
    r"""Run the depth recursion from the first pre-activation kernel: K^{l+1} = sigma_b^2 + sigma_w^2 E[phi phi], Theta^{l+1} = K^{l+1} + sigma_w^2 Kdot^l Theta^l.

    Args:
        K1: first-layer pre-activation covariances, any shape (an (n, m) Gram block, or (C, C) class blocks).
        v1, v2: the matching variances K1(x, x), K1(z, z), broadcastable against K1 ((n, 1) and (1, m)).
        activation: a name of ``DEEP_ACTIVATIONS``, an ``Activation`` or an elementwise torch callable.
        sigma_w, sigma_b, sigma_a: standard deviations (hidden weights times sqrt(fan-in), biases, read-out).
        depth: number of hidden layers >= 1.
        with_ntk: also carry Theta and return the NTK (else ``ntk`` is None).
        symmetric: K1 is a symmetric Gram matrix with v1 = v2^T = its diagonal; every layer is then
            symmetrised and its diagonal read off the matrix, so the result is exactly symmetric.

    Returns:
        :class:`DeepKernels` with NNGP = Kphi^depth and NTK = ``ntk_from_parts(Kphi^depth, Kdot^depth, Theta^depth, sigma_a)``.
        Eqs. of book chapter ``12_depth_and_activation``.
    """
    act = resolve_activation(activation)
    depth = check_int(depth, "depth", minimum=1)
    K1, v1, v2 = check_covariance(K1, v1, v2, names=("K1", "v1", "v2"))
    K, theta = K1, K1
    for layer in range(1, depth + 1):
        k_phi = act.dual(K, v1, v2)
        k_dot = act.dual_derivative(K, v1, v2) if with_ntk else None
        if symmetric:
            k_phi = 0.5 * (k_phi + k_phi.transpose(-1, -2))
            if with_ntk:
                k_dot = 0.5 * (k_dot + k_dot.transpose(-1, -2))
        if layer == depth:
            ntk = ntk_from_parts(k_phi, k_dot, theta, sigma_a) if with_ntk else None
            return DeepKernels(nngp=k_phi, ntk=ntk, preactivation=K, depth=depth)
        K_next = sigma_b**2 + sigma_w**2 * k_phi
        if with_ntk:
            theta = K_next + sigma_w**2 * k_dot * theta
        if symmetric:
            d = K_next.diagonal(dim1=-2, dim2=-1)
            v1, v2 = d.unsqueeze(-1), d.unsqueeze(-2)
        else:
            v1 = sigma_b**2 + sigma_w**2 * act.dual(v1, v1, v1)
            v2 = sigma_b**2 + sigma_w**2 * act.dual(v2, v2, v2)
        K = K_next
    raise AssertionError("unreachable")  # pragma: no cover


def deep_kernels(X, Z=None, *, activation="erf", sigma_w: float = 1.0, sigma_b: float = 0.0, sigma_a: float = 1.0,
                 depth: int = 1, with_ntk: bool = True) -> DeepKernels:
    r"""NNGP and NTK of a net with ``depth`` hidden layers Dense(sigma_w, sigma_b) + phi and a read-out Dense(sigma_a), no bias.

    Args:
        X: (n, d0) inputs; Z: (m, d0) or None (then Z = X and both kernels are exactly symmetric).
        activation: "erf", "relu", "gelu" (closed forms), "tanh" (quadrature), an ``Activation``, or any
            elementwise torch callable (Gauss-Hermite duals, phi' by autograd; see
            :mod:`nckernels.kernels.quadrature`).
        sigma_w, sigma_b, sigma_a: standard deviations; depth: hidden layers >= 1.

    Returns:
        :class:`DeepKernels` of (n, m) tensors with X's dtype and device. Book chapter ``12_depth_and_activation``.
    """
    X, Z, same = check_pair(X, Z)
    sigma_w, sigma_b = check_scales(sigma_w, sigma_b)
    sigma_a = check_nonnegative(sigma_a, "sigma_a")
    depth = check_int(depth, "depth", minimum=1)
    act = resolve_activation(activation)
    K1, vx, vz = preactivation_parts(X, Z, same, sigma_w, sigma_b)
    return deep_recursion(K1, vx[:, None], vz[None, :], activation=act, sigma_w=sigma_w, sigma_b=sigma_b,
                          sigma_a=sigma_a, depth=depth, with_ntk=with_ntk, symmetric=same)


def deep_nngp(X, Z=None, *, activation="erf", sigma_w: float = 1.0, sigma_b: float = 0.0, depth: int = 1) -> torch.Tensor:
    r"""NNGP of the last hidden layer, Kphi^depth(x, z) = E[phi(u) phi(v)], (u, v) ~ N(0, K^depth on {x, z}).

    X (n, d0), Z (m, d0) or None -> (n, m); depth = 1 is :func:`nckernels.kernels.two_layer.nngp`. Arguments as in
    :func:`deep_kernels`. Book chapter ``12_depth_and_activation``.
    """
    return deep_kernels(X, Z, activation=activation, sigma_w=sigma_w, sigma_b=sigma_b, depth=depth, with_ntk=False).nngp


def deep_ntk(X, Z=None, *, activation="erf", sigma_w: float = 1.0, sigma_b: float = 0.0, sigma_a: float = 1.0,
             depth: int = 1) -> torch.Tensor:
    r"""NTK of the whole net, sigma_a^2 (Kphi^depth + Kdot^depth Theta^depth) with Theta^{l+1} = K^{l+1} + sigma_w^2 Kdot^l Theta^l.

    X (n, d0), Z (m, d0) or None -> (n, m); depth = 1 is :func:`nckernels.kernels.two_layer.ntk`. Arguments as in
    :func:`deep_kernels`. Book chapter ``12_depth_and_activation``.
    """
    return deep_kernels(X, Z, activation=activation, sigma_w=sigma_w, sigma_b=sigma_b, sigma_a=sigma_a,
                        depth=depth).ntk


def deep_population_nc1_large_d0(kind: str, activation="erf", depth: int = 1, *, means=(-2.0, 2.0), std=0.5,
                                 sigma_w: float = 1.0, sigma_b: float = 0.0, sigma_a: float = 1.0) -> PopulationNC1:
    r"""Population NC1 as d0 -> infinity of the depth-``depth`` NNGP or NTK for balanced classes N(m_c 1, s_c^2 I).

    x.x'/d0 concentrates on m_c m_c' (x != x') and |x|^2/d0 on m_c^2 + s_c^2, so K^1 is a block matrix:
    self entries v_c = sigma_b^2 + sigma_w^2 (m_c^2 + s_c^2) and cross entries sigma_b^2 + sigma_w^2 m_c m_c'.
    The depth recursion of :func:`deep_recursion` then runs on the (C, C) cross blocks with variances v_c, and
    on the self entries (v_c, v_c, v_c); a_c and E_cc' feed ``nc1_from_class_expectations``.

    Args:
        kind: "data", "nngp" or "ntk"; activation, depth, sigma_*: as in :func:`deep_kernels`.
        means: (C,) scalars m_c; std: one s > 0 or (C,) per-class stds s_c.

    Returns:
        ``PopulationNC1(trace_within, trace_between)``. depth = 1 equals
        :func:`nckernels.kernels.population.population_nc1_large_d0`. Book chapter ``12_depth_and_activation``.
    """
    check_choice(kind, "kind", KERNEL_KINDS)
    depth = check_int(depth, "depth", minimum=1)
    sigma_w, sigma_b = check_scales(sigma_w, sigma_b)
    sigma_a = check_nonnegative(sigma_a, "sigma_a")
    m = check_finite(as_float_tensor(means, "means").to(torch.float64).reshape(-1), "means")
    if m.numel() < 2:
        raise ValueError(f"means must list at least two class means, got {means!r}")
    s = as_float_tensor(std, "std").to(torch.float64).reshape(-1)
    if s.numel() == 1:
        s = s.expand(m.numel())
    if s.numel() != m.numel():
        raise ValueError(f"std must be one number or one per class ({m.numel()}), got {s.numel()} values")
    for value in s.tolist():
        check_positive(value, "std")
    second = m * m + s * s  # (C,) E|x|^2/d0
    cross_data = m[:, None] * m[None, :]  # (C, C) E x.x'/d0, x != x'
    if kind == "data":
        return nc1_from_class_expectations(second.numpy(), cross_data.numpy())
    var = sigma_b**2 + sigma_w**2 * second  # (C,)
    K1 = sigma_b**2 + sigma_w**2 * cross_data  # (C, C)
    args = dict(activation=activation, sigma_w=sigma_w, sigma_b=sigma_b, sigma_a=sigma_a, depth=depth,
                with_ntk=kind == "ntk")
    self_k = deep_recursion(var, var, var, **args)
    cross_k = deep_recursion(K1, var[:, None], var[None, :], **args)
    pick = (lambda k: k.ntk) if kind == "ntk" else (lambda k: k.nngp)
    return nc1_from_class_expectations(np.asarray(pick(self_k).numpy()), np.asarray(pick(cross_k).numpy()))


def deep_population_nc1_1d(kind: str, activation="erf", depth: int = 1, *, means=(-2.0, 2.0), std: float = 0.5,
                           sigma_w: float = 1.0, sigma_b: float = 0.0, sigma_a: float = 1.0,
                           order: int = 120) -> PopulationNC1:
    r"""Population NC1 at d0 = 1 of the depth-``depth`` NNGP or NTK for balanced classes N(m_c, std^2), by Gauss-Hermite.

    :func:`nckernels.kernels.population.population_nc1_1d` applied to :func:`deep_nngp` / :func:`deep_ntk`
    (kind "data" is the linear kernel x.x'). Arguments as in :func:`deep_population_nc1_large_d0`; ``order``:
    Gauss-Hermite nodes per class. Book chapter ``12_depth_and_activation``.
    """
    check_choice(kind, "kind", KERNEL_KINDS)
    depth = check_int(depth, "depth", minimum=1)
    resolve_activation(activation)
    if kind == "data":
        kernel = lambda X, Z: X @ (X if Z is None else Z).T  # noqa: E731
    elif kind == "nngp":
        kernel = lambda X, Z: deep_nngp(X, Z, activation=activation, sigma_w=sigma_w, sigma_b=sigma_b,  # noqa: E731
                                        depth=depth)
    else:
        kernel = lambda X, Z: deep_ntk(X, Z, activation=activation, sigma_w=sigma_w, sigma_b=sigma_b,  # noqa: E731
                                       sigma_a=sigma_a, depth=depth)
    return population_nc1_1d(kernel, means=means, std=std, order=order)
