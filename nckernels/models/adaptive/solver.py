r"""The EoS solver: annealing in kappa with Anderson-accelerated damped fixed-point steps and step control.

Layer 4 (models), part of :mod:`nckernels.models.adaptive`; method of book chapter ``05_adaptive_kernel``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd
import torch

from ...metrics import nc1_from_kernel
from ...validation import check_choice, check_int, check_labels, check_positive
from .map import EoSEvaluation, EoSProblem, EoSWorkspace, evaluate, make_problem

__all__ = [
    "SCHEDULES",
    "REFERENCE_SCHEDULE",
    "default_schedule",
    "EoSConvergenceError",
    "AdaptiveKernelResult",
    "anderson_step",
    "newton_step",
    "bracket_step",
    "predict_start",
    "step_row",
    "labels_of",
    "solve_adaptive_kernel",
    "label_control",
]

#: The reference code's annealing values of kappa: 1e5, 9e4, ..., 1e4, 9e3, ..., 1e3, 900, ..., 500.
REFERENCE_SCHEDULE: tuple[float, ...] = (
    tuple(float(k) * 1e4 for k in range(10, 0, -1))
    + tuple(float(k) * 1e3 for k in range(9, 0, -1))
    + (900.0, 800.0, 700.0, 600.0, 500.0)
)


#: The named annealing schedules of :func:`solve_adaptive_kernel` (a sequence of kappa values is also accepted).
SCHEDULES = ("adaptive", "reference")


def default_schedule(width: float) -> tuple[float, ...]:
    """The reference values of kappa above ``width``, then ``width`` itself (24 values for width = 500).

    Chapter ``05_adaptive_kernel``.
    """
    width = check_positive(width, "width")
    return tuple(k for k in REFERENCE_SCHEDULE if k > width) + (float(width),)


class EoSConvergenceError(RuntimeError):
    """An annealing step of the EoS did not converge; carries ``history`` (DataFrame), ``residual``,
    ``kappa`` and ``cause``.

    Chapter ``05_adaptive_kernel``.
    """

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
    train_mse, trace_sigma, cause, tol (the tolerance of that step), method (how the step was solved:
    "broyden", "jump", "newton", "bracket", "floor", "continuation" or "schedule").
    ``converged``: the residual is at most ``tol``, or (``at_floor``, d0 = 1 only) the bracket pinned the root of
    the scalar EoS to rounding (:data:`FLOOR_BRACKET` in Sigma) and the residual there, the map's rounding noise,
    is above ``tol`` but at most :data:`FLOOR_TOL`.
    Chapter ``05_adaptive_kernel``.
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
    at_floor: bool = False


def anderson_step(problem: EoSProblem, ev0: EoSEvaluation, kappa: float, *, tol, max_iter, memory, damping,
                  workspace: EoSWorkspace | None = None):
    """Damped fixed-point iteration with Anderson acceleration (Walker & Ni type II) at one kappa.

    Returns (evaluation at the final iterate, iterations, evaluations, cause or "").
    Safeguards: an extrapolated iterate that is not positive definite, or at which the map is
    undefined, or whose residual grows by more than 10x, is replaced by a damped plain step
    (halving the damping) and the memory is cleared. ``damping``: the first damping factor beta.
    ``workspace``: buffers shared by the evaluations. Chapter ``05_adaptive_kernel``.
    """
    return _anderson(problem, ev0, kappa, tol=tol, max_iter=max_iter, memory=memory, damping=damping,
                     workspace=workspace)[:4]


def _anderson(problem: EoSProblem, ev0: EoSEvaluation, kappa: float, *, tol, max_iter, memory, damping, workspace):
    """:func:`anderson_step`, also returning the damping factor it ended with (the annealing starts its next step
    from twice that, :func:`_next_damping`)."""
    ev = ev0
    evals = 0
    dX, dR = [], []
    beta = damping
    for it in range(1, max_iter + 1):
        if ev.new_Sigma is None:
            return ev, it - 1, evals, ev.cause, beta
        if ev.residual <= tol:
            return ev, it - 1, evals, "", beta
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
            new = evaluate(problem, cand, kappa, workspace=workspace)
            evals += 1
            if new.new_Sigma is None or not new.residual < 10 * ev.residual:
                new = None
        if new is None:  # safeguard: plain damped step from S, memory cleared
            dX.clear()
            dR.clear()
            while new is None and beta > 1e-4:
                cand = S + beta * R  # a convex combination of two PD matrices for beta <= 1
                trial = evaluate(problem, cand, kappa, workspace=workspace)
                evals += 1
                if trial.new_Sigma is not None and trial.residual < ev.residual:
                    new = trial
                else:
                    beta *= 0.5
            if new is None:
                return ev, it, evals, "no damped step reduces the residual", beta
        else:
            dX.append(new.Sigma - S)
            dR.append((new.new_Sigma - new.Sigma) - R)
            if len(dX) > memory:
                dX.pop(0)
                dR.pop(0)
        ev = new
    if ev.new_Sigma is not None and ev.residual <= tol:
        return ev, max_iter, evals, "", beta
    return ev, max_iter, evals, f"max_iter={max_iter} reached", beta


#: bracket_step: a bracket this narrow in log Sigma pins the root to rounding; a residual above tol there is the
#: map's rounding floor near that root (the cause starts with FLOOR_CAUSE). newton_step stops where its step is this
#: small relative to Lam (the cause starts with NEWTON_FLOOR_CAUSE).
FLOOR_BRACKET = 1e-12
FLOOR_CAUSE = "bracket: rounding floor"
NEWTON_FLOOR_CAUSE = "Newton: rounding floor"
#: solve_adaptive_kernel at d0 = 1, where Broyden stops near a root without reaching tol: the bracket from the warm
#: start steps outwards by half the distance to that root in log Sigma (at least WARM_BRACKET_STEP), at most
#: WARM_BRACKET_EXPAND steps on each side (twice that distance).
WARM_BRACKET_STEP = 1e-9
WARM_BRACKET_EXPAND = 4


def newton_step(problem: EoSProblem, Sigma0, kappa: float, *, tol, max_iter: int, workspace: EoSWorkspace | None = None,
                fd_step: float = 1e-7, max_backtracks: int = 20, broyden: bool = False):
    """Newton's method at one kappa on the precision form of the EoS, F(Lam) = Lam - P(Lam^{-1}) = 0, where
    Lam = Sigma^{-1} and P(Sigma) = (d0/sigma_w^2) I - G(Sigma)/kappa is the precision the map inverts.

    Unlike the map Sigma -> P(Sigma)^{-1}, F is defined wherever Lam is positive definite (also where P is
    not), so it can start outside the map's domain; where the map is steep (small d0, small noise, large N) its
    Jacobian carries the step that the fixed-point iteration cannot take. The Jacobian is formed by forward
    differences over the d0 (d0 + 1) / 2 free entries of the symmetric Lam (one evaluation each, relative step
    ``fd_step``), so this pays for small d0 only. Each step is backtracked (halved up to ``max_backtracks``
    times) until Lam stays positive definite and ||F||_F decreases (Armijo factor 1 - 1e-4 t).

    Converged means the map's own relative residual ||Sigma - P(Sigma)^{-1}||_F / ||Sigma||_F <= ``tol`` (the
    criterion of :func:`anderson_step`). Returns (evaluation at the final iterate, iterations, evaluations,
    cause or ""). Chapter ``05_adaptive_kernel``.

    ``broyden``: the forward-difference Jacobian is formed at the first iterate only and then corrected after each
    step by Broyden's update J += (dF - J dLam) dLam^T / (dLam . dLam) (one evaluation per step instead of 1 + n; at
    d0 = 1 the secant method); when no backtracked step along the corrected Jacobian's direction reduces the norm of F,
    the Jacobian is formed afresh by differences and the step retried. For a start near the root (a warm start).

    Rounding floor: where the map's residual cannot reach ``tol`` (its rounding noise lies above it), the Newton
    step near the root shrinks to rounding while the residual stays put. When a step from a Jacobian formed by
    differences moves Lam by at most :data:`FLOOR_BRACKET` (relative, Frobenius norm), the iterate is within
    rounding of the root as far as Newton can tell, and the method stops with a cause starting with
    :data:`NEWTON_FLOOR_CAUSE` (a corrected Jacobian is formed afresh first); backtracking likewise stops once the
    trial step is that small. Measured on chapter 6's N = 2048 grid (split 256/1792, d0 = 1, draw 3 from draw 2's
    Sigma): without these two stops Broyden took 101 evaluations to give up, 90 of them after the floor.
    """
    d0 = Sigma0.shape[0]
    iu = torch.triu_indices(d0, d0, device=Sigma0.device)
    n = iu.shape[1]

    def sym(v):  # (n,) -> symmetric (d0, d0)
        M = v.new_zeros(d0, d0)
        M[iu[0], iu[1]] = v
        return M + M.T - torch.diag(M.diagonal())

    def at(Lam):
        ev = evaluate(problem, _symmetric(torch.cholesky_inverse(torch.linalg.cholesky(Lam))), kappa, workspace=workspace)
        F = None if ev.precision is None else (Lam - ev.precision)[iu[0], iu[1]]
        return ev, F

    Lam = _symmetric(torch.cholesky_inverse(torch.linalg.cholesky(Sigma0)))
    ev, F = at(Lam)
    evals = 1
    J = None  # the Jacobian: by differences, then (broyden) corrected after each step
    for it in range(1, max_iter + 1):
        if F is None:
            return ev, it - 1, evals, ev.cause
        if ev.new_Sigma is not None and ev.residual <= tol:
            return ev, it - 1, evals, ""
        fresh = J is None or not broyden
        while True:
            if fresh:
                delta = fd_step * float(Lam.abs().max())
                J = F.new_empty(n, n)
                for k in range(n):
                    e = F.new_zeros(n)
                    e[k] = delta
                    if int(torch.linalg.cholesky_ex(Lam + sym(e))[1]) != 0:  # Lam at the edge of the cone: no difference
                        return ev, it, evals, "Newton: the difference step leaves the positive definite matrices"
                    _, Fk = at(Lam + sym(e))
                    evals += 1
                    if Fk is None:
                        return ev, it, evals, "Newton: the kernel or gradient is not finite next to the iterate"
                    J[:, k] = (Fk - F) / delta
            try:
                step = -torch.linalg.solve(J, F)
            except RuntimeError:
                step = None
            new = None
            floor = FLOOR_BRACKET * float(Lam.norm())  # a step this small (Frobenius, over the free entries) is rounding
            if step is not None and float(step.norm()) <= floor:
                if fresh:
                    return ev, it, evals, (f"{NEWTON_FLOOR_CAUSE}: the step is below {FLOOR_BRACKET:.0e} of Lam, and the "
                                           f"map's residual there is {ev.residual:.2g}, above tol {tol:g}")
                fresh = True  # a corrected Jacobian says so: differences decide
                continue
            if step is not None:
                norm0 = float(F.norm())
                t = 1.0
                for _ in range(max_backtracks + 1):
                    if t < 1.0 and t * float(step.norm()) <= floor:  # the trial moves Lam by rounding only
                        break
                    trial = Lam + sym(t * step)
                    if int(torch.linalg.cholesky_ex(trial)[1]) == 0:
                        ev_t, F_t = at(trial)
                        evals += 1
                        if F_t is not None and float(F_t.norm()) <= (1 - 1e-4 * t) * norm0:
                            new = (trial, ev_t, F_t, t * step)
                            break
                    t *= 0.5
            if new is not None or fresh:
                break
            fresh = True  # the corrected Jacobian's direction failed: differences again, once
        if step is None:
            return ev, it, evals, "Newton: singular Jacobian"
        if new is None:
            return ev, it, evals, "Newton: no step along the Newton direction reduces the residual"
        Lam, ev, F_new, dx = new
        if broyden:  # Broyden's (good) update from the step taken
            J = J + torch.outer(F_new - F - J @ dx, dx) / float(dx @ dx)
        F = F_new
    if F is not None and ev.new_Sigma is not None and ev.residual <= tol:
        return ev, max_iter, evals, ""
    return ev, max_iter, evals, f"Newton: max_iter={max_iter} reached"


#: solve_adaptive_kernel accepts a bracket's root at the rounding floor (history method "floor", result ``at_floor``)
#: when the map's residual there is at most this (chapter 5's looser tolerance); above it the continuation runs.
FLOOR_TOL = 1e-6


def bracket_step(problem: EoSProblem, Sigma0, kappa: float, *, tol, max_iter: int, workspace: EoSWorkspace | None = None,
                 factor: float = 2.0, max_expand: int = 40):
    """The scalar EoS (d0 = 1) at one kappa by bracketing: a sign change of f(u) = lam - P(1/lam), lam = e^u the
    precision Sigma^{-1} and P(Sigma) = d0/sigma_w^2 - G(Sigma)/kappa the precision the map inverts, then a
    safeguarded secant (Illinois) search inside the bracket.

    Newton's method (:func:`newton_step`) can stop at a local minimum of |f| that is not a root (measured: N = 2048,
    split 768/1280, d0 = 1, draw 9 of chapter 6's grid, where f > 0 from lam = 0.03 to 1000 with dips near 0.1 and
    2, and the root lies near lam = 0.02); the continuation then took 1 635 s. A sign change cannot be missed that
    way: from u0 = log(1/Sigma0) the search steps outwards by ``factor`` on both sides, alternately, up to
    ``max_expand`` steps each, and takes the sign change nearest u0 (the root nearest the start: for the NNGP
    start, the one the annealing reaches at large kappa). f is defined wherever Q1 + sigma^2 I is positive
    definite, also where P(1/lam) <= 0 (outside the map's domain). Converged means the map's own relative
    residual |Sigma - 1/P(Sigma)| / Sigma <= ``tol`` (as in :func:`anderson_step`); the secant search takes at
    most ``max_iter`` evaluations. Returns (evaluation at the final iterate, iterations, evaluations, cause or "").
    Chapter ``05_adaptive_kernel``.
    """
    if Sigma0.shape != (1, 1):
        raise ValueError(f"bracket_step solves the scalar EoS (d0 = 1), got Sigma0 of shape {tuple(Sigma0.shape)}")
    one = Sigma0.new_ones(1, 1)

    def at(u):  # (evaluation, f) at lam = e^u; f None where the map's pieces are not finite
        ev = evaluate(problem, one * math.exp(-u), kappa, workspace=workspace)
        return ev, (None if ev.precision is None else math.exp(u) - float(ev.precision))

    u0 = -math.log(float(Sigma0))
    step = math.log(factor)
    ev0, f0 = at(u0)
    evals = 1
    if f0 is not None and ev0.new_Sigma is not None and ev0.residual <= tol:
        return ev0, 0, evals, ""
    outer = {+1: (u0, ev0, f0), -1: (u0, ev0, f0)}  # the outermost point of each side (an evaluation holds N x N)
    bracket = None
    for k in range(1, max_expand + 1):
        for side in (-1, +1):  # lower lam (larger Sigma) first: feature learning grows Sigma
            u = u0 + side * k * step
            ev, f = at(u)
            evals += 1
            last = outer[side]
            outer[side] = (u, ev, f)
            if f is not None and last[2] is not None and (f == 0 or (f > 0) != (last[2] > 0)):
                bracket = (last, (u, ev, f))
                break
        if bracket is not None:
            break
    if bracket is None:
        return ev0, 0, evals, f"bracket: f keeps one sign over lam in e^(+-{max_expand * step:.3g}) of the start"
    (a, ev_a, fa), (b, ev_b, fb) = bracket
    best = (ev_a, fa) if abs(fa) <= abs(fb) else (ev_b, fb)
    for it in range(1, max_iter + 1):
        if best[0].new_Sigma is not None and best[0].residual <= tol:
            return best[0], it - 1, evals, ""
        c = b - fb * (b - a) / (fb - fa) if fb != fa else 0.5 * (a + b)  # secant in u
        if not (min(a, b) < c < max(a, b)):
            c = 0.5 * (a + b)
        ev_c, fc = at(c)
        evals += 1
        if fc is None:
            return ev_c, it, evals, "bracket: the kernel or gradient is not finite inside the bracket"
        if abs(fc) <= abs(best[1]):
            best = (ev_c, fc)
        if (fc > 0) == (fb > 0):  # c replaces b and a is kept: Illinois halves f(a), so a kept end moves too
            b, fb, fa = c, fc, 0.5 * fa
        else:  # the sign changed: b becomes the other end
            a, fa, b, fb = b, fb, c, fc
        if abs(b - a) <= FLOOR_BRACKET:  # Sigma pinned to 1e-12 (relative): only rounding is left
            if best[0].new_Sigma is not None and best[0].residual <= tol:
                return best[0], it, evals, ""
            return best[0], it, evals, (f"{FLOOR_CAUSE}: the root is bracketed to {FLOOR_BRACKET:.0e} in Sigma, and the "
                                        f"map's residual there is {best[0].residual:.2g}, above tol {tol:g}")
    if best[0].new_Sigma is not None and best[0].residual <= tol:
        return best[0], max_iter, evals, ""
    return best[0], max_iter, evals, f"bracket: max_iter={max_iter} reached"


def step_row(kappa, ev, labels, y, iterations, evaluations, substeps, cause):
    """One history row of an annealing step (NC1 of Q1 and of fbar fbar^T, MSE, Tr Sigma). Chapter ``05_adaptive_kernel``."""
    has_classes = labels is not None
    nc1_k = nc1_from_kernel(_symmetric(ev.kernel), labels).nc1 if has_classes else math.nan
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


def labels_of(y, labels):
    """Class labels for the history: ``labels``, or the distinct values of y when they look like classes. Chapter ``05_adaptive_kernel``."""
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
    sigma_w: float | None = None,
    sigma_a: float | None = None,
    schedule="adaptive",
    label_term: str = "eos",
    tol: float = 1e-10,
    step_tol: float | None = None,
    jump_iter: int = 30,
    max_iter: int = 200,
    memory: int = 6,
    damping: float = 1.0,
    max_halvings: int = 6,
    grow_below: int = 3,
    grow_moderate: int = 10,
    newton_dims: int = 3,
    newton_iter: int = 30,
    labels=None,
    strict: bool = True,
    progress: bool = False,
    sigma_w2: float | None = None,
    sigma_a2: float | None = None,
    init=None,
) -> AdaptiveKernelResult:
    r"""Solve Sigma^{-1} = (d0/sigma_w^2) I - (1/kappa) d/dSigma Tr[A Q1[Sigma]] annealing kappa down to ``width``.

    Method (chapter ``05_adaptive_kernel``): at each kappa of the annealing schedule (decreasing, ending at
    ``width``), Anderson-accelerated damped fixed-point iteration on Sigma, warm-started by linear
    extrapolation in 1/kappa from the two previous solutions; the gradient is closed-form
    (:func:`adaptive_kernel_gradient`), every solve a Cholesky solve. If a step fails it is bisected in
    1/kappa up to ``max_halvings`` times (step control). Converged means the relative residual
    ||Sigma - Phi(Sigma)||_F / ||Sigma||_F <= ``tol`` at the returned Sigma, or (d0 = 1, ``at_floor``) a root
    of the scalar EoS pinned to rounding with a residual of at most :data:`FLOOR_TOL` (below).

    ``schedule``:

    * ``"adaptive"`` (default): first one step from the NNGP straight to kappa = ``width`` with at most
      ``jump_iter`` iterations; if that fails, a continuation in 1/kappa from the NNGP with step control:
      the first step goes to the first value of :func:`default_schedule` (1/kappa = 1e-5 for width 500),
      a step that converges within ``grow_below`` evaluations doubles the next one, within ``grow_moderate``
      lengthens it by :data:`MODERATE_GROWTH`, a failed step is halved (at most ``max_halvings`` times in a
      row), and the last step lands on kappa = ``width``. Each step starts its Anderson iteration from twice the
      damping the last converged step ended with (at most ``damping``). Before these two rules (only doubling,
      every step from ``damping``) steps cost 13-17 evaluations, 10 of them halvings of the damping, and no step
      grew: measured on chapter 13's xor draw (d0 = 2, N = 256) the continuation took 1 540 steps and 24 111
      evaluations to fail at kappa = 1 452; with them 193 steps and 3 216 evaluations to fail at kappa = 714, and
      two converged solves (shells and four-class, d0 = 8) took 323 and 488 evaluations instead of 1 206 and
      1 268, the same Sigma to 2e-11. The
      intermediate steps are solved only to ``step_tol`` (default max(tol, 1e-3): they are warm starts),
      the last to ``tol``. The history has one row per step taken (its kappa), and the evaluations of a
      failed jump are counted in the first row. When Sigma has at most ``newton_dims`` free entries
      (d0 (d0 + 1) / 2; default 3, i.e. d0 <= 2), a failed jump is followed by :func:`newton_step` from the
      NNGP straight at kappa = ``width`` (at most ``newton_iter`` iterations) before the continuation: at
      small d0 and small noise the map is steep, the NNGP often lies outside its domain, and the continuation
      crawls (N = 2048, d0 = 1: 161 and 1114 evaluations on two draws, against 17 each for Newton; the same
      Sigma to 5e-12). ``newton_dims=0`` turns it off. At d0 = 1 a failed Newton step is followed by
      :func:`bracket_step` (a sign change of the scalar equation, then a safeguarded secant): Newton can stop at
      a local minimum of |F| that is not a root (N = 2048, split 768/1280, d0 = 1, draw 9: the continuation
      then took 1 635 s, the bracket 20 evaluations, the same Sigma). Where the bracket pins the root to
      rounding (:data:`FLOOR_BRACKET` in Sigma) and the residual there stays above ``tol``, that residual is the
      map's rounding noise at noise_var 1e-6. Measured on the 20 d0 = 1 draws of chapter 13 (N = 256, cold
      starts): 18 end at the floor, residual 5e-10 to 4e-7, in 52 to 151 evaluations; the continuation (with
      the damping carry and moderate growth) spends 442 to 1 431 evaluations on them and ends 15 above ``tol``
      (residuals 2e-10 to 3e-7) on a Sigma within 1.1e-5 (relative) of the root, one at residual 1e-3 on another
      Sigma, and 2 below ``tol`` by chance (before those two rules: 1 033 to 7 712 evaluations, 14 above ``tol``;
      on N = 2048, split 256/1792, draw 3 of chapter 6 it spent 3 325 s to fail). So the root is accepted, ``at_floor`` True and history method "floor", when
      its residual is at most :data:`FLOOR_TOL`; above that the continuation still runs.
    * ``"reference"``: every value of :func:`default_schedule` (the reference code's 24 values for
      width 500), each solved to ``tol`` (``step_tol`` defaults to ``tol``).
    * a decreasing sequence of kappa values ending at ``width``: as ``"reference"`` with those values.

    Args:
        X: (N, d0) inputs (float64 recommended; dtype and device are kept). y: (N,) targets.
        width: the hidden width h. noise_var: sigma^2 of the GP likelihood. sigma_w, sigma_a: prior
            standard deviations (sigma_w times sqrt(d0) for the hidden weights; defaults 1 and
            :data:`DEFAULT_SIGMA_A`); ``sigma_w2``/``sigma_a2`` are the deprecated variance aliases. label_term: "eos" (t t^T / sigma^4) or
            "reference" (the reference code's sigma^2 T T^T; see :func:`eos_label_matrix`).
        labels: (N,) class labels for the NC1 columns of the history (default: the distinct values of y).
        strict: raise :class:`EoSConvergenceError` on a failed step; otherwise return the last
            iterate with ``converged=False`` (no later step is attempted).
        init: a (d0, d0) symmetric positive definite warm start, e.g. the solution of a neighbouring data
            draw (schedule "adaptive" only). Where Sigma has at most ``newton_dims`` free entries (d0 <= 2), the
            solve first runs :func:`newton_step` with ``broyden=True`` from it (at most ``newton_iter`` iterations;
            history method "broyden"): measured on chapter 6's N = 2048 grid (split 768/1280, draws 1-3), 10-13
            evaluations at d0 = 1 and 10-11 at d0 = 2, against 15-21 and 11-15 for the jump below, the same roots.
            Where the map's rounding floor lies above ``tol`` it cannot converge: it stops at the floor (see
            :func:`newton_step`). At d0 = 1, when it fails, :func:`bracket_step` runs from the warm start and pins the
            root nearest it: where Broyden stopped near a root (residual at most :data:`FLOOR_TOL`) with steps of half
            the distance in log Sigma to where it stopped (at least :data:`WARM_BRACKET_STEP`; at most
            :data:`WARM_BRACKET_EXPAND` on each side), elsewhere in factors of 2 as from the NNGP. Broyden can wander
            to another root (chapter 13's four-class data, d0 = 1, draw 2 from draw 1's Sigma: Tr Sigma 14.2, where
            the cold solve and the bracket give 1.08), or fail far from any root (with one torch thread, draw 2 from
            draw 1's cold answer: the jump from the warm start then spent 40 evaluations to fail at the floor before
            the cold routes answered, 120 in all; the bracket 61). Chapter 13's d0 = 1 solves (N = 256, all at the
            floor, the paper grid's order of solves) took 880 evaluations with both brackets, 1 287 with the first
            only, 3 399 when Broyden spent its iterations at the floor, 2 117 before the Broyden route; chapter 6's
            N = 2048 draw 3 of split 256/1792 (d0 = 1, from draw 2's Sigma) 25 evaluations, against 178 when Broyden
            spent its iterations at the floor (and 76 for the cold solve), the same root.
            Then (or at larger d0 first) it jumps from it straight to kappa = ``width`` (at most
            ``jump_iter`` iterations, to ``tol``); if that fails it starts over from the NNGP as above, the
            warm start's evaluations counted in the first row. A converged answer is a fixed point to ``tol``
            either way; grids use it across the draws of a cell (:func:`~nckernels.experiments.grids.adaptive_measure`).

    Returns:
        :class:`AdaptiveKernelResult` (history columns ``tol``: the tolerance each step was solved to;
        ``method``: "broyden" (Newton with Broyden's update from the warm start), "jump" (one Anderson solve at
        kappa = width from the warm start or the NNGP), "newton", "bracket" (from the NNGP or, after Broyden, from the
        warm start), "floor" (the bracket's root at the rounding floor, ``at_floor``), "continuation" or
        "schedule").
    """
    problem = make_problem(X, y, noise_var=noise_var, sigma_w=sigma_w, sigma_a=sigma_a, sigma_w2=sigma_w2,
                           sigma_a2=sigma_a2, label_term=label_term)
    X, y, noise_var = problem.X, problem.y, problem.noise_var
    width = check_positive(width, "width")
    tol = check_positive(tol, "tol")
    max_iter = check_int(max_iter, "max_iter")
    jump_iter = check_int(jump_iter, "jump_iter")
    memory = check_int(memory, "memory")
    grow_below = check_int(grow_below, "grow_below")
    grow_moderate = check_int(grow_moderate, "grow_moderate", minimum=0)
    newton_dims = check_int(newton_dims, "newton_dims", minimum=0)
    newton_iter = check_int(newton_iter, "newton_iter")
    damping = check_positive(damping, "damping")
    if schedule is None:
        schedule = "adaptive"
    if isinstance(schedule, str):
        check_choice(schedule, "schedule", SCHEDULES)
        mode, schedule = schedule, list(default_schedule(width))
    else:
        mode = "sequence"
        try:
            schedule = [float(k) for k in schedule]
        except (TypeError, ValueError) as exc:
            raise ValueError(f"schedule must be 'adaptive', 'reference' or a sequence of positive numbers, got {schedule!r}") from exc
    if not schedule or any(not (math.isfinite(k) and k > 0) for k in schedule):
        raise ValueError(f"schedule must be a non-empty sequence of positive finite numbers, got {schedule!r}")
    if any(b >= a for a, b in zip(schedule, schedule[1:])):
        raise ValueError(f"schedule must be strictly decreasing (annealing towards the width), got {schedule!r}")
    if not math.isclose(schedule[-1], width, rel_tol=1e-12):
        raise ValueError(f"schedule must end at the width {width:g}, but its last value is {schedule[-1]:g}")
    if step_tol is None:
        step_tol = max(tol, 1e-3) if mode == "adaptive" else tol
    step_tol = check_positive(step_tol, "step_tol")
    if labels is not None:
        labels = check_labels(labels, X.shape[0], device=X.device)[0]
    labels = labels_of(y, labels)

    N, d0 = X.shape
    if init is not None:
        if mode != "adaptive":
            raise ValueError(f"init (a warm start) needs schedule='adaptive', got schedule={mode!r}")
        init = _check_init(init, d0, X)
    workspace = EoSWorkspace(problem)
    nngp = (problem.sigma_w2 / d0) * torch.eye(d0, dtype=X.dtype, device=X.device)  # the NNGP solution
    carry = (0, 0)  # (iterations, evaluations) of a failed jump, reported with the next step
    # one solve straight at kappa = width: (where Sigma has at most newton_dims free entries) Broyden from the warm
    # start, an Anderson jump from the warm start, then from the NNGP, then (small d0 again) Newton from the NNGP,
    # at d0 = 1 the bracket; the first that converges is the answer,
    # else (adaptive) the continuation; every failed attempt's cost is carried into the first row
    small = d0 * (d0 + 1) // 2 <= newton_dims  # few enough free entries for a Jacobian by differences
    attempts = [] if init is None else [*([("broyden", init)] if small else []), ("jump", init)]
    if mode == "adaptive" and len(schedule) > 1:
        attempts.append(("jump", nngp))
        if small:
            attempts.append(("newton", nngp))
            if d0 == 1:
                attempts.append(("bracket", nngp))
    while attempts:
        method, start, *steps = attempts.pop(0)
        if method in ("newton", "broyden"):
            ev, it, e, cause = newton_step(problem, start, width, tol=tol, max_iter=newton_iter, workspace=workspace,
                                           broyden=method == "broyden")
            if method == "broyden" and d0 == 1 and cause:
                # the bracket from the warm start pins the root nearest it. Where Broyden stopped near a root, at
                # distance D in log Sigma from the warm start, it scans in steps of D / 2 (a few: where Broyden wandered
                # to a farther root, it finds the nearer one); elsewhere as from the NNGP, in factors of 2
                if ev.new_Sigma is not None and ev.residual <= FLOOR_TOL:
                    D = abs(math.log(float(ev.Sigma) / float(start)))
                    steps = {"factor": math.exp(max(D / 2, WARM_BRACKET_STEP)), "max_expand": WARM_BRACKET_EXPAND}
                    attempts.insert(0, ("bracket", start, steps))
                else:
                    attempts.insert(0, ("bracket", start))
        elif method == "bracket":  # steps: bracket_step's factor and max_expand where they differ from its defaults
            ev, it, e, cause = bracket_step(problem, start, width, tol=tol, max_iter=newton_iter, workspace=workspace,
                                            **(steps[0] if steps else {}))
            if cause.startswith(FLOOR_CAUSE) and ev.new_Sigma is not None and ev.residual <= FLOOR_TOL:
                method, cause = "floor", ""  # the root pinned to rounding: the map's residual there is its noise
        else:
            ev, it, e, cause = _jump(problem, start, width, tol=tol, max_iter=min(max_iter, jump_iter), memory=memory,
                                     damping=damping, workspace=workspace)
        it, e = it + carry[0], e + carry[1]
        if not cause:
            row = step_row(width, ev, labels, y, it, e, 1, "")
            return _finish(problem, ev, [dict(row, tol=tol, method=method)], e, width, tol)
        carry = (it, e)
    if mode == "adaptive" and len(schedule) > 1:
        return _continue(problem, nngp, 1.0 / schedule[0], width, tol=tol, step_tol=step_tol, carry=carry,
                         labels=labels, max_iter=max_iter, memory=memory, damping=damping,
                         max_halvings=max_halvings, grow_below=grow_below, grow_moderate=grow_moderate, strict=strict,
                         workspace=workspace)
    path = [(0.0, nngp)]  # (1/kappa, converged Sigma): the NNGP is the solution at 1/kappa = 0
    rows, total_evals = [], 0  # a failed jump is counted in the first row (carry)
    ev, beta = None, None  # beta: the damping the last converged step ended with
    steps = schedule
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(schedule, desc="EoS annealing")
    for kappa in steps:
        step = tol if kappa == schedule[-1] else step_tol
        target = 1.0 / kappa
        iters, evals = carry
        carry = (0, 0)
        substeps = 0
        cause = ""
        eps_done = path[-1][0]
        halvings = 0
        while eps_done < target:
            eps = target if halvings == 0 else eps_done + (target - eps_done) / 2**halvings
            ev, it, e, cause, beta_end = _solve_at(problem, path, eps, tol=step, max_iter=max_iter, memory=memory,
                                                   damping=_next_damping(beta, damping), workspace=workspace)
            iters += it
            evals += e
            if cause:
                halvings += 1
                if halvings > max_halvings:
                    break
                cause = ""
                continue
            substeps += 1
            beta = beta_end
            path.append((eps, ev.Sigma))
            path = path[-3:]
            eps_done = eps
            halvings = 0
        if eps_done < target:
            cause = cause or "step control exhausted"
        total_evals += evals
        rows.append(dict(step_row(kappa, ev, labels, y, iters, evals, substeps, cause), tol=step, method="schedule"))
        if cause:
            history = pd.DataFrame(rows)
            message = (f"EoS annealing step kappa={kappa:g} failed ({cause}); last relative residual "
                       f"{ev.residual:.3g}, tol {step:g}, noise_var {noise_var:g}, label_term {label_term!r}")
            if strict:
                raise EoSConvergenceError(message, history=history, residual=ev.residual, kappa=kappa, cause=cause)
            # the last converged Sigma is returned, with its kernel and fbar
            last = evaluate(problem, path[-1][1], kappa, workspace=workspace)
            return AdaptiveKernelResult(path[-1][1], _symmetric(last.kernel), last.fbar, False, ev.residual, total_evals,
                                        history, label_term, width, noise_var, tol)
    return _finish(problem, ev, rows, total_evals, width, tol)


def _jump(problem: EoSProblem, start, kappa: float, *, tol, max_iter, memory, damping, workspace):
    """One Anderson solve at ``kappa`` from ``start`` (no annealing). Returns (evaluation, iterations, evaluations
    including the start's, cause). Chapter ``05_adaptive_kernel``.
    """
    ev0 = evaluate(problem, start, kappa, workspace=workspace)
    if ev0.new_Sigma is None:
        return ev0, 0, 1, ev0.cause
    ev, it, e, cause = anderson_step(problem, ev0, kappa, tol=tol, max_iter=max_iter, memory=memory, damping=damping,
                                     workspace=workspace)
    return ev, it, e + 1, cause


def _solve_at(problem: EoSProblem, path, eps: float, *, tol, max_iter, memory, damping, workspace):
    """One step of the annealing at 1/kappa = ``eps``: warm start by :func:`predict_start` from ``path`` (the
    last solution when the extrapolation leaves the domain), then :func:`anderson_step` from damping ``damping``.
    Returns (evaluation, iterations, evaluations including the start's, cause, the damping it ended with).
    Chapter ``05_adaptive_kernel``.
    """
    ev0 = evaluate(problem, predict_start(path, eps), 1.0 / eps, workspace=workspace)
    if ev0.new_Sigma is None and len(path) > 1:  # the extrapolated start is outside the domain
        ev0 = evaluate(problem, path[-1][1], 1.0 / eps, workspace=workspace)
    ev, it, e, cause, beta = _anderson(problem, ev0, 1.0 / eps, tol=tol, max_iter=max_iter, memory=memory,
                                       damping=damping, workspace=workspace)
    return ev, it, e + 1, cause, beta


def _continue(problem: EoSProblem, nngp, first: float, width: float, *, tol, step_tol, carry, labels, max_iter,
              memory, damping, max_halvings, grow_below, grow_moderate, strict, workspace) -> AdaptiveKernelResult:
    """The fallback of the ``"adaptive"`` schedule: continuation in 1/kappa from the NNGP (1/kappa = 0) to
    1/``width`` with step control (first step ``first``; doubled after a quick step, halved after a failed one).

    Chapter ``05_adaptive_kernel``.
    """
    y = problem.y
    target = 1.0 / width
    min_step = MIN_CONTINUATION_STEP * target  # a step never halves below this (the path cannot stall in place)
    path = [(0.0, nngp)]  # (1/kappa, converged Sigma)
    rows, total_evals = [], 0
    iters, evals = carry
    h, halvings, eps_done = first, 0, 0.0
    beta = None  # the damping the last converged step ended with
    while eps_done < target:
        eps = eps_done + h
        if eps >= target or target - eps < 0.25 * h:  # land on the width, no sliver of a last step
            eps = target
        last = eps == target
        step = tol if last else step_tol
        ev, it, e, cause, beta_end = _solve_at(problem, path, eps, tol=step, max_iter=max_iter, memory=memory,
                                               damping=_next_damping(beta, damping), workspace=workspace)
        iters += it
        evals += e
        if cause:
            halvings += 1
            if halvings <= max_halvings and (eps - eps_done) / 2 >= min_step:
                h = (eps - eps_done) / 2
                continue
            if halvings <= max_halvings:
                cause += f" (the step in 1/kappa cannot halve below {MIN_CONTINUATION_STEP:g} of 1/width)"
            total_evals += evals
            rows.append(dict(step_row(1.0 / eps, ev, labels, y, iters, evals, 0, cause), tol=step, method="continuation"))
            history = pd.DataFrame(rows)
            message = (f"EoS continuation step to kappa={1.0 / eps:g} failed ({cause}) after {halvings - 1} halvings; "
                       f"last relative residual {ev.residual:.3g}, tol {step:g}, noise_var {problem.noise_var:g}, "
                       f"label_term {problem.label_term!r}")
            if strict:
                raise EoSConvergenceError(message, history=history, residual=ev.residual, kappa=1.0 / eps, cause=cause)
            prev = evaluate(problem, path[-1][1], width, workspace=workspace)  # Q1 and fbar do not depend on kappa
            return AdaptiveKernelResult(path[-1][1], _symmetric(prev.kernel), prev.fbar, False, ev.residual,
                                        total_evals, history, problem.label_term, width, problem.noise_var, tol)
        total_evals += evals
        rows.append(dict(step_row(width if last else 1.0 / eps, ev, labels, y, iters, evals, 1, ""), tol=step,
                         method="continuation"))
        path = (path + [(eps, ev.Sigma)])[-3:]
        beta = beta_end
        h = eps - eps_done
        if e <= grow_below:  # this attempt's evaluations (not a failed jump's or halving's)
            h *= 2
        elif e <= grow_moderate:
            h *= MODERATE_GROWTH
        eps_done, halvings, iters, evals = eps, 0, 0, 0
    return _finish(problem, ev, rows, total_evals, width, tol)


def _next_damping(beta, damping):
    """The first damping factor of an annealing step: ``damping`` for the first step, else twice the factor the last
    converged step ended with, at most ``damping`` (a step near the last one needs about the same damping; starting
    from ``damping`` every time re-learned it by halvings, one evaluation each). Chapter ``05_adaptive_kernel``."""
    return damping if beta is None else min(damping, 2.0 * beta)


#: The continuation lengthens its next step in 1/kappa by this factor after a step that converged within
#: ``grow_moderate`` evaluations (and doubles it within ``grow_below``).
MODERATE_GROWTH = 1.25

MIN_CONTINUATION_STEP = 1e-6
"""The smallest step of the continuation in 1/kappa, relative to 1/width: a step that fails at this size fails
the solve (without it, repeated halvings could shrink the step below the rounding of 1/kappa)."""


def _check_init(init, d0: int, X):
    """A warm start: a finite symmetric positive definite (d0, d0) tensor, in X's dtype and device."""
    if not isinstance(init, torch.Tensor):
        raise ValueError(f"init must be a (d0, d0) torch tensor (a warm start Sigma), got {type(init).__name__}")
    if tuple(init.shape) != (d0, d0):
        raise ValueError(f"init must have shape ({d0}, {d0}) (d0 of X), got {tuple(init.shape)}")
    init = init.to(dtype=X.dtype, device=X.device)
    if not bool(torch.isfinite(init).all()) or not torch.allclose(init, init.T, rtol=1e-10, atol=0):
        raise ValueError("init must be finite and symmetric")
    if int(torch.linalg.cholesky_ex(init)[1]) != 0:
        raise ValueError("init must be positive definite")
    return init


def _symmetric(Q):
    """0.5 (Q + Q^T): the returned kernel exactly symmetric. Chapter ``05_adaptive_kernel``."""
    return 0.5 * (Q + Q.T)


def _finish(problem: EoSProblem, ev: EoSEvaluation, rows, evaluations, width, tol) -> AdaptiveKernelResult:
    """The converged :class:`AdaptiveKernelResult` from the last evaluation and the history rows. Chapter ``05_adaptive_kernel``."""
    return AdaptiveKernelResult(ev.Sigma, _symmetric(ev.kernel), ev.fbar, True, ev.residual, evaluations,
                                pd.DataFrame(rows), problem.label_term, width, problem.noise_var, tol,
                                at_floor=rows[-1].get("method") == "floor")


def predict_start(path, eps):
    """Warm start at 1/kappa = eps: linear extrapolation from the last two solutions, if positive definite.

    Chapter ``05_adaptive_kernel``.
    """
    if len(path) < 2:
        return path[-1][1]
    (e0, S0), (e1, S1) = path[-2], path[-1]
    pred = S1 + (eps - e1) / (e1 - e0) * (S1 - S0)
    pred = 0.5 * (pred + pred.T)
    return pred if int(torch.linalg.cholesky_ex(pred)[1]) == 0 else S1


def label_control(X, y, y_shuffled, labels, *, width: float, noise_vars, tol: float = 1e-10,
                  sigma_a: float | None = None, sigma_a2: float | None = None, max_iter: int = 60,
                  max_halvings: int = 3) -> pd.DataFrame:
    """Solve the EoS with the true targets ``y`` and with ``y_shuffled``, for every noise variance and label term.

    One row per solve (failures included, ``strict=False``): noise_var, label term, labels ("true" or
    "shuffled"), status, cause, and log10 NC1 of Q1 with respect to the true classes ``labels`` (NaN when the
    solve failed). The shuffled-label control of chapter ``05_adaptive_kernel`` (eqs. ``ak-eos`` and ``ak-ref``).
    """
    from .problem import LABEL_TERMS

    rows = []
    for nv in noise_vars:
        for lt in LABEL_TERMS:
            for name, targets in [("true", y), ("shuffled", y_shuffled)]:
                r = solve_adaptive_kernel(X, targets, width=width, noise_var=nv, sigma_a=sigma_a, sigma_a2=sigma_a2,
                                          tol=tol, label_term=lt, labels=labels, strict=False, max_iter=max_iter,
                                          max_halvings=max_halvings)
                last = r.history.iloc[-1]
                rows.append({"noise_var": nv, "label term": lt, "labels": name,
                             "status": "converged" if r.converged else "failed",
                             "cause": "" if r.converged else f"kappa={last.kappa:g}: {last.cause}",
                             "log10 NC1 of Q1": (math.log10(nc1_from_kernel(r.kernel, labels).nc1) if r.converged
                                                 else math.nan)})
    return pd.DataFrame(rows)
