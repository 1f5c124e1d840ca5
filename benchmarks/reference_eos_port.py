"""A faithful port of the public reference code's EoS solve (written from its description, not copied).

What it reproduces (book/data/reference_errata.yml, ``eos_solver`` and error 3; shallow_collapse/eos.py):

* float32 throughout: data, Sigma and every scipy iterate are float32 torch tensors;
* at each kappa of the 24-value schedule, ``scipy.optimize.newton_krylov`` on the residual
  F(Sigma) = Sigma - G(Sigma) of the full d0 x d0 matrix, warm-started from the previous step, with
  f_tol = 5e-4 (sup norm), maxiter = 100, inner_maxiter = 100 and scipy's other defaults (method lgmres,
  line_search armijo, rdiff from the float32 iterate, raise on non-convergence);
* G(Sigma) = inverse of [(d0/sigma_w^2) I + (1/kappa) grad_Sigma Tr(A Q1(Sigma))], the gradient by torch
  autograd with A = (Q1 + sigma^2 I)^{-1} - sigma^2 T T^T built from a detached Q1 (so the sign matches
  the EoS Sigma^{-1} = (d0/sigma_w^2) I - (1/kappa) grad Tr[(L - (Q1 + sigma^2 I)^{-1}) Q1]);
* Q1 = sigma_a^2 (2/pi) arcsin(D (2K) D), K = X Sigma X^T, D = diag((1 + 2 K_ii)^{-1/2}), no clipping;
* explicit ``torch.linalg.inv`` of Q1 + sigma^2 I twice (for fbar and again for A) and of the precision;
* the label term as coded: sigma^2 T T^T with T_ij = y_j - fbar_i (the (N,) minus (N, 1) broadcast).

Used by ``benchmarks/bench_eos.py``.
"""
from __future__ import annotations

import math
import time

import numpy as np
import scipy.optimize
import torch

REFERENCE_KAPPAS = ([float(k) * 1e4 for k in range(10, 0, -1)] + [float(k) * 1e3 for k in range(9, 0, -1)]
                    + [900.0, 800.0, 700.0, 600.0, 500.0])


class ReferenceEoSPort:
    """The reference solve: newton_krylov on Sigma - G(Sigma) in float32; counts evaluations of G."""

    def __init__(self, X, y, *, sigw2=1.0, siga2=1 / 128, sig2=1e-6):
        self.X = torch.as_tensor(X).to(torch.float32)  # (N, d0)
        self.y = torch.as_tensor(y).to(torch.float32)  # (N,)
        self.sigw2, self.siga2, self.sig2 = sigw2, siga2, sig2
        self.evaluations = 0

    def q1(self, Sigma):
        K = self.X @ Sigma @ self.X.T  # (N, N)
        D = torch.diag(torch.pow(1 + 2 * torch.diag(K), -0.5))
        return self.siga2 * (2 / math.pi) * torch.arcsin(D @ (2 * K) @ D)  # no clipping, as coded

    def new_sigma(self, Sigma, kappa):
        """G(Sigma) (d0, d0), float32."""
        self.evaluations += 1
        N, d0 = self.X.shape
        Sigma = Sigma.detach().clone().requires_grad_(True)
        Q1 = self.q1(Sigma)
        Q1bar = Q1.detach()
        eye = torch.eye(N)
        fbar = (Q1bar @ torch.linalg.inv(Q1bar + self.sig2 * eye) @ self.y).reshape(N, 1)  # explicit inverse 1
        T = self.y - fbar  # (N,) - (N, 1) -> (N, N): T_ij = y_j - fbar_i
        A = torch.linalg.inv(Q1bar + self.sig2 * eye) - self.sig2 * (T @ T.T)  # explicit inverse 2
        (grad,) = torch.autograd.grad(torch.trace(A @ Q1), Sigma)
        precision = (d0 / self.sigw2) * torch.eye(d0) + grad / kappa
        return torch.linalg.inv(precision)  # explicit inverse 3

    def residual(self, S_np, kappa):
        S = torch.Tensor(S_np)  # float32, as the reference converts scipy's iterate
        return (S - self.new_sigma(S, kappa)).detach().numpy()

    def solve(self, kappas=REFERENCE_KAPPAS, *, f_tol=5e-4, maxiter=100, inner_maxiter=100):
        """Anneal over ``kappas``; returns (Sigma float64 or the last iterate, status, per-step rows)."""
        d0 = self.X.shape[1]
        Sigma = (self.sigw2 / d0) * torch.eye(d0)  # float32 NNGP start
        rows = []
        for kappa in kappas:
            e0, t0 = self.evaluations, time.perf_counter()
            try:
                S = scipy.optimize.newton_krylov(lambda s: self.residual(s, kappa), Sigma.numpy(), f_tol=f_tol,
                                                 maxiter=maxiter, inner_maxiter=inner_maxiter, verbose=False)
            except scipy.optimize.NoConvergence as exc:
                rows.append({"kappa": kappa, "evaluations": self.evaluations - e0, "seconds": time.perf_counter() - t0,
                             "status": "NoConvergence"})
                return torch.as_tensor(np.asarray(exc.args[0]), dtype=torch.float64), f"NoConvergence at kappa={kappa:g}", rows
            Sigma = torch.Tensor(S)
            rows.append({"kappa": kappa, "evaluations": self.evaluations - e0, "seconds": time.perf_counter() - t0,
                         "status": "converged"})
        return Sigma.to(torch.float64), "converged", rows
