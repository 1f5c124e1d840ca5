r"""The AGOP of any torch model, the Neural Feature Ansatz statistic, and deep MLPs analysed layer by layer.

Book chapter ``11_agop_trained``. For f: R^d -> R^C and points x_1..x_n,

    AGOP(f) = (1/n) sum_i J_f(x_i)^T J_f(x_i)   (d, d),  J_f(x) the (C, d) Jacobian,

computed with torch.func (vmap of jacrev). For a deep MLP with hidden layers h_l = relu(W_l h_{l-1} + b_l),
the layer-l AGOP is that of the sub-network h_{l-1} -> output at the training inputs of layer l; the
Neural Feature Ansatz (NFA) says W_l^T W_l is close to a multiple of AGOP_l^{1/2}, measured by the
cosine similarity of the two matrices. With W_l = U S V^T, U is an isometry, so NC1(W_l h + b_l) =
NC1(S V^T h): the linear step's effect on NC1 is that of S V^T alone.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..metrics import UndefinedNC1Error, matrix_correlation, nc1_from_features, nfa_correlation, psd_sqrt  # noqa: F401  (re-exported)
from ..data.targets import class_targets
from ..errors import DivergenceError
from .mlp import MLPNetwork
from ..validation import (check_generator, check_int, check_labels, check_matrix, check_model, check_model_device,
                          check_nonnegative, check_positive, check_test_labels)

__all__ = [
    "model_agop",
    "MLP",
    "mlp_layer_analysis",
    "linear_share",
    "TrainedMLP",
    "train_mlp",
]


def model_agop(f, X, *, batch_size: int | None = None) -> torch.Tensor:
    """(1/n) sum_i J_f(x_i)^T J_f(x_i) with J = jacrev of f on one sample; f maps (b, d) -> (b, C) or (b,).

    X (n, d) -> (d, d). ``batch_size`` bounds how many Jacobians are held at once.
    Eq. ``agopt-agop`` of chapter ``11_agop_trained``.
    """
    if not callable(f):
        raise TypeError(f"f must be a callable (b, d) -> (b, C), got {type(f).__name__}")
    X = check_matrix(X, "X")
    n, d = X.shape
    batch_size = n if batch_size is None else check_int(batch_size, "batch_size")

    def single(x):  # (d,) -> (C,)
        out = f(x[None, :])
        return out.reshape(-1)

    jac = torch.func.vmap(torch.func.jacrev(single))
    agop = X.new_zeros(d, d)
    for start in range(0, n, batch_size):
        J = jac(X[start:start + batch_size])  # (b, C, d)
        agop = agop + torch.einsum("bcd,bce->de", J, J)
    agop = agop / n
    agop = 0.5 * (agop + agop.T)
    if not bool(torch.isfinite(agop).all()):
        raise ValueError("the AGOP is not finite")
    return agop.detach()


class MLP(MLPNetwork):
    """x -> relu(W_1 x + b_1) -> ... -> relu(W_L h + b_L) -> W_out h + b_out: ``depth`` hidden layers of ``width``.

    :class:`nckernels.models.mlp.MLPNetwork` with relu and ``init="uniform"``: ``init_scale`` multiplies PyTorch's
    default initialisation of every weight and bias (chapter ``11_agop_trained``).
    """

    def __init__(self, d_in: int, width: int, depth: int, num_classes: int, *, init_scale: float = 1.0,
                 dtype=torch.float64, device=None, generator: torch.Generator | None = None):
        for name, v, low in (("d_in", d_in, 1), ("width", width, 1), ("depth", depth, 1), ("num_classes", num_classes, 2)):
            check_int(v, name, minimum=low)
        super().__init__(d_in, [width] * depth, num_classes, activation="relu", init="uniform", init_scale=init_scale,
                         generator=generator, dtype=dtype, device=device)


@torch.no_grad()
def _svt(lin: nn.Linear, h: torch.Tensor) -> torch.Tensor:
    U, S, Vh = torch.linalg.svd(lin.weight, full_matrices=False)  # W = U diag(S) Vh
    return (h @ Vh.T) * S  # (n, d) @ (d, r) -> (n, r), columns scaled by S


def _layer_nc1(H: torch.Tensor, index: torch.Tensor) -> float:
    """NC1 of features H, or NaN where every class has the same mean (a dead layer: relu(W h + b) the same
    vector for every sample, so NC1 is undefined); other bad input still raises."""
    try:
        return nc1_from_features(H, index).nc1
    except UndefinedNC1Error:
        return float("nan")


def mlp_layer_analysis(model: MLP, X, labels, *, with_agop: bool = True) -> pd.DataFrame:
    """Per hidden layer l: NC1 of its input h, of S V^T h, of relu(W h + b); NFA corr(W^T W, AGOP_l^{1/2}).

    X (n, d), labels (n,) -> DataFrame with columns layer (1-based), nc1_input, nc1_svt, nc1_output,
    nfa (NaN when ``with_agop`` is False), dead_units (units of relu(W h + b) with the same value on every
    sample). An NC1 is NaN where it is undefined because the class means coincide (a dead layer: a training
    run that kills a layer is recorded, not lost). Eqs. ``agopt-svt`` and ``agopt-nfa`` of chapter
    ``11_agop_trained``.
    """
    check_model(model)
    X = check_matrix(X, "X")
    check_model_device(model, X)
    index, _ = check_labels(labels, X.shape[0], device=X.device)
    d_in = model.hidden[0].in_features if len(getattr(model, "hidden", ())) else None
    if d_in is not None and X.shape[1] != d_in:
        raise ValueError(f"X must have {d_in} columns (the model's input size), got {X.shape[1]}")
    rows = []
    with torch.no_grad():
        hs = model.layer_inputs(X.to(next(model.parameters()).dtype))
    for l, lin in enumerate(model.hidden):
        h, out = hs[l], hs[l + 1]
        row = {"layer": l + 1, "nc1_input": _layer_nc1(h, index), "nc1_svt": _layer_nc1(_svt(lin, h), index),
               "nc1_output": _layer_nc1(out, index), "nfa": float("nan"),
               "dead_units": int((out.amax(0) == out.amin(0)).sum())}
        if with_agop:
            G = model_agop(lambda z, s=l: model.tail(z, s), h)
            if float(G.abs().max()) > 0:  # a dead sub-network has no AGOP to compare with
                row["nfa"] = nfa_correlation(lin.weight.detach(), G)
        rows.append(row)
    return pd.DataFrame(rows)


def linear_share(frame: pd.DataFrame) -> float:
    """Share of the summed log-NC1 reduction of the layers that happens at S V^T:
    sum_l log(nc1_input / nc1_svt) / sum_l log(nc1_input / nc1_output), for a :func:`mlp_layer_analysis` frame.

    Chapter ``11_agop_trained``, eq. ``agopt-svt``.
    """
    for col in ("nc1_input", "nc1_svt", "nc1_output"):
        if col not in frame:
            raise ValueError(f"frame must have the column {col!r} (a mlp_layer_analysis frame)")
    total = np.log(frame["nc1_input"] / frame["nc1_output"]).sum()
    return float(np.log(frame["nc1_input"] / frame["nc1_svt"]).sum() / total)


@dataclass(frozen=True)
class TrainedMLP:
    """A trained MLP and its history (epoch, loss, train_acc, test_acc, nfa_1..nfa_L at checkpoints).

    Chapter ``11_agop_trained``.
    """

    model: MLP
    history: pd.DataFrame
    final_loss: float


def train_mlp(
    X,
    labels,
    *,
    depth: int = 4,
    width: int = 128,
    init_scale: float = 1.0,
    epochs: int = 100,
    lr: float = 0.05,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    batch_size: int = 128,
    X_test=None,
    labels_test=None,
    checkpoints=(),
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> TrainedMLP:
    """Train an MLP with MSE to one-hot targets by mini-batch SGD (momentum, weight decay).

    X (n, d), labels (n,) 0..C-1 after ``check_labels``; ``checkpoints``: epochs (0 = at init) at which
    the per-layer NFA correlation is recorded. Raises :class:`nckernels.DivergenceError` if the loss of any step
    becomes non-finite (checked at every step, before the update). Chapter ``11_agop_trained``.
    """
    X = check_matrix(X, "X")
    index, sizes = check_labels(labels, X.shape[0], device=X.device)
    C = sizes.numel()
    epochs, batch_size = check_int(epochs, "epochs"), check_int(batch_size, "batch_size")
    check_generator(generator)
    lr = check_positive(lr, "lr")
    momentum = check_nonnegative(momentum, "momentum")
    weight_decay = check_nonnegative(weight_decay, "weight_decay")
    gdev = generator.device if generator is not None else torch.device("cpu")
    model = MLP(X.shape[1], width, depth, C, init_scale=init_scale, dtype=X.dtype, generator=generator).to(X.device)
    Y = class_targets(index, C, encoding="onehot", dtype=X.dtype)  # (n, C)
    test_index = None
    if X_test is not None:
        X_test = check_matrix(X_test, "X_test", columns=X.shape[1]).to(dtype=X.dtype, device=X.device)
        test_index = check_test_labels(labels_test, X_test.shape[0], labels, device=X.device)
    elif labels_test is not None:
        raise ValueError("labels_test given without X_test")
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    checkpoints = set(int(c) for c in checkpoints)
    rows = []

    def record(epoch, loss):
        with torch.no_grad():
            acc = float((model(X).argmax(1) == index).to(torch.float64).mean())
            tacc = float("nan") if X_test is None else float((model(X_test).argmax(1) == test_index).to(torch.float64).mean())
        row = {"epoch": epoch, "loss": loss, "train_acc": acc, "test_acc": tacc}
        if epoch in checkpoints:
            frame = mlp_layer_analysis(model, X, index, with_agop=True)
            for _, r in frame.iterrows():
                row[f"nfa_{int(r['layer'])}"] = r["nfa"]
                row[f"nc1_{int(r['layer'])}"] = r["nc1_output"]
        rows.append(row)

    with torch.no_grad():
        record(0, float(((model(X) - Y) ** 2).sum(1).mean()))
    epoch_iter = range(1, epochs + 1)
    if progress:
        from tqdm.auto import tqdm

        epoch_iter = tqdm(epoch_iter, desc="train MLP")
    n = X.shape[0]
    loss_value = float("nan")
    for epoch in epoch_iter:
        perm = torch.randperm(n, generator=generator, device=gdev).to(X.device)
        total = 0.0
        for start in range(0, n, batch_size):
            idx = perm[start:start + batch_size]
            opt.zero_grad()
            loss = ((model(X[idx]) - Y[idx]) ** 2).sum(1).mean()
            step_loss = float(loss.detach())
            if not math.isfinite(step_loss):  # every step: never an update from a non-finite loss
                raise DivergenceError(f"training diverged at epoch {epoch} (loss {step_loss}); lower lr", epoch=epoch)
            loss.backward()
            opt.step()
            total += step_loss * idx.numel()
        loss_value = total / n
        if not math.isfinite(loss_value):
            raise DivergenceError(f"training diverged at epoch {epoch} (loss {loss_value}); lower lr", epoch=epoch)
        if epoch in checkpoints or epoch == epochs:
            record(epoch, loss_value)
    return TrainedMLP(model, pd.DataFrame(rows), loss_value)
