r"""The EoS fixed-point map Sigma -> ((d0/sigma_w^2) I - G(Sigma)/kappa)^{-1} and its residual.

Layer 4 (models), part of :mod:`nckernels.models.adaptive`; eq. ``ak-eos`` of book chapter ``05_adaptive_kernel``.
One evaluation takes a frozen :class:`EoSProblem` (data, noise, prior variances, label term), a Sigma and kappa.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ...validation import as_float_tensor, check_choice, check_finite, check_matrix, check_positive, check_psd
from .problem import LABEL_TERMS, label_matrix, eos_label_matrix, gradient_from_parts, kernel_parts, q1_from_parts, resolve_variances

_TWO_OVER_PI = 2.0 / math.pi

__all__ = ["EoSProblem", "EoSEvaluation", "EoSWorkspace", "POTRI_MAX_THREADS", "make_problem", "evaluate", "evaluate_direct", "precision_step",
           "eos_update", "eos_residual", "solver_kernel"]


@dataclass(frozen=True)
class EoSProblem:
    """The data and constants of one EoS solve: X (N, d0), y (N,), noise_var sigma^2, prior variances
    sigma_w^2 (times d0) and sigma_a^2, and the label term ("eos" or "reference").

    Eq. ``ak-eos`` of chapter ``05_adaptive_kernel``.
    """

    X: torch.Tensor
    y: torch.Tensor
    noise_var: float
    sigma_w2: float
    sigma_a2: float
    label_term: str = "eos"


def make_problem(X, y, *, noise_var: float, sigma_w=None, sigma_a=None, sigma_w2=None, sigma_a2=None,
                 label_term: str = "eos") -> EoSProblem:
    """Check the arguments and freeze them into an :class:`EoSProblem` (y cast to X's dtype and device).

    Eq. ``ak-eos`` of chapter ``05_adaptive_kernel``.
    """
    X = check_matrix(X, "X")
    y = as_float_tensor(y, "y").to(dtype=X.dtype, device=X.device)
    if y.ndim != 1:
        raise ValueError(f"y must be a 1-D array of N targets, got shape {tuple(y.shape)}")
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"y has {y.shape[0]} entries but X has {X.shape[0]} rows")
    check_finite(y, "y")
    noise_var = check_positive(noise_var, "noise_var")
    sw2, sa2 = resolve_variances(sigma_w, sigma_a, sigma_w2=sigma_w2, sigma_a2=sigma_a2)
    check_choice(label_term, "label_term", LABEL_TERMS)
    return EoSProblem(X, y, noise_var, sw2, sa2, label_term)


@dataclass(frozen=True)
class EoSEvaluation:
    """One evaluation of the fixed-point map at Sigma (all tensors at that Sigma).

    Eq. ``ak-eos`` of chapter ``05_adaptive_kernel``.
    """

    Sigma: torch.Tensor
    new_Sigma: torch.Tensor | None  # None when the new precision matrix is not positive definite
    kernel: torch.Tensor
    fbar: torch.Tensor
    residual: float  # ||Sigma - new_Sigma||_F / ||Sigma||_F (inf when new_Sigma is None)
    cause: str = ""
    # (d0/sigma_w^2) I - G/kappa, the precision the map inverts (None when G is not finite); defined even where it
    # is not positive definite, so Newton's method on Sigma^{-1} - precision can start outside the map's domain
    precision: torch.Tensor | None = None


def precision_step(problem: EoSProblem, Sigma, G, kappa):
    """Sigma' = ((d0/sigma_w^2) I - G/kappa)^{-1} (exactly symmetric), the relative residual, "" and the
    precision; or (None, inf, cause, precision or None) where Sigma' is undefined.

    Eq. ``ak-eos`` of chapter ``05_adaptive_kernel``.
    """
    d0 = Sigma.shape[0]
    if not bool(torch.isfinite(G).all()):
        return None, math.inf, "non-finite kernel or gradient", None
    precision = torch.eye(d0, dtype=G.dtype, device=G.device).mul_(d0 / problem.sigma_w2).sub_(G, alpha=1.0 / kappa)
    C, info = torch.linalg.cholesky_ex(precision)
    if int(info) != 0:
        return None, math.inf, "the precision (d0/sigma_w2) I - G/kappa is not positive definite", precision
    new = torch.cholesky_inverse(C)
    new = 0.5 * (new + new.T)
    res = float(torch.linalg.matrix_norm(Sigma - new) / torch.linalg.matrix_norm(Sigma))
    return new, res, "", precision


#: EoSWorkspace's default route: potri for (Q1 + sigma^2 I)^{-1} on a CPU with at most this many torch threads (the
#: most measured; two triangular solves against I otherwise).
POTRI_MAX_THREADS = 2


class EoSWorkspace:
    """Reusable (N, N) buffers of one problem for :func:`evaluate` (K, sqrt of the half gap, the Cholesky
    factor, the inverse, the identity) and its route to (Q1 + sigma^2 I)^{-1}: ``inverse`` "cholesky_inverse"
    (LAPACK potri, N^3 / 3 + N^3 / 3 flops) or "triangular_solves" (two solves against I, 2 N^3 flops, which
    parallelise better); None picks potri on a CPU with at most :data:`POTRI_MAX_THREADS` torch threads and the
    solves otherwise (on a GPU, and on CPUs with more threads, where this was not measured). Measured on a 2-core
    AMD EPYC (``benchmarks/bench_eos.py``, one evaluation at d0 = 128, N = 1024 to 4096): potri 1.37-1.44x faster
    with one thread and 1.22-1.32x with two. Both agree to rounding.

    Reusing them avoids allocating (and first-touching) fresh N x N arrays at every evaluation. No result of
    :func:`evaluate` refers to them, so every evaluation may share one workspace. Chapter ``05_adaptive_kernel``.
    """

    def __init__(self, problem: EoSProblem, *, inverse: str | None = None):
        X = problem.X
        N = X.shape[0]
        if inverse is None:
            inverse = self.default_inverse(X.device)
        if inverse not in ("cholesky_inverse", "triangular_solves"):
            raise ValueError(f"inverse must be 'cholesky_inverse' or 'triangular_solves', got {inverse!r}")
        self.inverse = inverse
        self.K = X.new_empty(N, N)
        self.R = X.new_empty(N, N)
        self.L = X.new_empty(N, N)
        self.W = X.new_empty(N, N)
        self.eye = torch.eye(N, dtype=X.dtype, device=X.device)
        self.info = torch.zeros((), dtype=torch.int32, device=X.device)

    @staticmethod
    def default_inverse(device) -> str:
        """The route ``inverse=None`` takes on ``device`` with torch's current thread count (no buffers allocated):
        potri, a third of the flops of two triangular solves against I, on a CPU with at most
        :data:`POTRI_MAX_THREADS` threads."""
        few_threads = torch.device(device).type == "cpu" and torch.get_num_threads() <= POTRI_MAX_THREADS
        return "cholesky_inverse" if few_threads else "triangular_solves"


def evaluate(problem: EoSProblem, Sigma: torch.Tensor, kappa: float, *, workspace: EoSWorkspace | None = None) -> EoSEvaluation:
    """The map and its relative residual at Sigma (d0, d0) for the effective width kappa; never raises on
    an undefined map (``new_Sigma`` None and ``cause`` say why).

    The same numbers as :func:`evaluate_direct` (to rounding) with five N x N passes besides the two
    products with X, the Cholesky factorisation and the inverse: with h_i = 1/2 + K_ii and the half gap
    H_ij = h_i h_j - K_ij^2 = gap_ij / 4 (>= 1/4 for Sigma positive semi-definite, so no clamp),
    theta = atan2(K, sqrt(H)), and with P' = A / sqrt(H) (so that P = sigma_a^2 (2/pi) A / sqrt(gap) = c P' / 2),
    G = c X^T (P' X - diag(sum_j P'_ij K_ij / h_i) X), c = sigma_a^2 (2/pi).
    ``workspace``: reusable buffers (:class:`EoSWorkspace`), made here when None.
    Eqs. ``ak-eos``, ``ak-A`` and ``ak-grad`` of chapter ``05_adaptive_kernel``.
    """
    X, y, noise_var = problem.X, problem.y, problem.noise_var
    c = problem.sigma_a2 * _TWO_OVER_PI
    w = EoSWorkspace(problem) if workspace is None else workspace
    K, R = w.K, w.R
    Q, h = _q1_into(problem, Sigma, K, R)  # Q1 (N, N), kept by the result; K = X Sigma X^T, R = sqrt(H), h (N,)
    diag = Q.diagonal().clone()
    Q.diagonal().add_(noise_var)  # Q1 + sigma^2 I, factorised from its lower triangle
    L, info = torch.linalg.cholesky_ex(Q, out=(w.L, w.info))
    Q.diagonal().copy_(diag)
    if int(info) != 0:
        return EoSEvaluation(Sigma, None, Q, y.new_full(y.shape, float("nan")), math.inf, "Q1 + noise_var I is not positive definite")
    alpha = torch.cholesky_solve(y[:, None], L)[:, 0]  # (Q1 + sigma^2 I)^{-1} y, (N,)
    fbar = y - noise_var * alpha
    # (Q1 + sigma^2 I)^{-1}, by the workspace's route (the same to rounding)
    if w.inverse == "cholesky_inverse":
        A = torch.cholesky_inverse(L, out=w.W)
    else:
        A = torch.cholesky_solve(w.eye, L, out=w.W)
    if problem.label_term == "eos":
        A.addr_(alpha, alpha, beta=-1.0)  # A = alpha alpha^T - (Q1 + sigma^2 I)^{-1}  (t t^T / sigma^4 = alpha alpha^T)
    else:  # reference: sigma^2 T T^T = sigma^2 U M U^T with U = [1, fbar] (N, 2), M = [[|y|^2, -sum y], [-sum y, N]]
        U = torch.stack([torch.ones_like(fbar), fbar], 1)  # (N, 2)
        sy, yy = y.sum(), y @ y
        Mid = torch.stack([torch.stack([yy, -sy]), torch.stack([-sy, y.new_tensor(float(y.shape[0]))])])
        A.addmm_(U @ Mid, U.T, beta=-1.0, alpha=noise_var)
    A.div_(R)  # P' = A / sqrt(H), (N, N)
    r = K.mul_(A).sum(1).div_(h)  # (N,): sum_j P'_ij K_ij / h_i  (K is not needed any more)
    PX = torch.mm(A, X).sub_(r[:, None] * X)  # (N, N) @ (N, d0) -> (N, d0)
    G = (X.T @ PX).mul_(c)  # (d0, N) @ (N, d0) -> (d0, d0)
    G = 0.5 * (G + G.T)  # a non-finite Q1 or alpha shows up here, in d0 x d0
    new, res, cause, precision = precision_step(problem, Sigma, G, kappa)
    return EoSEvaluation(Sigma, new, Q, fbar, res, cause, precision)


def _q1_into(problem: EoSProblem, Sigma, K, R):
    """Q1 = c atan2(K, sqrt(H)) at Sigma (a new (N, N) tensor) and h (N,), with K = X Sigma X^T and R = sqrt(H) written
    into the (N, N) buffers ``K`` and ``R`` (H, h, c as in :func:`evaluate`, which calls this)."""
    X = problem.X
    torch.mm(X @ Sigma, X.T, out=K)  # (N, d0) @ (d0, N) -> (N, N), K = X Sigma X^T
    h = K.diagonal() + 0.5  # (N,)
    torch.outer(h, h, out=R).addcmul_(K, K, value=-1.0).sqrt_()  # R = sqrt(h_i h_j - K_ij^2) = sqrt(gap) / 2
    return torch.atan2(K, R).mul_(problem.sigma_a2 * _TWO_OVER_PI), h


def solver_kernel(problem: EoSProblem, Sigma: torch.Tensor) -> torch.Tensor:
    """Q1[Sigma] (N, N), exactly symmetric, by the arithmetic of :func:`evaluate`: the kernel a solve that ends at
    Sigma returns (bit for bit, on the same device and thread count), without the factorisation. For results
    stored without their kernel (:mod:`nckernels.experiments.solves`). Eq. ``ak-q1`` of chapter ``05_adaptive_kernel``.
    """
    N = problem.X.shape[0]
    Q = _q1_into(problem, Sigma, problem.X.new_empty(N, N), problem.X.new_empty(N, N))[0]
    return 0.5 * (Q + Q.T)


def evaluate_direct(problem: EoSProblem, Sigma: torch.Tensor, kappa: float) -> EoSEvaluation:
    """The map written out term by term (the definition :func:`evaluate` must reproduce; for tests): every
    N x N intermediate formed, K and Q1 symmetrised, the inverse (Q1 + sigma^2 I)^{-1} and A formed explicitly.

    Eqs. ``ak-eos``, ``ak-A`` and ``ak-grad`` of chapter ``05_adaptive_kernel``.
    """
    X, y, noise_var, sigma_a2 = problem.X, problem.y, problem.noise_var, problem.sigma_a2
    N, d0 = X.shape
    eye_N = torch.eye(N, dtype=X.dtype, device=X.device)
    K, s, theta, gap = kernel_parts(X, Sigma)
    Q = q1_from_parts(theta, sigma_a2)
    L, info = torch.linalg.cholesky_ex(Q + noise_var * eye_N)
    if int(info) != 0:
        return EoSEvaluation(Sigma, None, Q, y.new_full(y.shape, float("nan")), math.inf, "Q1 + noise_var I is not positive definite")
    alpha = torch.cholesky_solve(y[:, None], L)[:, 0]  # (Q1 + sigma^2 I)^{-1} y, (N,)
    fbar = y - noise_var * alpha
    Kinv = torch.cholesky_inverse(L)  # (Q1 + sigma^2 I)^{-1}, (N, N)
    if problem.label_term == "eos":
        A = alpha[:, None] * alpha[None, :] - Kinv  # t t^T / sigma^4 = alpha alpha^T
    else:
        A = label_matrix(y, fbar, noise_var, problem.label_term) - Kinv
    G = gradient_from_parts(X, A, K, s, gap, sigma_a2)  # a non-finite Q1 or alpha shows up here, in d0 x d0
    precision = (d0 / problem.sigma_w2) * torch.eye(d0, dtype=X.dtype, device=X.device) - G / kappa
    if not bool(torch.isfinite(G).all()):
        return EoSEvaluation(Sigma, None, Q, fbar, math.inf, "non-finite kernel or gradient")
    C, info = torch.linalg.cholesky_ex(precision)
    if int(info) != 0:
        return EoSEvaluation(Sigma, None, Q, fbar, math.inf,
                             "the precision (d0/sigma_w2) I - G/kappa is not positive definite", precision)
    new = torch.cholesky_inverse(C)
    new = 0.5 * (new + new.T)
    res = float(torch.linalg.matrix_norm(Sigma - new) / torch.linalg.matrix_norm(Sigma))
    return EoSEvaluation(Sigma, new, Q, fbar, res, "", precision)


def eos_update(X, y, Sigma, *, kappa: float, noise_var: float = 1e-6, sigma_w: float | None = None,
               sigma_a: float | None = None, label_term: str = "eos", sigma_w2: float | None = None,
               sigma_a2: float | None = None) -> torch.Tensor:
    r"""The fixed-point map Sigma -> ((d0/sigma_w^2) I - G(Sigma)/kappa)^{-1}, G at A frozen at Sigma (eq. ``ak-eos``).

    X (N, d0), y (N,), Sigma (d0, d0) -> (d0, d0). Raises ``ValueError`` if the new precision matrix is
    not positive definite (the map is undefined there). ``sigma_w2``/``sigma_a2``: deprecated variance aliases.
    """
    kappa = check_positive(kappa, "kappa")
    problem = make_problem(X, y, noise_var=noise_var, sigma_w=sigma_w, sigma_a=sigma_a, sigma_w2=sigma_w2,
                           sigma_a2=sigma_a2, label_term=label_term)
    Sigma = check_matrix(Sigma, "Sigma", square=True, columns=problem.X.shape[1]).to(problem.X.dtype)
    check_psd(Sigma, "Sigma")
    ev = evaluate(problem, 0.5 * (Sigma + Sigma.T), kappa)
    if ev.new_Sigma is None:
        raise ValueError(f"the EoS map is undefined at this Sigma: {ev.cause}")
    return ev.new_Sigma


def eos_residual(X, y, Sigma, *, kappa: float, noise_var: float = 1e-6, sigma_w: float | None = None,
                 sigma_a: float | None = None, label_term: str = "eos", sigma_w2: float | None = None,
                 sigma_a2: float | None = None) -> float:
    r"""Relative fixed-point residual ||Sigma - Phi(Sigma)||_F / ||Sigma||_F of :func:`eos_update` Phi (eq. ``ak-eos``)."""
    new = eos_update(X, y, Sigma, kappa=kappa, noise_var=noise_var, sigma_w=sigma_w, sigma_a=sigma_a,
                     label_term=label_term, sigma_w2=sigma_w2, sigma_a2=sigma_a2)
    Sigma = torch.as_tensor(Sigma, dtype=new.dtype, device=new.device)
    return float(torch.linalg.matrix_norm(Sigma - new) / torch.linalg.matrix_norm(Sigma))
