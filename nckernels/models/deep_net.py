r"""Deep fully connected networks trained by full-batch gradient descent (book chapter ``12_depth_and_activation``).

Layer 4, models. May import :mod:`nckernels.validation`, :mod:`nckernels.errors`, :mod:`nckernels.data`,
:mod:`nckernels.metrics`, :mod:`nckernels.kernels` and, within the layer, :mod:`nckernels.models.training`.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from ..data.targets import class_targets
from ..errors import DivergenceError
from ..kernels.quadrature import resolve_activation
from ..metrics import nc1_from_features
from ..validation import check_int, check_labels
from .training import TrainingConfig

__all__ = ["DeepNetResult", "train_deep_network"]


@dataclass(frozen=True)
class DeepNetResult:
    """A deep net trained by full-batch GD: last-hidden-layer NC1 at init and at the end, final loss and accuracy.

    Book chapter ``12_depth_and_activation``.
    """

    depth: int
    nc1_init: float
    nc1: float
    loss: float
    accuracy: float
    seconds: float


def train_deep_network(X, labels, *, depth: int, seed: int, config: TrainingConfig = TrainingConfig()) -> DeepNetResult:
    r"""Train f(x) = a^T h_L(x) + b_out, h_l = phi(W_l h_{l-1} + b_l), by full-batch GD on the MSE; NC1 of h_L.

    Standard parametrisation with the scales of ``config`` (chapter ``06_trained_networks``'s net for depth = 1):
    W_l ~ N(0, sigma_w^2 / fan_in), b_l ~ N(0, sigma_b^2), a ~ N(0, sigma_a^2 / h), b_out = 0, every hidden layer of
    width ``config.width``; targets +-1 (C = 2) or one-hot +-1, loss (1/(N k)) sum ||f - y||^2, SGD with
    ``config.lr``, ``weight_decay``, ``momentum`` for ``config.epochs`` full-batch steps (autograd, X's dtype).
    Raises :class:`nckernels.DivergenceError` when the loss leaves the finite numbers. Book chapter
    ``12_depth_and_activation``.
    """
    depth = check_int(depth, "depth")
    if not isinstance(config, TrainingConfig):
        raise ValueError(f"config must be a TrainingConfig, got {type(config).__name__}")
    index, sizes = check_labels(labels, X.shape[0], device=X.device)
    C = sizes.numel()
    Y = class_targets(index, C, encoding="pm1", dtype=X.dtype).reshape(X.shape[0], -1)  # (N, k)
    phi = resolve_activation(config.activation).phi
    gen = torch.Generator().manual_seed(int(seed))
    to = dict(dtype=X.dtype, device=X.device)
    dims = [X.shape[1]] + [config.width] * depth
    params = []
    for fan_in, fan_out in zip(dims[:-1], dims[1:]):
        W = torch.randn(fan_out, fan_in, generator=gen, dtype=torch.float64) * config.sigma_w / math.sqrt(fan_in)
        b = torch.randn(fan_out, generator=gen, dtype=torch.float64) * config.sigma_b
        params += [W.to(**to), b.to(**to)]
    a = torch.randn(config.width, Y.shape[1], generator=gen, dtype=torch.float64) * config.sigma_a / math.sqrt(config.width)
    params += [a.to(**to), X.new_zeros(Y.shape[1])]
    for p in params:
        p.requires_grad_(True)

    def hidden(ps):
        h = X
        for W, b in zip(ps[0:-2:2], ps[1:-2:2]):
            h = phi(h @ W.T + b)  # (N, width)
        return h

    t0 = time.perf_counter()
    with torch.no_grad():
        nc1_init = nc1_from_features(hidden(params), index).nc1
    opt = torch.optim.SGD(params, lr=config.lr, weight_decay=config.weight_decay, momentum=config.momentum)
    for epoch in range(1, config.epochs + 1):
        opt.zero_grad()
        loss = ((hidden(params) @ params[-2] + params[-1] - Y) ** 2).mean()
        if not math.isfinite(float(loss.detach())):
            raise DivergenceError(f"training diverged at epoch {epoch} (loss {float(loss.detach())}); lower lr", epoch=epoch,
                                  seeds=(int(seed),))
        loss.backward()
        opt.step()
    with torch.no_grad():
        H = hidden(params)
        f = H @ params[-2] + params[-1]
        loss = float(((f - Y) ** 2).mean())
        pred = (f[:, 0] > 0).long() if C == 2 else f.argmax(1)
        acc = float((pred == index).to(torch.float64).mean())
        nc1 = nc1_from_features(H, index).nc1
    if not math.isfinite(loss):
        raise DivergenceError(f"training diverged (final loss {loss}); lower lr", epoch=config.epochs, seeds=(int(seed),))
    return DeepNetResult(depth, float(nc1_init), float(nc1), loss, acc, time.perf_counter() - t0)
