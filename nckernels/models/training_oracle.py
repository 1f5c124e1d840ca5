r"""The autograd oracle of the batched trainer: the same networks trained one at a time with torch.optim.SGD.

Layer 4, models; chapter ``06_trained_networks`` (eq. ``tn-update``). The public reference code's approach, the
independent check of :func:`nckernels.train_networks` in the tests and the baseline of ``benchmarks/bench_training.py``.
"""
from __future__ import annotations

import time
from typing import Sequence

import pandas as pd
import torch

from ..kernels.duals import get_activation
from ..kernels.two_layer import TwoLayerParams, two_layer_hidden
from .training_config import (NetworkParams, TrainingConfig, TrainingResult, check_batch, check_diverged, check_seeds,
                              init_networks, progress_bar, record_history, training_targets)

__all__ = ["train_networks_loop"]


def train_networks_loop(X, labels, seeds: Sequence[int], config: TrainingConfig = TrainingConfig(), *,
                        progress: bool = False) -> TrainingResult:
    """The same networks as :func:`train_networks`, trained one at a time with autograd and torch.optim.SGD.

    A plain per-network loop (the public reference code's approach); the independent oracle of the
    tests and the baseline of ``benchmarks/bench_training.py``. Same arguments and result.
    Eq. ``tn-update`` of chapter ``06_trained_networks``.
    """
    if not isinstance(config, TrainingConfig):
        raise ValueError(f"config must be a TrainingConfig, got {type(config).__name__}")
    seeds = check_seeds(seeds, None)
    X, index, C = check_batch(X, labels)
    if X.shape[0] == 1 and len(seeds) > 1:
        X, index = X.expand(len(seeds), -1, -1), index.expand(len(seeds), -1)
    seeds = check_seeds(seeds, X.shape[0])
    T = training_targets(index, C, X.dtype)
    k = T.shape[2]
    act = get_activation(config.activation)
    record = set(config.recorded)
    rows: list[dict] = []
    finals = []
    bar = progress_bar(progress, config.epochs * len(seeds), "training nets one by one")
    start = time.perf_counter()
    for r, seed in enumerate(seeds):
        p0 = init_networks([seed], X.shape[2], k, config, like=X)
        W, b, a, b2 = (t[0].clone().requires_grad_(True) for t in (p0.W, p0.b, p0.a, p0.b2))
        params = [W, b, a] + ([b2] if config.readout_bias else [])
        opt = torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
        x, t = X[r], T[r]
        for epoch in range(config.epochs + 1):
            H = two_layer_hidden(TwoLayerParams(W, b, a), x, act)
            f = H @ a + b2
            loss = torch.nn.functional.mse_loss(f, t)
            check_diverged(torch.isfinite(loss)[None], epoch, [seed])  # every epoch, before any update from it
            if epoch in record:
                sub: list[dict] = []
                record_history(sub, epoch, H.detach()[None], f.detach()[None], t[None], index[r : r + 1], C, config, [seed])
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
