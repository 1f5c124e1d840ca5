"""Benchmark: the nckernels EoS solver against a baseline that follows the reference method.

The baseline (written here from the method's description) solves F(Sigma) = Sigma - Phi(Sigma) = 0 at
each annealing step with ``scipy.optimize.newton_krylov``, warm-started from the previous step, where
Phi(Sigma) = ((d0/sigma_w^2) I - (1/kappa) grad Tr[A Q1[Sigma]])^{-1} takes its gradient by torch
autograd and uses explicit inverses (float64 here). Both stop at the same relative residual
||Sigma - Phi(Sigma)||_F / ||Sigma||_F <= tol: the baseline through newton_krylov's Frobenius-norm
f_tol = tol * ||Sigma_start||_F, checked again at its returned Sigma.

    python benchmarks/bench_eos.py            # N = 1024, d0 = 128, full schedule, both label terms
    python benchmarks/bench_eos.py --quick    # N = 128, d0 = 16 (smoke run)
    python benchmarks/bench_eos.py --grid     # convergence of the project's solver on the paper's grids
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np
import scipy.optimize
import torch

import nckernels as nk
from nckernels.adaptive import default_schedule, eos_residual, solve_adaptive_kernel


class ReferenceMethodBaseline:
    """Newton-Krylov on Sigma - Phi(Sigma) with an autograd gradient; counts evaluations of Phi."""

    def __init__(self, X, y, *, noise_var, sigma_w2, sigma_a2, label_term, max_evals=1000):
        self.X, self.y = X, y
        self.max_evals = max_evals
        self.noise_var, self.sigma_w2, self.sigma_a2 = noise_var, sigma_w2, sigma_a2
        self.label_term = label_term
        self.evaluations = 0

    def q1(self, Sigma):
        K = self.X @ Sigma @ self.X.T  # (N, N)
        s = torch.diag(torch.pow(1 + 2 * torch.diag(K), -0.5))
        return self.sigma_a2 * (2 / math.pi) * torch.arcsin(s @ (2 * K) @ s)

    def phi(self, Sigma_np, kappa):
        if self.evaluations >= self.max_evals:
            raise RuntimeError(f"evaluation budget of {self.max_evals} exhausted at kappa={kappa:g}")
        self.evaluations += 1
        N, d0 = self.X.shape
        Sigma = torch.tensor(Sigma_np, dtype=self.X.dtype, requires_grad=True)
        Q1 = self.q1(Sigma)
        Q1_fixed = Q1.detach()
        inv = torch.linalg.inv(Q1_fixed + self.noise_var * torch.eye(N, dtype=self.X.dtype))
        fbar = Q1_fixed @ inv @ self.y
        if self.label_term == "eos":
            t = (self.y - fbar)[:, None]  # (N, 1)
            label = t @ t.T / self.noise_var**2
        else:  # the reference's (N,) - (N, 1) broadcast, times sigma^2
            T = self.y - fbar[:, None]  # (N, N)
            label = self.noise_var * T @ T.T
        A = label - inv
        (grad,) = torch.autograd.grad(torch.trace(A @ Q1), Sigma)
        new_inv = torch.eye(d0, dtype=self.X.dtype) * (d0 / self.sigma_w2) - grad / kappa
        return torch.linalg.inv(new_inv).numpy()

    def solve(self, schedule, tol, maxiter=50):
        """Anneal over ``schedule``; raises ``RuntimeError`` naming the step and residual on failure."""
        d0 = self.X.shape[1]
        Sigma = np.eye(d0) * self.sigma_w2 / d0
        for kappa in schedule:
            f_tol = tol * np.linalg.norm(Sigma)
            try:
                Sigma = scipy.optimize.newton_krylov(
                    lambda S: S - self.phi(S, kappa), Sigma, f_tol=f_tol, maxiter=maxiter,
                    tol_norm=np.linalg.norm, verbose=False)
            except scipy.optimize.NoConvergence as exc:
                last = np.asarray(exc.args[0])
                res = np.linalg.norm(last - self.phi(last, kappa)) / np.linalg.norm(last)
                raise RuntimeError(f"Newton-Krylov did not converge at kappa={kappa:g} in {maxiter} "
                                   f"iterations; relative residual {res:.2e} > tol {tol:g}") from None
        return torch.from_numpy(Sigma)


def one_problem(N, d0, label_term, *, width, noise_var, tol, seed=0, baseline=True, max_evals=1000):
    data = nk.gaussian_classes([N // 2, N - N // 2], d0, generator=torch.Generator().manual_seed(seed))
    schedule = default_schedule(width)
    t0 = time.perf_counter()
    ours = solve_adaptive_kernel(data.X, data.y, width=width, noise_var=noise_var, label_term=label_term,
                                 tol=tol, strict=False)
    t_ours = time.perf_counter() - t0
    out = {"label_term": label_term, "N": N, "d0": d0, "ours_s": t_ours, "ours_evals": ours.evaluations,
           "ours_converged": ours.converged, "ours_residual": ours.residual}
    if not baseline:
        return out
    base = ReferenceMethodBaseline(data.X, data.y, noise_var=noise_var, sigma_w2=1.0, sigma_a2=1 / 128,
                                   label_term=label_term, max_evals=max_evals)
    t0 = time.perf_counter()
    try:
        S_base = base.solve(schedule, tol)
        base_status = "converged"
    except (RuntimeError, ValueError, np.linalg.LinAlgError) as exc:  # the failure is the result reported
        S_base, base_status = None, f"FAILED: {exc}"
    t_base = time.perf_counter() - t0
    out.update(base_s=t_base, base_evals=base.evaluations, base_status=base_status, ratio=t_base / t_ours)
    if S_base is not None:
        S_base = 0.5 * (S_base + S_base.T)
        out["base_residual"] = eos_residual(data.X, data.y, S_base, kappa=width, noise_var=noise_var,
                                            label_term=label_term)
        out["sigma_rel_diff"] = float(torch.linalg.matrix_norm(ours.Sigma - S_base) / torch.linalg.matrix_norm(S_base))
    return out


def grid(splits, d0s, *, width, noise_var, tol, label_term):
    print(f"\nconvergence on the grid (label_term={label_term!r}, one draw per cell)")
    for split in splits:
        for d0 in d0s:
            data = nk.gaussian_classes(split, d0, generator=torch.Generator().manual_seed(sum(split) + d0))
            t0 = time.perf_counter()
            res = solve_adaptive_kernel(data.X, data.y, width=width, noise_var=noise_var, label_term=label_term,
                                        tol=tol, strict=False)
            h = res.history.iloc[-1]
            status = "converged" if res.converged else f"FAILED at kappa={h.kappa:g}: {h.cause}"
            print(f"  split={tuple(split)} d0={d0:4d}: {status}; residual {res.residual:.1e}, "
                  f"{res.evaluations} evaluations, {time.perf_counter() - t0:.1f} s", flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="N = 128, d0 = 16 (smoke run)")
    p.add_argument("--N", type=int, default=1024)
    p.add_argument("--d0", type=int, default=128)
    p.add_argument("--width", type=float, default=500)
    p.add_argument("--noise-var", type=float, default=1e-6)
    p.add_argument("--tol", type=float, default=1e-10)
    p.add_argument("--label-terms", nargs="+", default=["reference", "eos"], choices=["eos", "reference"])
    p.add_argument("--base-max-evals", type=int, default=1000, help="evaluation budget of the baseline")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--grid", action="store_true", help="also run the balanced and imbalanced grids (ours only)")
    p.add_argument("--no-compare", action="store_true", help="skip the head-to-head solve (with --grid)")
    p.add_argument("--grid-max-N", type=int, default=2048, help="skip grid cells with more samples")
    p.add_argument("--grid-part", choices=["all", "balanced", "imbalanced"], default="all", help="which grid (with --grid)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    N, d0 = (128, 16) if args.quick else (args.N, args.d0)
    print(f"EoS benchmark: N={N}, d0={d0}, width={args.width:g}, noise_var={args.noise_var:g}, tol={args.tol:g}, "
          f"schedule of {len(default_schedule(args.width))} values, torch threads {torch.get_num_threads()}")
    for lt in [] if args.no_compare else args.label_terms:
        r = one_problem(N, d0, lt, width=args.width, noise_var=args.noise_var, tol=args.tol,
                        max_evals=args.base_max_evals)
        print(f"\nlabel_term={lt!r}")
        print(f"  nckernels : {r['ours_s']:8.2f} s, {r['ours_evals']:4d} evaluations, converged={r['ours_converged']}, "
              f"residual {r['ours_residual']:.2e}")
        print(f"  baseline  : {r['base_s']:8.2f} s, {r['base_evals']:4d} evaluations, {r['base_status']}"
              + (f", residual {r['base_residual']:.2e}" if "base_residual" in r else ""))
        print(f"  speed-up  : {r['ratio']:.1f}x")
        if "sigma_rel_diff" in r:
            print(f"  ||Sigma_ours - Sigma_base||_F / ||Sigma_base||_F = {r['sigma_rel_diff']:.2e}")
    if args.grid:
        d0s = [1, 2, 8, 32, 128] if not args.quick else [1, 8]
        balanced = [[n // 2, n // 2] for n in ([128, 256, 512, 1024] if not args.quick else [64, 128])]
        imbalanced = [[1024, 1024], [768, 1280], [512, 1536], [256, 1792]] if not args.quick else [[32, 96]]
        parts = {"all": balanced + imbalanced, "balanced": balanced, "imbalanced": imbalanced}
        cells = [s for s in parts[args.grid_part] if sum(s) <= args.grid_max_N]
        for lt in args.label_terms:
            grid(cells, d0s, width=args.width, noise_var=args.noise_var, tol=args.tol, label_term=lt)


if __name__ == "__main__":
    main()
