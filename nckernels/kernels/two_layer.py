r"""Infinite-width kernels of the two-layer network f(x) = a^T phi(W x + b), and its finite-width estimates.

Conventions (book chapter ``03_two_layer_kernels``): W_jk ~ N(0, sigma_w^2/d0), b_j ~ N(0, sigma_b^2),
a_j ~ N(0, sigma_a^2/h). The pre-activation kernel is K1(x, x') = sigma_b^2 + (sigma_w^2/d0) x.x'; the
NNGP feature kernel K_phi(x, x') = E[phi(u) phi(v)] and the derivative kernel Kdot = E[phi'(u) phi'(v)]
for (u, v) ~ N(0, K1 restricted to {x, x'}); the NTK of the net in NTK parametrisation with no read-out
bias is Theta = sigma_a^2 (K_phi + K1 * Kdot) (entrywise product).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch

from .duals import Activation, get_activation
from ..validation import check_matrix, check_nonnegative, check_pair

__all__ = [
    "preactivation_kernel",
    "nngp",
    "derivative_kernel",
    "ntk",
    "two_layer_kernels",
    "two_layer_features",
    "FiniteWidthKernels",
    "finite_width_kernels",
]



def _scales(sigma_w, sigma_b):
    return check_nonnegative(sigma_w, "sigma_w"), check_nonnegative(sigma_b, "sigma_b")


def _preactivation(X, Z, same, sigma_w, sigma_b):
    """(K1 (n, m), diag over X (n,), diag over Z (m,)); exactly symmetric when ``same``."""
    d0 = X.shape[1]
    K1 = sigma_b**2 + (sigma_w**2 / d0) * (X @ Z.T)  # (n, d0) @ (d0, m) -> (n, m)
    if same:
        K1 = 0.5 * (K1 + K1.T)
        vx = K1.diagonal().clone()
        return K1, vx, vx
    vx = sigma_b**2 + (sigma_w**2 / d0) * (X * X).sum(1)
    vz = sigma_b**2 + (sigma_w**2 / d0) * (Z * Z).sum(1)
    return K1, vx, vz


def preactivation_kernel(X, Z=None, *, sigma_w: float = 1.0, sigma_b: float = 0.0) -> torch.Tensor:
    """K1(x, z) = sigma_b^2 + (sigma_w^2 / d0) x.z; X (n, d0), Z (m, d0) -> (n, m)."""
    X, Z, same = check_pair(X, Z)
    sigma_w, sigma_b = _scales(sigma_w, sigma_b)
    return _preactivation(X, Z, same, sigma_w, sigma_b)[0]


def _kernels(X, Z, activation, sigma_w, sigma_b, which):
    X, Z, same = check_pair(X, Z)
    sigma_w, sigma_b = _scales(sigma_w, sigma_b)
    act: Activation = get_activation(activation)
    K1, vx, vz = _preactivation(X, Z, same, sigma_w, sigma_b)
    v1, v2 = vx[:, None], vz[None, :]
    out = {}
    if "nngp" in which:
        out["nngp"] = act.dual(K1, v1, v2)
    if "dot" in which:
        out["dot"] = act.dual_derivative(K1, v1, v2)
    out["K1"] = K1
    return out


def nngp(X, Z=None, *, activation: str = "erf", sigma_w: float = 1.0, sigma_b: float = 0.0) -> torch.Tensor:
    r"""NNGP feature kernel K_phi(x, z) = E[phi(u) phi(v)], (u, v) ~ N(0, K1 on {x, z}).

    Args:
        X: (n, d0) inputs; Z: (m, d0) or None (then Z = X and the result is exactly symmetric).
        activation: "erf" or "relu".
        sigma_w, sigma_b: standard deviations of the hidden weights (times sqrt(d0)) and biases.

    Returns:
        (n, m) tensor with X's dtype and device.
    """
    return _kernels(X, Z, activation, sigma_w, sigma_b, ("nngp",))["nngp"]


def derivative_kernel(X, Z=None, *, activation: str = "erf", sigma_w: float = 1.0, sigma_b: float = 0.0) -> torch.Tensor:
    r"""Derivative kernel Kdot(x, z) = E[phi'(u) phi'(v)]; shapes as in :func:`nngp`."""
    return _kernels(X, Z, activation, sigma_w, sigma_b, ("dot",))["dot"]


def ntk(
    X,
    Z=None,
    *,
    activation: str = "erf",
    sigma_w: float = 1.0,
    sigma_b: float = 0.0,
    sigma_a: float = 1.0,
) -> torch.Tensor:
    r"""NTK of the two-layer net: Theta = sigma_a^2 (K_phi + K1 * Kdot); shapes as in :func:`nngp`.

    The first term is the gradient with respect to the read-out a, the second the gradient with
    respect to (W, b), whose inner products carry K1 = sigma_b^2 + (sigma_w^2/d0) x.z.
    """
    sigma_a = check_nonnegative(sigma_a, "sigma_a")
    k = _kernels(X, Z, activation, sigma_w, sigma_b, ("nngp", "dot"))
    return sigma_a**2 * (k["nngp"] + k["K1"] * k["dot"])


def two_layer_kernels(
    X,
    *,
    activations=("erf", "relu"),
    sigma_w: float = 1.0,
    sigma_b: float = 0.0,
    sigma_a: float = 1.0,
) -> dict[str, torch.Tensor]:
    r"""NNGP and NTK of several activations on one data set, sharing K1: {"K1", "NNGP erf", "NTK erf", ...}.

    Each entry equals the corresponding :func:`nngp` / :func:`ntk` of X with Z = None (exactly
    symmetric, (N, N)); computing K1 and its diagonal once makes a grid of kernels about twice as fast.
    """
    X, Z, same = check_pair(X, None)
    sigma_w, sigma_b = _scales(sigma_w, sigma_b)
    sigma_a = check_nonnegative(sigma_a, "sigma_a")
    K1, vx, _ = _preactivation(X, Z, same, sigma_w, sigma_b)
    v1, v2 = vx[:, None], vx[None, :]
    out = {"K1": K1}
    out.update(_family_from_preactivation(K1, v1, v2, activations, sigma_a))
    return out


def _family_from_preactivation(K1, v1, v2, activations, sigma_a):
    out = {}
    for name in activations:
        act = get_activation(name, "activations")
        k_phi, k_dot = act.both(K1, v1, v2)
        out[f"NNGP {act.name}"] = k_phi
        out[f"NTK {act.name}"] = sigma_a**2 * (k_phi + K1 * k_dot)
    return out


def _hidden_weights(d0, width, sigma_w, sigma_b, generator, like):
    gen_device = generator.device if generator is not None else torch.device("cpu")
    W = torch.randn(width, d0, generator=generator, dtype=like.dtype, device=gen_device).to(like.device)
    b = torch.randn(width, generator=generator, dtype=like.dtype, device=gen_device).to(like.device)
    return W * (sigma_w / math.sqrt(d0)), b * sigma_b


def two_layer_features(
    X,
    *,
    width: int,
    activation: str = "erf",
    sigma_w: float = 1.0,
    sigma_b: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Hidden post-activations H = phi(X W^T + b) of one random network: X (N, d0) -> (N, width).

    (1/width) H H^T converges to :func:`nngp` as width grows.
    """
    X = check_matrix(X, "X")
    if not isinstance(width, int) or width < 1:
        raise ValueError(f"width must be a positive integer, got {width!r}")
    sigma_w, sigma_b = _scales(sigma_w, sigma_b)
    act = get_activation(activation)
    W, b = _hidden_weights(X.shape[1], width, sigma_w, sigma_b, generator, X)
    return act.phi(X @ W.T + b)  # (N, d0) @ (d0, width) -> (N, width)


class FiniteWidthKernels(NamedTuple):
    """Monte Carlo kernels of one finite network with their per-entry standard errors."""

    nngp: torch.Tensor
    nngp_se: torch.Tensor
    ntk: torch.Tensor
    ntk_se: torch.Tensor
    width: int


def finite_width_kernels(
    X,
    Z=None,
    *,
    width: int,
    activation: str = "erf",
    sigma_w: float = 1.0,
    sigma_b: float = 0.0,
    sigma_a: float = 1.0,
    generator: torch.Generator | None = None,
    chunk: int = 4096,
) -> FiniteWidthKernels:
    r"""Empirical NNGP and NTK of one random two-layer network of the given width.

    Each is an average over the h hidden units of i.i.d. per-unit contributions
    phi(u_j) phi(v_j) and sigma_a^2 [phi(u_j) phi(v_j) + a_j^2 phi'(u_j) phi'(v_j) K1] (a_j ~ N(0, 1)),
    so the standard error of each entry is the sample standard deviation over units / sqrt(h).
    Units are processed in chunks so memory stays O(n m chunk).
    """
    X, Z, same = check_pair(X, Z)
    if not isinstance(width, int) or width < 2:
        raise ValueError(f"width must be an integer >= 2, got {width!r}")
    sigma_w, sigma_b = _scales(sigma_w, sigma_b)
    sigma_a = check_nonnegative(sigma_a, "sigma_a")
    act = get_activation(activation)
    W, b = _hidden_weights(X.shape[1], width, sigma_w, sigma_b, generator, X)
    gen_device = generator.device if generator is not None else torch.device("cpu")
    a = torch.randn(width, generator=generator, dtype=X.dtype, device=gen_device).to(X.device)
    K1 = _preactivation(X, Z, same, sigma_w, sigma_b)[0]
    sums = {k: torch.zeros_like(K1) for k in ("g", "g2", "t", "t2")}
    for start in range(0, width, chunk):
        sl = slice(start, start + chunk)
        U, V = X @ W[sl].T + b[sl], Z @ W[sl].T + b[sl]  # (n, c), (m, c)
        g = act.phi(U)[:, None, :] * act.phi(V)[None, :, :]  # (n, m, c)
        dd = act.phi_prime(U)[:, None, :] * act.phi_prime(V)[None, :, :]
        t = sigma_a**2 * (g + (a[sl] ** 2) * dd * K1[:, :, None])
        sums["g"] += g.sum(-1)
        sums["g2"] += (g * g).sum(-1)
        sums["t"] += t.sum(-1)
        sums["t2"] += (t * t).sum(-1)
    h = float(width)

    def mean_se(s, s2):
        mean = s / h
        var = (s2 / h - mean * mean).clamp_min(0) * h / (h - 1)
        return mean, (var / h).sqrt()

    g_mean, g_se = mean_se(sums["g"], sums["g2"])
    t_mean, t_se = mean_se(sums["t"], sums["t2"])
    return FiniteWidthKernels(g_mean, g_se, t_mean, t_se, width)
