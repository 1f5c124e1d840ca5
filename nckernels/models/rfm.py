r"""Mahalanobis kernels, kernel ridge regression, the closed-form AGOP of a kernel predictor, Deep RFM.

Book chapter ``10_deep_rfm`` derives everything here. With a PSD matrix M (d, d) and bandwidth L > 0,

    ||x - z||_M = sqrt((x - z)^T M (x - z)),
    Laplace:  k(x, z) = exp(-||x - z||_M / L),     Gaussian:  k(x, z) = exp(-||x - z||_M^2 / (2 L^2)).

Kernel ridge regression fits alpha = (K + ridge I)^{-1} Y and predicts f(x) = sum_j alpha_j k(x, x_j).
Its input gradient is grad f_c(x) = -M sum_j w(x, x_j) alpha_jc (x - x_j) with
w = k / (L ||x - x_j||_M) (Laplace) or w = k / L^2 (Gaussian); the AGOP is
(1/n) sum_i sum_c grad f_c(x_i) grad f_c(x_i)^T. At a training point x_i the Laplace self term j = i
has no gradient (the kernel has a cusp there) and is dropped by its index.

Deep RFM (chapter ``10_deep_rfm``): per layer normalise the rows, fit KRR, take its AGOP M_l (scaled to
largest entry 1), project X_l M_l^{1/2}, and map through untrained random features (ReLU or cosine).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd
import torch

from ..data.targets import class_targets
from ..metrics import nc1_from_features, nc2_cosine_mse, nc2_from_features, psd_sqrt, psd_sqrt_eig  # noqa: F401
from ..validation import (check_choice, check_generator, check_int, check_labels, check_matrix, check_nonnegative,
                          check_pair, check_positive, check_psd, check_test_labels, as_float_tensor, check_finite)

__all__ = [
    "KERNELS",
    "FEATURE_MAPS",
    "mahalanobis_sq_distances",
    "laplace_kernel",
    "gaussian_kernel",
    "mahalanobis_kernel",
    "KRRModel",
    "krr_fit",
    "kernel_agop",
    "random_features",
    "DeepRFMResult",
    "deep_rfm",
]

KERNELS = ("laplace", "gaussian")
FEATURE_MAPS = ("relu", "cosine")


# --------------------------------------------------------------------------------------------------
# kernels


def _check_M(M, d: int, like: torch.Tensor) -> torch.Tensor | None:
    if M is None:
        return None
    M = check_psd(M, "M")
    if M.shape[0] != d:
        raise ValueError(f"M must be ({d}, {d}) to match the inputs, got {tuple(M.shape)}")
    if M.device != like.device:
        raise ValueError(f"M is on {M.device} but X is on {like.device}; put both on one device")
    return M.to(like.dtype)



def mahalanobis_sq_distances(X, Z=None, *, M=None) -> torch.Tensor:
    """D_ij = (x_i - z_j)^T M (x_i - z_j), clipped at 0; X (n, d), Z (m, d), M (d, d) or None (= I) -> (n, m).

    With Z = None the result is exactly symmetric with an exactly zero diagonal.
    Eq. ``drfm-laplace`` of chapter ``10_deep_rfm``.
    """
    X, Z, same = check_pair(X, Z)
    M = _check_M(M, X.shape[1], X)
    XM = X if M is None else X @ M  # (n, d) @ (d, d) -> (n, d)
    ZM = XM if same else (Z if M is None else Z @ M)  # (m, d)
    x2 = (XM * X).sum(1)  # (n,) x^T M x
    z2 = x2 if same else (ZM * Z).sum(1)  # (m,)
    D = x2[:, None] + z2[None, :] - 2.0 * (XM @ Z.T)  # (n, d) @ (d, m) -> (n, m)
    if not bool(torch.isfinite(D).all()):
        raise ValueError(f"X (or Z, M) is too large: the squared distances overflowed {D.dtype}; rescale the inputs")
    D = D.clamp_min(0.0)
    if same:
        D = 0.5 * (D + D.T)
        D.fill_diagonal_(0.0)
    return D


def laplace_kernel(X, Z=None, *, bandwidth: float = 2.0, M=None) -> torch.Tensor:
    """k(x, z) = exp(-||x - z||_M / L); X (n, d), Z (m, d) -> (n, m).

    Eq. ``drfm-laplace`` of chapter ``10_deep_rfm``.
    """
    L = check_positive(bandwidth, "bandwidth")
    return torch.exp(-mahalanobis_sq_distances(X, Z, M=M).sqrt() / L)


def gaussian_kernel(X, Z=None, *, bandwidth: float = 1.0, M=None) -> torch.Tensor:
    """k(x, z) = exp(-||x - z||_M^2 / (2 L^2)); X (n, d), Z (m, d) -> (n, m).

    Eq. ``drfm-laplace`` of chapter ``10_deep_rfm``.
    """
    L = check_positive(bandwidth, "bandwidth")
    return torch.exp(-mahalanobis_sq_distances(X, Z, M=M) / (2.0 * L**2))


def mahalanobis_kernel(X, Z=None, *, kernel: str = "laplace", bandwidth: float = 2.0, M=None) -> torch.Tensor:
    """The Laplace or Gaussian kernel by name; X (n, d), Z (m, d) -> (n, m).

    Eq. ``drfm-laplace`` of chapter ``10_deep_rfm``.
    """
    check_choice(kernel, "kernel", KERNELS)
    fn = laplace_kernel if kernel == "laplace" else gaussian_kernel
    return fn(X, Z, bandwidth=bandwidth, M=M)


# --------------------------------------------------------------------------------------------------
# kernel ridge regression and its AGOP


@dataclass(frozen=True)
class KRRModel:
    """A fitted kernel ridge regressor f(x) = sum_j alpha_j k(x, x_j); ``residual`` = relative solve residual.

    Eq. ``drfm-krr`` of chapter ``10_deep_rfm``.
    """

    centres: torch.Tensor  # (n, d)
    alpha: torch.Tensor  # (n, C)
    kernel: str
    bandwidth: float
    ridge: float
    M: torch.Tensor | None
    residual: float

    def predict(self, Z) -> torch.Tensor:
        """f(Z) (m, C) = k(Z, centres) (m, n) @ alpha (n, C); differentiable, and traceable by torch.func."""
        if not isinstance(Z, torch.Tensor) or Z.ndim != 2 or Z.shape[1] != self.centres.shape[1]:
            raise ValueError(f"Z must be a tensor of shape (m, {self.centres.shape[1]})")
        X, M = self.centres, self.M
        ZM = Z if M is None else Z @ M  # (m, d)
        XM = X if M is None else X @ M  # (n, d)
        # (m, n) squared Mahalanobis distances, no argument checks so that torch.func can trace it
        q = ((ZM * Z).sum(1)[:, None] + (XM * X).sum(1)[None, :] - 2.0 * (ZM @ X.T)).clamp_min(0.0)
        L = self.bandwidth
        K = torch.exp(-q.sqrt() / L) if self.kernel == "laplace" else torch.exp(-q / (2.0 * L**2))
        return K @ self.alpha  # (m, n) @ (n, C)


def _targets(Y, n: int) -> tuple[torch.Tensor, bool]:
    Y = as_float_tensor(Y, "Y")
    vector = Y.ndim == 1
    Y = check_matrix(Y[:, None] if vector else Y, "Y")
    if Y.shape[0] != n:
        raise ValueError(f"Y has {Y.shape[0]} rows but X has {n} samples")
    return Y, vector


def krr_fit(X, Y, *, kernel: str = "laplace", bandwidth: float = 2.0, ridge: float = 1e-3, M=None) -> KRRModel:
    """alpha = (K + ridge I)^{-1} Y with K = k(X, X); X (n, d), Y (n,) or (n, C) -> KRRModel (alpha (n, C)).

    Solved by Cholesky (a general solve if that fails); raises if the solution is not finite.
    Eq. ``drfm-krr`` of chapter ``10_deep_rfm``.
    """
    X = check_matrix(X, "X")
    check_choice(kernel, "kernel", KERNELS)
    ridge = check_nonnegative(ridge, "ridge")
    Y, _ = _targets(Y, X.shape[0])
    Y = Y.to(dtype=X.dtype, device=X.device)
    K = mahalanobis_kernel(X, kernel=kernel, bandwidth=bandwidth, M=M)  # (n, n)
    A = K + ridge * torch.eye(K.shape[0], dtype=K.dtype, device=K.device)
    chol, info = torch.linalg.cholesky_ex(A)
    if int(info) == 0:
        alpha = torch.cholesky_solve(Y, chol)
    else:
        alpha, info = torch.linalg.solve_ex(A, Y)
        if int(info) != 0:
            raise ValueError(f"K + ridge I is singular (ridge = {ridge:g}; duplicated samples make K singular); "
                             "increase ridge")
    if not bool(torch.isfinite(alpha).all()):
        raise ValueError("the kernel ridge solve produced non-finite coefficients; increase ridge")
    residual = float(torch.linalg.norm(A @ alpha - Y) / torch.linalg.norm(Y).clamp_min(1e-300))
    M = None if M is None else _check_M(M, X.shape[1], X)
    return KRRModel(X, alpha, kernel, float(bandwidth), ridge, M, residual)


def kernel_agop(model: KRRModel, points=None) -> torch.Tensor:
    r"""AGOP (1/m) sum_i sum_c grad f_c(p_i) grad f_c(p_i)^T of a KRR predictor, in closed form -> (d, d).

    grad f_c(p) = -M sum_j w(p, x_j) alpha_jc (p - x_j), w = k/(L ||p - x_j||_M) (Laplace) or k/L^2
    (Gaussian); M = I when the model has none. ``points`` (m, d): where to average; None = the training
    points, where the Laplace self term j = i is removed by its index, whatever its computed distance.
    A pair at exactly zero distance (a duplicated sample) contributes 0, a subgradient of the cusp.
    Eqs. ``drfm-grad`` and ``drfm-agop`` of chapter ``10_deep_rfm``.
    """
    if not isinstance(model, KRRModel):
        raise TypeError(f"model must be a KRRModel (from krr_fit), got {type(model).__name__}")
    X = model.centres
    n, d = X.shape
    P = X if points is None else check_matrix(points, "points", columns=d).to(X.dtype)
    if P.device != X.device:
        raise ValueError(f"points are on {P.device} but the model is on {X.device}")
    D2 = mahalanobis_sq_distances(X, M=model.M) if points is None else mahalanobis_sq_distances(P, X, M=model.M)  # (m, n)
    L = model.bandwidth
    if model.kernel == "laplace":
        dist = D2.sqrt()
        K = torch.exp(-dist / L)
        keep = dist > 0  # exact duplicates of a centre: the cusp, subgradient 0
        if points is None:
            keep &= ~torch.eye(n, dtype=torch.bool, device=X.device)  # the self terms, by index
        W = torch.where(keep, K / (L * torch.where(keep, dist, torch.ones_like(dist))), torch.zeros_like(K))
    else:
        W = torch.exp(-D2 / (2.0 * L**2)) / L**2  # (m, n)
    alpha = model.alpha  # (n, C)
    C = alpha.shape[1]
    # u_ic = sum_j W_ij alpha_jc (p_i - x_j) = (W alpha)_ic p_i - sum_j W_ij alpha_jc x_j
    Walpha = W @ alpha  # (m, n) @ (n, C) -> (m, C)
    mixed = (W @ (alpha[:, :, None] * X[:, None, :]).reshape(n, C * d)).reshape(-1, C, d)  # (m, C, d)
    U = Walpha[:, :, None] * P[:, None, :] - mixed  # (m, C, d)
    G = U.reshape(-1, d)  # (m C, d): row (i, c) is u_ic^T, and grad f_c(p_i) = -M u_ic
    if model.M is not None:
        G = G @ model.M  # (m C, d) @ (d, d): rows (M u_ic)^T, M symmetric; the sign drops out of G^T G
    agop = G.T @ G / P.shape[0]  # (d, m C) @ (m C, d) -> (d, d)
    agop = 0.5 * (agop + agop.T)
    if not bool(torch.isfinite(agop).all()):
        raise ValueError("the AGOP is not finite")
    return agop


# --------------------------------------------------------------------------------------------------
# NC2 and random features


def random_features(X, W, b=None, *, kind: str = "relu") -> torch.Tensor:
    """relu(X W^T) or sqrt(2/D) cos(X W^T + b); X (n, d), W (D, d), b (D,) -> (n, D).

    Eq. ``drfm-layer`` of chapter ``10_deep_rfm``.
    """
    check_choice(kind, "kind", FEATURE_MAPS)
    X = check_matrix(X, "X")
    W = check_matrix(W, "W", columns=X.shape[1]).to(X.dtype)
    if kind == "cosine":
        if b is None:
            raise ValueError("b is required for kind='cosine' (phases of shape (D,))")
        b = as_float_tensor(b, "b").to(X.dtype)
        if b.shape != (W.shape[0],):
            raise ValueError(f"b must have shape ({W.shape[0]},), got {tuple(b.shape)}")
        check_finite(b, "b")
    Z = X @ W.T  # (n, d) @ (d, D) -> (n, D)
    if kind == "relu":
        return torch.relu(Z)
    return math.sqrt(2.0 / W.shape[0]) * torch.cos(Z + b)


def _draw_features(d: int, width: int, kind: str, feature_bandwidth: float, generator, like: torch.Tensor):
    gdev = generator.device if generator is not None else torch.device("cpu")
    if kind == "relu":
        bound = 1.0 / math.sqrt(d)
        W = (2.0 * torch.rand(width, d, generator=generator, dtype=torch.float64, device=gdev) - 1.0) * bound
        b = None
    else:  # random Fourier features of exp(-||x - z||^2 / (2 s^2))
        W = torch.randn(width, d, generator=generator, dtype=torch.float64, device=gdev) / feature_bandwidth
        b = 2.0 * math.pi * torch.rand(width, generator=generator, dtype=torch.float64, device=gdev)
        b = b.to(dtype=like.dtype, device=like.device)
    return W.to(dtype=like.dtype, device=like.device), b


# --------------------------------------------------------------------------------------------------
# Deep RFM


@dataclass(frozen=True)
class DeepRFMResult:
    """Per-layer statistics (``frame``), AGOP eigenvalues per layer (descending) and kept representations.

    ``frame`` columns: layer, nc1_input / nc1_projected / nc1_features (NC1 of X_l, X_l M_l^{1/2} and
    the random-feature output), nc2_* likewise, train_acc, test_acc (NaN without test data),
    agop_rank (eigenvalues above 1e-3 of the largest), krr_residual.
    ``kept[l]`` = {"input", "projected", "features"} tensors for each layer l in ``keep``.
    Eq. ``drfm-layer`` of chapter ``10_deep_rfm``.
    """

    frame: pd.DataFrame
    spectra: tuple
    kept: dict = field(default_factory=dict)


def _normalise_rows(X: torch.Tensor) -> torch.Tensor:
    return X / X.norm(dim=1, keepdim=True).clamp_min(torch.finfo(X.dtype).tiny)


def _accuracy(pred: torch.Tensor, index: torch.Tensor) -> float:
    return float((pred.argmax(1) == index).to(torch.float64).mean())


def deep_rfm(
    X,
    labels,
    *,
    X_test=None,
    labels_test=None,
    depth: int = 10,
    width: int = 512,
    features: str = "relu",
    kernel: str = "laplace",
    bandwidth: float = 2.0,
    ridge: float = 1e-3,
    use_agop: bool = True,
    feature_bandwidth: float = 1.0,
    keep=(),
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> DeepRFMResult:
    r"""Deep Recursive Feature Machine: per layer l = 0..depth-1,

        X_l <- rows of X_l / ||row||;  f_l = KRR(X_l, Y);  M_l = AGOP(f_l) / max|AGOP(f_l)|;
        X_l M_l^{1/2};  X_{l+1} = relu(X_l M_l^{1/2} W_l^T)  (or cosine random Fourier features),

    with Y the +-1 one-hot targets, W_l (width, d_l) uniform(+-1/sqrt(d_l)) for ReLU or N(0, s^-2) with
    b_l ~ U[0, 2 pi] for cosine features (s = ``feature_bandwidth``). ``use_agop=False`` sets M_l = I
    (random features only). X (N, d), labels (N,); test data are mapped through the same layers.
    Returns a DeepRFMResult; no files, no plots. Chapter ``10_deep_rfm``.
    """
    X = check_matrix(X, "X")
    index, sizes = check_labels(labels, X.shape[0], device=X.device)
    C = sizes.numel()
    depth = check_int(depth, "depth")
    width = check_int(width, "width")
    check_generator(generator)
    check_choice(features, "features", FEATURE_MAPS)
    check_choice(kernel, "kernel", KERNELS)
    check_positive(bandwidth, "bandwidth")
    check_nonnegative(ridge, "ridge")
    check_positive(feature_bandwidth, "feature_bandwidth")
    keep = set(int(k) for k in keep)
    has_test = X_test is not None
    if has_test:
        X_test = check_matrix(X_test, "X_test", columns=X.shape[1]).to(dtype=X.dtype, device=X.device)
        test_index = check_test_labels(labels_test, X_test.shape[0], labels, device=X.device)
    elif labels_test is not None:
        raise ValueError("labels_test given without X_test")
    Y = class_targets(index, C, encoding="pm1_onehot", dtype=X.dtype)  # (N, C) +-1 one-hot

    rows, spectra, kept = [], [], {}
    layers = range(depth)
    if progress:
        from tqdm.auto import tqdm

        layers = tqdm(layers, desc="Deep RFM")
    Xl, Tl = X, X_test
    for layer in layers:
        Xl = _normalise_rows(Xl)
        model = krr_fit(Xl, Y, kernel=kernel, bandwidth=bandwidth, ridge=ridge)
        train_acc = _accuracy(model.predict(Xl), index)
        test_acc = float("nan")
        if has_test:
            Tl = _normalise_rows(Tl)
            test_acc = _accuracy(model.predict(Tl), test_index)
        d = Xl.shape[1]
        if use_agop:
            G = kernel_agop(model)  # (d, d)
            M = G / G.abs().max()
            root, lam = psd_sqrt_eig(M)
        else:
            root = torch.eye(d, dtype=X.dtype, device=X.device)
            lam = torch.ones(d, dtype=X.dtype, device=X.device)
        projected = Xl @ root  # (N, d) @ (d, d)
        Wf, bf = _draw_features(d, width, features, feature_bandwidth, generator, Xl)
        out = random_features(projected, Wf, bf, kind=features)  # (N, width)
        row = {"layer": layer, "train_acc": train_acc, "test_acc": test_acc,
               "agop_rank": int((lam > 1e-3 * lam[0]).sum()), "krr_residual": model.residual}
        for name, H in (("input", Xl), ("projected", projected), ("features", out)):
            row[f"nc1_{name}"] = nc1_from_features(H, index).nc1
            row[f"nc2_{name}"] = nc2_cosine_mse(H, index)
        rows.append(row)
        spectra.append(lam.cpu())
        if layer in keep:
            kept[layer] = {"input": Xl, "projected": projected, "features": out}
        Xl = out
        if has_test:
            Tl = random_features(Tl @ root, Wf, bf, kind=features)
    return DeepRFMResult(pd.DataFrame(rows), tuple(spectra), kept)
