r"""Layer 3, kernels: dual activations of any elementwise activation by a bivariate Gaussian quadrature rule,
the closed-form GELU dual, and the activation registry of the deep kernels ("erf", "relu", "gelu", "tanh",
or any torch callable).

The dual-activation contract of :mod:`nckernels.kernels.duals` holds here too: a dual takes broadcastable
tensors ``(cov12, var1, var2)`` of a 2x2 covariance and returns E[phi(u) phi(v)] (or E[phi'(u) phi'(v)])
for (u, v) ~ N(0, [[var1, cov12], [cov12, var2]]), with the broadcast shape, dtype and device.

Quadrature. With z1, z2 i.i.d. N(0, 1), u = sqrt(v1) z1 and v = (c / sqrt(v1)) z1 + sqrt(v2 - c^2/v1) z2,
so E[f(u) g(v)] = sum_ij w_i w_j f(u_i) g(v_ij) over the tensor product of a one-dimensional rule for
E[h(z)], z ~ N(0, 1). Two rules:

* ``"trapezoid"`` (default): n equispaced nodes on [-9, 9] (n odd, so z = 0 is a node) with weights
  h exp(-z^2/2)/sqrt(2 pi). For an integrand analytic in a strip |Im z| < a its error falls like
  exp(-2 pi a / h), geometrically in n, plus the truncation P(|z| > 9) ~ 1e-19. Orders 17, 33, ..., 513
  are nested (n -> 2n - 1).
* ``"hermite"``: the n-point Gauss-Hermite rule (nodes sqrt(2) t_k, weights w_k / sqrt(pi)), exact for
  polynomials of degree 2n - 1 but converging only like exp(-c sqrt(n)) for steep activations: tanh at
  variance 3.6 is off by 2e-10 (dual) and 8e-9 (derivative dual) at n = 256, where the trapezoid rule
  reaches 1e-14 with n = 129. Kept for comparison; numpy cannot build it beyond n ~ 400.

Order. ``order=None`` picks it adaptively: the smallest n of the rule's order table with
|Q_n - Q_next| <= tol * max(1, |Q_next|) at every probe, where the probes are the variances min and max
of (var1, var2) of the call and the correlations rho in {-1, -0.9, -0.5, 0, 0.5, 0.9, 1}, for phi and for
phi' (the rule then used is n, whose error the difference bounds). Measured with the trapezoid rule
(``tests/test_quadrature.py``): erf, gelu and their derivative duals within 5e-14 of the closed forms for
variances up to 8 at n = 129; tanh at variance <= 8 within 4e-10 at n = 129 and 1e-16 at n = 257. A
non-smooth activation converges only algebraically: at n = 257 relu's dual is within 6e-4 and its step
derivative within 1.4e-2 of the closed forms, so the adaptive choice stops at the largest order with a
``RuntimeWarning``; use the closed forms for relu. Derivation and the accuracy table: book chapter
``12_depth_and_activation``.

May import: :mod:`nckernels.validation`, :mod:`nckernels.kernels.duals`.
"""
from __future__ import annotations

import math
import warnings
from functools import lru_cache
from typing import Callable

import numpy as np
import torch

from .duals import ACTIVATIONS, Activation, checked_dual
from ..validation import check_choice, check_int, check_positive

__all__ = [
    "QUADRATURE_ORDERS",
    "gaussian_rule",
    "gaussian_expectation",
    "choose_quadrature_order",
    "quadrature_activation",
    "gelu_dual",
    "gelu_dual_derivative",
    "gelu_dual_pair",
    "DEEP_ACTIVATIONS",
    "resolve_activation",
]

QUADRATURE_ORDERS = {"trapezoid": (17, 33, 65, 129, 257, 513), "hermite": (8, 16, 32, 64, 128, 256)}
_TRAPEZOID_HALF_WIDTH = 9.0
_PROBE_RHOS = (-1.0, -0.9, -0.5, 0.0, 0.5, 0.9, 1.0)
_CHUNK_ELEMENTS = 1 << 22  # entries x n^2 evaluated at once (32 MiB in float64)


@lru_cache(maxsize=None)
def _rule_numpy(order: int, rule: str):
    if rule == "hermite":
        t, w = np.polynomial.hermite.hermgauss(order)
        return np.sqrt(2.0) * t, w / np.sqrt(np.pi)
    z = np.linspace(-_TRAPEZOID_HALF_WIDTH, _TRAPEZOID_HALF_WIDTH, order)
    h = z[1] - z[0] if order > 1 else 1.0
    return z, h * np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi)


def gaussian_rule(order: int, *, rule: str = "trapezoid", like: torch.Tensor):
    r"""(nodes z_k, weights w_k), (n,) each, with sum_k w_k h(z_k) ~ E[h(z)], z ~ N(0, 1).

    rule "trapezoid": z_k equispaced on [-9, 9], w_k = h exp(-z_k^2/2)/sqrt(2 pi); rule "hermite": z_k = sqrt(2) t_k,
    w_k = (Gauss-Hermite weight)/sqrt(pi). Tensors are made with ``like``'s dtype and device. Book chapter
    ``12_depth_and_activation``.
    """
    order = check_int(order, "order", minimum=2)
    check_choice(rule, "rule", QUADRATURE_ORDERS)
    if rule == "hermite" and order > 400:
        raise ValueError(f"order must be <= 400 for rule='hermite' (numpy's hermgauss overflows), got {order}")
    z, w = _rule_numpy(order, rule)
    return (torch.as_tensor(z, dtype=like.dtype, device=like.device),
            torch.as_tensor(w, dtype=like.dtype, device=like.device))


def _broadcast_flat(cov12, var1, var2):
    like = next((t for t in (cov12, var1, var2) if isinstance(t, torch.Tensor) and t.is_floating_point()), None)
    dtype, device = (like.dtype, like.device) if like is not None else (torch.float64, None)
    c, a, b = (torch.as_tensor(t, dtype=dtype, device=device) for t in (cov12, var1, var2))
    c, a, b = torch.broadcast_tensors(c, a, b)
    return c.shape, c.reshape(-1), a.reshape(-1), b.reshape(-1)


def gaussian_expectation(f, g, cov12, var1, var2, *, order: int, rule: str = "trapezoid") -> torch.Tensor:
    r"""E[f(u) g(v)] ~ sum_ij w_i w_j f(sqrt(v1) z_i) g(c/sqrt(v1) z_i + sqrt(v2 - c^2/v1) z_j), (u, v) ~ N(0, [[v1, c], [c, v2]]).

    ``f`` and ``g`` are elementwise torch callables; ``cov12, var1, var2`` broadcast, the result has the
    broadcast shape and the inputs' dtype and device. A zero variance is a point mass at 0 (c must then be 0;
    c is clipped to |c| <= sqrt(v1 v2)). Entries are processed in chunks of ~4M nodes; ``rule`` as in :func:`gaussian_rule`. Book chapter
    ``12_depth_and_activation``.
    """
    shape, c, a, b = _broadcast_flat(cov12, var1, var2)
    z, w = gaussian_rule(order, rule=rule, like=c)
    out = c.new_empty(c.shape)
    step = max(1, _CHUNK_ELEMENTS // (order * order))
    for start in range(0, c.numel(), step):
        sl = slice(start, start + step)
        cs, as_, bs = c[sl], a[sl].clamp_min(0), b[sl].clamp_min(0)
        sa = as_.sqrt()
        lim = (as_ * bs).sqrt()
        cs = torch.minimum(torch.maximum(cs, -lim), lim)
        slope = torch.where(sa > 0, cs / torch.where(sa > 0, sa, torch.ones_like(sa)), torch.zeros_like(sa))  # c / sqrt(v1)
        rest = (bs - slope * slope).clamp_min(0).sqrt()  # sqrt(v2 - c^2/v1)
        fu = f(sa[:, None] * z[None, :])  # (m, n) at u_i
        v = slope[:, None, None] * z[None, :, None] + rest[:, None, None] * z[None, None, :]  # (m, n_i, n_j)
        gv = g(v) @ w  # (m, n_i): inner expectation over z_j
        out[sl] = (fu * gv) @ w  # (m,)
    return out.reshape(shape)


def _probe_values(f, g, var_lo, var_hi, order, rule, like):
    rho = torch.as_tensor(_PROBE_RHOS, dtype=torch.float64, device=like.device)
    var = torch.as_tensor([var_lo, var_hi], dtype=torch.float64, device=like.device)
    v1 = var[:, None].expand(2, rho.numel())
    c = rho[None, :] * v1
    return gaussian_expectation(f, g, c, v1, v1, order=order, rule=rule)


def choose_quadrature_order(phi, var_min: float, var_max: float, *, tol: float = 1e-10, phi_prime=None,
                            rule: str = "trapezoid", like: torch.Tensor | None = None) -> int:
    r"""Smallest n of QUADRATURE_ORDERS[rule] with |Q_n - Q_next| <= tol max(1, |Q_next|) for E[phi phi] (and E[phi' phi']).

    Probes: variances {var_min, var_max} x correlations {-1, -0.9, -0.5, 0, 0.5, 0.9, 1}, in float64 on
    ``like``'s device. Returns the largest order with a ``RuntimeWarning`` when none meets ``tol`` (a non-smooth
    phi, or a variance too large for the table). Book chapter ``12_depth_and_activation``.
    """
    tol = check_positive(tol, "tol")
    check_choice(rule, "rule", QUADRATURE_ORDERS)
    orders = QUADRATURE_ORDERS[rule]
    device = like.device if like is not None else torch.device("cpu")
    probe_like = torch.zeros((), dtype=torch.float64, device=device)
    pairs = [(phi, phi)] + ([(phi_prime, phi_prime)] if phi_prime is not None else [])
    lo, hi = max(float(var_min), 0.0), max(float(var_max), 0.0)
    cache = {}

    def q(k, n):
        if (k, n) not in cache:
            cache[(k, n)] = _probe_values(*pairs[k], lo, hi, n, rule, probe_like)
        return cache[(k, n)]

    for n, finer in zip(orders[:-1], orders[1:]):
        if all(bool(((q(k, n) - q(k, finer)).abs() <= tol * q(k, finer).abs().clamp_min(1.0)).all())
               for k in range(len(pairs))):
            return n
    warnings.warn(f"{rule} quadrature did not reach tol={tol:g} by order {orders[-1]} "
                  f"(non-smooth activation or large variance {hi:g}); using order {orders[-1]}",
                  RuntimeWarning, stacklevel=3)
    return orders[-1]


def _autograd_derivative(phi):
    def phi_prime(z):
        with torch.enable_grad():
            x = z.detach().requires_grad_(True)
            y = phi(x)
            (grad,) = torch.autograd.grad(y.sum(), x)
        return grad
    return phi_prime


def quadrature_activation(phi: Callable, phi_prime: Callable | None = None, *, name: str | None = None,
                          order: int | None = None, tol: float = 1e-10, rule: str = "trapezoid") -> Activation:
    r"""An :class:`Activation` whose duals E[phi(u)phi(v)], E[phi'(u)phi'(v)] come from bivariate Gaussian quadrature.

    Args:
        phi: elementwise torch callable (applied to tensors of any shape).
        phi_prime: its derivative; default: autograd of ``phi`` (elementwise, so the gradient of sum(phi)).
        name: a label (default ``phi.__name__``).
        order: a fixed rule order n, or None to choose it per call with :func:`choose_quadrature_order`
            from the variances of that call (widened to half-octave buckets, the choice cached per bucket) and ``tol``.
        tol: target absolute (relative above 1) accuracy of the adaptive order.
        rule: "trapezoid" (default) or "hermite", see :func:`gaussian_rule`.

    Returns:
        ``Activation`` whose ``dual``/``dual_derivative``/``both`` follow the (cov12, var1, var2) contract.
        Book chapter ``12_depth_and_activation``.
    """
    if not callable(phi):
        raise ValueError(f"phi must be an elementwise torch callable, got {phi!r}")
    if phi_prime is not None and not callable(phi_prime):
        raise ValueError(f"phi_prime must be callable or None, got {phi_prime!r}")
    check_choice(rule, "rule", QUADRATURE_ORDERS)
    if order is not None:
        order = check_int(order, "order", minimum=2)
    tol = check_positive(tol, "tol")
    dphi = phi_prime if phi_prime is not None else _autograd_derivative(phi)
    label = name or getattr(phi, "__name__", "custom")

    chosen = {}  # (variance buckets, with_derivative, device) -> order

    def pick(var1, var2, with_derivative):
        if order is not None:
            return order
        v1, v2 = torch.as_tensor(var1), torch.as_tensor(var2)
        lo = min(float(v1.min()), float(v2.min()))
        hi = max(float(v1.max()), float(v2.max()))
        # probe at the variance range widened to half-octave buckets (conservative), and reuse the order
        lo_b = math.floor(2 * math.log2(lo)) if lo > 0 else None
        hi_b = math.ceil(2 * math.log2(hi)) if hi > 0 else None
        key = (lo_b, hi_b, with_derivative, str(v1.device))
        if key not in chosen:
            chosen[key] = choose_quadrature_order(
                phi, 0.0 if lo_b is None else 2.0 ** (lo_b / 2), 0.0 if hi_b is None else 2.0 ** (hi_b / 2),
                tol=tol, phi_prime=dphi if with_derivative else None, rule=rule, like=v1)
        return chosen[key]

    def dual(cov12, var1, var2):
        return gaussian_expectation(phi, phi, cov12, var1, var2, order=pick(var1, var2, False), rule=rule)

    def dual_derivative(cov12, var1, var2):
        return gaussian_expectation(dphi, dphi, cov12, var1, var2, order=pick(var1, var2, True), rule=rule)

    def dual_pair(cov12, var1, var2):
        n = pick(var1, var2, True)
        return (gaussian_expectation(phi, phi, cov12, var1, var2, order=n, rule=rule),
                gaussian_expectation(dphi, dphi, cov12, var1, var2, order=n, rule=rule))

    return Activation(name=label, phi=phi, phi_prime=dphi, dual=dual, dual_derivative=dual_derivative,
                      dual_pair=dual_pair)


_INV_TWO_PI = 1.0 / (2.0 * math.pi)


def _gelu_parts(cov12, var1, var2):
    prod1 = (1 + var1) * (1 + var2)  # P = (1 + v1)(1 + v2)
    delta2 = prod1 - cov12 * cov12  # >= 1 + v1 + v2 > 0 for any valid covariance
    delta = delta2.sqrt()
    theta = torch.atan2(cov12, delta)  # = arcsin(c / sqrt(P))
    return prod1, delta2, delta, theta


@checked_dual
def gelu_dual(cov12, var1, var2):
    r"""E[gelu(u) gelu(v)] = c/4 + (1/2pi) [c theta + (c^2 + v1 v2 delta^2) / (P delta)], gelu(x) = x Phi(x).

    P = (1 + v1)(1 + v2), delta = sqrt(P - c^2), theta = atan2(c, delta) = arcsin(c / sqrt(P)) (Tsuchida et al.
    2020; derived in book chapter ``12_depth_and_activation`` via Phi(x) = P(xi <= x), and checked against
    quadrature to 1e-13). Shapes broadcast.
    """
    prod1, delta2, delta, theta = _gelu_parts(cov12, var1, var2)
    return 0.25 * cov12 + _INV_TWO_PI * (cov12 * theta + (cov12 * cov12 + var1 * var2 * delta2) / (prod1 * delta))


@checked_dual
def gelu_dual_derivative(cov12, var1, var2):
    r"""E[gelu'(u) gelu'(v)] = 1/4 + theta/2pi + (c / (2 pi delta)) (1 + (1 - v1 v2)/P + 1/delta^2) = d/dc of :func:`gelu_dual`.

    gelu'(x) = Phi(x) + x phi(x); notation as in :func:`gelu_dual` (Price's theorem: the derivative dual is the
    c-derivative of the dual). Book chapter ``12_depth_and_activation``.
    """
    prod1, delta2, delta, theta = _gelu_parts(cov12, var1, var2)
    return 0.25 + _INV_TWO_PI * (theta + cov12 / delta * (1 + (1 - var1 * var2) / prod1 + 1 / delta2))


@checked_dual
def gelu_dual_pair(cov12, var1, var2):
    """(gelu_dual, gelu_dual_derivative) sharing P, delta and theta. Book chapter ``12_depth_and_activation``."""
    prod1, delta2, delta, theta = _gelu_parts(cov12, var1, var2)
    k = 0.25 * cov12 + _INV_TWO_PI * (cov12 * theta + (cov12 * cov12 + var1 * var2 * delta2) / (prod1 * delta))
    kdot = 0.25 + _INV_TWO_PI * (theta + cov12 / delta * (1 + (1 - var1 * var2) / prod1 + 1 / delta2))
    return k, kdot


_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _gelu(z):
    return 0.5 * z * (1 + torch.erf(z * _SQRT_HALF))


def _gelu_prime(z):
    return 0.5 * (1 + torch.erf(z * _SQRT_HALF)) + z * _INV_SQRT_2PI * torch.exp(-0.5 * z * z)


def _tanh_prime(z):
    t = torch.tanh(z)
    return 1 - t * t


DEEP_ACTIVATIONS: dict[str, Activation] = {
    **ACTIVATIONS,
    "gelu": Activation(name="gelu", phi=_gelu, phi_prime=_gelu_prime, dual=gelu_dual.raw,
                       dual_derivative=gelu_dual_derivative.raw, dual_pair=gelu_dual_pair.raw),
    "tanh": quadrature_activation(torch.tanh, _tanh_prime, name="tanh"),
}


def resolve_activation(activation, name: str = "activation") -> Activation:
    r"""An :class:`Activation` from a name in DEEP_ACTIVATIONS ("erf", "relu", "gelu", "tanh"), an Activation, or a callable.

    A callable phi becomes :func:`quadrature_activation` (phi): trapezoid rule, phi' by autograd, adaptive order
    for 1e-10; "gelu" is exact (:func:`gelu_dual`), "tanh" is quadrature with its exact derivative.
    Unknown names raise ``ValueError`` naming ``name``. Book chapter ``12_depth_and_activation``.
    """
    if isinstance(activation, Activation):
        return activation
    if isinstance(activation, str):
        if activation not in DEEP_ACTIVATIONS:
            raise ValueError(f"{name} must be one of {sorted(DEEP_ACTIVATIONS)} or a torch callable, got {activation!r}")
        return DEEP_ACTIVATIONS[activation]
    if callable(activation):
        return quadrature_activation(activation)
    raise ValueError(f"{name} must be one of {sorted(DEEP_ACTIVATIONS)} or a torch callable, got {activation!r}")
