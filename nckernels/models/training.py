r"""Trained two-layer networks: many independent networks trained at once, their hidden-feature NC1.

The network of book chapter ``06_trained_networks`` in standard parametrisation,

    f(x) = a^T phi(W x + b) + b2,   W_jk ~ N(0, sigma_w^2/d0),  b_j ~ N(0, sigma_b^2),  a_j ~ N(0, sigma_a^2/h),

(b2 = 0 at initialisation), trained by full-batch gradient descent on the mean squared error

    L = (1/(N k)) sum_i ||f(x_i) - y_i||^2,   y_i = +-1 (k = 1 output, C = 2) or one-hot +-1 (k = C outputs),

with weight decay lambda on every parameter and optional heavy-ball momentum mu (torch.optim.SGD's rule:
v <- mu v + g + lambda theta, theta <- theta - lr v). R networks ("repeats"), each with its own data
and its own seed, are stacked along a leading axis and trained with batched matmuls; the gradients are
written out by hand (dL/dZ = (2/(N k)) (f - y) a^T * phi'(Z)), so no autograd graph is kept.
:func:`train_networks_loop` trains the same networks one at a time with autograd and
``torch.optim.SGD`` (the reference code's approach): the oracle of the tests and the benchmark's baseline.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Mapping, Sequence

import pandas as pd
import torch

from ..metrics import BETWEEN_WEIGHTS
from ..kernels.duals import get_activation
from .fused import compiled_hidden_and_slope, warn_fallback
from ..validation import check_choice, check_finite, check_labels, check_nonnegative, check_positive

__all__ = [
    "TrainingConfig",
    "NetworkParams",
    "TrainingResult",
    "init_networks",
    "hidden_features",
    "batched_feature_nc1",
    "train_networks",
    "train_networks_loop",
    "terminal_phase",
    "log_epochs",
]


@dataclass(frozen=True)
class TrainingConfig:
    """Architecture, initialisation and optimiser of the two-layer net (notes section 3 defaults)."""

    width: int = 500
    activation: str = "erf"
    sigma_w: float = 1.0
    sigma_b: float = 0.0
    sigma_a: float = 1.97
    readout_bias: bool = True
    lr: float = 1e-3
    weight_decay: float = 1e-6
    momentum: float = 0.0
    epochs: int = 1000
    record_epochs: tuple[int, ...] | None = None  # None: (0, epochs)
    between_weights: str = "uniform"

    def __post_init__(self):
        if not isinstance(self.width, int) or isinstance(self.width, bool) or self.width < 1:
            raise ValueError(f"width must be a positive integer, got {self.width!r}")
        if not isinstance(self.epochs, int) or isinstance(self.epochs, bool) or self.epochs < 0:
            raise ValueError(f"epochs must be a non-negative integer, got {self.epochs!r}")
        get_activation(self.activation)
        for name in ("sigma_w", "sigma_b", "sigma_a", "weight_decay"):
            check_nonnegative(getattr(self, name), name)
        check_positive(self.lr, "lr")
        mom = check_nonnegative(self.momentum, "momentum")
        if mom >= 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum!r}")
        check_choice(self.between_weights, "between_weights", BETWEEN_WEIGHTS)
        if self.record_epochs is not None:
            rec = tuple(sorted({int(e) for e in self.record_epochs}))
            if any(e < 0 or e > self.epochs for e in rec) or any(float(e) != int(e) for e in self.record_epochs):
                raise ValueError(f"record_epochs must be integers in [0, epochs={self.epochs}], got {self.record_epochs!r}")
            object.__setattr__(self, "record_epochs", rec)

    @property
    def recorded(self) -> tuple[int, ...]:
        """The epochs at which NC1, loss and accuracy are recorded (epoch e = after e updates)."""
        return self.record_epochs if self.record_epochs is not None else tuple(sorted({0, self.epochs}))


def terminal_phase(config: TrainingConfig, *, epochs: int = 20000, lr: float | None = None,
                   momentum: float | None = None, points: int = 25) -> TrainingConfig:
    """``config`` trained far past the paper's 1000 epochs (optionally with another ``lr`` or ``momentum``).

    Heavy-ball momentum mu multiplies the effective step by 1/(1 - mu) at the same stability limit
    on lr, the cheap way to go further; ``points`` log-spaced epochs are recorded (chapter 06).
    """
    if not isinstance(points, int) or points < 2:
        raise ValueError(f"points must be an integer >= 2, got {points!r}")
    epochs_rec = log_epochs(epochs, points)
    return replace(config, epochs=epochs, lr=config.lr if lr is None else lr,
                   momentum=config.momentum if momentum is None else momentum, record_epochs=epochs_rec)


def log_epochs(epochs: int, points: int = 20) -> tuple[int, ...]:
    """0 and about ``points`` log-spaced integer epochs in [1, epochs]."""
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    grid = {0, epochs} | {int(round(epochs ** (i / (points - 1)))) for i in range(points)}
    return tuple(sorted(grid))


@dataclass(frozen=True)
class NetworkParams:
    """Parameters of R stacked networks: W (R, h, d0), b (R, h), a (R, h, k), b2 (R, k)."""

    W: torch.Tensor
    b: torch.Tensor
    a: torch.Tensor
    b2: torch.Tensor

    def network(self, r: int) -> "NetworkParams":
        """The r-th network as a stack of one."""
        return NetworkParams(*(t[r : r + 1] for t in (self.W, self.b, self.a, self.b2)))


@dataclass(frozen=True)
class TrainingResult:
    """``history``: one row per (repeat, recorded epoch) with loss, accuracy, NC1 and its traces.

    ``params``: the final parameters; ``seeds``: each repeat's seed; ``seconds``: wall time of training;
    ``step``: "fused" (the compiled step of :mod:`nckernels.fused`) or "eager".
    """

    history: pd.DataFrame
    params: NetworkParams
    config: TrainingConfig
    seeds: tuple[int, ...]
    seconds: float = field(default=0.0)
    step: str = field(default="eager")

    def final(self) -> pd.DataFrame:
        """The rows of the last recorded epoch, one per repeat."""
        h = self.history
        return h[h["epoch"] == h["epoch"].max()].reset_index(drop=True)


def _check_batch(X, labels):
    """X (R, N, d0) or (N, d0); labels (R, N) or (N,). Returns X (R, N, d0), index (R, N), C."""
    if not isinstance(X, torch.Tensor) or not torch.is_floating_point(X):
        raise ValueError("X must be a floating torch tensor of shape (R, N, d0) or (N, d0)")
    if X.ndim == 2:
        X = X[None]
    if X.ndim != 3 or X.shape[1] < 2 or X.shape[2] < 1:
        raise ValueError(f"X must have shape (R, N, d0) or (N, d0) with N >= 2, got {tuple(X.shape)}")
    check_finite(X, "X")
    R, N, _ = X.shape
    labels = torch.as_tensor(labels)
    if labels.ndim == 1:
        labels = labels[None].expand(R, -1)
    if labels.ndim != 2 or labels.shape[0] != R:
        raise ValueError(f"labels must have shape ({R}, {N}) or ({N},), got {tuple(labels.shape)}")
    index, C = [], None
    for r in range(R):
        idx, sizes = check_labels(labels[r], N, device=X.device)
        if C is not None and sizes.numel() != C:
            raise ValueError(f"labels: every repeat must have the same number of classes, got {C} and {sizes.numel()}")
        C = sizes.numel()
        index.append(idx)
    return X, torch.stack(index), C


def _targets(index: torch.Tensor, C: int, dtype) -> torch.Tensor:
    """+-1 targets (R, N, k): k = 1 with y = 2*index - 1 for C = 2, else one-hot +-1 with k = C."""
    if C == 2:
        return (2 * index - 1).to(dtype)[..., None]
    return 2 * torch.nn.functional.one_hot(index, C).to(dtype) - 1


def _check_seeds(seeds, R):
    try:
        seeds = tuple(int(s) for s in seeds)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"seeds must be a sequence of integers, got {seeds!r}") from exc
    if len(seeds) != R:
        raise ValueError(f"seeds must list one seed per repeat ({R}), got {len(seeds)}")
    return seeds


def init_networks(seeds: Sequence[int], d0: int, outputs: int, config: TrainingConfig, *, like: torch.Tensor) -> NetworkParams:
    """Initial parameters of one network per seed (drawn on the CPU in float64, then cast like ``like``).

    Network r draws W (h, d0), b (h,), a (h, k) in that order from ``torch.Generator().manual_seed(seeds[r])``,
    so a network's initialisation does not depend on the other members of its batch.
    """
    h = config.width
    Ws, bs, As = [], [], []
    for s in seeds:
        gen = torch.Generator().manual_seed(int(s))
        Ws.append(torch.randn(h, d0, generator=gen, dtype=torch.float64) * (config.sigma_w / math.sqrt(d0)))
        bs.append(torch.randn(h, generator=gen, dtype=torch.float64) * config.sigma_b)
        As.append(torch.randn(h, outputs, generator=gen, dtype=torch.float64) * (config.sigma_a / math.sqrt(h)))
    to = dict(dtype=like.dtype, device=like.device)
    W, b, a = torch.stack(Ws).to(**to), torch.stack(bs).to(**to), torch.stack(As).to(**to)
    return NetworkParams(W, b, a, like.new_zeros(len(seeds), outputs))


def hidden_features(params: NetworkParams, X: torch.Tensor, activation: str = "erf") -> torch.Tensor:
    """H = phi(X W^T + b): X (R, N, d0) -> (R, N, h)."""
    act = get_activation(activation)
    return act.phi(torch.baddbmm(params.b[:, None, :], X, params.W.transpose(1, 2)))  # (R,N,d0)@(R,d0,h)


def batched_feature_nc1(H: torch.Tensor, index: torch.Tensor, C: int, *, between_weights: str = "uniform"):
    r"""NC1 = Tr Sigma_W / Tr Sigma_B and NC1_pinv = (1/C) Tr(Sigma_W Sigma_B^+) of R feature sets at once.

    H (R, N, p), index (R, N) class indices 0..C-1 (every class present). Returns a dict of (R,) tensors
    ``trace_within``, ``trace_between``, ``nc1``, ``nc1_pinv``; the same formulas as
    :func:`nckernels.nc1_from_features` (book chapter ``02_nc1_from_kernel``), batched.
    """
    check_choice(between_weights, "between_weights", BETWEEN_WEIGHTS)
    R, N, _ = H.shape
    Y = torch.nn.functional.one_hot(index, C).to(H.dtype)  # (R, N, C)
    n = Y.sum(1)  # (R, C)
    means = torch.bmm(Y.transpose(1, 2), H) / n[..., None]  # (R, C, N) @ (R, N, p) -> (R, C, p)
    mu_G = H.mean(1, keepdim=True)  # (R, 1, p)
    centred_W = H - torch.gather(means, 1, index[..., None].expand(-1, -1, H.shape[2]))  # (R, N, p)
    w = torch.full_like(n, 1.0 / C) if between_weights == "uniform" else n / N  # (R, C)
    centred_B = means - mu_G  # (R, C, p)
    tw = (centred_W * centred_W).sum((1, 2)) / N
    tb = (w[..., None] * centred_B * centred_B).sum((1, 2))
    M_pinv = torch.linalg.pinv(w.sqrt()[..., None] * centred_B)  # (R, p, C)
    pinv = (torch.bmm(centred_W, M_pinv) ** 2).sum((1, 2)) / (N * C)  # (R, N, p) @ (R, p, C)
    return {"trace_within": tw, "trace_between": tb, "nc1": tw / tb, "nc1_pinv": pinv}


def _accuracy(f: torch.Tensor, index: torch.Tensor, C: int) -> torch.Tensor:
    """Fraction of correct predictions per repeat: sign of f (C = 2) or argmax (C > 2); f (R, N, k)."""
    pred = (f[..., 0] > 0).long() if C == 2 else f.argmax(-1)
    return (pred == index).to(f.dtype).mean(1)


def _record(rows, epoch, H, f, T, index, C, config, seeds):
    loss = ((f - T) ** 2).mean((1, 2))
    finite = torch.isfinite(loss) & torch.isfinite(H).all(2).all(1)
    if not bool(finite.all()):
        bad = [seeds[r] for r in range(len(seeds)) if not bool(finite[r])]
        raise FloatingPointError(f"training diverged by epoch {epoch} (non-finite loss or features; seeds {bad}); lower lr")
    acc = _accuracy(f, index, C)
    nc = batched_feature_nc1(H, index, C, between_weights=config.between_weights)
    vals = {k: v.detach().cpu().tolist() for k, v in dict(nc, loss=loss, accuracy=acc).items()}
    for r, seed in enumerate(seeds):
        row = {"repeat": r, "seed": seed, "epoch": epoch}
        row.update({k: float(v[r]) for k, v in vals.items()})
        rows.append(row)


def _bar(progress, total, desc):
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="epoch")


FUSED_AUTO_MIN_WORK = 2e9  # fused="auto" compiles when R * N * width * epochs reaches this (CPU only)


def _resolve_fused(fused, X, R, N, config, act) -> bool:
    if not (fused is True or fused is False or (isinstance(fused, str) and fused == "auto")):
        raise ValueError(f"fused must be True, False or 'auto', got {fused!r}")
    if fused is True:
        if X.device.type != "cpu":
            raise ValueError(f"fused=True is the CPU step (torch.compile with Inductor's C++ backend); the data "
                             f"are on {X.device.type}: pass fused=False or 'auto'")
        if act.name not in ("erf", "relu"):
            raise ValueError(f"fused=True supports the activations 'erf' and 'relu', got {act.name!r}")
        return True
    if fused is False:
        return False
    return (X.device.type == "cpu" and act.name in ("erf", "relu")
            and R * N * config.width * config.epochs >= FUSED_AUTO_MIN_WORK)


def train_networks(X, labels, seeds: Sequence[int], config: TrainingConfig = TrainingConfig(), *,
                   block_elements: int | None | str = "auto", fused: bool | str = "auto",
                   progress: bool = False) -> TrainingResult:
    r"""Train R two-layer networks at once by full-batch gradient descent (batched matmuls, manual gradients).

    Args:
        X: (R, N, d0) inputs, one data set per network, or (N, d0) shared by all; dtype/device are the
            training dtype/device.
        labels: (R, N) or (N,) integer class labels (the targets are +-1 or one-hot +-1).
        seeds: R integers, one initialisation seed per network (see :func:`init_networks`).
        config: a :class:`TrainingConfig`.
        block_elements: each epoch runs over row blocks of about this many (R, rows, h) activation
            entries (cache-sized blocks; None: all rows at once; "auto": 2**20 on a CPU, None on
            an accelerator). The result does not depend on it beyond rounding.
        fused: True runs each row block as one function compiled by ``torch.compile``
            (:mod:`nckernels.fused`: the elementwise passes fused into one loop and, in float32, erf
            computed from the exp(-Z^2) its derivative needs, within 4e-7 of erf); CPU only, needs a
            C++ compiler, costs a few seconds of compilation once per kind of call (cached on disk). False: the
            eager step. "auto" (default): True on a CPU when R * N * width * epochs >= 2e9 (where it pays for
            its compilation), falling back to the eager step with a warning if compilation fails.

    Returns:
        :class:`TrainingResult`; ``history`` has columns repeat, seed, epoch, loss, accuracy, nc1,
        nc1_pinv, trace_within, trace_between (hidden features H = phi(W x + b) at that epoch, always with
        torch's exact activation); ``step`` says which step ran ("fused" or "eager").
    """
    if not isinstance(config, TrainingConfig):
        raise ValueError(f"config must be a TrainingConfig, got {type(config).__name__}")
    X, index, C = _check_batch(X, labels)
    R, N, d0 = X.shape
    if X.shape[0] == 1 and len(seeds) > 1:
        X, index = X.expand(len(seeds), -1, -1), index.expand(len(seeds), -1)
        R = len(seeds)
    seeds = _check_seeds(seeds, R)
    T = _targets(index, C, X.dtype)  # (R, N, k)
    k = T.shape[2]
    p = init_networks(seeds, d0, k, config, like=X)
    act = get_activation(config.activation)
    lr, wd, mom = config.lr, config.weight_decay, config.momentum
    use_fused = _resolve_fused(fused, X, R, N, config, act)
    fast_erf = X.dtype == torch.float32
    # The hidden bias rides along as a last input column: Z = [X, 1] [W, b]^T, and the gradient of
    # [W, b] is one batched matmul (no separate bias passes over the (R, N, h) activations).
    # Zero columns pad the inner dimension to a multiple of 8 (aligned GEMMs); their weights get zero
    # gradient and stay zero.
    pad = (-(d0 + 1)) % 8 if d0 + 1 > 8 else 0
    X1 = torch.cat([X, X.new_ones(R, N, 1), X.new_zeros(R, N, pad)], dim=2)  # (R, N, d0 + 1 + pad)
    Wb = torch.cat([p.W, p.b[..., None], p.W.new_zeros(R, config.width, pad)], dim=2)  # (R, h, d0 + 1 + pad)
    a, b2 = p.a.clone(), p.b2.clone()
    params = [Wb, a, b2]
    bufs = [torch.zeros_like(t) for t in params] if mom > 0 else None
    record = set(config.recorded)
    rows: list[dict] = []
    scale = 2.0 / (N * k)
    erf_fast = act.name == "erf"
    const = 2.0 / math.sqrt(math.pi) if erf_fast else 1.0  # phi'(Z) = const * P
    if isinstance(block_elements, str):
        if block_elements != "auto":
            raise ValueError(f"block_elements must be a positive integer, None or 'auto', got {block_elements!r}")
        block_elements = 2**20 if X.device.type == "cpu" else None
    if block_elements is not None and (not isinstance(block_elements, int) or block_elements < 1):
        raise ValueError(f"block_elements must be a positive integer, None or 'auto', got {block_elements!r}")
    rows_per_block = N if block_elements is None else max(1, min(N, block_elements // (R * config.width)))
    blocks = [slice(s, min(N, s + rows_per_block)) for s in range(0, N, rows_per_block)]
    X1b, Tb = X1, T  # what the blocks read: X1 and T, or for the fused step zero-padded copies
    if use_fused:
        # Equal blocks, so that the compiled step sees one shape (one compilation, cached across
        # processes): zero rows pad N to a multiple of the block height; their dL/df is set to zero below.
        rows_per_block = -(-N // len(blocks))
        padded = rows_per_block * len(blocks) - N
        X1b = torch.cat([X1, X1.new_zeros(R, padded, X1.shape[2])], dim=1)
        Tb = torch.cat([T, T.new_zeros(R, padded, k)], dim=1)
        fused_blocks = [slice(s, s + rows_per_block) for s in range(0, N + padded, rows_per_block)]
        fused_step = compiled_hidden_and_slope(
            (min(d0, 4), act.name, fast_erf, k == 1, X.dtype, X.device.type))  # d0 <= 3: no GEMM (fused.py)
        try:  # compile now, on the first block (Inductor caches the result on disk)
            WbT = Wb.transpose(1, 2).contiguous()
            fused_step(X1b[:, fused_blocks[0], :d0], WbT[:, :d0], WbT[:, d0 : d0 + 1],
                       a.transpose(1, 2).contiguous(), act.name, fast_erf)
        except Exception as exc:  # no C++ compiler, unsupported platform: the eager step
            if fused is True:
                raise
            warn_fallback(exc)
            use_fused = False
            X1b, Tb = X1, T
        else:
            blocks = fused_blocks
    buffers: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def scratch(n):  # reused activation buffers, one pair per block height (no allocation per epoch)
        if n not in buffers:
            buffers[n] = (X.new_empty(R, n, config.width), X.new_empty(R, n, config.width))
        return buffers[n]

    bar = _bar(progress, config.epochs, f"training {R} nets")
    start = time.perf_counter()
    with torch.no_grad():
        for epoch in range(config.epochs + 1):
            if epoch in record:
                H = act.phi(torch.bmm(X1, Wb.transpose(1, 2)))  # (R, N, h): the features at this epoch
                f = torch.bmm(H, a).add_(b2[:, None, :])
                _record(rows, epoch, H, f, T, index, C, config, seeds)
                del H, f
            if epoch == config.epochs:
                break
            # Gradients are accumulated transposed, (R, out, h) = (R, out, n_b) @ (R, n_b, h): the large
            # (R, n_b, h) operand is read in its stored row-major order. The untransposed forms
            # (H^T g, P^T X) run as strided batched GEMVs, about 10x slower on a CPU for k = 1, small d0.
            g_WbT = Wb.new_zeros(R, Wb.shape[2], config.width)
            g_aT = a.new_zeros(R, k, config.width)
            g_b2 = torch.zeros_like(b2)
            WbT = Wb.transpose(1, 2)
            aT = a.transpose(1, 2)  # (R, k, h)
            if use_fused:  # the compiled step reads W and a along h: contiguous copies (small)
                WbT, aT = WbT.contiguous(), aT.contiguous()
            # Row blocks keep the (R, rows, h) activations in cache between the passes over them; the
            # gradients are sums over samples, accumulated block by block.
            for sl in blocks:
                Xb = X1b[:, sl]  # (R, n_b, d0 + 1)
                if use_fused:  # Z, phi(Z), phi'(Z)/const and H a in one compiled pass (nckernels.fused)
                    H, P, f = fused_step(Xb[..., :d0], WbT[:, :d0], WbT[:, d0 : d0 + 1], aT, act.name, fast_erf)
                    fT = f.transpose(1, 2)
                    Xb = Xb[..., : d0 + 1]  # the gradient's GEMM: inputs and bias column, without the padding
                else:
                    Zbuf, Hbuf = scratch(sl.stop - sl.start)
                    Z = torch.bmm(Xb, WbT, out=Zbuf)  # (R, n_b, d0+1) @ (R, d0+1, h) -> (R, n_b, h)
                    H = torch.erf(Z, out=Hbuf) if erf_fast else act.phi(Z)
                    fT = torch.bmm(aT, H.transpose(1, 2))  # (R, k, h) @ (R, h, n_b) -> (R, k, n_b)
                g_fT = fT.add_(b2[:, :, None]).sub_(Tb[:, sl].transpose(1, 2)).mul_(scale)  # dL/df, (R, k, n_b)
                if sl.stop > N:  # zero rows padding the fused step's last block: no loss, no gradient
                    g_fT[:, :, N - sl.start :] = 0
                g_aT.baddbmm_(g_fT, H)  # (R, k, n_b) @ (R, n_b, h)
                if config.readout_bias:
                    g_b2.add_(g_fT.sum(2))
                del H
                if not use_fused:
                    if erf_fast:  # phi'(Z) = (2/sqrt(pi)) exp(-Z^2) in place; the constant goes on the small side
                        P = Z.square_().neg_().exp_()
                    else:
                        P = act.phi_prime(Z)
                    del Z
                gWb = g_WbT[:, : Xb.shape[2]]  # (R, K, h): without the zero padding's rows under the fused step
                if k == 1:
                    # dL/dZ = P * (g_f a^T), so dL/d[W,b] = a * ((g_f [X, 1])^T P)^T: g_f a^T is never formed
                    gWb.baddbmm_((Xb * (const * g_fT.transpose(1, 2))).transpose(1, 2), P)  # (R, d0+1, n_b) @ (R, n_b, h)
                else:
                    g_Z = torch.bmm(g_fT.transpose(1, 2), aT).mul_(P).mul_(const)  # (R, n_b, k) @ (R, k, h)
                    gWb.baddbmm_(Xb.transpose(1, 2), g_Z)  # (R, d0+1, n_b) @ (R, n_b, h)
                del P
            g_Wb, g_a = g_WbT.transpose(1, 2), g_aT.transpose(1, 2)
            if k == 1:
                g_Wb.mul_(a)  # a (R, h, 1) scales each hidden unit's row
            for i, (t, g) in enumerate(zip(params, (g_Wb, g_a, g_b2))):
                if wd:
                    g = g.add_(t, alpha=wd)
                if bufs is not None:
                    g = bufs[i].mul_(mom).add_(g)
                t.sub_(g, alpha=lr)
            if bar is not None:
                bar.update()
    if bar is not None:
        bar.close()
    W, b = Wb[..., :d0].contiguous(), Wb[..., d0].contiguous()
    seconds = time.perf_counter() - start
    return TrainingResult(pd.DataFrame(rows), NetworkParams(W, b, a, b2), config, seeds, seconds,
                          step="fused" if use_fused else "eager")


def train_networks_loop(X, labels, seeds: Sequence[int], config: TrainingConfig = TrainingConfig(), *,
                        progress: bool = False) -> TrainingResult:
    """The same networks as :func:`train_networks`, trained one at a time with autograd and torch.optim.SGD.

    A plain per-network loop (the public reference code's approach); the independent oracle of the
    tests and the baseline of ``benchmarks/bench_training.py``. Same arguments and result.
    """
    if not isinstance(config, TrainingConfig):
        raise ValueError(f"config must be a TrainingConfig, got {type(config).__name__}")
    X, index, C = _check_batch(X, labels)
    if X.shape[0] == 1 and len(seeds) > 1:
        X, index = X.expand(len(seeds), -1, -1), index.expand(len(seeds), -1)
    seeds = _check_seeds(seeds, X.shape[0])
    T = _targets(index, C, X.dtype)
    k = T.shape[2]
    act = get_activation(config.activation)
    record = set(config.recorded)
    rows: list[dict] = []
    finals = []
    bar = _bar(progress, config.epochs * len(seeds), "training nets one by one")
    start = time.perf_counter()
    for r, seed in enumerate(seeds):
        p0 = init_networks([seed], X.shape[2], k, config, like=X)
        W, b, a, b2 = (t[0].clone().requires_grad_(True) for t in (p0.W, p0.b, p0.a, p0.b2))
        params = [W, b, a] + ([b2] if config.readout_bias else [])
        opt = torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
        x, t = X[r], T[r]
        for epoch in range(config.epochs + 1):
            H = act.phi(x @ W.T + b)
            f = H @ a + b2
            loss = torch.nn.functional.mse_loss(f, t)
            if epoch in record:
                sub: list[dict] = []
                _record(sub, epoch, H.detach()[None], f.detach()[None], t[None], index[r : r + 1], C, config, [seed])
                sub[0]["repeat"] = r
                rows.extend(sub)
            if epoch == config.epochs:
                break
            opt.zero_grad()
            loss.backward()
            opt.step()
            if bar is not None:
                bar.update()
        finals.append([v.detach() for v in (W, b, a, b2)])
    if bar is not None:
        bar.close()
    seconds = time.perf_counter() - start
    params = NetworkParams(*(torch.stack([f[i] for f in finals]) for i in range(4)))
    history = pd.DataFrame(rows).sort_values(["epoch", "repeat"], kind="stable").reset_index(drop=True)
    return TrainingResult(history, params, config, seeds, seconds)
