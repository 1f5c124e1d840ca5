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

import math
from dataclasses import dataclass
from typing import Callable

import torch

from ..validation import check_choice

__all__ = [
    "Activation",
    "ACTIVATIONS",
    "get_activation",
    "erf_dual",
    "erf_dual_derivative",
    "relu_dual",
    "relu_dual_derivative",
    "relu_angle",
    "erf_dual_pair",
    "relu_dual_pair",
]

_TWO_OVER_PI = 2.0 / math.pi
_FOUR_OVER_PI = 4.0 / math.pi


def erf_dual(cov12: torch.Tensor, var1: torch.Tensor, var2: torch.Tensor) -> torch.Tensor:
    r"""E[erf(u) erf(v)] = (2/pi) arcsin(2c / sqrt((1 + 2 v1)(1 + 2 v2))).

    Written as ``(2/pi) atan2(2c, sqrt((1+2v1)(1+2v2) - 4c^2))``, the same angle without the
    ill-conditioned ratio. Shapes broadcast; the result has the broadcast shape.
    """
    prod = (1 + 2 * var1) * (1 + 2 * var2)
    gap = (prod - 4 * cov12 * cov12).clamp_min(0)
    return _TWO_OVER_PI * torch.atan2(2 * cov12, gap.sqrt())


def erf_dual_derivative(cov12: torch.Tensor, var1: torch.Tensor, var2: torch.Tensor) -> torch.Tensor:
    r"""E[erf'(u) erf'(v)] = (4/pi) / sqrt((1 + 2 v1)(1 + 2 v2) - 4 c^2), with erf'(z) = (2/sqrt(pi)) e^{-z^2}."""
    prod = (1 + 2 * var1) * (1 + 2 * var2)
    return _FOUR_OVER_PI * torch.rsqrt(prod - 4 * cov12 * cov12)


def relu_angle(cov12: torch.Tensor, var1: torch.Tensor, var2: torch.Tensor) -> torch.Tensor:
    r"""Angle t in [0, pi] between u and v: t = atan2(sqrt(v1 v2 - c^2), c)."""
    return torch.atan2((var1 * var2 - cov12 * cov12).clamp_min(0).sqrt(), cov12)


def relu_dual(cov12: torch.Tensor, var1: torch.Tensor, var2: torch.Tensor) -> torch.Tensor:
    r"""E[relu(u) relu(v)] = sqrt(v1 v2) (sin t + (pi - t) cos t) / (2 pi) = (sqrt(v1 v2 - c^2) + (pi - t) c) / (2 pi)."""
    t = relu_angle(cov12, var1, var2)
    sin_part = (var1 * var2 - cov12 * cov12).clamp_min(0).sqrt()
    return (sin_part + (math.pi - t) * cov12) / (2 * math.pi)


def relu_dual_derivative(cov12: torch.Tensor, var1: torch.Tensor, var2: torch.Tensor) -> torch.Tensor:
    r"""E[1(u > 0) 1(v > 0)] = (pi - t) / (2 pi)."""
    return (math.pi - relu_angle(cov12, var1, var2)) / (2 * math.pi)


def erf_dual_pair(cov12, var1, var2):
    """(erf_dual, erf_dual_derivative) sharing sqrt((1+2v1)(1+2v2) - 4c^2); equal to the two functions."""
    root = ((1 + 2 * var1) * (1 + 2 * var2) - 4 * cov12 * cov12).clamp_min(0).sqrt()
    return _TWO_OVER_PI * torch.atan2(2 * cov12, root), _FOUR_OVER_PI / root


def relu_dual_pair(cov12, var1, var2):
    """(relu_dual, relu_dual_derivative) sharing sqrt(v1 v2 - c^2) and the angle; equal to the two functions."""
    root = (var1 * var2 - cov12 * cov12).clamp_min(0).sqrt()
    rest = (math.pi - torch.atan2(root, cov12)) / (2 * math.pi)
    return root / (2 * math.pi) + rest * cov12, rest


def _erf_prime(z: torch.Tensor) -> torch.Tensor:
    return (2.0 / math.sqrt(math.pi)) * torch.exp(-z * z)


def _relu_prime(z: torch.Tensor) -> torch.Tensor:
    return (z > 0).to(z.dtype)


@dataclass(frozen=True)
class Activation:
    """An activation with its pointwise derivative and both dual functions."""

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
    "erf": Activation("erf", torch.erf, _erf_prime, erf_dual, erf_dual_derivative, erf_dual_pair),
    "relu": Activation("relu", torch.relu, _relu_prime, relu_dual, relu_dual_derivative, relu_dual_pair),
}


def get_activation(activation: str | Activation, name: str = "activation") -> Activation:
    """Look up an activation by name; unknown names raise ``ValueError``."""
    if isinstance(activation, Activation):
        return activation
    check_choice(activation, name, ACTIVATIONS)
    return ACTIVATIONS[activation]
