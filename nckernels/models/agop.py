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

import pandas as pd
import torch
from torch import nn

from ..metrics import nc1_from_features
from .rfm import psd_sqrt
from ..validation import check_labels, check_matrix, check_nonnegative, check_positive

__all__ = [
    "model_agop",
    "matrix_correlation",
    "nfa_correlation",
    "MLP",
    "mlp_layer_analysis",
    "TrainedMLP",
    "train_mlp",
]


def model_agop(f, X, *, batch_size: int | None = None) -> torch.Tensor:
    """(1/n) sum_i J_f(x_i)^T J_f(x_i) with J = jacrev of f on one sample; f maps (b, d) -> (b, C) or (b,).

    X (n, d) -> (d, d). ``batch_size`` bounds how many Jacobians are held at once.
    """
    X = check_matrix(X, "X")
    n, d = X.shape
    if batch_size is None:
        batch_size = n
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")

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


def matrix_correlation(A, B, *, centered: bool = False) -> float:
    """<A, B>_F / (||A||_F ||B||_F) of two same-shape matrices (entries mean-centred first if ``centered``)."""
    A = check_matrix(A, "A")
    B = check_matrix(B, "B")
    if A.shape != B.shape:
        raise ValueError(f"A and B must have the same shape, got {tuple(A.shape)} and {tuple(B.shape)}")
    B = B.to(dtype=A.dtype, device=A.device)
    if centered:
        A, B = A - A.mean(), B - B.mean()
    na, nb = torch.linalg.norm(A), torch.linalg.norm(B)
    if not (float(na) > 0 and float(nb) > 0):
        raise ValueError("matrix_correlation is undefined for a zero matrix")
    return float((A * B).sum() / (na * nb))


def nfa_correlation(W, agop, *, power: float = 0.5, centered: bool = False) -> float:
    """NFA statistic: corr(W^T W, AGOP^power); W (k, d), agop (d, d) PSD -> float in [-1, 1]."""
    W = check_matrix(W, "W")
    agop = check_matrix(agop, "agop", square=True)
    if agop.shape[0] != W.shape[1]:
        raise ValueError(f"agop must be ({W.shape[1]}, {W.shape[1]}) to match W's columns, got {tuple(agop.shape)}")
    power = check_positive(power, "power")
    if power == 0.5:
        P = psd_sqrt(agop)
    else:
        lam, V = torch.linalg.eigh(0.5 * (agop + agop.T))
        P = (V * lam.clamp_min(0.0) ** power) @ V.T
    return matrix_correlation(W.T @ W, P, centered=centered)


class MLP(nn.Module):
    """x -> relu(W_1 x + b_1) -> ... -> relu(W_L h + b_L) -> W_out h + b_out; hidden layers in ``hidden``.

    ``init_scale`` multiplies PyTorch's default initialisation of every weight and bias.
    """

    def __init__(self, d_in: int, width: int, depth: int, num_classes: int, *, init_scale: float = 1.0,
                 dtype=torch.float64, device=None, generator: torch.Generator | None = None):
        super().__init__()
        for name, v in (("d_in", d_in), ("width", width), ("depth", depth), ("num_classes", num_classes)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        init_scale = check_positive(init_scale, "init_scale")
        dims = [d_in] + [width] * depth
        self.hidden = nn.ModuleList(nn.Linear(a, b, dtype=dtype) for a, b in zip(dims[:-1], dims[1:]))
        self.head = nn.Linear(width, num_classes, dtype=dtype)
        gdev = generator.device if generator is not None else torch.device("cpu")
        with torch.no_grad():
            for lin in [*self.hidden, self.head]:
                bound = 1.0 / math.sqrt(lin.in_features)  # PyTorch's default uniform bound, drawn from generator
                for p in (lin.weight, lin.bias):
                    u = torch.rand(p.shape, generator=generator, dtype=dtype, device=gdev)
                    p.copy_((2 * u - 1) * bound * init_scale)
        if device is not None:
            self.to(device)

    def tail(self, h: torch.Tensor, start: int) -> torch.Tensor:
        """The network from the input of hidden layer ``start`` (0-based) to the output."""
        for lin in self.hidden[start:]:
            h = torch.relu(lin(h))
        return self.head(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(x, 0)

    def layer_inputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """[h_0 = x, h_1, ..., h_L]: the input of every hidden layer and the last hidden output."""
        hs = [x]
        for lin in self.hidden:
            hs.append(torch.relu(lin(hs[-1])))
        return hs


@torch.no_grad()
def _svt(lin: nn.Linear, h: torch.Tensor) -> torch.Tensor:
    U, S, Vh = torch.linalg.svd(lin.weight, full_matrices=False)  # W = U diag(S) Vh
    return (h @ Vh.T) * S  # (n, d) @ (d, r) -> (n, r), columns scaled by S


def mlp_layer_analysis(model: MLP, X, labels, *, with_agop: bool = True) -> pd.DataFrame:
    """Per hidden layer l: NC1 of its input h, of S V^T h, of relu(W h + b); NFA corr(W^T W, AGOP_l^{1/2}).

    X (n, d), labels (n,) -> DataFrame with columns layer (1-based), nc1_input, nc1_svt, nc1_output,
    nfa (NaN when ``with_agop`` is False).
    """
    X = check_matrix(X, "X")
    index, _ = check_labels(labels, X.shape[0], device=X.device)
    rows = []
    with torch.no_grad():
        hs = model.layer_inputs(X.to(next(model.parameters()).dtype))
    for l, lin in enumerate(model.hidden):
        h, out = hs[l], hs[l + 1]
        row = {"layer": l + 1, "nc1_input": nc1_from_features(h, index).nc1,
               "nc1_svt": nc1_from_features(_svt(lin, h), index).nc1,
               "nc1_output": nc1_from_features(out, index).nc1, "nfa": float("nan")}
        if with_agop:
            G = model_agop(lambda z, s=l: model.tail(z, s), h)
            if float(G.abs().max()) > 0:  # a dead sub-network has no AGOP to compare with
                row["nfa"] = nfa_correlation(lin.weight.detach(), G)
        rows.append(row)
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class TrainedMLP:
    """A trained MLP and its history (epoch, loss, train_acc, test_acc, nfa_1..nfa_L at checkpoints)."""

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
    the per-layer NFA correlation is recorded. Raises if the loss becomes non-finite.
    """
    X = check_matrix(X, "X")
    index, sizes = check_labels(labels, X.shape[0], device=X.device)
    C = sizes.numel()
    for name, v in (("epochs", epochs), ("batch_size", batch_size)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    lr = check_positive(lr, "lr")
    momentum = check_nonnegative(momentum, "momentum")
    weight_decay = check_nonnegative(weight_decay, "weight_decay")
    gdev = generator.device if generator is not None else torch.device("cpu")
    model = MLP(X.shape[1], width, depth, C, init_scale=init_scale, dtype=X.dtype, generator=generator).to(X.device)
    Y = torch.nn.functional.one_hot(index, C).to(X.dtype)  # (n, C)
    test_index = None
    if X_test is not None:
        X_test = check_matrix(X_test, "X_test", columns=X.shape[1]).to(dtype=X.dtype, device=X.device)
        test_index, _ = check_labels(labels_test, X_test.shape[0], name="labels_test", device=X.device)
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
            loss.backward()
            opt.step()
            total += float(loss.detach()) * idx.numel()
        loss_value = total / n
        if not math.isfinite(loss_value):
            raise ValueError(f"training diverged at epoch {epoch} (loss {loss_value}); lower lr")
        if epoch in checkpoints or epoch == epochs:
            record(epoch, loss_value)
    return TrainedMLP(model, pd.DataFrame(rows), loss_value)
