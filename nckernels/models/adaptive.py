r"""The adaptive kernel of a finite-width Bayesian two-layer erf network: the Equations of State (EoS).

In the mean-field theory of the network f(x) = a^T erf(W x) (Seroussi, Naveh & Ringel 2023), every
hidden weight vector is Gaussian, w ~ N(0, Sigma), and the output is a Gaussian process with kernel

    Q1[Sigma]_ij = sigma_a^2 (2/pi) arcsin( 2 x_i^T Sigma x_j / sqrt((1 + 2 x_i^T Sigma x_i)(1 + 2 x_j^T Sigma x_j)) ).

With noise variance sigma^2 (``noise_var``), alpha = (Q1 + sigma^2 I)^{-1} y, posterior mean
fbar = y - sigma^2 alpha and discrepancy t = y - fbar = sigma^2 alpha, the saddle point of the action is

    Sigma^{-1} = (d0 / sigma_w^2) I - (1/h) G,    G = d/dSigma Tr[A Q1[Sigma]],
    A = t t^T / sigma^4 - (Q1 + sigma^2 I)^{-1} = alpha alpha^T - (Q1 + sigma^2 I)^{-1}   (held fixed),

solved with h replaced by kappa, annealed from 1e5 down to h. As h -> infinity, Sigma -> sigma_w^2 I / d0
and Q1 -> sigma_a^2 times the erf NNGP.

Everything is derived in book chapter ``05_adaptive_kernel``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd
import torch

from ..metrics import nc1_from_features, nc1_from_kernel
from ..kernels.two_layer import nngp
from ..validation import as_float_tensor, check_choice, check_finite, check_matrix, check_positive

__all__ = [
    "LABEL_TERMS",
    "REFERENCE_SCHEDULE",
    "default_schedule",
    "adaptive_kernel",
    "adaptive_kernel_gradient",
    "eos_label_matrix",
    "eos_update",
    "eos_residual",
    "EoSConvergenceError",
    "AdaptiveKernelResult",
    "solve_adaptive_kernel",
]

LABEL_TERMS = ("eos", "reference")

#: The reference code's annealing values of kappa: 1e5, 9e4, ..., 1e4, 9e3, ..., 1e3, 900, ..., 500.
REFERENCE_SCHEDULE: tuple[float, ...] = (
    tuple(float(k) * 1e4 for k in range(10, 0, -1))
    + tuple(float(k) * 1e3 for k in range(9, 0, -1))
    + (900.0, 800.0, 700.0, 600.0, 500.0)
)

_TWO_OVER_PI = 2.0 / math.pi


def default_schedule(width: float) -> tuple[float, ...]:
    """The reference values of kappa above ``width``, then ``width`` itself (24 values for width = 500)."""
    width = check_positive(width, "width")
    return tuple(k for k in REFERENCE_SCHEDULE if k > width) + (float(width),)


# --------------------------------------------------------------------------------------------------
# The kernel, its gradient and the fixed-point map
# --------------------------------------------------------------------------------------------------


def _kernel_parts(X: torch.Tensor, Sigma: torch.Tensor):
    """K = X Sigma X^T (N, N), s_i = (1 + 2 K_ii)^{-1/2} (N,), gap = (1+2K_ii)(1+2K_jj) - 4 K_ij^2 (N, N)."""
    K = (X @ Sigma) @ X.T  # (N, d0) @ (d0, d0) @ (d0, N) -> (N, N)
    K = 0.5 * (K + K.T)
    one_2v = 1 + 2 * K.diagonal()  # (N,)
    gap = (one_2v[:, None] * one_2v[None, :] - 4 * K * K).clamp_min(0)
    return K, one_2v.rsqrt(), gap


def adaptive_kernel(X, Sigma, *, sigma_a2: float = 1 / 128) -> torch.Tensor:
    r"""Q1[Sigma]_ij = sigma_a^2 (2/pi) arcsin(2 x_i.Sigma x_j / sqrt((1+2 x_i.Sigma x_i)(1+2 x_j.Sigma x_j))).

    Computed as (2/pi) atan2(2K, sqrt(gap)) (the angle without the ratio). X (N, d0), Sigma (d0, d0)
    symmetric positive definite -> (N, N), exactly symmetric. With Sigma = sigma_w^2 I / d0 this is
    sigma_a^2 * ``nngp(X, sigma_w=sigma_w)``. Chapter ``05_adaptive_kernel``, eq. ``ak-q1``.
    """
    X = check_matrix(X, "X")
    Sigma = check_matrix(Sigma, "Sigma", square=True, columns=X.shape[1]).to(X.dtype)
    sigma_a2 = check_positive(sigma_a2, "sigma_a2")
    return _q1(X, Sigma, sigma_a2)[0]


def _q1(X, Sigma, sigma_a2):
    K, s, gap = _kernel_parts(X, Sigma)
    Q = (sigma_a2 * _TWO_OVER_PI) * torch.atan2(2 * K, gap.sqrt())
    return 0.5 * (Q + Q.T), K, s, gap


def _gradient(X, A, K, s, gap, sigma_a2):
    # P = D B D with B_ij = A_ij sigma_a^2 (2/pi) (1 - Z_ij^2)^{-1/2}; since 1 - Z^2 = s_i^2 s_j^2 gap_ij,
    # P_ij = sigma_a^2 (2/pi) A_ij / sqrt(gap_ij), and B_ij Z_ij = 2 P_ij K_ij.
    P = (sigma_a2 * _TWO_OVER_PI) * A * gap.rsqrt()  # (N, N)
    w = 4 * s * s * (P * K).sum(1)  # (N,): s_i^2 sum_j (B_ij Z_ij + B_ji Z_ji)
    G = 2 * (X.T @ (P @ X)) - X.T @ (w[:, None] * X)  # (d0, N) @ (N, d0) -> (d0, d0)
    return 0.5 * (G + G.T)


def adaptive_kernel_gradient(X, Sigma, A, *, sigma_a2: float = 1 / 128) -> torch.Tensor:
    r"""G = d/dSigma Tr(A Q1[Sigma]) in closed form, A held fixed (only its symmetric part matters).

        G = 2 X^T (D B D) X - X^T diag( s_i^2 sum_j (B_ij Z_ij + B_ji Z_ji) ) X,
        s_i = (1 + 2 x_i.Sigma x_i)^{-1/2}, Z_ij = 2 x_i.Sigma x_j s_i s_j,
        B_ij = A_ij sigma_a^2 (2/pi) (1 - Z_ij^2)^{-1/2}, D = diag(s).

    X (N, d0), Sigma (d0, d0), A (N, N) -> (d0, d0) symmetric; cost O(N^2 d0 + N d0^2), no autograd.
    Chapter ``05_adaptive_kernel``, eq. ``ak-grad``.
    """
    X = check_matrix(X, "X")
    Sigma = check_matrix(Sigma, "Sigma", square=True, columns=X.shape[1]).to(X.dtype)
    A = check_matrix(A, "A", square=True, columns=X.shape[0]).to(X.dtype)
    sigma_a2 = check_positive(sigma_a2, "sigma_a2")
    K, s, gap = _kernel_parts(X, Sigma)
    return _gradient(X, 0.5 * (A + A.T), K, s, gap, sigma_a2)


def eos_label_matrix(y, fbar, *, noise_var: float, label_term: str = "eos") -> torch.Tensor:
    r"""The label term L of A = L - (Q1 + sigma^2 I)^{-1}: (N,) targets and posterior mean -> (N, N).

    * ``"eos"``: L = t t^T / sigma^4 with t = y - fbar (the derived equation).
    * ``"reference"``: what the public reference code computes, L = sigma^2 T T^T where the (N,) minus
      (N, 1) broadcast makes T_ij = y_j - fbar_i an N x N matrix, so
      (T T^T)_ik = |y|^2 - (fbar_i + fbar_k) sum_j y_j + N fbar_i fbar_k (formed here without the N^3 product).
    """
    check_choice(label_term, "label_term", LABEL_TERMS)
    noise_var = check_positive(noise_var, "noise_var")
    t = y - fbar  # (N,)
    if label_term == "eos":
        a = t / noise_var**2
        return a[:, None] * t[None, :]
    N = y.shape[0]
    ones = torch.ones_like(fbar)
    TT = (y @ y) * ones[:, None] * ones[None, :] - y.sum() * (fbar[:, None] + fbar[None, :]) + N * fbar[:, None] * fbar[None, :]
    return noise_var * TT


@dataclass(frozen=True)
class _Evaluation:
    """One evaluation of the fixed-point map at Sigma (all tensors at that Sigma)."""

    Sigma: torch.Tensor
    new_Sigma: torch.Tensor | None  # None when the new precision matrix is not positive definite
    kernel: torch.Tensor
    fbar: torch.Tensor
    residual: float  # ||Sigma - new_Sigma||_F / ||Sigma||_F (inf when new_Sigma is None)
    cause: str = ""


def _evaluate(X, y, Sigma, kappa, noise_var, sigma_w2, sigma_a2, label_term) -> _Evaluation:
    N, d0 = X.shape
    eye_N = torch.eye(N, dtype=X.dtype, device=X.device)
    Q, K, s, gap = _q1(X, Sigma, sigma_a2)
    L, info = torch.linalg.cholesky_ex(Q + noise_var * eye_N)
    if int(info) != 0:
        return _Evaluation(Sigma, None, Q, y.new_full(y.shape, float("nan")), math.inf, "Q1 + noise_var I is not positive definite")
    alpha = torch.cholesky_solve(y[:, None], L)[:, 0]  # (Q1 + sigma^2 I)^{-1} y, (N,)
    fbar = y - noise_var * alpha
    Kinv = torch.cholesky_inverse(L)  # (Q1 + sigma^2 I)^{-1}, (N, N)
    if label_term == "eos":
        A = alpha[:, None] * alpha[None, :] - Kinv  # t t^T / sigma^4 = alpha alpha^T
    else:
        A = eos_label_matrix(y, fbar, noise_var=noise_var, label_term=label_term) - Kinv
    G = _gradient(X, A, K, s, gap, sigma_a2)  # a non-finite Q1 or alpha shows up here, in d0 x d0
    precision = (d0 / sigma_w2) * torch.eye(d0, dtype=X.dtype, device=X.device) - G / kappa
    if not bool(torch.isfinite(G).all()):
        return _Evaluation(Sigma, None, Q, fbar, math.inf, "non-finite kernel or gradient")
    C, info = torch.linalg.cholesky_ex(precision)
    if int(info) != 0:
        return _Evaluation(Sigma, None, Q, fbar, math.inf,
                           "the precision (d0/sigma_w2) I - G/kappa is not positive definite")
    new = torch.cholesky_inverse(C)
    new = 0.5 * (new + new.T)
    res = float(torch.linalg.matrix_norm(Sigma - new) / torch.linalg.matrix_norm(Sigma))
    return _Evaluation(Sigma, new, Q, fbar, res)


def _check_problem(X, y, width, noise_var, sigma_w2, sigma_a2):
    X = check_matrix(X, "X")
    y = as_float_tensor(y, "y").to(dtype=X.dtype, device=X.device)
    if y.ndim != 1:
        raise ValueError(f"y must be a 1-D array of N targets, got shape {tuple(y.shape)}")
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"y has {y.shape[0]} entries but X has {X.shape[0]} rows")
    check_finite(y, "y")
    width = check_positive(width, "width")
    noise_var = check_positive(noise_var, "noise_var")
    sigma_w2 = check_positive(sigma_w2, "sigma_w2")
    sigma_a2 = check_positive(sigma_a2, "sigma_a2")
    return X, y, width, noise_var, sigma_w2, sigma_a2


def eos_update(X, y, Sigma, *, kappa: float, noise_var: float = 1e-6, sigma_w2: float = 1.0,
               sigma_a2: float = 1 / 128, label_term: str = "eos") -> torch.Tensor:
    r"""The fixed-point map Sigma -> ((d0/sigma_w^2) I - G(Sigma)/kappa)^{-1}, G at A frozen at Sigma.

    X (N, d0), y (N,), Sigma (d0, d0) -> (d0, d0). Raises ``ValueError`` if the new precision matrix is
    not positive definite (the map is undefined there).
    """
    X, y, kappa, noise_var, sigma_w2, sigma_a2 = _check_problem(X, y, kappa, noise_var, sigma_w2, sigma_a2)
    check_choice(label_term, "label_term", LABEL_TERMS)
    Sigma = check_matrix(Sigma, "Sigma", square=True, columns=X.shape[1]).to(X.dtype)
    ev = _evaluate(X, y, 0.5 * (Sigma + Sigma.T), kappa, noise_var, sigma_w2, sigma_a2, label_term)
    if ev.new_Sigma is None:
        raise ValueError(f"the EoS map is undefined at this Sigma: {ev.cause}")
    return ev.new_Sigma


def eos_residual(X, y, Sigma, *, kappa: float, noise_var: float = 1e-6, sigma_w2: float = 1.0,
                 sigma_a2: float = 1 / 128, label_term: str = "eos") -> float:
    r"""Relative fixed-point residual ||Sigma - Phi(Sigma)||_F / ||Sigma||_F of :func:`eos_update` Phi."""
    new = eos_update(X, y, Sigma, kappa=kappa, noise_var=noise_var, sigma_w2=sigma_w2, sigma_a2=sigma_a2,
                     label_term=label_term)
    Sigma = torch.as_tensor(Sigma, dtype=new.dtype)
    return float(torch.linalg.matrix_norm(Sigma - new) / torch.linalg.matrix_norm(Sigma))


# --------------------------------------------------------------------------------------------------
# The solver
# --------------------------------------------------------------------------------------------------


class EoSConvergenceError(RuntimeError):
    """An annealing step of the EoS did not converge; carries ``history`` (DataFrame), ``residual``,
    ``kappa`` and ``cause``."""

    def __init__(self, message: str, *, history: pd.DataFrame, residual: float, kappa: float, cause: str):
        super().__init__(message)
        self.history = history
        self.residual = residual
        self.kappa = kappa
        self.cause = cause


@dataclass(frozen=True)
class AdaptiveKernelResult:
    """Solution of the EoS after annealing (or up to the failed step when ``converged`` is False).

    Sigma (d0, d0), kernel = Q1[Sigma] (N, N), fbar (N,); history: one row per annealing step with
    columns kappa, status, iterations, evaluations, substeps, residual, nc1_kernel, nc1_fbar,
    train_mse, trace_sigma, cause.
    """

    Sigma: torch.Tensor
    kernel: torch.Tensor
    fbar: torch.Tensor
    converged: bool
    residual: float
    evaluations: int
    history: pd.DataFrame = field(repr=False)
    label_term: str = "eos"
    width: float = 500.0
    noise_var: float = 1e-6
    tol: float = 1e-10


def _anderson_step(X, y, ev0, kappa, noise_var, sigma_w2, sigma_a2, label_term, *, tol, max_iter, memory, damping):
    """Damped fixed-point iteration with Anderson acceleration (Walker & Ni type II) at one kappa.

    Returns (evaluation at the final iterate, iterations, evaluations, cause or "").
    Safeguards: an extrapolated iterate that is not positive definite, or at which the map is
    undefined, or whose residual grows by more than 10x, is replaced by a damped plain step
    (halving the damping) and the memory is cleared.
    """
    ev = ev0
    evals = 0
    dX, dR = [], []
    beta = damping
    for it in range(1, max_iter + 1):
        if ev.new_Sigma is None:
            return ev, it - 1, evals, ev.cause
        if ev.residual <= tol:
            return ev, it - 1, evals, ""
        S, R = ev.Sigma, ev.new_Sigma - ev.Sigma  # R = Phi(S) - S
        cand = S + beta * R
        if dR:
            F = torch.stack([d.reshape(-1) for d in dR], 1)  # (d0^2, m)
            E = torch.stack([d.reshape(-1) for d in dX], 1)
            scale = F.norm(dim=0).clamp_min(1e-300)
            Fn = F / scale
            gram = Fn.T @ Fn  # (m, m)
            gram = gram + 1e-12 * torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device)
            gamma = torch.linalg.solve(gram, Fn.T @ R.reshape(-1)) / scale
            cand = cand - ((E + beta * F) @ gamma).reshape(S.shape)
            cand = 0.5 * (cand + cand.T)
            if int(torch.linalg.cholesky_ex(cand)[1]) != 0:
                cand = None
        new = None
        if cand is not None:
            new = _evaluate(X, y, cand, kappa, noise_var, sigma_w2, sigma_a2, label_term)
            evals += 1
            if new.new_Sigma is None or not new.residual < 10 * ev.residual:
                new = None
        if new is None:  # safeguard: plain damped step from S, memory cleared
            dX.clear()
            dR.clear()
            while new is None and beta > 1e-4:
                cand = S + beta * R  # a convex combination of two PD matrices for beta <= 1
                trial = _evaluate(X, y, cand, kappa, noise_var, sigma_w2, sigma_a2, label_term)
                evals += 1
                if trial.new_Sigma is not None and trial.residual < ev.residual:
                    new = trial
                else:
                    beta *= 0.5
            if new is None:
                return ev, it, evals, "no damped step reduces the residual"
        else:
            dX.append(new.Sigma - S)
            dR.append((new.new_Sigma - new.Sigma) - R)
            if len(dX) > memory:
                dX.pop(0)
                dR.pop(0)
        ev = new
    if ev.new_Sigma is not None and ev.residual <= tol:
        return ev, max_iter, evals, ""
    return ev, max_iter, evals, f"max_iter={max_iter} reached"


def _step_row(kappa, ev, labels, y, iterations, evaluations, substeps, cause):
    has_classes = labels is not None
    nc1_k = nc1_from_kernel(ev.kernel, labels).nc1 if has_classes else math.nan
    fb = ev.fbar
    if has_classes and bool(torch.isfinite(fb).all()):
        nc1_f = nc1_from_kernel(fb[:, None] * fb[None, :], labels).nc1
    else:
        nc1_f = math.nan
    return {
        "kappa": float(kappa),
        "status": "converged" if not cause else "failed",
        "iterations": int(iterations),
        "evaluations": int(evaluations),
        "substeps": int(substeps),
        "residual": float(ev.residual),
        "nc1_kernel": nc1_k,
        "nc1_fbar": nc1_f,
        "train_mse": float(((y - fb) ** 2).mean()),
        "trace_sigma": float(ev.Sigma.diagonal().sum()),
        "cause": cause,
    }


def _labels_of(y, labels):
    if labels is not None:
        return labels
    classes, index = torch.unique(y, return_inverse=True)
    return index if 2 <= classes.numel() <= max(2, y.shape[0] // 2) else None


def solve_adaptive_kernel(
    X,
    y,
    *,
    width: float,
    noise_var: float = 1e-6,
    sigma_w2: float = 1.0,
    sigma_a2: float = 1 / 128,
    schedule=None,
    label_term: str = "eos",
    tol: float = 1e-10,
    max_iter: int = 200,
    memory: int = 6,
    damping: float = 1.0,
    max_halvings: int = 6,
    labels=None,
    strict: bool = True,
    progress: bool = False,
) -> AdaptiveKernelResult:
    r"""Solve Sigma^{-1} = (d0/sigma_w^2) I - (1/kappa) d/dSigma Tr[A Q1[Sigma]] annealing kappa down to ``width``.

    Method (chapter ``05_adaptive_kernel``): at each kappa of ``schedule`` (decreasing, ending at
    ``width``; default :func:`default_schedule`), Anderson-accelerated damped fixed-point iteration
    on Sigma, warm-started by linear extrapolation in 1/kappa from the two previous solutions; the
    gradient is closed-form (:func:`adaptive_kernel_gradient`), every solve a Cholesky solve. If a
    step fails it is bisected in 1/kappa up to ``max_halvings`` times (step control). Converged means
    the relative residual ||Sigma - Phi(Sigma)||_F / ||Sigma||_F <= ``tol`` at the returned Sigma.

    Args:
        X: (N, d0) inputs (float64 recommended; dtype and device are kept). y: (N,) targets.
        width: the hidden width h. noise_var: sigma^2 of the GP likelihood. sigma_w2, sigma_a2: prior
            variances (times d0 for the hidden weights). label_term: "eos" (t t^T / sigma^4) or
            "reference" (the reference code's sigma^2 T T^T; see :func:`eos_label_matrix`).
        labels: (N,) class labels for the NC1 columns of the history (default: the distinct values of y).
        strict: raise :class:`EoSConvergenceError` on a failed step; otherwise return the last
            iterate with ``converged=False`` (no later step is attempted).

    Returns:
        :class:`AdaptiveKernelResult`.
    """
    X, y, width, noise_var, sigma_w2, sigma_a2 = _check_problem(X, y, width, noise_var, sigma_w2, sigma_a2)
    check_choice(label_term, "label_term", LABEL_TERMS)
    tol = check_positive(tol, "tol")
    if not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}")
    if schedule is None:
        schedule = default_schedule(width)
    try:
        schedule = [float(k) for k in schedule]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"schedule must be a sequence of positive numbers, got {schedule!r}") from exc
    if not schedule or any(not (math.isfinite(k) and k > 0) for k in schedule):
        raise ValueError(f"schedule must be a non-empty sequence of positive finite numbers, got {schedule!r}")
    if any(b >= a for a, b in zip(schedule, schedule[1:])):
        raise ValueError(f"schedule must be strictly decreasing (annealing towards the width), got {schedule!r}")
    if not math.isclose(schedule[-1], width, rel_tol=1e-12):
        raise ValueError(f"schedule must end at the width {width:g}, but its last value is {schedule[-1]:g}")
    if labels is not None:
        from ..validation import check_labels

        labels = check_labels(labels, X.shape[0], device=X.device)[0]
    labels = _labels_of(y, labels)

    N, d0 = X.shape
    Sigma = (sigma_w2 / d0) * torch.eye(d0, dtype=X.dtype, device=X.device)  # the NNGP solution
    path = [(0.0, Sigma)]  # (1/kappa, converged Sigma): the NNGP is the solution at 1/kappa = 0
    rows, total_evals = [], 0
    ev = None
    steps = schedule
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(schedule, desc="EoS annealing")
    for kappa in steps:
        target = 1.0 / kappa
        iters = evals = substeps = 0
        cause = ""
        eps_done = path[-1][0]
        halvings = 0
        while eps_done < target:
            eps = target if halvings == 0 else eps_done + (target - eps_done) / 2**halvings
            ev0 = _evaluate(X, y, _predict(path, eps), 1.0 / eps, noise_var, sigma_w2, sigma_a2, label_term)
            if ev0.new_Sigma is None and len(path) > 1:  # the extrapolated start is outside the domain
                ev0 = _evaluate(X, y, path[-1][1], 1.0 / eps, noise_var, sigma_w2, sigma_a2, label_term)
            evals += 1
            ev, it, e, cause = _anderson_step(X, y, ev0, 1.0 / eps, noise_var, sigma_w2, sigma_a2, label_term,
                                              tol=tol, max_iter=max_iter, memory=memory, damping=damping)
            iters += it
            evals += e
            if cause:
                halvings += 1
                if halvings > max_halvings:
                    break
                cause = ""
                continue
            substeps += 1
            path.append((eps, ev.Sigma))
            path = path[-3:]
            eps_done = eps
            halvings = 0
        if eps_done < target:
            cause = cause or "step control exhausted"
        total_evals += evals
        rows.append(_step_row(kappa, ev, labels, y, iters, evals, substeps, cause))
        if cause:
            history = pd.DataFrame(rows)
            message = (f"EoS annealing step kappa={kappa:g} failed ({cause}); last relative residual "
                       f"{ev.residual:.3g}, tol {tol:g}, noise_var {noise_var:g}, label_term {label_term!r}")
            if strict:
                raise EoSConvergenceError(message, history=history, residual=ev.residual, kappa=kappa, cause=cause)
            # the last converged Sigma is returned, with its kernel and fbar
            last = _evaluate(X, y, path[-1][1], kappa, noise_var, sigma_w2, sigma_a2, label_term)
            return AdaptiveKernelResult(path[-1][1], last.kernel, last.fbar, False, ev.residual, total_evals,
                                        history, label_term, width, noise_var, tol)
    return AdaptiveKernelResult(ev.Sigma, ev.kernel, ev.fbar, True, ev.residual, total_evals, pd.DataFrame(rows),
                                label_term, width, noise_var, tol)


def _predict(path, eps):
    """Warm start at 1/kappa = eps: linear extrapolation from the last two solutions, if positive definite."""
    if len(path) < 2:
        return path[-1][1]
    (e0, S0), (e1, S1) = path[-2], path[-1]
    pred = S1 + (eps - e1) / (e1 - e0) * (S1 - S0)
    pred = 0.5 * (pred + pred.T)
    return pred if int(torch.linalg.cholesky_ex(pred)[1]) == 0 else S1
