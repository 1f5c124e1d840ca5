"""Tests of the adaptive kernel (Equations of State) and its solver: nckernels.adaptive."""
from __future__ import annotations

import math

import pytest
import torch

import nckernels as nk
from nckernels.adaptive import (
    REFERENCE_SCHEDULE,
    EoSWorkspace,
    POTRI_MAX_THREADS,
    evaluate,
    evaluate_direct,
    make_problem,
    EoSConvergenceError,
    adaptive_kernel,
    adaptive_kernel_gradient,
    default_schedule,
    eos_label_matrix,
    eos_residual,
    eos_update,
    bracket_step,
    newton_step,
    solve_adaptive_kernel,
)
from nckernels.models.adaptive import solver as eos_solver


@pytest.fixture(scope="module")
def small():
    return nk.gaussian_classes([20, 28], 6, generator=torch.Generator().manual_seed(1))


def _random_spd(d, gen, scale=1.0):
    M = torch.randn(d, d, generator=gen, dtype=torch.float64)
    return scale * (M @ M.T / d + 0.5 * torch.eye(d, dtype=torch.float64)) / d


def _autograd_update(X, y, Sigma, kappa, noise_var, sigma_w2, sigma_a2, label_term):
    """The fixed-point map written independently: explicit inverses, arcsin, autograd gradient."""
    N, d0 = X.shape
    S = Sigma.clone().requires_grad_(True)
    K = X @ S @ X.T
    s = (1 + 2 * torch.diag(K)) ** -0.5
    Q = sigma_a2 * (2 / math.pi) * torch.arcsin(2 * K * s[:, None] * s[None, :])
    Qd = Q.detach()
    inv = torch.linalg.inv(Qd + noise_var * torch.eye(N, dtype=X.dtype))
    fbar = Qd @ inv @ y
    if label_term == "eos":
        t = (y - fbar)[:, None]
        L = t @ t.T / noise_var**2
    else:
        T = y - fbar[:, None]  # the (N,) - (N, 1) broadcast: T_ij = y_j - fbar_i
        L = noise_var * T @ T.T
    (G,) = torch.autograd.grad(torch.trace((L - inv) @ Q), S)
    return torch.linalg.inv((d0 / sigma_w2) * torch.eye(d0, dtype=X.dtype) - G / kappa)


def test_schedule():
    assert len(REFERENCE_SCHEDULE) == 24
    s = default_schedule(500)
    assert len(s) == 24 and s[0] == 1e5 and s[-1] == 500 and list(s) == sorted(s, reverse=True)
    assert default_schedule(2e5) == (2e5,)
    assert default_schedule(750)[-2:] == (800.0, 750.0)


def test_kernel_at_nngp_sigma_is_scaled_nngp(small):
    d0 = small.X.shape[1]
    for sw2 in (1.0, 2.5):
        Q = adaptive_kernel(small.X, sw2 * torch.eye(d0, dtype=torch.float64) / d0, sigma_a2=0.3)
        K = nk.nngp(small.X, sigma_w=math.sqrt(sw2))
        torch.testing.assert_close(Q, 0.3 * K, rtol=1e-12, atol=1e-14)
        assert torch.equal(Q, Q.T)


def test_gradient_matches_finite_differences_and_autograd(small):
    gen = torch.Generator().manual_seed(3)
    X = small.X
    N, d0 = X.shape
    Sigma = _random_spd(d0, gen)
    A = torch.randn(N, N, generator=gen, dtype=torch.float64)
    A = A + A.T
    G = adaptive_kernel_gradient(X, Sigma, A, sigma_a2=0.7)
    assert torch.allclose(G, G.T)

    def f(S):
        return float((A * adaptive_kernel(X, S, sigma_a2=0.7)).sum())

    for _ in range(3):
        E = torch.randn(d0, d0, generator=gen, dtype=torch.float64)
        E = (E + E.T) / 2
        h = 1e-5 * float(Sigma.norm() / E.norm())
        fd = (f(Sigma + h * E) - f(Sigma - h * E)) / (2 * h)
        assert abs(fd - float((G * E).sum())) <= 1e-7 * abs(fd) + 1e-9
    S = Sigma.clone().requires_grad_(True)
    K = X @ S @ X.T
    s = (1 + 2 * torch.diag(K)) ** -0.5
    Q = 0.7 * (2 / math.pi) * torch.arcsin(2 * K * s[:, None] * s[None, :])
    (G_auto,) = torch.autograd.grad((A * Q).sum(), S)
    torch.testing.assert_close(G, G_auto, rtol=1e-10, atol=1e-10)


def test_gradient_uses_only_symmetric_part_of_A(small):
    gen = torch.Generator().manual_seed(4)
    N, d0 = small.X.shape
    Sigma = _random_spd(d0, gen)
    A = torch.randn(N, N, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(adaptive_kernel_gradient(small.X, Sigma, A),
                               adaptive_kernel_gradient(small.X, Sigma, (A + A.T) / 2))


def test_reference_label_matrix_is_the_broadcast(small):
    gen = torch.Generator().manual_seed(5)
    y = small.y
    fbar = y + 0.1 * torch.randn(y.shape, generator=gen, dtype=torch.float64)
    T = y - fbar[:, None]  # (N, N)
    torch.testing.assert_close(eos_label_matrix(y, fbar, noise_var=0.01, label_term="reference"),
                               0.01 * T @ T.T, rtol=1e-12, atol=1e-12)
    t = y - fbar
    torch.testing.assert_close(eos_label_matrix(y, fbar, noise_var=0.01), torch.outer(t, t) / 1e-4)


@pytest.mark.parametrize("label_term", ["eos", "reference"])
def test_update_matches_independent_autograd_map(small, label_term):
    gen = torch.Generator().manual_seed(6)
    Sigma = _random_spd(small.X.shape[1], gen)
    ours = eos_update(small.X, small.y, Sigma, kappa=300.0, noise_var=1e-3, sigma_a2=0.5, label_term=label_term)
    ref = _autograd_update(small.X, small.y, Sigma, 300.0, 1e-3, 1.0, 0.5, label_term)
    torch.testing.assert_close(ours, ref, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("label_term", ["eos", "reference"])
def test_solution_is_a_fixed_point(small, label_term):
    res = solve_adaptive_kernel(small.X, small.y, width=50, label_term=label_term, tol=1e-11, schedule="reference")
    assert res.converged and res.residual <= 1e-11
    assert res.Sigma.dtype == torch.float64
    assert torch.equal(res.Sigma, res.Sigma.T)
    assert bool((torch.linalg.eigvalsh(res.Sigma) > 0).all())
    r = eos_residual(small.X, small.y, res.Sigma, kappa=50, label_term=label_term)
    assert r <= 1e-10
    torch.testing.assert_close(res.kernel, adaptive_kernel(small.X, res.Sigma))
    h = res.history
    assert list(h.kappa) == list(default_schedule(50)) and (h.status == "converged").all()
    assert {"kappa", "iterations", "residual", "nc1_kernel", "nc1_fbar", "train_mse", "trace_sigma"} <= set(h)
    assert math.isclose(h.trace_sigma.iloc[-1], float(res.Sigma.trace()))
    # the fixed point moved away from the NNGP solution sigma_w^2 I / d0
    d0 = small.X.shape[1]
    assert float((res.Sigma - torch.eye(d0, dtype=torch.float64) / d0).norm()) > 1e-3


def test_label_terms_differ(small):
    a = solve_adaptive_kernel(small.X, small.y, width=50, label_term="eos")
    b = solve_adaptive_kernel(small.X, small.y, width=50, label_term="reference")
    assert float((a.Sigma - b.Sigma).norm() / b.Sigma.norm()) > 1e-2


def test_wide_limit_is_the_nngp(small):
    d0 = small.X.shape[1]
    res = solve_adaptive_kernel(small.X, small.y, width=1e9, schedule=[1e9], sigma_w2=2.0, sigma_a2=0.25)
    torch.testing.assert_close(res.Sigma, 2.0 * torch.eye(d0, dtype=torch.float64) / d0, rtol=0, atol=1e-7)
    torch.testing.assert_close(res.kernel, 0.25 * nk.nngp(small.X, sigma_w=math.sqrt(2.0)), rtol=1e-6, atol=1e-8)


def test_float32_inputs_keep_dtype():
    data = nk.gaussian_classes([10, 10], 3, generator=torch.Generator().manual_seed(0), dtype=torch.float32)
    res = solve_adaptive_kernel(data.X, data.y, width=1e4, schedule=[1e5, 1e4], noise_var=1e-2, tol=1e-5)
    assert res.converged and res.Sigma.dtype == torch.float32


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(X="nan"), "X"),
        (dict(y="inf"), "y"),
        (dict(y="short"), "y"),
        (dict(width=0), "width"),
        (dict(width=-3), "width"),
        (dict(noise_var=0.0), "noise_var"),
        (dict(noise_var=-1e-3), "noise_var"),
        (dict(schedule=[1e4, 1e3]), "schedule"),
        (dict(schedule=[]), "schedule"),
        (dict(schedule=[1e3, 1e4, 500]), "schedule"),
        (dict(label_term="coded"), "label_term"),
    ],
)
def test_bad_input(small, change, match):
    X, y = small.X.clone(), small.y.clone()
    kw = dict(width=500)
    for k, v in change.items():
        if k == "X":
            X[0, 0] = float(v)
        elif k == "y" and v == "short":
            y = y[:-1]
        elif k == "y":
            y[3] = float(v)
        else:
            kw[k] = v
    with pytest.raises(ValueError, match=match):
        solve_adaptive_kernel(X, y, **kw)


def test_non_convergence_raises_or_flags(small):
    kw = dict(width=50, max_iter=1, tol=1e-300, max_halvings=0, schedule="reference")
    with pytest.raises(EoSConvergenceError) as info:
        solve_adaptive_kernel(small.X, small.y, **kw)
    err = info.value
    assert isinstance(err, RuntimeError)
    assert err.residual > 0 and math.isfinite(err.residual)
    assert err.kappa == pytest.approx(1e5) and list(err.history.status) == ["failed"] and err.cause
    res = solve_adaptive_kernel(small.X, small.y, strict=False, **kw)
    assert not res.converged
    assert bool(torch.isfinite(res.Sigma).all()) and bool(torch.isfinite(res.kernel).all())
    assert res.history.status.iloc[-1] == "failed"


def test_undefined_map_is_reported_not_nan(small):
    # a huge label term at tiny kappa: the precision matrix is not positive definite at the NNGP start
    with pytest.raises(EoSConvergenceError, match="kappa"):
        solve_adaptive_kernel(small.X, small.y, width=1e-3, schedule=[1e-3], noise_var=1e-6, max_iter=20,
                              max_halvings=0)
    with pytest.raises(ValueError, match="positive definite"):
        eos_update(small.X, small.y, torch.eye(6, dtype=torch.float64) / 6, kappa=1e-3)


def test_scale_convention_standard_deviations_with_variance_aliases(small):
    X, y = small.X, small.y
    assert nk.DEFAULT_SIGMA_A2 == 1 / 128 and nk.DEFAULT_SIGMA_A == pytest.approx(math.sqrt(1 / 128), rel=1e-15)
    Sigma = torch.eye(X.shape[1], dtype=torch.float64) / X.shape[1]
    default = adaptive_kernel(X, Sigma)
    assert torch.equal(default, adaptive_kernel(X, Sigma, sigma_a2=1 / 128))
    assert torch.allclose(default, adaptive_kernel(X, Sigma, sigma_a=math.sqrt(1 / 128)), rtol=1e-14, atol=0)
    a = eos_update(X, y, Sigma, kappa=300.0, noise_var=1e-3, sigma_w=1.5, sigma_a=0.5)
    b = eos_update(X, y, Sigma, kappa=300.0, noise_var=1e-3, sigma_w2=2.25, sigma_a2=0.25)
    assert torch.allclose(a, b, rtol=1e-13, atol=0)
    with pytest.raises(ValueError, match="sigma_a"):
        adaptive_kernel(X, Sigma, sigma_a=0.1, sigma_a2=0.01)
    with pytest.raises(ValueError, match="sigma_w"):
        solve_adaptive_kernel(X, y, width=500.0, sigma_w=-1.0)


def _rel(a, b):
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("inverse", ["cholesky_inverse", "triangular_solves"])
@pytest.mark.parametrize("label_term", ["eos", "reference"])
@pytest.mark.parametrize("noise_var", [1e-6, 1e-2])
def test_fast_evaluation_equals_written_out_evaluation(label_term, noise_var, inverse):
    # random problems (sizes, Sigma, targets); one workspace shared by all evaluations of a problem
    gen = torch.Generator().manual_seed(11)
    for N, d0 in [(37, 5), (64, 16), (90, 3)]:
        data = nk.gaussian_classes([N // 2, N - N // 2], d0, generator=gen)
        y = data.y + 0.3 * torch.randn(N, generator=gen, dtype=torch.float64)
        problem = make_problem(data.X, y, noise_var=noise_var, sigma_w=1.3, sigma_a=0.4, label_term=label_term)
        ws = EoSWorkspace(problem, inverse=inverse)
        for _ in range(2):
            Sigma = _random_spd(d0, gen, scale=2.0)
            kappa = 300.0
            while (slow := evaluate_direct(problem, Sigma, kappa)).new_Sigma is None:  # smallest kappa with a map:
                kappa *= 10  # there G / kappa is comparable to d0 / sigma_w^2, so new_Sigma is sensitive to G
            fast = evaluate(problem, Sigma, kappa, workspace=ws)
            assert fast.new_Sigma is not None
            if kappa > 300.0:
                assert evaluate(problem, Sigma, kappa / 10, workspace=ws).new_Sigma is None
            # 1e-12, except at sigma^2 = 1e-6: (Q1 + sigma^2 I)^{-1} (and alpha alpha^T for the derived label term)
            # carries the condition number (~1/sigma^2 = 1e6) of Q1 + sigma^2 I, and the two routes round differently
            bound = 1e-12 if noise_var >= 1e-4 else 1e-9
            assert _rel(fast.new_Sigma, slow.new_Sigma) <= bound
            assert _rel(fast.kernel, slow.kernel) <= 1e-12
            assert _rel(fast.fbar, slow.fbar) <= 1e-10
            assert math.isclose(fast.residual, slow.residual, rel_tol=1e-10)


def test_workspace_inverse_route(small):
    problem = make_problem(small.X, small.y, noise_var=1e-6)
    with pytest.raises(ValueError, match="inverse must be"):
        EoSWorkspace(problem, inverse="lu")
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert EoSWorkspace(problem).inverse == "cholesky_inverse"
        torch.set_num_threads(POTRI_MAX_THREADS)
        assert EoSWorkspace(problem).inverse == "cholesky_inverse"
        torch.set_num_threads(POTRI_MAX_THREADS + 1)
        assert EoSWorkspace(problem).inverse == "triangular_solves"
        assert EoSWorkspace(problem, inverse="cholesky_inverse").inverse == "cholesky_inverse"
    finally:
        torch.set_num_threads(threads)


def test_fast_evaluation_reports_undefined_map(small):
    problem = make_problem(small.X, small.y, noise_var=1e-6)
    ev = evaluate(problem, torch.eye(6, dtype=torch.float64) / 6, 1e-3)
    assert ev.new_Sigma is None and "positive definite" in ev.cause and ev.residual == math.inf


@pytest.mark.parametrize("label_term", ["eos", "reference"])
def test_adaptive_schedule_reaches_the_reference_fixed_point(label_term):
    data = nk.gaussian_classes([40, 40], 12, generator=torch.Generator().manual_seed(7))
    kw = dict(width=500, noise_var=1e-6, label_term=label_term)
    ref = solve_adaptive_kernel(data.X, data.y, schedule="reference", tol=1e-10, **kw)
    fast = solve_adaptive_kernel(data.X, data.y, tol=1e-6, **kw)  # the default schedule is "adaptive"
    assert fast.converged and ref.converged
    assert _rel(fast.Sigma, ref.Sigma) <= 1e-6
    assert fast.evaluations < ref.evaluations
    # the returned Sigma is a fixed point to the requested tolerance
    assert fast.residual <= 1e-6
    assert eos_residual(data.X, data.y, fast.Sigma, kappa=500, noise_var=1e-6, label_term=label_term) <= 1e-6
    assert int(fast.history.evaluations.sum()) == fast.evaluations
    assert fast.history.kappa.iloc[-1] == 500 and fast.history.tol.iloc[-1] == 1e-6
    assert torch.equal(fast.kernel, fast.kernel.T)


def test_adaptive_falls_back_to_a_step_controlled_continuation(small):
    # jump_iter=1 makes the direct jump fail: a step-controlled continuation follows from the schedule's first
    # kappa to the width, loose in between, tight at the end, in fewer steps and evaluations than the schedule
    ref = solve_adaptive_kernel(small.X, small.y, width=50, schedule="reference", tol=1e-10)
    res = solve_adaptive_kernel(small.X, small.y, width=50, tol=1e-9, jump_iter=1)
    h = res.history
    assert h.kappa.iloc[0] == pytest.approx(default_schedule(50)[0]) and h.kappa.iloc[-1] == 50
    assert (h.kappa.diff().iloc[1:] < 0).all() and len(h) < len(default_schedule(50))
    assert res.evaluations < ref.evaluations and (h.status == "converged").all()
    assert (h.tol.iloc[:-1] == 1e-3).all() and h.tol.iloc[-1] == 1e-9
    assert res.residual <= 1e-9 and _rel(res.Sigma, ref.Sigma) <= 1e-7
    assert int(h.evaluations.sum()) == res.evaluations


def test_adaptive_failure_raises_with_history(small):
    kw = dict(width=50, max_iter=1, tol=1e-300, step_tol=1e-300, max_halvings=0)  # the jump and every step fail
    with pytest.raises(EoSConvergenceError) as info:
        solve_adaptive_kernel(small.X, small.y, schedule="adaptive", **kw)
    err = info.value
    assert err.kappa == pytest.approx(1e5) and list(err.history.status) == ["failed"] and err.cause
    assert int(err.history.evaluations.iloc[0]) >= 2  # the failed jump's evaluations are counted
    with pytest.raises(ValueError, match="schedule"):
        solve_adaptive_kernel(small.X, small.y, width=50, schedule="fastest")
    with pytest.raises(ValueError, match="step_tol"):
        solve_adaptive_kernel(small.X, small.y, width=50, step_tol=0.0)


def test_continuation_step_never_halves_below_its_floor(small):
    # every step fails; with unlimited halvings the step would shrink until 1/kappa stops changing (a division by
    # zero in the warm start): it stops at MIN_CONTINUATION_STEP of 1/width and says so
    from nckernels.models.adaptive.solver import MIN_CONTINUATION_STEP

    kw = dict(width=50, max_iter=1, tol=1e-300, step_tol=1e-300, max_halvings=10_000)
    with pytest.raises(EoSConvergenceError, match="cannot halve below") as info:
        solve_adaptive_kernel(small.X, small.y, schedule="adaptive", **kw)
    step = 1.0 / info.value.kappa  # the last attempted step from 1/kappa = 0
    assert MIN_CONTINUATION_STEP / 50 <= step < 2 * MIN_CONTINUATION_STEP / 50
    res = solve_adaptive_kernel(small.X, small.y, schedule="adaptive", strict=False, **kw)
    assert not res.converged and "cannot halve below" in res.history.cause.iloc[-1]


def test_warm_start_from_a_neighbouring_draw_reaches_the_same_fixed_point():
    def draw(seed):
        return nk.gaussian_classes([48, 48], 1, generator=torch.Generator().manual_seed(seed))

    a, b = draw(3), draw(4)
    kw = dict(width=500, noise_var=1e-6, tol=1e-10, newton_dims=0)  # the Anderson path (Newton: tests below)
    cold_a, cold_b = solve_adaptive_kernel(a.X, a.y, **kw), solve_adaptive_kernel(b.X, b.y, **kw)
    warm = solve_adaptive_kernel(b.X, b.y, init=cold_a.Sigma, **kw)
    assert warm.converged and warm.residual <= 1e-10 and len(warm.history) == 1
    assert _rel(warm.Sigma, cold_b.Sigma) <= 1e-8
    assert warm.evaluations < cold_b.evaluations  # the point of a warm start
    assert eos_residual(b.X, b.y, warm.Sigma, kappa=500, noise_var=1e-6) <= 1e-10
    # a warm start whose jump fails (jump_iter=2) falls back to the NNGP path, its cost counted in the first row
    cold2 = solve_adaptive_kernel(b.X, b.y, jump_iter=2, **kw)
    bad = solve_adaptive_kernel(b.X, b.y, init=1e3 * torch.eye(1, dtype=torch.float64), jump_iter=2, **kw)
    assert bad.converged and _rel(bad.Sigma, cold_b.Sigma) <= 1e-8 and len(bad.history) > 1
    assert bad.evaluations > cold2.evaluations and int(bad.history.evaluations.sum()) == bad.evaluations


@pytest.mark.parametrize("d0", [1, 2])
def test_warm_start_at_small_d0_is_a_broyden_solve_with_the_same_answer(d0):
    # d0 <= 2: Newton's method from the warm start with the Jacobian by differences once, then Broyden's update
    a, b = (nk.gaussian_classes([48, 80], d0, generator=torch.Generator().manual_seed(s)) for s in (3, 4))
    kw = dict(width=500, noise_var=1e-6, tol=1e-10)
    cold_a, cold_b = solve_adaptive_kernel(a.X, a.y, **kw), solve_adaptive_kernel(b.X, b.y, **kw)
    warm = solve_adaptive_kernel(b.X, b.y, init=cold_a.Sigma, **kw)
    assert warm.converged and warm.history.method.tolist() == ["broyden"]
    assert _rel(warm.Sigma, cold_b.Sigma) <= 1e-8
    assert eos_residual(b.X, b.y, warm.Sigma, kappa=500, noise_var=1e-6) <= 1e-10
    assert warm.evaluations < cold_b.evaluations
    jump = solve_adaptive_kernel(b.X, b.y, init=cold_a.Sigma, newton_dims=0, **kw)  # the route without it
    assert warm.evaluations < jump.evaluations
    # one Broyden iteration is not enough: it fails and the next route answers, its cost carried into the first row
    short = solve_adaptive_kernel(b.X, b.y, init=cold_a.Sigma, newton_iter=1, **kw)
    assert short.converged and _rel(short.Sigma, cold_b.Sigma) <= 1e-8
    assert short.history.method.iloc[0] != "broyden" and int(short.history.evaluations.sum()) == short.evaluations


def test_broyden_newton_step_needs_fewer_evaluations_than_differences_at_every_step():
    d = nk.gaussian_classes([48, 80], 2, generator=torch.Generator().manual_seed(4))
    start = solve_adaptive_kernel(nk.gaussian_classes([48, 80], 2, generator=torch.Generator().manual_seed(3)).X,
                                  d.y, width=500, noise_var=1e-6).Sigma  # a neighbouring draw's answer
    problem = nk.models.adaptive.make_problem(d.X, d.y, noise_var=1e-6)
    full = newton_step(problem, start, 500.0, tol=1e-10, max_iter=30)
    quasi = newton_step(problem, start, 500.0, tol=1e-10, max_iter=30, broyden=True)
    assert full[3] == "" and quasi[3] == ""
    assert _rel(quasi[0].Sigma, full[0].Sigma) <= 1e-8 and quasi[2] < full[2]


def test_newton_step_stops_at_the_rounding_floor():
    # from a root, with a tolerance below rounding: the step is rounding at once, so Newton stops and says why, after
    # the Jacobian by differences (Broyden's corrected one is formed afresh first), not after max_iter backtracked steps
    d = nk.gaussian_classes([48, 48], 1, generator=torch.Generator().manual_seed(4))
    problem = make_problem(d.X, d.y, noise_var=1e-6)
    root = solve_adaptive_kernel(d.X, d.y, width=500, noise_var=1e-6).Sigma
    for broyden in (False, True):
        ev, it, evals, cause = newton_step(problem, root, 500.0, tol=1e-30, max_iter=30, broyden=broyden)
        assert cause.startswith(eos_solver.NEWTON_FLOOR_CAUSE), cause
        assert evals <= 6 and it <= 2 and _rel(ev.Sigma, root) <= 1e-9 and 0 < ev.residual <= 1e-8
    # a floor the step does not see (Armijo fails on noise first) still ends: backtracking stops at rounding steps
    d2 = nk.gaussian_classes([48, 80], 2, generator=torch.Generator().manual_seed(4))
    problem2 = make_problem(d2.X, d2.y, noise_var=1e-6)
    root2 = solve_adaptive_kernel(d2.X, d2.y, width=500, noise_var=1e-6).Sigma
    ev, it, evals, cause = newton_step(problem2, root2, 500.0, tol=1e-30, max_iter=30, broyden=True)
    assert cause and evals < 30 and _rel(ev.Sigma, root2) <= 1e-9


def test_warm_start_at_the_rounding_floor_takes_the_root_nearest_the_start():
    # chapter 13's four-class data at d0 = 1 (N = 256): every root lies at the floor, so Broyden from the previous
    # draw's Sigma cannot reach tol. Draw 1: it stops next to the root and a bracket from the warm start pins it, for
    # fewer evaluations than the cold solve. Draw 2: Broyden ends away from the cold solve's root (Tr Sigma 1.08); the
    # bracket from the warm start finds that root, for fewer evaluations than the cold routes it replaces. One torch
    # thread: Broyden's path through the rounding noise depends on the reduction order
    from nckernels.experiments.beyond import HardCell

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        data = [HardCell((64,) * 4, 1, r, seed=0, family="four-class").data() for r in (0, 1, 2)]
        kw = dict(width=500, noise_var=1e-6)
        cold = [solve_adaptive_kernel(d.X, d.y, **kw) for d in data]
        warm = [solve_adaptive_kernel(d.X, d.y, init=prev.Sigma, **kw) for prev, d in zip(cold, data[1:])]
        problem = make_problem(data[2].X, data[2].y, noise_var=1e-6)
        broyden = newton_step(problem, cold[1].Sigma, 500.0, tol=1e-10, max_iter=30, broyden=True)
    finally:
        torch.set_num_threads(threads)
    assert all(c.at_floor for c in cold)
    for w, c in zip(warm, cold[1:]):
        assert w.converged and w.at_floor and w.history.method.tolist() == ["floor"]
        assert _rel(w.Sigma, c.Sigma) <= 1e-8 and int(w.history.evaluations.sum()) == w.evaluations
    assert warm[0].evaluations < cold[1].evaluations
    assert broyden[3] and _rel(broyden[0].Sigma, cold[2].Sigma) > 0.5  # Broyden alone: elsewhere
    assert warm[1].evaluations - broyden[2] < cold[2].evaluations


@pytest.mark.parametrize("init, match", [
    ("eye", "torch tensor"), (torch.eye(2, dtype=torch.float64), r"shape \(1, 1\)"),
    (torch.tensor([[-1.0]], dtype=torch.float64), "positive definite"),
    (torch.tensor([[math.nan]], dtype=torch.float64), "finite and symmetric")])
def test_warm_start_bad_input(init, match):
    d = nk.gaussian_classes([8, 8], 1, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=match):
        solve_adaptive_kernel(d.X, d.y, width=500, init=init)
    with pytest.raises(ValueError, match="schedule='adaptive'"):
        solve_adaptive_kernel(d.X, d.y, width=500, schedule="reference", init=torch.eye(1, dtype=torch.float64))


def test_grid_draws_warm_start_with_the_same_answers():
    kw = dict(splits=[[24, 40]], d0s=[1, 4], draws=3, label_terms=("eos",), tol=1e-10)
    warm = nk.adaptive_nc1_grid(**kw)
    cold = nk.adaptive_nc1_grid(**kw, warm_start=False)
    rows = lambda f: f[f.kernel == "adaptive (eos)"].reset_index(drop=True)  # noqa: E731
    w, c = rows(warm), rows(cold)
    assert (w.status == "ok").all() and (c.status == "ok").all()
    assert ((w.nc1 - c.nc1).abs() / c.nc1).max() <= 1e-8
    assert w.evaluations.sum() < c.evaluations.sum()
    first = w.draw == 0  # the first draw of a cell has no warm start: the same solve as cold
    assert (w.evaluations[first] == c.evaluations[first]).all()


def test_network_kernels_adaptive_warm_starts_draw_to_draw():
    config = nk.TrainingConfig(width=500)
    adaptive = nk.network_kernels(config, adaptive_max_N=100)["adaptive"]
    a, b = (nk.gaussian_classes([20, 28], 2, generator=torch.Generator().manual_seed(s)) for s in (1, 2))
    adaptive(a)
    cold = solve_adaptive_kernel(b.X, b.y, width=500, labels=b.labels)
    assert _rel(adaptive(b), cold.kernel) <= 1e-8


@pytest.mark.parametrize("d0", [1, 2])
@pytest.mark.parametrize("label_term, noise_var", [("eos", 1e-6), ("eos", 1e-2), ("reference", 1e-6)])
def test_newton_reaches_the_fixed_point_of_the_continuation(d0, label_term, noise_var):
    # Newton runs where the Anderson jump from the NNGP fails; either way the answer is the one the continuation
    # (newton_dims=0) finds, a fixed point to tol
    d = nk.gaussian_classes([48, 48], d0, generator=torch.Generator().manual_seed(4))
    kw = dict(width=500, noise_var=noise_var, label_term=label_term, tol=1e-10)
    ours = solve_adaptive_kernel(d.X, d.y, **kw)
    cont = solve_adaptive_kernel(d.X, d.y, newton_dims=0, **kw)
    assert ours.converged and cont.converged
    assert _rel(ours.Sigma, cont.Sigma) <= 1e-8
    assert eos_residual(d.X, d.y, ours.Sigma, kappa=500, noise_var=noise_var, label_term=label_term) <= 1e-10
    assert int(ours.history.evaluations.sum()) == ours.evaluations
    problem = make_problem(d.X, d.y, noise_var=noise_var, label_term=label_term)
    nngp = torch.eye(d0, dtype=torch.float64) / d0
    if evaluate(problem, nngp, 500.0).new_Sigma is None:  # the NNGP is outside the map's domain: no jump
        assert ours.history.method.tolist() == ["newton"] and cont.history.method.iloc[-1] == "continuation"
        assert ours.evaluations < cont.evaluations
    else:
        assert ours.history.method.tolist() == ["jump"]


def test_newton_step_starts_outside_the_maps_domain():
    # at the NNGP the precision (d0/sigma_w^2) I - G/kappa is not positive definite (the map is undefined), but
    # F(Lam) = Lam - P(Lam^{-1}) is: Newton converges from there, quadratically at the end
    d = nk.gaussian_classes([48, 48], 1, generator=torch.Generator().manual_seed(4))
    problem = make_problem(d.X, d.y, noise_var=1e-6)
    nngp = torch.eye(1, dtype=torch.float64)
    ev0 = evaluate(problem, nngp, 500.0)
    assert ev0.new_Sigma is None and ev0.precision is not None and float(ev0.precision) < 0
    ev, it, evals, cause = newton_step(problem, nngp, 500.0, tol=1e-12, max_iter=30)
    assert cause == "" and ev.residual <= 1e-12 and evals >= 1 + 2 * it  # start, then per iteration 1 FD + >= 1 trial
    assert float((ev.precision - torch.linalg.inv(ev.Sigma)).abs()) <= 1e-10 * float(ev.precision.abs())
    # a budget too small fails with its cause, and returns the last iterate
    ev1, it1, _, cause1 = newton_step(problem, nngp, 500.0, tol=1e-12, max_iter=1)
    assert it1 == 1 and "max_iter=1" in cause1 and ev1.residual > 1e-12


@pytest.mark.parametrize("sizes, seed", [([48, 48], 4), ([32, 96], 1), ([96, 96], 7)])
@pytest.mark.parametrize("start", [1.0, 1e-3, 1e3])
def test_bracket_step_finds_newtons_root(sizes, seed, start):
    # d0 = 1: the sign change nearest the start is the root Newton reaches from the NNGP, a fixed point to tol,
    # also from starts three decades away on either side
    d = nk.gaussian_classes(sizes, 1, generator=torch.Generator().manual_seed(seed))
    problem = make_problem(d.X, d.y, noise_var=1e-6)
    nngp = torch.eye(1, dtype=torch.float64)
    ref, _, _, cause = newton_step(problem, nngp, 500.0, tol=1e-11, max_iter=30)  # (1e-12: one draw's floor)
    assert cause == ""
    ev, it, evals, cause = bracket_step(problem, start * nngp, 500.0, tol=1e-10, max_iter=30)
    assert cause == "" and ev.residual <= 1e-10 and evals > it
    assert _rel(ev.Sigma, ref.Sigma) <= 1e-8
    assert eos_residual(d.X, d.y, ev.Sigma, kappa=500, noise_var=1e-6) <= 1e-10


def test_bracket_step_failures_say_why():
    d = nk.gaussian_classes([48, 48], 1, generator=torch.Generator().manual_seed(4))
    problem = make_problem(d.X, d.y, noise_var=1e-6)
    one = torch.eye(1, dtype=torch.float64)
    with pytest.raises(ValueError, match="Sigma0"):
        bracket_step(problem, torch.eye(2, dtype=torch.float64), 500.0, tol=1e-10, max_iter=30)
    root, _, _, _ = bracket_step(problem, one, 500.0, tol=1e-10, max_iter=30)
    # no sign change within one factor-2 step of a start 1e6 times the root: the cause says so
    ev, it, evals, cause = bracket_step(problem, 1e6 * root.Sigma, 500.0, tol=1e-10, max_iter=30, max_expand=1)
    assert cause.startswith("bracket: f keeps one sign") and it == 0 and evals == 3
    # a tolerance below rounding: the root is pinned, the residual cannot follow, and the cause names the floor
    ev, it, evals, cause = bracket_step(problem, one, 500.0, tol=1e-30, max_iter=200)
    assert cause.startswith(eos_solver.FLOOR_CAUSE) and 0 < ev.residual < 1e-8
    assert _rel(ev.Sigma, root.Sigma) <= 1e-9


def _failing_newton(problem, Sigma0, kappa, **kw):
    ev = evaluate(problem, Sigma0, kappa)
    return ev, 1, 1, "Newton: no step along the Newton direction reduces the residual"


def test_solver_brackets_where_newton_fails(monkeypatch):
    # d0 = 1, NNGP outside the map's domain, Newton made to fail: the bracket answers, with the continuation's Sigma
    d = nk.gaussian_classes([48, 48], 1, generator=torch.Generator().manual_seed(4))
    cont = solve_adaptive_kernel(d.X, d.y, width=500, noise_var=1e-6, newton_dims=0)
    monkeypatch.setattr(eos_solver, "newton_step", _failing_newton)
    res = solve_adaptive_kernel(d.X, d.y, width=500, noise_var=1e-6)
    assert res.converged and res.history.method.tolist() == ["bracket"]
    assert _rel(res.Sigma, cont.Sigma) <= 1e-8 and res.evaluations < cont.evaluations
    # at d0 = 2 there is no bracket: a failed Newton hands over to the continuation
    d2 = nk.gaussian_classes([48, 48], 2, generator=torch.Generator().manual_seed(4))
    res2 = solve_adaptive_kernel(d2.X, d2.y, width=500, noise_var=1e-6)
    assert "bracket" not in set(res2.history.method)
    assert not res.at_floor
    # a tolerance below rounding: the bracket's root at the floor is the answer, flagged, with its residual the
    # map's rounding noise (above tol, at most FLOOR_TOL), the same Sigma, and a fixed point to that noise
    floor = solve_adaptive_kernel(d.X, d.y, width=500, noise_var=1e-6, tol=1e-30)
    assert floor.converged and floor.at_floor and floor.history.method.tolist() == ["floor"]
    assert 1e-30 < floor.residual <= eos_solver.FLOOR_TOL and _rel(floor.Sigma, res.Sigma) <= 1e-6
    assert eos_residual(d.X, d.y, floor.Sigma, kappa=500, noise_var=1e-6) <= eos_solver.FLOOR_TOL
    # a floor above FLOOR_TOL is not accepted: the continuation runs, carrying the failed routes' evaluations
    calls = []
    monkeypatch.setattr(eos_solver, "FLOOR_TOL", 0.0)
    monkeypatch.setattr(eos_solver, "_continue", lambda *a, **k: calls.append(k["carry"]) or "continued")
    assert solve_adaptive_kernel(d.X, d.y, width=500, noise_var=1e-6, tol=1e-30) == "continued"
    assert len(calls) == 1 and calls[0][1] > 2


@pytest.mark.parametrize("kw, match", [({"newton_dims": -1}, "newton_dims"), ({"newton_iter": 0}, "newton_iter")])
def test_newton_options_bad_input(small, kw, match):
    with pytest.raises(ValueError, match=match):
        solve_adaptive_kernel(small.X, small.y, width=500, **kw)


def test_floor_root_is_a_sign_change_of_the_scalar_eos():
    # chapter 13's four-class data at d0 = 1 (N = 256, noise 1e-6): Newton fails, the bracket pins the root, and the
    # map's residual there is its rounding noise (measured 4e-8 here in 63 evaluations; the continuation spends 1 018
    # evaluations to stall at 1e-8 on a Sigma 3e-7 away). The accepted root is certified: f = lam - P(1/lam) changes sign within
    # 1e-6 of it (relative), and every route's answer must lie in that interval.
    from nckernels.experiments.beyond import HardCell
    from nckernels.models.adaptive.map import evaluate, make_problem

    d = HardCell((64,) * 4, 1, 0, seed=0, family="four-class").data()
    res = solve_adaptive_kernel(d.X, d.y, width=500, noise_var=1e-6)
    assert res.converged and res.at_floor and res.history.method.tolist() == ["floor"]
    assert res.tol < res.residual <= eos_solver.FLOOR_TOL and res.evaluations < 150
    problem = make_problem(d.X, d.y, noise_var=1e-6)
    s = float(res.Sigma)

    def f(sigma):
        return 1 / sigma - float(evaluate(problem, res.Sigma.new_full((1, 1), sigma), 500.0).precision)

    assert f(s * (1 - 1e-6)) * f(s * (1 + 1e-6)) < 0
    # chapter 5's claim: without the floor the continuation spends thousands of evaluations to end near the same
    # Sigma with a residual also above tol (here: a failed solve)
    import pytest as _pytest

    with _pytest.MonkeyPatch.context() as mp:
        mp.setattr(eos_solver, "FLOOR_TOL", 0.0)
        cont = solve_adaptive_kernel(d.X, d.y, width=500, noise_var=1e-6, strict=False)
    assert cont.evaluations > 10 * res.evaluations and cont.history.method.iloc[-1] == "continuation"
    assert not cont.converged and res.tol < cont.residual <= eos_solver.FLOOR_TOL and _rel(cont.Sigma, res.Sigma) < 1e-6


def test_continuation_carries_damping_and_grows_moderate_steps():
    # chapter 13's shells draw (d0 = 8, N = 256): the jump fails and the continuation solves it. Steps that converge
    # within grow_moderate evaluations lengthen the next one; each starts from twice the damping the last ended with.
    # The answer is the same fixed point (to tol) with far fewer evaluations than with only the doubling rule.
    from nckernels.experiments.beyond import HardCell

    d = HardCell((128, 128), 8, 2, seed=0, family="shells").data()
    fast = solve_adaptive_kernel(d.X, d.y, width=500, noise_var=1e-6)
    slow = solve_adaptive_kernel(d.X, d.y, width=500, noise_var=1e-6, grow_moderate=0)
    assert fast.converged and slow.converged and fast.history.method.iloc[-1] == "continuation"
    assert _rel(fast.Sigma, slow.Sigma) < 1e-9
    assert fast.evaluations < 0.6 * slow.evaluations and len(fast.history) < 0.6 * len(slow.history)
    # the damping carry: twice the last factor, never above the user's damping
    assert eos_solver._next_damping(None, 0.7) == 0.7
    assert eos_solver._next_damping(0.125, 1.0) == 0.25 and eos_solver._next_damping(0.5, 0.8) == 0.8
    with pytest.raises(ValueError, match="grow_moderate"):
        solve_adaptive_kernel(d.X, d.y, width=500, grow_moderate=-1)
