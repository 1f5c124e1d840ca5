r"""The block-structured NTK model of neural collapse and its gradient flow (book chapter ``08_ntk_collapse_dynamics``).

C balanced classes of m samples, N = C m, samples sorted by class. Features H (N, p) (one row per
sample), read-out f = H W^T + 1 b^T (N, C), one-hot targets Y (N, C), residual R = f - Y and MSE loss
L = ||R||_F^2 / 2. The feature kernel is a scalar times the identity on feature space,
Theta^h(x_i, x_j) = K_ij I_p, with the block kernel

    K = (kappa_d - kappa_c) I_N + (kappa_c - kappa_n) blockdiag(1_m 1_m^T) + kappa_n 1_N 1_N^T,

whose eigenvalues are lambda_0 = kappa_d - kappa_c (within class, multiplicity N - C),
lambda_c = lambda_0 + m (kappa_c - kappa_n) (class means, C - 1) and lambda_max = lambda_c + N kappa_n
(global mean, 1). Gradient flow: dW/dt = -R^T H, db/dt = -R^T 1, dH/dt = -K R W, which conserves
E = W^T W - H^T K^{-1} H.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
import torch
from tqdm.auto import tqdm

from ..data.targets import class_targets
from ..errors import DivergenceError
from ..metrics import (  # noqa: F401  (re-exported: their old home)
    CollapseMetrics, collapse_metrics, invariant, nc1_from_features, nc2_etf_distance, nc2_gram_distance,
    nc3_self_duality,
)
from ..validation import (as_float_tensor, check_device, check_finite, check_float_dtype, check_generator, check_int,
                          check_labels, check_matrix, check_positive, check_real)

__all__ = [
    "BlockKernel",
    "BlockState",
    "BlockTrajectory",
    "block_flow_rhs",
    "init_block_state",
    "simulate_block_flow",
    "loss_components",
    "half_time",
]


def _positive_int(value, name: str, minimum: int = 1) -> int:
    return check_int(value, name, minimum=minimum)


@dataclass(frozen=True)
class BlockKernel:
    """The block kernel of C balanced classes with m samples each (samples sorted by class).

    ``kappa_d``: same sample, ``kappa_c``: same class, ``kappa_n``: different classes. Any values that
    make K positive definite (all three eigenvalues > 0) are accepted; kappa_c = kappa_n = 0 is the
    unconstrained-features limit K = kappa_d I.
    Eqs. ``ntkc-block`` and ``ntkc-eig`` of chapter ``08_ntk_collapse_dynamics``.
    """

    kappa_d: float
    kappa_c: float
    kappa_n: float
    num_classes: int
    per_class: int

    def __post_init__(self):
        for name in ("kappa_d", "kappa_c", "kappa_n"):
            v = check_real(getattr(self, name), name)
            object.__setattr__(self, name, v)
        _positive_int(self.num_classes, "num_classes", 2)
        _positive_int(self.per_class, "per_class", 1)
        lam0, lamc, lamg = self.eigenvalues
        if not (lam0 > 0 and lamc > 0 and lamg > 0):
            raise ValueError(
                "kappa_d, kappa_c, kappa_n must give a positive definite K: eigenvalues "
                f"lambda_0 = {lam0:.3g}, lambda_c = {lamc:.3g}, lambda_max = {lamg:.3g}"
            )

    @property
    def N(self) -> int:
        return self.num_classes * self.per_class

    @property
    def eigenvalues(self) -> tuple[float, float, float]:
        """(lambda_0, lambda_c, lambda_max) = (kd - kc, lambda_0 + m (kc - kn), lambda_c + N kn)."""
        lam0 = self.kappa_d - self.kappa_c
        lamc = lam0 + self.per_class * (self.kappa_c - self.kappa_n)
        return lam0, lamc, lamc + self.N * self.kappa_n

    @property
    def multiplicities(self) -> tuple[int, int, int]:
        """(N - C, C - 1, 1): dimensions of the within-class, class-mean and global-mean eigenspaces."""
        return self.N - self.num_classes, self.num_classes - 1, 1

    def labels(self, *, device=None) -> torch.Tensor:
        """(N,) class index of each sample, sorted by class."""
        return torch.arange(self.num_classes, device=device).repeat_interleave(self.per_class)

    def targets(self, *, dtype=torch.float64, device=None) -> torch.Tensor:
        """(N, C) one-hot targets Y."""
        return class_targets(self.labels(device=device), self.num_classes, encoding="onehot", dtype=dtype)

    def matrix(self, *, dtype=torch.float64, device=None) -> torch.Tensor:
        """(N, N) K = (kd - kc) I + (kc - kn) blockdiag(1 1^T) + kn 1 1^T."""
        Y = self.targets(dtype=dtype, device=device)
        eye = torch.eye(self.N, dtype=dtype, device=device)
        return (self.kappa_d - self.kappa_c) * eye + (self.kappa_c - self.kappa_n) * (Y @ Y.T) + self.kappa_n

    def projectors(self, *, dtype=torch.float64, device=None):
        """(P_0, P_c, P_G), each (N, N): within class, class means minus global mean, global mean.

        P_G = 1 1^T / N, P_c = Y Y^T / m - P_G, P_0 = I - Y Y^T / m; they sum to I and
        K = lambda_0 P_0 + lambda_c P_c + lambda_max P_G.
        """
        Y = self.targets(dtype=dtype, device=device)
        class_avg = (Y @ Y.T) / self.per_class  # (N, C) @ (C, N): averaging within each class
        P_G = torch.full((self.N, self.N), 1.0 / self.N, dtype=dtype, device=device)
        return torch.eye(self.N, dtype=dtype, device=device) - class_avg, class_avg - P_G, P_G

    def inverse(self, *, dtype=torch.float64, device=None) -> torch.Tensor:
        """(N, N) K^{-1} = P_0 / lambda_0 + P_c / lambda_c + P_G / lambda_max."""
        lams = self.eigenvalues
        return sum(P / lam for P, lam in zip(self.projectors(dtype=dtype, device=device), lams))


@dataclass(frozen=True)
class BlockState:
    """Read-out weights ``W`` (C, p), bias ``b`` (C,) and features ``H`` (N, p).

    Chapter ``08_ntk_collapse_dynamics``.
    """

    W: torch.Tensor
    b: torch.Tensor
    H: torch.Tensor


def _check_state(W, b, H, K=None, Y=None):
    W = check_matrix(W, "W")
    H = check_matrix(H, "H", columns=W.shape[1])
    b = check_finite(as_float_tensor(b, "b"), "b")
    if b.shape != (W.shape[0],):
        raise ValueError(f"b must have shape ({W.shape[0]},), got {tuple(b.shape)}")
    if K is not None and tuple(K.shape) != (H.shape[0], H.shape[0]):
        raise ValueError(f"K must have shape ({H.shape[0]}, {H.shape[0]}), got {tuple(K.shape)}")
    if Y is not None and tuple(Y.shape) != (H.shape[0], W.shape[0]):
        raise ValueError(f"Y must have shape ({H.shape[0]}, {W.shape[0]}), got {tuple(Y.shape)}")
    return W, b, H


def block_flow_rhs(W, b, H, K, Y):
    """Gradient flow of L = ||H W^T + 1 b^T - Y||^2 / 2 with feature kernel K (N, N).

    Returns (dW (C, p), db (C,), dH (N, p)) = (-R^T H, -R^T 1, -K R W), R = H W^T + 1 b^T - Y.
    Eq. ``ntkc-flow`` of chapter ``08_ntk_collapse_dynamics``.
    """
    W, b, H = _check_state(W, b, H)
    K = check_matrix(K, "K", symmetric=True)
    Y = check_matrix(Y, "Y")
    _check_state(W, b, H, K, Y)
    return _block_flow_rhs(W, b, H, K, Y)


def _block_flow_rhs(W, b, H, K, Y):
    R = H @ W.T + b - Y  # (N, p) @ (p, C) -> (N, C)
    return -R.T @ H, -R.sum(0), -K @ (R @ W)  # (C, p), (C,), (N, N) @ (N, C) @ (C, p)


def init_block_state(kernel: BlockKernel, p: int, *, scale: float, generator=None, dtype=torch.float64, device=None) -> BlockState:
    """W (C, p) and H (N, p) with i.i.d. N(0, scale^2) entries, b = 0.

    Chapter ``08_ntk_collapse_dynamics``.
    """
    if not isinstance(kernel, BlockKernel):
        raise TypeError(f"kernel must be a BlockKernel, got {type(kernel).__name__}")
    _positive_int(p, "p")
    scale = check_positive(scale, "scale")
    check_float_dtype(dtype, "dtype")
    check_device(device, "device")
    check_generator(generator)
    gen_device = generator.device if generator is not None else torch.device("cpu")
    W = scale * torch.randn(kernel.num_classes, p, generator=generator, dtype=dtype, device=gen_device)
    H = scale * torch.randn(kernel.N, p, generator=generator, dtype=dtype, device=gen_device)
    return BlockState(W.to(device), torch.zeros(kernel.num_classes, dtype=dtype, device=device), H.to(device))


def loss_components(W, b, H, kernel: BlockKernel) -> dict[str, float]:
    """L = ||R||^2/2 split on the eigenspaces of K: global ||P_G R||^2/2, class ||P_c R||^2/2, within ||P_0 R||^2/2.

    Eq. ``ntkc-loss`` of chapter ``08_ntk_collapse_dynamics``.
    """
    if not isinstance(kernel, BlockKernel):
        raise TypeError(f"kernel must be a BlockKernel, got {type(kernel).__name__}")
    W, b, H = _check_state(W, b, H)
    if H.shape[0] != kernel.N or W.shape[0] != kernel.num_classes:
        raise ValueError(f"W must have {kernel.num_classes} rows and H {kernel.N} rows to match kernel, got "
                         f"{tuple(W.shape)} and {tuple(H.shape)}")
    return _loss_components(W, b, H, kernel)


def _loss_components(W, b, H, kernel):
    R = H @ W.T + b - kernel.targets(dtype=H.dtype, device=H.device)  # (N, C)
    C, m = kernel.num_classes, kernel.per_class
    class_means = R.reshape(C, m, -1).mean(1)  # (C, C): mean residual of each class (samples sorted)
    glob = R.mean(0)  # (C,)
    within = 0.5 * float(((R.reshape(C, m, -1) - class_means[:, None]) ** 2).sum())
    cls = 0.5 * m * float(((class_means - glob) ** 2).sum())
    gl = 0.5 * kernel.N * float((glob**2).sum())
    return {"loss": gl + cls + within, "loss global": gl, "loss class": cls, "loss within": within}


# Dormand-Prince 5(4): nodes, stage weights, 5th-order weights and (5th - 4th) error weights.
_DP_C = (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0)
_DP_A = (
    (),
    (1 / 5,),
    (3 / 40, 9 / 40),
    (44 / 45, -56 / 15, 32 / 9),
    (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
    (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
    (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84),
)
_DP_B = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0)
_DP_E = (
    35 / 384 - 5179 / 57600,
    0.0,
    500 / 1113 - 7571 / 16695,
    125 / 192 - 393 / 640,
    -2187 / 6784 + 92097 / 339200,
    11 / 84 - 187 / 2100,
    -1 / 40,
)


@dataclass(frozen=True)
class BlockTrajectory:
    """Gradient-flow trajectory of the block model.

    ``frame``: one row per recorded time with columns t, loss, loss global, loss class, loss within,
    nc1, nc1_pinv, nc2, nc3, invariant norm (||E(t)||_F), invariant drift (||E(t) - E(0)||_F) and
    scale (||W^T W||_F).
    ``final``: the state at the last time; ``E0``: the invariant at t = 0 (p, p).
    ``steps`` accepted and ``rejected`` steps; ``stopped_by``: "t_max" or "loss_tol".
    Chapter ``08_ntk_collapse_dynamics``.
    """

    frame: pd.DataFrame
    final: BlockState
    E0: torch.Tensor
    kernel: BlockKernel
    rtol: float
    atol: float
    steps: int
    rejected: int
    stopped_by: str

    @property
    def max_relative_drift(self) -> float:
        """max_t ||E(t) - E(0)||_F / max_t ||W(t)^T W(t)||_F: the invariant's drift against its terms' size."""
        return float(self.frame["invariant drift"].max() / self.frame["scale"].max())


def simulate_block_flow(
    kernel: BlockKernel,
    state: BlockState,
    *,
    t_max: float,
    num_times: int = 200,
    t_min: float | None = None,
    rtol: float = 1e-8,
    atol: float = 1e-12,
    loss_tol: float | None = None,
    max_steps: int = 200_000,
    progress: bool = False,
) -> BlockTrajectory:
    r"""Integrate dW/dt = -R^T H, db/dt = -R^T 1, dH/dt = -K R W with adaptive Dormand-Prince 5(4).

    Accuracy: each accepted step has an estimated local error below atol + rtol |y| in the RMS norm
    over all entries of (W, b, H) (the 4th-order embedded estimate; the 5th-order solution is kept).
    The flow conserves E = W^T W - H^T K^{-1} H exactly, so the recorded drift of E measures the
    integration error. Records at t = 0 and ``num_times - 1`` log-spaced times up to ``t_max``
    from ``t_min`` (default t_max / 10^4) up to ``t_max`` (stopping early, after a record, once the
    loss is below ``loss_tol``).

    Args:
        kernel: the block kernel (samples sorted by class).
        state: initial (W (C, p), b (C,), H (N, p)); dtype and device follow H.
    Returns:
        :class:`BlockTrajectory`. Raises ``RuntimeError`` if ``max_steps`` is exceeded or the step size
        underflows, :class:`nckernels.DivergenceError` (epoch = accepted steps so far) if the state becomes
        non-finite (checked at every step). Eq. ``ntkc-flow`` of chapter ``08_ntk_collapse_dynamics``.
    """
    W, b, H = _check_state(state.W, state.b, state.H)
    if H.shape[0] != kernel.N or W.shape[0] != kernel.num_classes:
        raise ValueError(f"state must have W ({kernel.num_classes}, p) and H ({kernel.N}, p), got "
                         f"W {tuple(W.shape)}, H {tuple(H.shape)}")
    t_max = check_positive(t_max, "t_max")
    rtol, atol = check_positive(rtol, "rtol"), check_positive(atol, "atol")
    _positive_int(num_times, "num_times", 2)
    max_steps = check_int(max_steps, "max_steps")
    dtype, device = H.dtype, H.device
    W, b = W.to(dtype=dtype, device=device), b.to(dtype=dtype, device=device)
    K = kernel.matrix(dtype=dtype, device=device)
    Kinv = kernel.inverse(dtype=dtype, device=device)
    Y = kernel.targets(dtype=dtype, device=device)
    labels = kernel.labels(device=device)
    C, p, N = W.shape[0], W.shape[1], H.shape[0]
    sizes = (C * p, C, N * p)

    def pack(w, bb, h):
        return torch.cat([w.reshape(-1), bb.reshape(-1), h.reshape(-1)])

    def unpack(y):
        w, bb, h = torch.split(y, sizes)
        return w.reshape(C, p), bb, h.reshape(N, p)

    def rhs(y):
        return pack(*_block_flow_rhs(*unpack(y), K, Y))

    def E_of(w, h):
        return w.T @ w - h.T @ Kinv @ h  # (p, p)

    E0 = E_of(W, H)
    t_min = t_max * 1e-4 if t_min is None else check_positive(t_min, "t_min")
    if t_min >= t_max:
        raise ValueError(f"t_min must be below t_max = {t_max}, got {t_min}")
    times = torch.logspace(math.log10(t_min), math.log10(t_max), num_times - 1, dtype=torch.float64).tolist()
    rows = []

    def record(t, y):
        w, bb, h = unpack(y)
        row = {"t": t, **_loss_components(w, bb, h, kernel)}
        m = collapse_metrics(w, h, labels)
        row.update(nc1=m.nc1, nc1_pinv=m.nc1_pinv, nc2=m.nc2, nc3=m.nc3)
        E = E_of(w, h)
        row["invariant norm"] = float(torch.linalg.matrix_norm(E))
        row["invariant drift"] = float(torch.linalg.matrix_norm(E - E0))
        row["scale"] = float(torch.linalg.matrix_norm(w.T @ w))
        rows.append(row)
        return row

    y = pack(W, b, H)
    record(0.0, y)
    t, k1 = 0.0, rhs(y)
    h = min(times[0], 0.1 / max(float(k1.abs().max()), 1e-12))
    steps = rejected = 0
    stopped_by = "t_max"
    bar = tqdm(total=len(times), disable=not progress, desc="block flow")
    for target in times:
        while t < target * (1 - 1e-14):
            if steps + rejected >= max_steps:
                raise RuntimeError(f"simulate_block_flow: max_steps = {max_steps} exceeded at t = {t:.4g}")
            h_try = min(h, target - t)
            ks = [k1]
            for i in range(1, 7):
                yi = y + h_try * sum(a * k for a, k in zip(_DP_A[i], ks) if a)
                ks.append(rhs(yi))
            y_new = yi  # the 7th stage is evaluated at the 5th-order solution (FSAL)
            err_vec = h_try * sum(e * k for e, k in zip(_DP_E, ks) if e)
            scale = atol + rtol * torch.maximum(y.abs(), y_new.abs())
            err = float(torch.sqrt(torch.mean((err_vec / scale) ** 2)))
            if not math.isfinite(err):
                raise DivergenceError(f"simulate_block_flow: diverged (non-finite state) at t = {t:.4g}", epoch=steps)
            if err <= 1.0:
                t, y, k1 = t + h_try, y_new, ks[6]
                steps += 1
            else:
                rejected += 1
            factor = 5.0 if err == 0 else min(5.0, max(0.2, 0.9 * err ** -0.2))
            h = h_try * factor if h_try == h or err > 1.0 else max(h, h_try * factor)
            if h < 1e-14 * max(t, 1.0):
                raise RuntimeError(f"simulate_block_flow: step size underflow at t = {t:.4g}")
        row = record(t, y)
        bar.update(1)
        if loss_tol is not None and row["loss"] < loss_tol:
            stopped_by = "loss_tol"
            break
    bar.close()
    w, bb, hh = unpack(y)
    return BlockTrajectory(pd.DataFrame(rows), BlockState(w, bb, hh), E0, kernel, rtol, atol, steps, rejected, stopped_by)


def half_time(frame: pd.DataFrame, column: str, *, time: str = "t") -> float:
    """The first recorded time at which ``frame[column]`` is at most half its first value (inf if never).

    The rate at which one loss component of the block flow decays (chapter ``08_ntk_collapse_dynamics``,
    eq. ``ntkc-loss``); ``frame`` is a :class:`BlockTrajectory` frame (or any frame with a ``time`` column).
    """
    if column not in frame or time not in frame:
        raise ValueError(f"frame must have the columns {column!r} and {time!r}")
    below = frame[frame[column] <= 0.5 * frame[column].iloc[0]]
    return float(below[time].iloc[0]) if len(below) else math.inf
