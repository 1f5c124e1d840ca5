r"""The adaptive kernel Q1[Sigma] of the Equations of State, its closed-form gradient and the label matrix.

Layer 4 (models), part of :mod:`nckernels.models.adaptive`; derived in book chapter ``05_adaptive_kernel``.
Scales follow the package's convention, standard deviations (sigma_w, sigma_a); the variances
``sigma_w2``/``sigma_a2`` of earlier versions are accepted as deprecated keyword aliases
(:func:`resolve_variances`). The default read-out scale is :data:`DEFAULT_SIGMA_A2` = 1/128 (sigma_a^2).
"""
from __future__ import annotations

import math

import torch

from ...kernels.duals import erf_angle
from ...validation import check_choice, check_matrix, check_positive, check_psd, check_vector

__all__ = [
    "LABEL_TERMS",
    "DEFAULT_SIGMA_A2",
    "DEFAULT_SIGMA_A",
    "resolve_variances",
    "adaptive_kernel",
    "adaptive_kernel_gradient",
    "eos_label_matrix",
    "kernel_parts",
    "q1_from_parts",
    "gradient_from_parts",
]

LABEL_TERMS = ("eos", "reference")

#: sigma_a^2 of the read-out prior in the EoS experiments (the reference code's 1/128); the one place it is written.
DEFAULT_SIGMA_A2 = 1 / 128
#: The same default as a standard deviation, sigma_a = sqrt(1/128).
DEFAULT_SIGMA_A = math.sqrt(DEFAULT_SIGMA_A2)

_TWO_OVER_PI = 2.0 / math.pi


def resolve_variances(sigma_w=None, sigma_a=None, *, sigma_w2=None, sigma_a2=None) -> tuple[float, float]:
    """(sigma_w^2, sigma_a^2) from standard deviations, or from the deprecated variance keywords.

    Defaults: sigma_w = 1, sigma_a^2 = :data:`DEFAULT_SIGMA_A2`. A variance given directly is used as is (no
    square root round trip, so old callers get bit-identical results). Giving both forms of one scale raises.
    Chapter ``05_adaptive_kernel``.
    """
    out = []
    for sd, var, name, default in ((sigma_w, sigma_w2, "sigma_w", 1.0), (sigma_a, sigma_a2, "sigma_a", DEFAULT_SIGMA_A2)):
        if sd is not None and var is not None:
            raise ValueError(f"{name}: give either {name} (a standard deviation) or {name}2 (deprecated variance), not both")
        if var is not None:
            out.append(check_positive(var, f"{name}2"))
        elif sd is not None:
            out.append(check_positive(sd, name) ** 2)
        else:
            out.append(default)
    return out[0], out[1]


def kernel_parts(X: torch.Tensor, Sigma: torch.Tensor):
    """K = X Sigma X^T (N, N), s_i = (1 + 2 K_ii)^{-1/2} (N,), the erf angle theta (N, N) and its gap (N, N).

    theta, gap = :func:`nckernels.erf_angle` (K, K_ii, K_jj) (eq. ``ak-q1``).
    """
    K = (X @ Sigma) @ X.T  # (N, d0) @ (d0, d0) @ (d0, N) -> (N, N)
    K = 0.5 * (K + K.T)
    v = K.diagonal()
    one_2v = 1 + 2 * v  # (N,)
    theta, gap = erf_angle(K, v[:, None], v[None, :])
    return K, one_2v.rsqrt(), theta, gap


def q1_from_parts(theta: torch.Tensor, sigma_a2: float) -> torch.Tensor:
    """Q1 = sigma_a^2 (2/pi) theta, exactly symmetric (eq. ``ak-q1``)."""
    Q = (sigma_a2 * _TWO_OVER_PI) * theta
    return 0.5 * (Q + Q.T)


def adaptive_kernel(X, Sigma, *, sigma_a: float | None = None, sigma_a2: float | None = None) -> torch.Tensor:
    r"""Q1[Sigma]_ij = sigma_a^2 (2/pi) arcsin(2 x_i.Sigma x_j / sqrt((1+2 x_i.Sigma x_i)(1+2 x_j.Sigma x_j))).

    Computed as (2/pi) atan2(2K, sqrt(gap)) (the angle without the ratio). X (N, d0), Sigma (d0, d0)
    symmetric positive definite -> (N, N), exactly symmetric. With Sigma = sigma_w^2 I / d0 this is
    sigma_a^2 * ``nngp(X, sigma_w=sigma_w)``. Chapter ``05_adaptive_kernel``, eq. ``ak-q1``.
    ``sigma_a2`` (variance) is the deprecated alias of ``sigma_a``.
    """
    X = check_matrix(X, "X")
    Sigma = check_psd(check_matrix(Sigma, "Sigma", square=True, columns=X.shape[1]).to(X.dtype), "Sigma")
    _, sigma_a2 = resolve_variances(None, sigma_a, sigma_a2=sigma_a2)
    Q1 = q1_from_parts(kernel_parts(X, Sigma)[2], sigma_a2)
    if not bool(torch.isfinite(Q1).all()):
        raise ValueError("X (or Sigma) is too large: x^T Sigma z overflowed; rescale the inputs")
    return Q1


def gradient_from_parts(X, A, K, s, gap, sigma_a2):
    """G of :func:`adaptive_kernel_gradient` from the :func:`kernel_parts` at Sigma and a symmetric A (N, N).

    Eq. ``ak-grad`` of chapter ``05_adaptive_kernel``.
    """
    # P = D B D with B_ij = A_ij sigma_a^2 (2/pi) (1 - Z_ij^2)^{-1/2}; since 1 - Z^2 = s_i^2 s_j^2 gap_ij,
    # P_ij = sigma_a^2 (2/pi) A_ij / sqrt(gap_ij), and B_ij Z_ij = 2 P_ij K_ij.
    P = (sigma_a2 * _TWO_OVER_PI) * A * gap.rsqrt()  # (N, N)
    w = 4 * s * s * (P * K).sum(1)  # (N,): s_i^2 sum_j (B_ij Z_ij + B_ji Z_ji)
    G = 2 * (X.T @ (P @ X)) - X.T @ (w[:, None] * X)  # (d0, N) @ (N, d0) -> (d0, d0)
    return 0.5 * (G + G.T)


def adaptive_kernel_gradient(X, Sigma, A, *, sigma_a: float | None = None, sigma_a2: float | None = None) -> torch.Tensor:
    r"""G = d/dSigma Tr(A Q1[Sigma]) in closed form, A held fixed (only its symmetric part matters).

        G = 2 X^T (D B D) X - X^T diag( s_i^2 sum_j (B_ij Z_ij + B_ji Z_ji) ) X,
        s_i = (1 + 2 x_i.Sigma x_i)^{-1/2}, Z_ij = 2 x_i.Sigma x_j s_i s_j,
        B_ij = A_ij sigma_a^2 (2/pi) (1 - Z_ij^2)^{-1/2}, D = diag(s).

    X (N, d0), Sigma (d0, d0), A (N, N) -> (d0, d0) symmetric; cost O(N^2 d0 + N d0^2), no autograd.
    Chapter ``05_adaptive_kernel``, eq. ``ak-grad``. ``sigma_a2`` is the deprecated alias of ``sigma_a``.
    """
    X = check_matrix(X, "X")
    Sigma = check_matrix(Sigma, "Sigma", square=True, columns=X.shape[1]).to(X.dtype)
    check_psd(Sigma, "Sigma")
    A = check_matrix(A, "A", square=True, columns=X.shape[0]).to(X.dtype)  # only its symmetric part is used
    _, sigma_a2 = resolve_variances(None, sigma_a, sigma_a2=sigma_a2)
    K, s, _, gap = kernel_parts(X, Sigma)
    return gradient_from_parts(X, 0.5 * (A + A.T), K, s, gap, sigma_a2)


def eos_label_matrix(y, fbar, *, noise_var: float, label_term: str = "eos") -> torch.Tensor:
    r"""The label term L of A = L - (Q1 + sigma^2 I)^{-1}: (N,) targets and posterior mean -> (N, N).

    * ``"eos"``: L = t t^T / sigma^4 with t = y - fbar (the derived equation, eq. ``ak-eos``).
    * ``"reference"``: what the public reference code computes (eq. ``ak-ref``), L = sigma^2 T T^T where the
      (N,) minus (N, 1) broadcast makes T_ij = y_j - fbar_i an N x N matrix, so
      (T T^T)_ik = |y|^2 - (fbar_i + fbar_k) sum_j y_j + N fbar_i fbar_k (formed here without the N^3 product).
    """
    check_choice(label_term, "label_term", LABEL_TERMS)
    noise_var = check_positive(noise_var, "noise_var")
    return label_matrix(check_vector(y, "y"), check_vector(fbar, "fbar", length=len(y)), noise_var, label_term)


def label_matrix(y, fbar, noise_var, label_term):
    """:func:`eos_label_matrix` without the argument checks (for the solver's inner loop). Eq. ``ak-ref``."""
    t = y - fbar  # (N,)
    if label_term == "eos":
        a = t / noise_var**2
        return a[:, None] * t[None, :]
    N = y.shape[0]
    ones = torch.ones_like(fbar)
    TT = (y @ y) * ones[:, None] * ones[None, :] - y.sum() * (fbar[:, None] + fbar[None, :]) + N * fbar[:, None] * fbar[None, :]
    return noise_var * TT
