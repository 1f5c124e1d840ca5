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

Layer 4 (models). A package: :mod:`.problem` (the kernel Q1, its gradient, the label matrix, the scale
convention), :mod:`.map` (the frozen :class:`EoSProblem` and one evaluation of the fixed-point map),
:mod:`.solver` (Anderson step, Newton step for small d0, bracketing step for d0 = 1, annealing, result, :class:`EoSConvergenceError`).
"""
from .map import *  # noqa: F401,F403
from .map import __all__ as _map
from .problem import *  # noqa: F401,F403
from .problem import __all__ as _problem
from .solver import *  # noqa: F401,F403
from .solver import __all__ as _solver

__all__ = [*_problem, *_map, *_solver]
