r"""Dual activations: Gaussian expectations of products of an activation and of its derivative.

Every function here takes the entries of a 2x2 covariance,

.. math:: (u, v) \sim \mathcal N\!\left(0, \begin{pmatrix} v_1 & c \\ c & v_2 \end{pmatrix}\right),

as broadcastable tensors ``(cov12, var1, var2)`` and returns :math:`\mathbb E[\phi(u)\phi(v)]` (the dual
activation) or :math:`\mathbb E[\phi'(u)\phi'(v)]` (the derivative dual). Dataset kernels (NNGP, NTK,
the adaptive kernel) are built on top of this contract. Angles are computed with ``atan2``, which is
exact near :math:`c = \pm\sqrt{v_1 v_2}`; no ``arccos`` or ``arcsin`` of a ratio is taken.

Derivations: book chapter "NNGP and NTK of a two-layer network" (``book/03_two_layer_kernels.md``).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable

import torch

from ..validation import check_choice, check_dtype

__all__ = [
    "Activation",
    "ACTIVATIONS",
    "get_activation",
    "erf_dual",
    "erf_dual_derivative",
    "relu_dual",
    "relu_dual_derivative",
    "relu_angle",
    "erf_angle",
    "erf_dual_pair",
    "relu_dual_pair",
]

_TWO_OVER_PI = 2.0 / math.pi
_FOUR_OVER_PI = 4.0 / math.pi


def check_covariance(cov12, var1, var2, names=("cov12", "var1", "var2")):
    """The entries of 2x2 covariances: real, var1, var2 >= 0 and finite, |cov12| <= sqrt(var1 var2) (to rounding).

    Numbers become tensors like the first tensor argument (float64 when none is a tensor).
    """
    like = next((t for t in (cov12, var1, var2) if isinstance(t, torch.Tensor) and t.is_floating_point()), None)
    out = []
    for x, name in zip((cov12, var1, var2), names):
        if not isinstance(x, torch.Tensor):
            if isinstance(x, (str, bytes)) or x is None:
                raise TypeError(f"{name} must be a real tensor or number, got {type(x).__name__}")
            try:
                x = torch.as_tensor(x, dtype=like.dtype if like is not None else torch.float64,
                                    device=like.device if like is not None else None)
            except (TypeError, ValueError, RuntimeError) as exc:
                raise TypeError(f"{name} must be a real tensor or number, got {type(x).__name__}") from exc
        check_dtype(x, name)
        if not x.is_floating_point():
            x = x.to(like.dtype if like is not None else torch.float64)
        out.append(x)
    cov12, var1, var2 = out
    for v, name in zip((var1, var2), names[1:]):
        if not bool(((v >= 0) & (v < math.inf)).all()):  # also refuses NaN
            raise ValueError(f"{name} must hold finite variances >= 0, got a negative or non-finite entry")
    # Cauchy-Schwarz with a rounding margin; NaN and inf in cov12 fail the comparison too
    if not bool((cov12 * cov12 <= var1 * var2 * (1 + 1e-3) + 1e-300).all()):
        c, a, b = names
        raise ValueError(f"{c} must satisfy |{c}| <= sqrt({a} {b}) (a covariance of the two variances) and be "
                         "finite; check the pre-activation kernel")
    return cov12, var1, var2


def checked_dual(fn):
    """The public dual ``fn`` with :func:`check_covariance` first; ``fn.raw`` is the unchecked body, which the
    :class:`Activation` objects use (their callers pass covariances built from checked inputs)."""
    @functools.wraps(fn)
    def checked(cov12, var1, var2):
        return fn(*check_covariance(cov12, var1, var2))

    checked.raw = fn
    return checked


@checked_dual
def erf_dual(cov12: torch.Tensor, var1: torch.Tensor, var2: torch.Tensor) -> torch.Tensor:
    r"""E[erf(u) erf(v)] = (2/pi) arcsin(2c / sqrt((1 + 2 v1)(1 + 2 v2))).

    Written as ``(2/pi) atan2(2c, sqrt((1+2v1)(1+2v2) - 4c^2))``, the same angle without the
    ill-conditioned ratio. Shapes broadcast; the result has the broadcast shape.
    Eq. ``tl-erf`` of chapter ``03_two_layer_kernels``.
    """
    return _TWO_OVER_PI * erf_angle(cov12, var1, var2)[0]


def erf_angle(cov12, var1, var2):
    r"""(theta, gap): theta = atan2(2c, sqrt(gap)) = arcsin(2c / sqrt((1+2v1)(1+2v2))), gap = (1+2v1)(1+2v2) - 4c^2 >= 0.

    The one definition of the erf angle (eq. ``tl-erf``): :func:`erf_dual` is (2/pi) theta, the adaptive kernel
    Q1 of chapter ``05_adaptive_kernel`` (eq. ``ak-q1``) is sigma_a^2 (2/pi) theta, and its gradient reuses gap.
    """
    gap = ((1 + 2 * var1) * (1 + 2 * var2) - 4 * cov12 * cov12).clamp_min(0)
    return torch.atan2(2 * cov12, gap.sqrt()), gap


@checked_dual
def erf_dual_derivative(cov12: torch.Tensor, var1: torch.Tensor, var2: torch.Tensor) -> torch.Tensor:
    r"""E[erf'(u) erf'(v)] = (4/pi) / sqrt((1 + 2 v1)(1 + 2 v2) - 4 c^2), with erf'(z) = (2/sqrt(pi)) e^{-z^2}.

    Eq. ``tl-erf-dot`` of chapter ``03_two_layer_kernels``.
    """
    prod = (1 + 2 * var1) * (1 + 2 * var2)
    return _FOUR_OVER_PI * torch.rsqrt(prod - 4 * cov12 * cov12)


@checked_dual
def relu_angle(cov12: torch.Tensor, var1: torch.Tensor, var2: torch.Tensor) -> torch.Tensor:
    r"""Angle t in [0, pi] between u and v: t = atan2(sqrt(v1 v2 - c^2), c).

    Eq. ``tl-relu`` of chapter ``03_two_layer_kernels``.
    """
    return _relu_angle(cov12, var1, var2)


def _relu_angle(cov12, var1, var2):
    return torch.atan2((var1 * var2 - cov12 * cov12).clamp_min(0).sqrt(), cov12)


@checked_dual
def relu_dual(cov12: torch.Tensor, var1: torch.Tensor, var2: torch.Tensor) -> torch.Tensor:
    r"""E[relu(u) relu(v)] = sqrt(v1 v2) (sin t + (pi - t) cos t) / (2 pi) = (sqrt(v1 v2 - c^2) + (pi - t) c) / (2 pi).

    Eq. ``tl-relu`` of chapter ``03_two_layer_kernels``.
    """
    t = _relu_angle(cov12, var1, var2)
    sin_part = (var1 * var2 - cov12 * cov12).clamp_min(0).sqrt()
    return (sin_part + (math.pi - t) * cov12) / (2 * math.pi)


@checked_dual
def relu_dual_derivative(cov12: torch.Tensor, var1: torch.Tensor, var2: torch.Tensor) -> torch.Tensor:
    r"""E[1(u > 0) 1(v > 0)] = (pi - t) / (2 pi).

    Eq. ``tl-relu-dot`` of chapter ``03_two_layer_kernels``.
    """
    return (math.pi - _relu_angle(cov12, var1, var2)) / (2 * math.pi)


@checked_dual
def erf_dual_pair(cov12, var1, var2):
    """(erf_dual, erf_dual_derivative) sharing sqrt((1+2v1)(1+2v2) - 4c^2); equal to the two functions.

    Eqs. ``tl-erf`` and ``tl-erf-dot`` of chapter ``03_two_layer_kernels``.
    """
    theta, gap = erf_angle(cov12, var1, var2)
    return _TWO_OVER_PI * theta, _FOUR_OVER_PI / gap.sqrt()


@checked_dual
def relu_dual_pair(cov12, var1, var2):
    """(relu_dual, relu_dual_derivative) sharing sqrt(v1 v2 - c^2) and the angle; equal to the two functions.

    Eqs. ``tl-relu`` and ``tl-relu-dot`` of chapter ``03_two_layer_kernels``.
    """
    root = (var1 * var2 - cov12 * cov12).clamp_min(0).sqrt()
    rest = (math.pi - torch.atan2(root, cov12)) / (2 * math.pi)
    return root / (2 * math.pi) + rest * cov12, rest


def _erf_prime(z: torch.Tensor) -> torch.Tensor:
    return (2.0 / math.sqrt(math.pi)) * torch.exp(-z * z)


def _relu_prime(z: torch.Tensor) -> torch.Tensor:
    return (z > 0).to(z.dtype)


@dataclass(frozen=True)
class Activation:
    """An activation with its pointwise derivative and both dual functions.

    Chapter ``03_two_layer_kernels``.
    """

    name: str
    phi: Callable[[torch.Tensor], torch.Tensor]
    phi_prime: Callable[[torch.Tensor], torch.Tensor]
    dual: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
    dual_derivative: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
    dual_pair: Callable | None = None

    def both(self, cov12, var1, var2):
        """(dual, dual_derivative), with shared intermediates where the activation provides them."""
        if self.dual_pair is not None:
            return self.dual_pair(cov12, var1, var2)
        return self.dual(cov12, var1, var2), self.dual_derivative(cov12, var1, var2)


ACTIVATIONS: dict[str, Activation] = {
    "erf": Activation("erf", torch.erf, _erf_prime, erf_dual.raw, erf_dual_derivative.raw, erf_dual_pair.raw),
    "relu": Activation("relu", torch.relu, _relu_prime, relu_dual.raw, relu_dual_derivative.raw, relu_dual_pair.raw),
}


def get_activation(activation: str | Activation, name: str = "activation") -> Activation:
    """Look up an activation by name; unknown names raise ``ValueError``.

    Chapter ``03_two_layer_kernels``.
    """
    if isinstance(activation, Activation):
        return activation
    check_choice(activation, name, ACTIVATIONS)
    return ACTIVATIONS[activation]
