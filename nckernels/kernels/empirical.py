r"""Empirical NTK of torch models, its block statistics, and training with the NTK probed (book chapter ``09_empirical_ntk``).

For a model with per-sample output f(x) in R^k and parameters theta, the empirical NTK is
Theta(x, z) = J(x) J(z)^T (k, k) with J(x) = df(x)/dtheta (k, P). The output NTK uses the network's
output (k = C), the feature NTK its penultimate features h(x) (k = p). Jacobians are computed once per
sample (torch.func.vmap over jacrev, or over jacfwd) and contracted with an einsum.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import pandas as pd
import torch
from torch import nn
from torch.func import functional_call, jacfwd, jacrev, vmap
from tqdm.auto import tqdm

from ..data.datasets import class_balanced_subset
from .duals import get_activation
from ..models.block_ntk import collapse_metrics
from ..validation import check_choice, check_labels, check_matrix, check_nonnegative, check_positive

__all__ = [
    "empirical_ntk",
    "output_ntk",
    "feature_ntk",
    "MLPClassifier",
    "TwoLayerNTKNet",
    "BlockMeans",
    "block_means",
    "kernel_alignment",
    "InvariantStats",
    "invariant_stats",
    "ProbedTraining",
    "train_with_ntk_probes",
]

NTK_MODES = ("full", "mean_diagonal")
NTK_METHODS = ("jacrev", "jacfwd")


class _Call(nn.Module):
    """Wraps ``forward(model, x)`` as a module so torch.func.functional_call can swap its parameters."""

    def __init__(self, model: nn.Module, forward: Callable):
        super().__init__()
        self.model = model
        self._forward = forward

    def forward(self, x):
        return self._forward(self.model, x)


def _check_inputs(X, name: str, like: torch.Tensor | None = None) -> torch.Tensor:
    if not isinstance(X, torch.Tensor) or not torch.is_floating_point(X):
        raise ValueError(f"{name} must be a floating torch tensor of shape (n_samples, ...)")
    if X.ndim < 2 or X.shape[0] == 0:
        raise ValueError(f"{name} must have shape (n_samples, ...) with n_samples >= 1, got {tuple(X.shape)}")
    if not bool(torch.isfinite(X).all()):
        raise ValueError(f"{name} contains non-finite values")
    if like is not None and X.shape[1:] != like.shape[1:]:
        raise ValueError(f"{name} has sample shape {tuple(X.shape[1:])} but X has {tuple(like.shape[1:])}")
    return X


def _jacobians(wrapper, params, buffers, X, method, chunk_size):
    """Per-sample Jacobians {name: (n, k, P_name)} of the flattened output, computed once per sample."""

    def single(p, x):  # one sample x (...) -> (k,)
        return functional_call(wrapper, (p, buffers), (x.unsqueeze(0),)).reshape(-1)

    jac_fn = vmap((jacrev if method == "jacrev" else jacfwd)(single), in_dims=(None, 0), chunk_size=chunk_size)
    jac = jac_fn(params, X)  # name -> (n, k, *param shape)
    return {name: j.reshape(j.shape[0], j.shape[1], -1) for name, j in jac.items()}


def empirical_ntk(
    model: nn.Module,
    X: torch.Tensor,
    Z: torch.Tensor | None = None,
    *,
    forward: Callable | None = None,
    mode: str = "full",
    method: str = "jacrev",
    chunk_size: int | None = None,
) -> torch.Tensor:
    r"""Empirical NTK Theta(x, z) = J(x) J(z)^T, summed over all trainable parameters of ``model``.

    Args:
        model: any ``nn.Module`` (parameters with ``requires_grad``; put BatchNorm in eval mode).
        X: (n, ...) inputs; Z: (m, ...) or None (Z = X, Jacobians reused, result exactly symmetric).
        forward: ``forward(model, x_batch) -> (batch, ...)`` giving the k outputs per sample whose NTK
            is wanted (default ``model(x)``); e.g. ``lambda m, x: m.features(x)`` for the feature NTK.
        mode: "full" -> (n, m, k, k); "mean_diagonal" -> (n, m) = (1/k) sum_a Theta_aa(x, z).
        method: "jacrev" (reverse mode, k vector-Jacobian products per sample) or "jacfwd" (forward
            mode, P Jacobian-vector products per sample); both vmapped over samples.
        chunk_size: samples per vmap chunk (memory), None for all at once.
    Returns:
        Tensor with the parameters' dtype and device.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    check_choice(mode, "mode", NTK_MODES)
    check_choice(method, "method", NTK_METHODS)
    X = _check_inputs(X, "X")
    same = Z is None
    Z = X if same else _check_inputs(Z, "Z", like=X)
    params = {f"model.{n}": p.detach() for n, p in model.named_parameters() if p.requires_grad}
    if not params:
        raise ValueError("model has no trainable parameters")
    buffers = {f"model.{n}": b for n, b in model.named_buffers()}
    wrapper = _Call(model, forward or (lambda m, x: m(x)))
    Jx = _jacobians(wrapper, params, buffers, X, method, chunk_size)
    Jz = Jx if same else _jacobians(wrapper, params, buffers, Z, method, chunk_size)
    k = next(iter(Jx.values())).shape[1]
    if mode == "full":
        out = sum(torch.einsum("nap,mbp->nmab", Jx[n], Jz[n]) for n in Jx)  # (n, m, k, k)
        if same:
            out = 0.5 * (out + out.permute(1, 0, 3, 2))
    else:
        out = sum(torch.einsum("nap,map->nm", Jx[n], Jz[n]) for n in Jx) / k  # (n, m)
        if same:
            out = 0.5 * (out + out.T)
    if not bool(torch.isfinite(out).all()):
        raise ValueError("the empirical NTK is not finite (check the model and inputs)")
    return out


def output_ntk(model, X, Z=None, **kwargs) -> torch.Tensor:
    """Output NTK of ``model``: Theta^f(x, z) = (df(x)/dtheta)(df(z)/dtheta)^T; see :func:`empirical_ntk`."""
    return empirical_ntk(model, X, Z, **kwargs)


def feature_ntk(model, X, Z=None, **kwargs) -> torch.Tensor:
    """Feature NTK Theta^h(x, z) of ``model.features`` (the penultimate layer); see :func:`empirical_ntk`."""
    if not callable(getattr(model, "features", None)):
        raise ValueError("model must have a features(x) method for the feature NTK")
    return empirical_ntk(model, X, Z, forward=lambda m, x: m.features(x), **kwargs)


class MLPClassifier(nn.Module):
    """f(x) = W h(x) + b with h an MLP body (``features``) and ``head`` = nn.Linear(p, C).

    Standard parametrisation: weights N(0, init_scale^2 g / fan_in) (g = 2 for relu, 1 for tanh; the
    head uses g = 1), biases 0. The depth and widths are ``hidden`` = (n_1, ..., n_L), p = n_L.
    """

    def __init__(self, d_in: int, hidden, num_classes: int, *, activation: str = "relu", init_scale: float = 1.0,
                 generator: torch.Generator | None = None, dtype=torch.float64, device=None):
        super().__init__()
        check_choice(activation, "activation", ("relu", "tanh"))
        init_scale = check_positive(init_scale, "init_scale")
        widths = [int(d_in), *[int(h) for h in hidden]]
        if len(widths) < 2 or min(widths) < 1 or int(num_classes) < 2:
            raise ValueError(f"need d_in >= 1, at least one hidden width >= 1 and num_classes >= 2, got "
                             f"d_in={d_in!r}, hidden={hidden!r}, num_classes={num_classes!r}")
        act = nn.ReLU if activation == "relu" else nn.Tanh
        gain = 2.0 if activation == "relu" else 1.0
        layers = []
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(a, b, dtype=dtype), act()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(widths[-1], int(num_classes), dtype=dtype)
        gen_device = generator.device if generator is not None else torch.device("cpu")
        with torch.no_grad():
            for layer in [m for m in self.body if isinstance(m, nn.Linear)] + [self.head]:
                g = 1.0 if layer is self.head else gain
                std = init_scale * math.sqrt(g / layer.in_features)
                layer.weight.copy_(std * torch.randn(layer.weight.shape, generator=generator, dtype=dtype, device=gen_device))
                layer.bias.zero_()
        self.to(device)

    def features(self, x):
        """Penultimate features h(x): (B, d_in) -> (B, p)."""
        return self.body(x)

    def forward(self, x):
        return self.head(self.body(x))


class TwoLayerNTKNet(nn.Module):
    """f(x) = (sigma_a / sqrt(h)) a^T phi((sigma_w / sqrt(d0)) W x + sigma_b b), a, W, b standard normal.

    NTK parametrisation of book chapter ``03_two_layer_kernels``: its empirical NTK at initialisation
    tends to :func:`nckernels.ntk` as the width h grows.
    """

    def __init__(self, d0: int, width: int, *, activation: str = "erf", sigma_w: float = 1.0, sigma_b: float = 0.0,
                 sigma_a: float = 1.0, generator: torch.Generator | None = None, dtype=torch.float64, device=None):
        super().__init__()
        self.act = get_activation(activation)
        self.sigma_w, self.sigma_b = check_nonnegative(sigma_w, "sigma_w"), check_nonnegative(sigma_b, "sigma_b")
        self.sigma_a = check_nonnegative(sigma_a, "sigma_a")
        if int(d0) < 1 or int(width) < 1:
            raise ValueError(f"d0 and width must be positive integers, got {d0!r}, {width!r}")
        gen_device = generator.device if generator is not None else torch.device("cpu")

        def normal(*shape):
            return nn.Parameter(torch.randn(*shape, generator=generator, dtype=dtype, device=gen_device).to(device))

        self.W, self.b, self.a = normal(int(width), int(d0)), normal(int(width)), normal(int(width))

    def forward(self, x):
        d0, h = self.W.shape[1], self.W.shape[0]
        u = (self.sigma_w / math.sqrt(d0)) * (x @ self.W.T) + self.sigma_b * self.b  # (B, h)
        return (self.sigma_a / math.sqrt(h)) * (self.act.phi(u) @ self.a)[:, None]  # (B, 1)


@dataclass(frozen=True)
class BlockMeans:
    """Means of a kernel's entries: same sample (diagonal), same class (off-diagonal), other class."""

    diagonal: float
    same_class: float
    other_class: float


def _kernel_and_labels(K, labels):
    K = check_matrix(K, "K", square=True)
    index, sizes = check_labels(labels, K.shape[0], device=K.device)
    return K, index, sizes


def block_means(K, labels) -> BlockMeans:
    """(kappa_d, kappa_c, kappa_n): mean of K_ii, of K_ij over i != j in one class, over different classes.

    K (N, N) in any sample order; every class needs at least two samples.
    """
    K, index, sizes = _kernel_and_labels(K, labels)
    if int(sizes.min()) < 2:
        raise ValueError("labels: every class needs at least two samples for the same-class mean")
    same = index[:, None] == index[None, :]  # (N, N)
    eye = torch.eye(K.shape[0], dtype=torch.bool, device=K.device)
    return BlockMeans(float(K.diagonal().mean()), float(K[same & ~eye].mean()), float(K[~same].mean()))


def kernel_alignment(K, labels) -> float:
    """<K, Y Y^T>_F / (||K||_F ||Y Y^T||_F) with Y (N, C) one-hot: the cosine between K and the label kernel."""
    K, index, sizes = _kernel_and_labels(K, labels)
    same = (index[:, None] == index[None, :]).to(K.dtype)  # Y Y^T
    norm = torch.linalg.matrix_norm(K)
    if not norm > 0:
        raise ValueError("K is zero; its alignment is undefined")
    return float((K * same).sum() / (norm * torch.linalg.matrix_norm(same)))


@dataclass(frozen=True)
class InvariantStats:
    """E = W^T W - H^T K^{-1} H: ||E||_F, ||E||_F / (||W^T W||_F + ||H^T K^{-1} H||_F), and the cosine
    between W^T W and H^T K^{-1} H (1 when E = 0)."""

    norm: float
    relative_norm: float
    alignment: float


def invariant_stats(W, H, K, *, jitter: float = 0.0) -> InvariantStats:
    """Statistics of the invariant for read-out W (C, p), features H (N, p) and feature kernel K (N, N).

    ``jitter`` adds jitter * mean(diag K) to the diagonal of K before the (Cholesky) solve.
    """
    W = check_matrix(W, "W")
    H = check_matrix(H, "H", columns=W.shape[1])
    K = check_matrix(K, "K", square=True)
    if K.shape[0] != H.shape[0]:
        raise ValueError(f"K must have shape ({H.shape[0]}, {H.shape[0]}), got {tuple(K.shape)}")
    jitter = check_nonnegative(jitter, "jitter")
    if jitter:
        K = K + jitter * K.diagonal().mean() * torch.eye(K.shape[0], dtype=K.dtype, device=K.device)
    L, info = torch.linalg.cholesky_ex(0.5 * (K + K.T))
    if int(info) != 0:
        raise ValueError("K must be symmetric positive definite (Cholesky failed); try a small jitter")
    Zm = torch.linalg.solve_triangular(L, H, upper=False)  # L^{-1} H (N, p)
    A, B = W.T @ W, Zm.T @ Zm  # (p, p) each
    na, nb, ne = (float(torch.linalg.matrix_norm(M)) for M in (A, B, A - B))
    if not (na > 0 and nb > 0):
        raise ValueError("W or H is zero; the invariant's alignment is undefined")
    return InvariantStats(ne, ne / (na + nb), float((A * B).sum()) / (na * nb))


@dataclass(frozen=True)
class ProbedTraining:
    """Training record: ``frame`` has one row per probe (step, loss, accuracy, kappa_*/gamma_* block means
    of the feature/output NTK, their label alignments, invariant norm/alignment, nc1, nc1_pinv, nc2, nc3);
    ``feature_kernels`` / ``output_kernels`` map each probed step to the (n, n) mean-diagonal kernel on
    the probe samples, which are sorted by class with labels ``probe_labels``."""

    frame: pd.DataFrame
    probe_index: torch.Tensor
    probe_labels: torch.Tensor
    feature_kernels: dict
    output_kernels: dict


def _probe(model, X, labels, Y, probe_index, jitter):
    with torch.no_grad():
        out = model(X)
        H = model.features(X)
    row = {"loss": float(0.5 * ((out - Y) ** 2).sum(1).mean()),
           "accuracy": float((out.argmax(1) == labels).to(X.dtype).mean())}
    W = model.head.weight.detach()
    if not bool(torch.isfinite(out).all()):
        raise RuntimeError("training diverged (non-finite outputs)")
    try:
        m = collapse_metrics(W, H, labels)
    except ValueError as exc:  # e.g. all ReLU features dead: class means coincide
        raise RuntimeError(f"the features became degenerate ({exc})") from exc
    row.update(nc1=m.nc1, nc1_pinv=m.nc1_pinv, nc2=m.nc2, nc3=m.nc3)
    Xp, lp = X[probe_index], labels[probe_index]
    Kh = feature_ntk(model, Xp, mode="mean_diagonal")
    Kf = output_ntk(model, Xp, mode="mean_diagonal")
    for prefix, K in (("kappa", Kh), ("gamma", Kf)):
        bm = block_means(K, lp)
        row.update({f"{prefix}_d": bm.diagonal, f"{prefix}_c": bm.same_class, f"{prefix}_n": bm.other_class})
    row["alignment feature"] = kernel_alignment(Kh, lp)
    row["alignment output"] = kernel_alignment(Kf, lp)
    inv = invariant_stats(W, H[probe_index], Kh, jitter=jitter)
    row.update({"invariant norm": inv.norm, "invariant relative": inv.relative_norm, "invariant alignment": inv.alignment})
    return row, Kh, Kf


def train_with_ntk_probes(
    model: nn.Module,
    X: torch.Tensor,
    labels,
    *,
    steps: int,
    lr: float,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    batch_size: int | None = None,
    probe_every: int = 100,
    probe_per_class: int = 10,
    jitter: float = 1e-10,
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> ProbedTraining:
    r"""Train ``model`` (with ``features`` and a linear ``head``) by SGD on L = (1/2N) sum_i ||f(x_i) - y_i||^2
    (one-hot y), probing every ``probe_every`` steps (and at steps 0 and ``steps``).

    Each probe evaluates the loss, accuracy and NC1-NC3 (features of all of X, W = head weight) and,
    on ``probe_per_class`` samples per class, the mean-diagonal feature and output NTKs, their block
    means and label alignments, and the invariant statistics of (W, H_probe, K^h_probe).
    ``batch_size`` None is full batch. Raises ``RuntimeError`` if the loss becomes non-finite or the
    features degenerate (e.g. every ReLU unit dead, so that NC1 is undefined).
    """
    if not (callable(getattr(model, "features", None)) and isinstance(getattr(model, "head", None), nn.Linear)):
        raise ValueError("model must have a features(x) method and a head = nn.Linear(p, C)")
    X = _check_inputs(X, "X")
    index, sizes = check_labels(labels, X.shape[0], device=X.device)
    C = sizes.numel()
    if model.head.out_features != C:
        raise ValueError(f"model.head has {model.head.out_features} outputs but labels has {C} classes")
    for name, v in (("steps", steps), ("probe_every", probe_every)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    lr = check_positive(lr, "lr")
    momentum, weight_decay = check_nonnegative(momentum, "momentum"), check_nonnegative(weight_decay, "weight_decay")
    N = X.shape[0]
    if batch_size is not None and (not isinstance(batch_size, int) or not 1 <= batch_size <= N):
        raise ValueError(f"batch_size must be None or an integer in [1, {N}], got {batch_size!r}")
    Y = torch.nn.functional.one_hot(index, C).to(X.dtype)  # (N, C)
    probe_index = class_balanced_subset(index, probe_per_class, generator=generator)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    gen_device = generator.device if generator is not None else torch.device("cpu")
    rows, feature_kernels, output_kernels = [], {}, {}
    for step in tqdm(range(steps + 1), disable=not progress, desc="training"):
        if step % probe_every == 0 or step == steps:
            try:
                row, Kh, Kf = _probe(model, X, index, Y, probe_index, jitter)
            except RuntimeError as exc:
                raise RuntimeError(f"step {step}, lr = {lr}: {exc}") from exc
            rows.append({"step": step, **row})
            feature_kernels[step], output_kernels[step] = Kh, Kf
        if step == steps:
            break
        if batch_size is None:
            xb, yb = X, Y
        else:
            sel = torch.randperm(N, generator=generator, device=gen_device)[:batch_size].to(X.device)
            xb, yb = X[sel], Y[sel]
        opt.zero_grad()
        loss = 0.5 * ((model(xb) - yb) ** 2).sum(1).mean()
        if not torch.isfinite(loss):
            raise RuntimeError(f"training diverged (non-finite loss) at step {step}; lower lr = {lr}")
        loss.backward()
        opt.step()
    return ProbedTraining(pd.DataFrame(rows), probe_index, index[probe_index], feature_kernels, output_kernels)
