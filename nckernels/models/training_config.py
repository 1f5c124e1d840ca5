r"""Configuration, initialisation and bookkeeping of the batched two-layer trainer (chapter ``06_trained_networks``).

Layer 4, models: :class:`TrainingConfig`, the stacked parameters (:func:`init_networks` draws each network with
:func:`nckernels.draw_two_layer_params`, standard parametrisation, eq. ``tn-net``), the result type, and the checks
and history rows shared by :func:`nckernels.train_networks` and its autograd oracle :func:`nckernels.train_networks_loop`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Sequence

import pandas as pd
import torch

from ..data.targets import class_targets
from ..errors import DivergenceError
from ..kernels.duals import get_activation
from ..kernels.two_layer import draw_two_layer_params
from ..metrics import BETWEEN_WEIGHTS, batched_feature_nc1
from ..validation import (check_choice, check_dtype, check_finite, check_int, check_labels, check_nonnegative,
                          check_positive)

__all__ = [
    "TrainingConfig", "NetworkParams", "TrainingResult", "init_networks", "hidden_features", "terminal_phase",
    "log_epochs", "check_batch", "check_seeds", "training_targets", "accuracy", "check_diverged", "record_history",
    "progress_bar",
]


@dataclass(frozen=True)
class TrainingConfig:
    """Architecture, initialisation and optimiser of the two-layer net (notes section 3 defaults).

    Chapter ``06_trained_networks``.
    """

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
        check_int(self.width, "width")
        check_int(self.epochs, "epochs", minimum=0)
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
    Chapter ``06_trained_networks``.
    """
    if not isinstance(config, TrainingConfig):
        raise TypeError(f"config must be a TrainingConfig, got {type(config).__name__}")
    epochs_rec = log_epochs(epochs, points)
    return replace(config, epochs=epochs, lr=config.lr if lr is None else lr,
                   momentum=config.momentum if momentum is None else momentum, record_epochs=epochs_rec)


def log_epochs(epochs: int, points: int = 20) -> tuple[int, ...]:
    """0 and about ``points`` log-spaced integer epochs in [1, epochs].

    Chapter ``06_trained_networks``.
    """
    epochs = check_int(epochs, "epochs")
    points = check_int(points, "points", minimum=2)
    grid = {0, epochs} | {int(round(epochs ** (i / (points - 1)))) for i in range(points)}
    return tuple(sorted(grid))


@dataclass(frozen=True)
class NetworkParams:
    """Parameters of R stacked networks: W (R, h, d0), b (R, h), a (R, h, k), b2 (R, k).

    Chapter ``06_trained_networks``.
    """

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
    Chapter ``06_trained_networks``.
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


def check_batch(X, labels):
    """X (R, N, d0) or (N, d0); labels (R, N) or (N,). Returns X (R, N, d0), index (R, N), C.

    Chapter ``06_trained_networks``.
    """
    if not isinstance(X, torch.Tensor) or not torch.is_floating_point(X):
        raise ValueError("X must be a floating torch tensor of shape (R, N, d0) or (N, d0)")
    check_dtype(X, "X")
    if X.ndim == 2:
        X = X[None]
    if X.ndim != 3 or X.shape[1] < 2 or X.shape[2] < 1:
        raise ValueError(f"X must have shape (R, N, d0) or (N, d0) with N >= 2, got {tuple(X.shape)}")
    check_finite(X, "X")
    R, N, _ = X.shape
    if isinstance(labels, (str, bytes)) or labels is None:
        raise TypeError(f"labels must be an array of integer class labels, got {type(labels).__name__}")
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


def training_targets(index: torch.Tensor, C: int, dtype) -> torch.Tensor:
    """+-1 targets (R, N, k) = :func:`nckernels.class_targets` ("pm1"): k = 1 with y = 2 index - 1 for C = 2,
    else one-hot +-1 with k = C.

    Chapter ``06_trained_networks``.
    """
    T = class_targets(index, C, encoding="pm1", dtype=dtype)
    return T[..., None] if C == 2 else T


def check_seeds(seeds, R):
    """One integer seed per repeat, as a tuple. Chapter ``06_trained_networks``."""
    if isinstance(seeds, (str, bytes)) or not hasattr(seeds, "__iter__"):
        raise TypeError(f"seeds must be a sequence of integers, got {seeds!r}")
    seeds = tuple(check_int(s, "seeds", minimum=0) for s in seeds)
    if R is None:
        R = len(seeds) or 1
    if len(seeds) != R:
        raise ValueError(f"seeds must list one seed per repeat ({R}), got {len(seeds)}")
    return seeds


def init_networks(seeds: Sequence[int], d0: int, outputs: int, config: TrainingConfig, *, like: torch.Tensor) -> NetworkParams:
    """Initial parameters of one network per seed (drawn on the CPU in float64, then cast like ``like``).

    Network r draws W (h, d0), b (h,), a (h, k) in that order from ``torch.Generator().manual_seed(seeds[r])``,
    so a network's initialisation does not depend on the other members of its batch.
    Eq. ``tn-net`` of chapter ``06_trained_networks``.
    """
    seeds = check_seeds(seeds, None)
    d0, outputs = check_int(d0, "d0"), check_int(outputs, "outputs")
    if not isinstance(config, TrainingConfig):
        raise TypeError(f"config must be a TrainingConfig, got {type(config).__name__}")
    if not isinstance(like, torch.Tensor):
        raise TypeError(f"like must be a tensor (its dtype and device are used), got {type(like).__name__}")
    check_dtype(like, "like")
    h = config.width
    Ws, bs, As = [], [], []
    for s in seeds:  # the one draw of the two-layer net (kernels.two_layer), standard parametrisation
        p = draw_two_layer_params(d0, h, outputs=outputs, sigma_w=config.sigma_w, sigma_b=config.sigma_b,
                                  sigma_a=config.sigma_a, generator=torch.Generator().manual_seed(int(s)))
        Ws.append(p.W)
        bs.append(p.b)
        As.append(p.a)
    to = dict(dtype=like.dtype, device=like.device)
    W, b, a = torch.stack(Ws).to(**to), torch.stack(bs).to(**to), torch.stack(As).to(**to)
    return NetworkParams(W, b, a, like.new_zeros(len(seeds), outputs))


def hidden_features(params: NetworkParams, X: torch.Tensor, activation: str = "erf") -> torch.Tensor:
    """H = phi(X W^T + b): X (R, N, d0) -> (R, N, h).

    Eq. ``tn-net`` of chapter ``06_trained_networks``.
    """
    if not isinstance(params, NetworkParams):
        raise TypeError(f"params must be NetworkParams, got {type(params).__name__}")
    act = get_activation(activation)
    if not isinstance(X, torch.Tensor) or X.ndim != 3 or tuple(X.shape[::2]) != (params.W.shape[0], params.W.shape[2]):
        raise ValueError(f"X must be a tensor of shape ({params.W.shape[0]}, N, {params.W.shape[2]}) to match params, "
                         f"got {tuple(getattr(X, 'shape', ())) or type(X).__name__}")
    if X.shape[1] == 0:
        raise ValueError("X has no samples")
    check_finite(check_dtype(X, "X"), "X")
    return act.phi(torch.baddbmm(params.b[:, None, :], X, params.W.transpose(1, 2)))  # (R,N,d0)@(R,d0,h)


def accuracy(f: torch.Tensor, index: torch.Tensor, C: int) -> torch.Tensor:
    """Fraction of correct predictions per repeat: sign of f (C = 2) or argmax (C > 2); f (R, N, k).

    Chapter ``06_trained_networks``.
    """
    pred = (f[..., 0] > 0).long() if C == 2 else f.argmax(-1)
    return (pred == index).to(f.dtype).mean(1)


def check_diverged(finite: torch.Tensor, epoch: int, seeds, what: str = "loss") -> None:
    """Raise :class:`nckernels.DivergenceError` (epoch, the seeds concerned) unless every entry of ``finite`` (R,) is true.

    Chapter ``06_trained_networks``.
    """
    if not bool(finite.all()):
        bad = [seeds[r] for r in range(len(seeds)) if not bool(finite[r])]
        raise DivergenceError(f"training diverged at epoch {epoch} (non-finite {what}; seeds {bad}); lower lr",
                              epoch=epoch, seeds=bad)


def record_history(rows, epoch, H, f, T, index, C, config, seeds):
    """Append one history row per repeat (loss, accuracy, NC1 of H) at ``epoch``; raises on non-finite values.

    Chapter ``06_trained_networks``.
    """
    loss = ((f - T) ** 2).mean((1, 2))
    check_diverged(torch.isfinite(loss) & torch.isfinite(H).all(2).all(1), epoch, seeds, "loss or features")
    acc = accuracy(f, index, C)
    nc = batched_feature_nc1(H, index, C, between_weights=config.between_weights)
    vals = {k: v.detach().cpu().tolist() for k, v in dict(nc, loss=loss, accuracy=acc).items()}
    for r, seed in enumerate(seeds):
        row = {"repeat": r, "seed": seed, "epoch": epoch}
        row.update({k: float(v[r]) for k, v in vals.items()})
        rows.append(row)


def progress_bar(progress, total, desc):
    """A tqdm bar over ``total`` epochs when ``progress``, else None. Chapter ``06_trained_networks``."""
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="epoch")


