r"""Infinite-width kernels of the two-layer network f(x) = a^T phi(W x + b), and its finite-width estimates.

Conventions (book chapter ``03_two_layer_kernels``): W_jk ~ N(0, sigma_w^2/d0), b_j ~ N(0, sigma_b^2),
a_j ~ N(0, sigma_a^2/h). The pre-activation kernel is K1(x, x') = sigma_b^2 + (sigma_w^2/d0) x.x'; the
NNGP feature kernel K_phi(x, x') = E[phi(u) phi(v)] and the derivative kernel Kdot = E[phi'(u) phi'(v)]
for (u, v) ~ N(0, K1 restricted to {x, x'}); the NTK of the net in NTK parametrisation with no read-out
bias is Theta = sigma_a^2 (K_phi + K1 * Kdot) (entrywise product).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .duals import ACTIVATIONS, Activation, get_activation
from .quadrature import resolve_activation
from ..validation import (check_choice, check_device, check_float_dtype, check_generator, check_int, check_matrix,
                          check_nonnegative, check_pair)

__all__ = [
    "preactivation_kernel",
    "preactivation_parts",
    "check_scales",
    "nngp",
    "derivative_kernel",
    "ntk",
    "ntk_from_parts",
    "kernel_family_from_preactivation",
    "two_layer_kernels",
    "PARAMETRISATIONS",
    "TwoLayerParams",
    "draw_two_layer_params",
    "two_layer_hidden",
    "two_layer_output",
    "two_layer_features",
    "FiniteWidthKernels",
    "finite_width_kernels",
]



def check_scales(sigma_w, sigma_b):
    """(sigma_w, sigma_b) as floats, each checked non-negative (a ``ValueError`` names the argument).

    Chapter ``03_two_layer_kernels``.
    """
    return check_nonnegative(sigma_w, "sigma_w"), check_nonnegative(sigma_b, "sigma_b")


def preactivation_parts(X, Z, same, sigma_w, sigma_b):
    """(K1 (n, m), diag over X (n,), diag over Z (m,)) of eq. ``tl-k1``; exactly symmetric when ``same``."""
    d0 = X.shape[1]
    K1 = sigma_b**2 + (sigma_w**2 / d0) * (X @ Z.T)  # (n, d0) @ (d0, m) -> (n, m)
    if same:
        K1 = 0.5 * (K1 + K1.T)
        vx = K1.diagonal().clone()
        _check_overflow(K1, vx, vx)
        return K1, vx, vx
    vx = sigma_b**2 + (sigma_w**2 / d0) * (X * X).sum(1)
    vz = sigma_b**2 + (sigma_w**2 / d0) * (Z * Z).sum(1)
    _check_overflow(K1, vx, vz)
    return K1, vx, vz


def _check_overflow(K1, vx, vz):
    if not (bool(torch.isfinite(vx).all()) and bool(torch.isfinite(vz).all()) and bool(torch.isfinite(K1).all())):
        raise ValueError("X (or Z) is too large: the pre-activation kernel sigma_b^2 + (sigma_w^2/d0) x.z overflowed "
                         f"{K1.dtype}; rescale the inputs")


def preactivation_kernel(X, Z=None, *, sigma_w: float = 1.0, sigma_b: float = 0.0) -> torch.Tensor:
    """K1(x, z) = sigma_b^2 + (sigma_w^2 / d0) x.z; X (n, d0), Z (m, d0) -> (n, m).

    Eq. ``tl-k1`` of chapter ``03_two_layer_kernels``.
    """
    X, Z, same = check_pair(X, Z)
    sigma_w, sigma_b = check_scales(sigma_w, sigma_b)
    return preactivation_parts(X, Z, same, sigma_w, sigma_b)[0]


def _kernels(X, Z, activation, sigma_w, sigma_b, which):
    X, Z, same = check_pair(X, Z)
    sigma_w, sigma_b = check_scales(sigma_w, sigma_b)
    act: Activation = resolve_activation(activation)
    K1, vx, vz = preactivation_parts(X, Z, same, sigma_w, sigma_b)
    v1, v2 = vx[:, None], vz[None, :]
    out = {}
    if "nngp" in which:
        out["nngp"] = act.dual(K1, v1, v2)
    if "dot" in which:
        out["dot"] = act.dual_derivative(K1, v1, v2)
    if same:  # a CPU's vectorised and scalar loops can round entries (i, j) and (j, i) of a dual differently
        # (measured: float32 erf, 2 355 of 9 000 random inputs asymmetric by up to 3e-8): made exactly symmetric
        out = {k: 0.5 * (v + v.T) for k, v in out.items()}
    out["K1"] = K1
    return out


def nngp(X, Z=None, *, activation: str = "erf", sigma_w: float = 1.0, sigma_b: float = 0.0,
         depth: int = 1) -> torch.Tensor:
    r"""NNGP feature kernel K_phi(x, z) = E[phi(u) phi(v)], (u, v) ~ N(0, K1 on {x, z}).

    Args:
        X: (n, d0) inputs; Z: (m, d0) or None (then Z = X and the result is exactly symmetric).
        activation: "erf", "relu", "gelu" (closed forms), "tanh" or an elementwise torch callable (quadrature,
            :mod:`nckernels.kernels.quadrature`).
        sigma_w, sigma_b: standard deviations of the hidden weights (times sqrt(d0)) and biases.
        depth: hidden layers; depth > 1 is :func:`nckernels.kernels.deep.deep_nngp` (chapter ``12_depth_and_activation``).

    Returns:
        (n, m) tensor with X's dtype and device.
    Eq. ``tl-nngp`` of chapter ``03_two_layer_kernels``.
    """
    if check_int(depth, "depth") != 1 or not (isinstance(activation, str) and activation in ACTIVATIONS):
        # deeper nets and the quadrature activations (symmetrised there); deep.py imports this module
        from .deep import deep_nngp

        return deep_nngp(X, Z, activation=activation, sigma_w=sigma_w, sigma_b=sigma_b, depth=depth)
    return _kernels(X, Z, activation, sigma_w, sigma_b, ("nngp",))["nngp"]


def derivative_kernel(X, Z=None, *, activation: str = "erf", sigma_w: float = 1.0, sigma_b: float = 0.0) -> torch.Tensor:
    r"""Derivative kernel Kdot(x, z) = E[phi'(u) phi'(v)]; shapes as in :func:`nngp`.

    Eqs. ``tl-erf-dot`` and ``tl-relu-dot`` of chapter ``03_two_layer_kernels``.
    """
    return _kernels(X, Z, activation, sigma_w, sigma_b, ("dot",))["dot"]


def ntk(
    X,
    Z=None,
    *,
    activation: str = "erf",
    sigma_w: float = 1.0,
    sigma_b: float = 0.0,
    sigma_a: float = 1.0,
    depth: int = 1,
) -> torch.Tensor:
    r"""NTK of the two-layer net: Theta = sigma_a^2 (K_phi + K1 * Kdot); shapes as in :func:`nngp`.

    The first term is the gradient with respect to the read-out a, the second the gradient with
    respect to (W, b), whose inner products carry K1 = sigma_b^2 + (sigma_w^2/d0) x.z. ``depth`` > 1 is the NTK
    of a net with that many hidden layers, :func:`nckernels.kernels.deep.deep_ntk` (chapter ``12_depth_and_activation``).
    Eq. ``tl-ntk`` of chapter ``03_two_layer_kernels``.
    """
    sigma_a = check_nonnegative(sigma_a, "sigma_a")
    if check_int(depth, "depth") != 1 or not (isinstance(activation, str) and activation in ACTIVATIONS):
        # deeper nets and the quadrature activations (symmetrised there); deep.py imports this module
        from .deep import deep_ntk

        return deep_ntk(X, Z, activation=activation, sigma_w=sigma_w, sigma_b=sigma_b, sigma_a=sigma_a, depth=depth)
    k = _kernels(X, Z, activation, sigma_w, sigma_b, ("nngp", "dot"))
    return ntk_from_parts(k["nngp"], k["dot"], k["K1"], sigma_a)


def ntk_from_parts(k_phi, k_dot, K1, sigma_a: float = 1.0):
    r"""Theta = sigma_a^2 (K_phi + K1 * Kdot) (entrywise): the two-layer NTK from its parts, eq. ``tl-ntk``.

    The one place the NTK is assembled: :func:`ntk`, :func:`two_layer_kernels`, the population limits,
    the reference variant and the streamed grids all call it. Tensors (or arrays) of one broadcast shape.
    """
    return sigma_a**2 * (k_phi + K1 * k_dot)


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
    Eqs. ``tl-nngp`` and ``tl-ntk`` of chapter ``03_two_layer_kernels``.
    """
    X, Z, same = check_pair(X, None)
    sigma_w, sigma_b = check_scales(sigma_w, sigma_b)
    sigma_a = check_nonnegative(sigma_a, "sigma_a")
    K1, vx, _ = preactivation_parts(X, Z, same, sigma_w, sigma_b)
    v1, v2 = vx[:, None], vx[None, :]
    out = {"K1": K1}
    out.update(kernel_family_from_preactivation(K1, v1, v2, activations, sigma_a))
    return out


def kernel_family_from_preactivation(K1, v1, v2, activations, sigma_a: float = 1.0) -> dict[str, torch.Tensor]:
    """{"NNGP act": K_phi, "NTK act": Theta} for each activation, from K1 (n, m) and its diagonals v1 (n, 1), v2 (1, m).

    Eqs. ``tl-nngp`` and ``tl-ntk`` of chapter ``03_two_layer_kernels``; lets a caller stream rows of K1.
    """
    if activations is None or isinstance(activations, (str, Activation)) or not len(activations):
        raise ValueError(f"activations must be a non-empty sequence of activation names, got {activations!r}")
    out = {}
    for name in activations:
        act = resolve_activation(name, "activations")
        k_phi, k_dot = act.both(K1, v1, v2)
        out[f"NNGP {act.name}"] = k_phi
        out[f"NTK {act.name}"] = ntk_from_parts(k_phi, k_dot, K1, sigma_a)
    return out


_family_from_preactivation = kernel_family_from_preactivation  # old private names, kept for old callers
_scales, _preactivation = check_scales, preactivation_parts


# --------------------------------------------------------------------------------------------------
# The finite network whose kernels these are (one definition: the draw and the forward map)

PARAMETRISATIONS = ("standard", "ntk")


@dataclass(frozen=True)
class TwoLayerParams:
    """Parameters of f(x) = a^T phi(W x + b) (eq. ``tn-net``): W (h, d0), b (h,), a (h,) or (h, k), a in
    ``parametrisation`` "standard" (W, b, a carry their scales: W_jk ~ N(0, sigma_w^2/d0), b_j ~ N(0, sigma_b^2),
    a_j ~ N(0, sigma_a^2/h)) or "ntk" (W, b, a standard normal; the forward map applies sigma_w/sqrt(d0),
    sigma_b and sigma_a/sqrt(h)); chapter ``03_two_layer_kernels``."""

    W: torch.Tensor
    b: torch.Tensor
    a: torch.Tensor | None
    parametrisation: str = "standard"
    sigma_w: float = 1.0
    sigma_b: float = 0.0
    sigma_a: float = 1.0

    def hidden_standard(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(W, b) with their scales applied: W (sigma_w/sqrt(d0)), b sigma_b for "ntk"; as stored for "standard"."""
        if self.parametrisation == "standard":
            return self.W, self.b
        return self.W * (self.sigma_w / math.sqrt(self.W.shape[1])), self.b * self.sigma_b


def draw_two_layer_params(d0: int, width: int, *, outputs: int | None = None, readout: bool = True,
                          sigma_w: float = 1.0, sigma_b: float = 0.0, sigma_a: float = 1.0,
                          parametrisation: str = "standard", generator: torch.Generator | None = None,
                          dtype=torch.float64, device=None) -> TwoLayerParams:
    """Draw W (h, d0), b (h,) and (if ``readout``) a (h,) or (h, outputs), in that order, as standard normals from
    ``generator`` (on its device, in ``dtype``), moved to ``device``; scaled as ``parametrisation`` says.

    The one random draw of the two-layer net: :func:`two_layer_features`, :func:`finite_width_kernels`, the
    trainer's ``init_networks`` and ``TwoLayerNTKNet`` all use it, so a seed gives the same network everywhere.
    Chapter ``03_two_layer_kernels``. The trained net is eq. ``tn-net`` of chapter ``06_trained_networks``.
    """
    check_generator(generator)
    check_choice(parametrisation, "parametrisation", PARAMETRISATIONS)
    d0, width = check_int(d0, "d0"), check_int(width, "width")
    outputs = check_int(outputs, "outputs", allow_none=True)
    sigma_w, sigma_b = check_scales(sigma_w, sigma_b)
    sigma_a = check_nonnegative(sigma_a, "sigma_a")
    check_float_dtype(dtype, "dtype")
    check_device(device, "device")
    gen_device = generator.device if generator is not None else torch.device("cpu")

    def normal(*shape):
        return torch.randn(*shape, generator=generator, dtype=dtype, device=gen_device).to(device)

    W, b = normal(width, d0), normal(width)
    a = (normal(width) if outputs is None else normal(width, outputs)) if readout else None
    if parametrisation == "standard":
        W, b = W * (sigma_w / math.sqrt(d0)), b * sigma_b
        a = None if a is None else a * (sigma_a / math.sqrt(width))
    return TwoLayerParams(W, b, a, parametrisation, float(sigma_w), float(sigma_b), float(sigma_a))


def two_layer_hidden(params: TwoLayerParams, X: torch.Tensor, activation: str = "erf") -> torch.Tensor:
    """H = phi(u), u = X W^T + b (standard) or (sigma_w/sqrt(d0)) X W^T + sigma_b b (ntk): X (B, d0) -> (B, h).

    Chapter ``03_two_layer_kernels``.
    """
    act = get_activation(activation)
    if params.parametrisation == "standard":
        return act.phi(X @ params.W.T + params.b)  # (B, d0) @ (d0, h) -> (B, h)
    d0 = params.W.shape[1]
    return act.phi((params.sigma_w / math.sqrt(d0)) * (X @ params.W.T) + params.sigma_b * params.b)


def two_layer_output(params: TwoLayerParams, X: torch.Tensor, activation: str = "erf") -> torch.Tensor:
    """f(x) = H a (standard) or (sigma_a/sqrt(h)) H a (ntk), H = :func:`two_layer_hidden`: (B, d0) -> (B,) or (B, k).

    Chapter ``03_two_layer_kernels``.
    """
    H = two_layer_hidden(params, X, activation)
    if params.parametrisation == "standard":
        return H @ params.a
    return (params.sigma_a / math.sqrt(params.W.shape[0])) * (H @ params.a)


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
    Eq. ``tl-nngp`` of chapter ``03_two_layer_kernels``.
    """
    X = check_matrix(X, "X")
    width = check_int(width, "width")
    sigma_w, sigma_b = check_scales(sigma_w, sigma_b)
    act = get_activation(activation)
    params = draw_two_layer_params(X.shape[1], width, readout=False, sigma_w=sigma_w, sigma_b=sigma_b,
                                   generator=generator, dtype=X.dtype, device=X.device)
    return two_layer_hidden(params, X, act)  # (N, d0) @ (d0, width) -> (N, width)


@dataclass(frozen=True)
class FiniteWidthKernels:
    """Monte Carlo kernels of one finite network with their per-entry standard errors (iterable, in field order).

    Chapter ``03_two_layer_kernels``.
    """

    nngp: torch.Tensor
    nngp_se: torch.Tensor
    ntk: torch.Tensor
    ntk_se: torch.Tensor
    width: int

    def __iter__(self):
        return iter((self.nngp, self.nngp_se, self.ntk, self.ntk_se, self.width))


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
    Eqs. ``tl-nngp`` and ``tl-ntk`` of chapter ``03_two_layer_kernels`` (Monte Carlo).
    """
    X, Z, same = check_pair(X, Z)
    width = check_int(width, "width", minimum=2)
    chunk = check_int(chunk, "chunk")
    sigma_w, sigma_b = check_scales(sigma_w, sigma_b)
    sigma_a = check_nonnegative(sigma_a, "sigma_a")
    act = get_activation(activation)
    # W, b, a standard normal (the NTK parametrisation's draw); a_j ~ N(0, 1) enters as sigma_a^2 a_j^2 / h
    params = draw_two_layer_params(X.shape[1], width, sigma_w=sigma_w, sigma_b=sigma_b, sigma_a=sigma_a,
                                   parametrisation="ntk", generator=generator, dtype=X.dtype, device=X.device)
    (W, b), a = params.hidden_standard(), params.a
    K1 = preactivation_parts(X, Z, same, sigma_w, sigma_b)[0]
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
