r"""A fused training step for CPUs: one compiled pass per row block, erf and its derivative from one exponential.

On a CPU the elementwise work of an erf network's epoch (erf(Z), then exp(-Z^2) for the derivative, each
a separate pass over the (R, rows, h) activations) costs more than the GEMMs when d0 is small. Here
:func:`hidden_and_slope` makes a row block's pre-activations, features and slopes in one loop compiled by
``torch.compile`` (Inductor); the GEMMs and GEMVs of the gradient stay with the BLAS.

The erf is evaluated from the exponential that its derivative needs anyway:

    erf(x) = sign(x) (1 - exp(-x^2) t Q(t)),   t = 1/(1 + p |x|),   p = 0.45,

with Q a polynomial of degree 6 in t fitted here (:func:`fit_erf_approximation`: weighted least squares
iterated towards the minimax fit, against scipy's erfcx(x)/t = erfc(x) exp(x^2)/t on [0, 12], weighted by the
absolute error it makes in erf). In float64 arithmetic the approximation is within
:data:`ERF_ABS_ERROR` (1e-9) of erf; float32 evaluation adds rounding, and the result is within 4e-7 of
erf (torch.erf: 6e-8), about 6 float32 ulps near 1 and far below the rounding of the float32 GEMMs it
feeds. It is used for float32 only; other dtypes use ``torch.erf``. Abramowitz and Stegun's 7.1.26 is the
same form with degree 5 (error 1.5e-7).
"""
from __future__ import annotations

import types
import warnings

import torch

__all__ = [
    "ERF_TAIL_P",
    "ERF_Q",
    "ERF_ABS_ERROR",
    "ERF_FLOAT32_ABS_ERROR",
    "fit_erf_approximation",
    "erf_and_gaussian",
    "erf_approximation_error",
    "hidden_and_slope",
    "compiled_hidden_and_slope",
]

ERF_TAIL_P = 0.45
# Produced by fit_erf_approximation() with its defaults; tests/test_fused.py refits and compares.
ERF_Q = (0.25899060180499545, 0.20100231407051672, 0.46019325327903826, -0.3758411281021911,
         0.8572040560488275, -0.4941225113804319, 0.09257341533989308)
ERF_ABS_ERROR = 1.1e-9  # bound on max |approximation - erf| in float64 arithmetic (tested)
ERF_FLOAT32_ABS_ERROR = 4e-7  # bound on the same in float32 arithmetic (tested)


def fit_erf_approximation(degree: int = 6, p: float = ERF_TAIL_P, sweeps: int = 30) -> dict:
    """Fit the polynomial Q of :func:`erf_and_gaussian` (float64, scipy's erfcx as the truth).

    Returns ``{"q": coefficients in ascending powers of t, "abs_error": max |approximation - erf|}`` on the
    fitting grid. The fit is least squares with weights multiplied by the current error after every sweep
    (Lawson's iteration), which moves it towards the minimax fit.
    Chapter ``06_trained_networks``.
    """
    import numpy as np
    from scipy.special import erfcx

    from ..validation import check_int

    degree, sweeps = check_int(degree, "degree"), check_int(sweeps, "sweeps")
    if not p > 0:
        raise ValueError(f"p must be positive, got {p!r}")
    x = np.concatenate([np.linspace(0.0, 4.0, 40001), np.linspace(4.0, 12.0, 2001)])
    t = 1.0 / (1.0 + p * x)
    V = np.vander(t, degree + 1, increasing=True)
    target = erfcx(x) / t  # Q(t) exactly: erfc(x) = exp(-x^2) t Q
    scale = np.exp(-x * x) * t  # an error dQ makes an erf error scale * dQ
    w = np.ones(len(x))
    for _ in range(sweeps):
        sw = scale * np.sqrt(w)
        q, *_ = np.linalg.lstsq(V * sw[:, None], target * sw, rcond=None)
        err = np.abs(scale * (V @ q - target))
        w = w * err / err.max() + 1e-300
        w /= w.sum()
    return {"q": tuple(q.tolist()), "abs_error": float(err.max())}


def _horner(x: torch.Tensor, coefficients) -> torch.Tensor:
    out = x * coefficients[-1] + coefficients[-2]
    for c in reversed(coefficients[:-2]):
        out = out * x + c
    return out


def erf_and_gaussian(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(erf(z), exp(-z^2)) with the erf built from the exponential (module docstring); elementwise torch ops.

    Chapter ``06_trained_networks``.
    """
    gauss = torch.exp(-z * z)
    t = 1.0 / (1.0 + ERF_TAIL_P * z.abs())
    return torch.copysign(1.0 - gauss * t * _horner(t, ERF_Q), z), gauss


def erf_approximation_error(dtype: torch.dtype = torch.float32, points: int = 1_000_001) -> dict:
    """Largest |error| on [-7, 7] of :func:`erf_and_gaussian`'s erf and of ``torch.erf``, both evaluated in
    ``dtype``, against scipy's float64 erf: ``{"fused": ..., "torch": ...}``.

    Chapter ``06_trained_networks``.
    """
    from scipy.special import erf

    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
    from ..validation import check_int

    points = check_int(points, "points", minimum=2)
    z = torch.linspace(-7.0, 7.0, points, dtype=torch.float64)
    truth = torch.from_numpy(erf(z.numpy()))
    zd = z.to(dtype)
    return {"fused": float((erf_and_gaussian(zd)[0].double() - truth).abs().max()),
            "torch": float((torch.erf(zd).double() - truth).abs().max())}


def hidden_and_slope(X: torch.Tensor, WT: torch.Tensor, b: torch.Tensor, aT: torch.Tensor, activation: str,
                     fast_erf: bool):
    r"""A row block's features H = phi(Z), slopes phi'(Z) / c and read-out H a (no bias), Z = X W^T + b.

    X (R, n, d0) inputs, WT (R, d0, h), b (R, 1, h), aT (R, k, h) read-out weights; returns
    (H (R, n, h), slope (R, n, h), f (R, n, k)). For erf, c = 2/sqrt(pi) and the slope is exp(-Z^2);
    for relu, c = 1 and the slope is 1[Z > 0]. The bias is added in the elementwise loop, so the GEMM has
    inner dimension d0 exactly; with d0 <= 3 the few outer products that make Z are elementwise work too
    (no GEMM call, no Z in memory). ``fast_erf``: use :func:`erf_and_gaussian` (float32) instead of torch.erf.
    Chapter ``06_trained_networks``.
    """
    d0 = X.shape[2]
    if d0 <= 3:
        Z = b + X[:, :, 0, None] * WT[:, None, 0, :]
        for j in range(1, d0):
            Z = Z + X[:, :, j, None] * WT[:, None, j, :]
    else:
        Z = torch.baddbmm(b, X, WT)  # (R, n, h)
    if activation == "erf":
        H, S = erf_and_gaussian(Z) if fast_erf else (torch.erf(Z), torch.exp(-Z * Z))
    elif activation == "relu":
        H, S = torch.relu(Z), (Z > 0).to(Z.dtype)
    else:
        raise ValueError(f"activation must be 'erf' or 'relu', got {activation!r}")
    # k = 1: the readout is a row reduction fused with the loop above (one pass less over H)
    f = (H * aT).sum(2, keepdim=True) if aT.shape[1] == 1 else torch.bmm(H, aT.transpose(1, 2))
    return H, S, f


_COMPILED: dict = {}


def compiled_hidden_and_slope(key: tuple = ()):
    """:func:`hidden_and_slope` through ``torch.compile``, one compiled function per ``key``.

    Dynamo caches compiled graphs per code object and gives up recompiling a function after a few shapes
    or constants (``recompile_limit``), falling back to running it uncompiled. The trainer therefore asks
    for one function per kind of call (d0 <= 3 or a GEMM, activation, fast erf, one output or several,
    dtype, device): each key gets its own copy of the code object and so its own cache, and within a key
    only the sizes vary (static first, then dynamic shapes: at most two compilations). Inductor also
    caches on disk, across processes.
    Chapter ``06_trained_networks``.
    """
    if key not in _COMPILED:
        base = hidden_and_slope
        code = base.__code__.replace(co_name=f"hidden_and_slope_{len(_COMPILED)}")
        fn = types.FunctionType(code, base.__globals__, code.co_name, base.__defaults__, base.__closure__)
        fn.__doc__, fn.__qualname__ = base.__doc__, code.co_name
        _COMPILED[key] = torch.compile(fn, dynamic=None)
    return _COMPILED[key]


def warn_fallback(exc: BaseException) -> None:
    """Warn that the fused step could not compile and the eager step trains instead. Chapter ``06_trained_networks``."""
    warnings.warn(f"torch.compile could not build the fused training step ({type(exc).__name__}: "
                  f"{str(exc).splitlines()[0] if str(exc) else ''}); training with the eager step instead. "
                  "Pass fused=False to silence this.", RuntimeWarning, stacklevel=3)
