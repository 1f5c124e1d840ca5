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

Layer 4, models. This module holds the batched trainer; configuration, initialisation and history rows are in
:mod:`nckernels.models.training_config`, the autograd oracle in :mod:`nckernels.models.training_oracle` (both
re-exported here).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Mapping, Sequence

import pandas as pd
import torch

from ..metrics import BETWEEN_WEIGHTS, batched_feature_nc1  # noqa: F401  (re-exported: its old home)
from ..kernels.duals import get_activation
from .fused import compiled_hidden_and_slope, warn_fallback
from ..validation import (check_choice, check_dtype, check_finite, check_int, check_labels, check_nonnegative,
                          check_positive)

from .training_config import *  # noqa: F401,F403  (re-exported: the old module held them)
from .training_config import (TrainingConfig, TrainingResult, NetworkParams, check_batch, check_diverged, check_seeds,
                              init_networks, progress_bar, record_history, training_targets)
from .training_oracle import train_networks_loop  # noqa: F401  (re-exported)

__all__ = [
    "TrainingConfig",
    "NetworkParams",
    "TrainingResult",
    "init_networks",
    "hidden_features",
    "train_networks",
    "train_networks_loop",
    "terminal_phase",
    "log_epochs",
]


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
    Eqs. ``tn-net`` and ``tn-update`` of chapter ``06_trained_networks``.
    """
    if not isinstance(config, TrainingConfig):
        raise ValueError(f"config must be a TrainingConfig, got {type(config).__name__}")
    seeds = check_seeds(seeds, None)
    X, index, C = check_batch(X, labels)
    R, N, d0 = X.shape
    if X.shape[0] == 1 and len(seeds) > 1:
        X, index = X.expand(len(seeds), -1, -1), index.expand(len(seeds), -1)
        R = len(seeds)
    seeds = check_seeds(seeds, R)
    T = training_targets(index, C, X.dtype)  # (R, N, k)
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
    block_elements = check_int(block_elements, "block_elements", allow_none=True)
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

    bar = progress_bar(progress, config.epochs, f"training {R} nets")
    start = time.perf_counter()
    with torch.no_grad():
        for epoch in range(config.epochs + 1):
            if epoch in record:
                H = act.phi(torch.bmm(X1, Wb.transpose(1, 2)))  # (R, N, h): the features at this epoch
                f = torch.bmm(H, a).add_(b2[:, None, :])
                record_history(rows, epoch, H, f, T, index, C, config, seeds)
                del H, f
            if epoch == config.epochs:  # never return non-finite weights, recorded or not
                check_diverged(torch.isfinite(Wb).flatten(1).all(1) & torch.isfinite(a).flatten(1).all(1)
                               & torch.isfinite(b2).all(1), epoch, seeds, "weights")
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
            residual_sq = X.new_zeros(R)  # sum of squared dL/df: finite iff this epoch's loss is (checked every epoch)
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
                residual_sq += g_fT.square().sum((1, 2))
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
            check_diverged(torch.isfinite(residual_sq), epoch, seeds)  # before the update: no non-finite step taken
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
