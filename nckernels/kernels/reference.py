r"""What the public reference code computes where it differs from the derivations (kept to show the effect).

Nothing here is used by the correct code paths; each function documents the error it reproduces.
See the notes' section 5 and book chapters 02 and 04. (The adaptive-kernel variant lives with the
solver, as ``label_term="reference"``.)
"""
from __future__ import annotations

import math

import torch

from ..metrics import NC1Result, class_block_sums
from .duals import erf_dual
from .two_layer import check_scales, ntk_from_parts, preactivation_parts
from ..validation import check_labels, check_matrix, check_nonnegative, check_pair

__all__ = ["erf_derivative_kernel_as_coded", "erf_derivative_as_coded_from_preactivation", "erf_ntk_as_coded", "nc1_from_kernel_balanced_formula"]


def erf_derivative_kernel_as_coded(X, Z=None, *, sigma_w: float = 1.0, sigma_b: float = 0.0) -> torch.Tensor:
    r"""The reference code's erf derivative kernel: (4/pi) / sqrt(s - 4 K1^2) with a *scalar* s.

    The correct denominator holds the outer product (1 + 2 K1(x,x))(1 + 2 K1(z,z)) per pair; the
    reference takes the dot product of the two diagonal vectors, s = sum_i (1 + 2 K1_ii)(1 + 2 K1_ii),
    which is about N times larger, so the derivative term all but vanishes.
    Eq. ``ref-kdot`` of chapter ``07_reference_code``.
    """
    X, Z, same = check_pair(X, Z)
    sigma_w, sigma_b = check_scales(sigma_w, sigma_b)
    K1, vx, vz = preactivation_parts(X, Z, same, sigma_w, sigma_b)
    return erf_derivative_as_coded_from_preactivation(K1, vx, vz)


def erf_derivative_as_coded_from_preactivation(K1: torch.Tensor, vx: torch.Tensor, vz: torch.Tensor) -> torch.Tensor:
    """The as-coded derivative kernel from K1 (n, m) and its diagonals vx (n,), vz (m,), n == m.

    Eq. ``ref-kdot`` of chapter ``07_reference_code``.
    """
    if vx.shape != vz.shape:
        raise ValueError("the as-coded derivative kernel is only defined for Z = None or Z with as many rows as X")
    s = torch.dot(1 + 2 * vx, 1 + 2 * vz)  # a scalar where an outer product belongs
    return (4 / math.pi) * torch.rsqrt(s - 4 * K1 * K1)


def erf_ntk_as_coded(X, Z=None, *, sigma_w: float = 1.0, sigma_b: float = 0.0, sigma_a: float = 1.0) -> torch.Tensor:
    """sigma_a^2 (K_phi + K1 * Kdot_as_coded): the reference's erf "NTK" (nearly the NNGP).

    Eq. ``ref-kdot`` of chapter ``07_reference_code``.
    """
    X, Z, same = check_pair(X, Z)
    sw, sb = check_scales(sigma_w, sigma_b)
    sigma_a = check_nonnegative(sigma_a, "sigma_a")
    K1, vx, vz = preactivation_parts(X, Z, same, sw, sb)
    coded_dot = erf_derivative_kernel_as_coded(X, None if same else Z, sigma_w=sw, sigma_b=sb)
    return ntk_from_parts(erf_dual(K1, vx[:, None], vz[None, :]), coded_dot, K1, sigma_a)


def nc1_from_kernel_balanced_formula(K, labels) -> NC1Result:
    r"""The balanced-classes trace formulas applied to any class sizes (the reference's kernel NC1).

        Tr Sigma_W = tr(K)/N - (1/C) sum_c S_c / n_c^2,   Tr Sigma_B = (1/C) sum_c S_c / n_c^2 - S / N^2

    Exact when all n_c are equal; otherwise Tr Sigma_W is weighted 1/C per class instead of n_c/N
    while Sigma_B drops the cross term of the 1/C weighting, so neither trace is a covariance trace.
    Chapter ``07_reference_code``.
    """
    K = check_matrix(K, "K", symmetric=True)
    N = K.shape[0]
    index, sizes = check_labels(labels, N, device=K.device)
    C = sizes.numel()
    n = sizes.to(K.dtype)
    S_c, _, S = class_block_sums(K, index, C)
    part = (S_c / n**2).sum() / C
    tw, tb = float(K.diagonal().sum() / N - part), float(part - S / N**2)
    if tb == 0:
        raise ValueError("the balanced-formula between-class term is 0; its ratio is undefined")
    # Not a covariance trace: for unequal classes tb can even be negative; returned as computed.
    return NC1Result(tw, tb, tw / tb, "balanced-formula", tuple(int(v) for v in sizes))
