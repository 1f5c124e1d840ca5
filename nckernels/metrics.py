r"""NC1 of features and of a kernel, for any class sizes and any sample order.

With class index sets I_c of size n_c, N = sum n_c, class means mu_c and global mean mu_G:

    Sigma_W = (1/N) sum_c sum_{i in I_c} (h_i - mu_c)(h_i - mu_c)^T
    Sigma_B = sum_c w_c (mu_c - mu_G)(mu_c - mu_G)^T,   w_c = 1/C ("uniform") or n_c/N ("class_size")
    NC1 = Tr Sigma_W / Tr Sigma_B,   NC1_pinv = (1/C) Tr(Sigma_W Sigma_B^+).

Both traces are linear in the Gram matrix K = H H^T; the block-sum forms are derived in book chapter
``02_nc1_from_kernel``.

Layer 2, metrics: every neural-collapse statistic of features or of a Gram matrix lives here (NC1 of
features, batched or not, of a kernel and of its block sums; the two NC2 distances; NC3; block means and
label alignment of a kernel; the invariant of the block NTK flow; the NFA correlation).
May import: :mod:`nckernels.validation`, :mod:`nckernels.errors`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .validation import (check_choice, check_finite, check_int, check_labels, check_matrix, check_nonnegative,
                         check_positive, check_psd)

__all__ = [
    "NC1Result", "UndefinedNC1Error", "BETWEEN_WEIGHTS", "nc1_from_features", "batched_feature_nc1", "nc1_from_kernel",
    "nc1_from_block_sums", "class_block_sums", "class_means", "nc2_gram_distance", "nc2_cosine_mse",
    "nc2_etf_distance", "nc2_from_features", "nc3_self_duality", "CollapseMetrics", "collapse_metrics",
    "BlockMeans", "block_means", "block_contrast", "kernel_alignment", "invariant", "InvariantStats", "invariant_stats",
    "psd_sqrt", "psd_sqrt_eig", "matrix_correlation", "nfa_correlation",
]

BETWEEN_WEIGHTS = ("uniform", "class_size")


@dataclass(frozen=True)
class NC1Result:
    """Traces of the within- and between-class covariances and their ratio (``nc1_pinv``: features only).

    Eq. ``nc1k-def`` of chapter ``02_nc1_from_kernel``.
    """

    trace_within: float
    trace_between: float
    nc1: float
    between_weights: str
    class_sizes: tuple[int, ...]
    nc1_pinv: float | None = None


class UndefinedNC1Error(ValueError):
    """NC1 is undefined: the between-class trace is 0 (every class has the same mean), e.g. a dead network layer.

    A ValueError, so existing handlers keep working; callers that record such a case (a missing value with its
    reason) catch this type instead of matching the message. Chapter ``02_nc1_from_kernel``.
    """


def _finish(tw: torch.Tensor, tb: torch.Tensor, weights, sizes, pinv=None) -> NC1Result:
    tw, tb = float(tw), float(tb)
    if not (math.isfinite(tw) and math.isfinite(tb)):
        raise ValueError(f"the within/between traces are not finite ({tw:.3g}, {tb:.3g}): the features or kernel "
                         "entries are too large for their dtype; rescale them")
    if not tb > 0:
        raise UndefinedNC1Error(
            f"the between-class trace is {tb:.3g} (class means coincide); NC1 is undefined for this input"
        )
    return NC1Result(tw, tb, tw / tb, weights, tuple(int(n) for n in sizes), pinv)


def _check_index(index, N: int, C: int, name: str, *, batched: bool = False, c_name: str = "C") -> torch.Tensor:
    """Class indices 0..C-1: an integer tensor of shape (N,) (or (R, N) when ``batched``)."""
    if not isinstance(index, torch.Tensor) or index.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8,
                                                                    torch.uint8):
        raise TypeError(f"{name} must be an integer tensor of class indices, got "
                        f"{getattr(index, 'dtype', type(index).__name__)}")
    if index.ndim != (2 if batched else 1) or index.shape[-1] != N:
        raise ValueError(f"{name} must have shape ({'R, ' if batched else ''}{N},), got {tuple(index.shape)}")
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= C):
        raise ValueError(f"{name} must hold class indices in 0..{C - 1} ({c_name} = {C}), got values in "
                         f"{int(index.min())}..{int(index.max())}")
    return index.long()


def class_block_sums(K: torch.Tensor, index: torch.Tensor, num_classes: int):
    """S_c = sum_{i,j in I_c} K_ij, R_c = sum_{i in I_c} sum_j K_ij and S = sum_ij K_ij.

    ``index`` (N,) holds class indices 0..C-1; one-hot products cost O(N^2 C).
    Eq. ``nc1k-within`` of chapter ``02_nc1_from_kernel``.
    """
    K = check_matrix(K, "K", symmetric=True)
    num_classes = check_int(num_classes, "num_classes")
    index = _check_index(index, K.shape[0], num_classes, "index", c_name="num_classes")
    return _block_sums(K, index, num_classes)


def _block_sums(K: torch.Tensor, index: torch.Tensor, num_classes: int):
    """:func:`class_block_sums` of arguments already checked (K validated once per NC1, not twice)."""
    Y = torch.nn.functional.one_hot(index, num_classes).to(K.dtype)  # (N, C)
    KY = K @ Y  # (N, N) @ (N, C) -> (N, C)
    S_c = (Y * KY).sum(0)  # (C,)
    R_c = Y.T @ K.sum(1)  # (C,)
    return S_c, R_c, K.sum()


def nc1_from_kernel(K, labels, *, between_weights: str = "uniform") -> NC1Result:
    r"""NC1 of the features whose Gram matrix is K, from kernel block sums.

        Tr Sigma_W             = tr(K)/N - sum_c S_c / (N n_c)
        Tr Sigma_B (n_c/N)     = sum_c S_c / (N n_c) - S / N^2
        Tr Sigma_B (1/C)       = (1/C) sum_c S_c / n_c^2 - (2/C) sum_c R_c / (n_c N) + S / N^2

    Args:
        K: (N, N) symmetric kernel matrix.
        labels: (N,) integer class labels in any order.
        between_weights: "uniform" (w_c = 1/C) or "class_size" (w_c = n_c/N).
    Eqs. ``nc1k-within``, ``nc1k-between-size`` and ``nc1k-between-uniform`` of chapter ``02_nc1_from_kernel``.
    """
    K = check_matrix(K, "K", symmetric=True)
    check_choice(between_weights, "between_weights", BETWEEN_WEIGHTS)
    index, sizes = check_labels(labels, K.shape[0], device=K.device)
    S_c, R_c, S = _block_sums(K, index, sizes.numel())
    return nc1_from_block_sums(K.diagonal().sum(), S_c, R_c, S, sizes, between_weights=between_weights)


def _check_sums(x, name: str, C: int) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or not torch.is_floating_point(x):
        raise TypeError(f"{name} must be a floating tensor of per-class sums, got {getattr(x, 'dtype', type(x).__name__)}")
    if x.shape != (C,):
        raise ValueError(f"{name} must have shape ({C},) (one sum per class), got {tuple(x.shape)}")
    return x


def nc1_from_block_sums(trace, S_c, R_c, S, class_sizes, *, between_weights: str = "uniform") -> NC1Result:
    """NC1 from tr(K), the block sums S_c, R_c (C,) and S of :func:`class_block_sums`, and the class sizes.

    Lets a caller stream kernel rows into the sums without forming K (``grids.two_layer_family_nc1``).
    Eq. ``nc1k-between-uniform`` of chapter ``02_nc1_from_kernel``.
    """
    check_choice(between_weights, "between_weights", BETWEEN_WEIGHTS)
    if isinstance(class_sizes, (str, bytes)) or not hasattr(class_sizes, "__len__"):
        raise TypeError(f"class_sizes must be a sequence of class sizes, got {type(class_sizes).__name__}")
    sizes = torch.as_tensor([check_int(int(v) if isinstance(v, torch.Tensor) and not v.is_floating_point() else v,
                                       "class_sizes") for v in class_sizes])
    if sizes.numel() < 2:
        raise ValueError(f"class_sizes must list at least two classes, got {sizes.numel()}")
    S_c = check_finite(_check_sums(S_c, "S_c", sizes.numel()), "S_c")
    R_c = check_finite(_check_sums(R_c, "R_c", sizes.numel()), "R_c")
    n = sizes.to(S_c.dtype).to(S_c.device)
    N, C = float(n.sum()), n.numel()
    within_part = (S_c / n).sum() / N
    tw = trace / N - within_part
    if between_weights == "class_size":
        tb = within_part - S / N**2
    else:
        tb = (S_c / n**2).sum() / C - 2 * (R_c / n).sum() / (C * N) + S / N**2
    for name, value in (("trace", tw), ("block sums", tb)):
        if not torch.isfinite(torch.as_tensor(value)):
            raise ValueError(f"{name}: non-finite kernel sums; NC1 is undefined")
    return _finish(tw, tb, between_weights, sizes)


def nc1_from_features(H, labels, *, between_weights: str = "uniform") -> NC1Result:
    r"""NC1 of explicit features H (N, p), from class means; also NC1_pinv = (1/C) Tr(Sigma_W Sigma_B^+).

    Eq. ``nc1k-def`` of chapter ``02_nc1_from_kernel``; the one feature-NC1 formula is
    :func:`batched_feature_nc1`, applied here to a batch of one.
    """
    H = check_matrix(H, "H")
    check_choice(between_weights, "between_weights", BETWEEN_WEIGHTS)
    index, sizes = check_labels(labels, H.shape[0], device=H.device)
    r = batched_feature_nc1(H[None], index[None], sizes.numel(), between_weights=between_weights)
    return _finish(r["trace_within"][0], r["trace_between"][0], between_weights, sizes, float(r["nc1_pinv"][0]))


def batched_feature_nc1(H: torch.Tensor, index: torch.Tensor, C: int, *, between_weights: str = "uniform"):
    r"""NC1 = Tr Sigma_W / Tr Sigma_B and NC1_pinv = (1/C) Tr(Sigma_W Sigma_B^+) of R feature sets at once.

    H (R, N, p), index (R, N) class indices 0..C-1 (every class present). Returns a dict of (R,) tensors
    ``trace_within``, ``trace_between``, ``nc1``, ``nc1_pinv`` (eq. ``nc1k-def``, chapter ``02_nc1_from_kernel``).
    Sigma_B = M^T M with M = sqrt(w) (mu_c - mu_G) (C, p), so Sigma_B^+ = M^+ M^+^T and
    Tr(Sigma_W Sigma_B^+) = ||centred_W M^+||_F^2 / N: a C-dimensional computation, never p x p.
    """
    check_choice(between_weights, "between_weights", BETWEEN_WEIGHTS)
    if not isinstance(H, torch.Tensor) or H.ndim != 3:
        raise ValueError(f"H must be a (R, N, p) tensor, got {getattr(H, 'shape', type(H).__name__)}")
    if not torch.is_floating_point(H) or H.dtype in (torch.float16, torch.bfloat16):
        raise TypeError(f"H must be a float32 or float64 tensor, got {H.dtype}")
    check_finite(H, "H")
    R, N, _ = H.shape
    C = check_int(C, "C", minimum=2)
    index = _check_index(index, N, C, "index", batched=True)
    if index.shape[0] != R:
        raise ValueError(f"index must have shape ({R}, {N}), got {tuple(index.shape)}")
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


# --------------------------------------------------------------------------------------------------
# NC2 and NC3 (book chapters ``08_ntk_collapse_dynamics`` and ``10_deep_rfm``)


def class_means(H, labels) -> torch.Tensor:
    """mu_c = (1/n_c) sum_{i in I_c} h_i: H (N, p), labels (N,) -> (C, p) in sorted-label order.

    Chapter ``02_nc1_from_kernel``.
    """
    H = check_matrix(H, "H")
    index, sizes = check_labels(labels, H.shape[0], device=H.device)
    Y = torch.nn.functional.one_hot(index, sizes.numel()).to(H.dtype)  # (N, C)
    return (Y.T @ H) / sizes.to(H.dtype)[:, None]  # (C, p)


def nc2_gram_distance(H, labels) -> float:
    """NC2 as a Gram distance: || G / ||G||_F - (I - 11^T/C) / sqrt(C - 1) ||_F, G = M M^T the Gram matrix of the
    centred class means M (C, p) (class means minus their average). 0 for a simplex ETF; at most 2.

    Chapter ``08_ntk_collapse_dynamics`` (the NC2 of the block flow and of probed training); formerly ``nc2_etf_distance``.
    """
    H = check_matrix(H, "H")
    M = class_means(H, labels)
    M = M - M.mean(0)  # centre at the mean of the class means (uniform weights)
    C = M.shape[0]
    G = M @ M.T  # (C, C)
    norm = torch.linalg.matrix_norm(G)
    if not torch.isfinite(norm):
        raise ValueError("H is too large: the Gram matrix of its class means overflowed; rescale H")
    if not norm > 0:
        raise ValueError("H: the class means coincide; NC2 is undefined")
    etf = torch.eye(C, dtype=H.dtype, device=H.device) - 1.0 / C
    return float(torch.linalg.matrix_norm(G / norm - etf / math.sqrt(C - 1)))


def nc2_cosine_mse(H, labels) -> float:
    r"""NC2 as a mean squared cosine error: (1/C^2) sum_{c,c'} (cos(mu_c - mu_G, mu_c' - mu_G) - E_cc')^2, with
    E the simplex-ETF Gram (E_cc = 1, E_cc' = -1/(C-1)) and mu_G the mean of the class means.

    H (N, p), labels (N,) -> float (0 for an exact simplex ETF). Chapter ``10_deep_rfm``, eq. ``drfm-nc2``;
    formerly ``nc2_from_features``.
    """
    H = check_matrix(H, "H")
    centred = class_means(H, labels)
    centred = centred - centred.mean(0)  # (C, p): global mean of the class means
    C = centred.shape[0]
    norms = centred.norm(dim=1)
    if not bool((norms > 0).all()):
        raise ValueError("H: a class mean equals the global mean; NC2 is undefined for this input")
    unit = centred / norms[:, None]
    G = unit @ unit.T  # (C, C)
    E = torch.full((C, C), -1.0 / (C - 1), dtype=H.dtype, device=H.device)
    E.fill_diagonal_(1.0)
    return float(((G - E) ** 2).mean())


#: Old names of the two NC2 statistics (they measure different things; see their docstrings).
nc2_etf_distance = nc2_gram_distance
nc2_from_features = nc2_cosine_mse


def nc3_self_duality(W, H, labels) -> float:
    """NC3 = || W / ||W||_F - M / ||M||_F ||_F with M (C, p) the centred class means; W (C, p) with rows
    in the sorted-label order. 0 when the classifier is proportional to the class means; at most 2.

    Chapter ``08_ntk_collapse_dynamics``.
    """
    W = check_matrix(W, "W")
    H = check_matrix(H, "H", columns=W.shape[1])
    M = class_means(H, labels)
    if M.shape[0] != W.shape[0]:
        raise ValueError(f"W has {W.shape[0]} rows but labels has {M.shape[0]} classes")
    M = M - M.mean(0)
    nw, nm = torch.linalg.matrix_norm(W), torch.linalg.matrix_norm(M)
    if not (nw > 0 and nm > 0):
        raise ValueError("W or the centred class means are zero; NC3 is undefined")
    return float(torch.linalg.matrix_norm(W / nw - M / nm))


@dataclass(frozen=True)
class CollapseMetrics:
    """NC1 (trace ratio and Papyan's pinv form), NC2 (Gram distance to the ETF), NC3 (self-duality distance).

    Chapter ``08_ntk_collapse_dynamics``.
    """

    nc1: float
    nc1_pinv: float
    nc2: float
    nc3: float


def collapse_metrics(W, H, labels) -> CollapseMetrics:
    """NC1-NC3 of features H (N, p) and read-out W (C, p): :func:`nc1_from_features`, :func:`nc2_gram_distance`,
    :func:`nc3_self_duality` (chapter ``08_ntk_collapse_dynamics``)."""
    r = nc1_from_features(H, labels)
    return CollapseMetrics(r.nc1, r.nc1_pinv, nc2_gram_distance(H, labels), nc3_self_duality(W, H, labels))


# --------------------------------------------------------------------------------------------------
# Statistics of a kernel matrix (book chapters ``08_ntk_collapse_dynamics`` and ``09_empirical_ntk``)


@dataclass(frozen=True)
class BlockMeans:
    """Means of a kernel's entries: same sample (diagonal), same class (off-diagonal), other class.

    Eq. ``ntkc-block`` of chapter ``08_ntk_collapse_dynamics``.
    """

    diagonal: float
    same_class: float
    other_class: float


def _kernel_and_labels(K, labels):
    K = check_matrix(K, "K", symmetric=True)
    index, sizes = check_labels(labels, K.shape[0], device=K.device)
    return K, index, sizes


def block_means(K, labels) -> BlockMeans:
    """(kappa_d, kappa_c, kappa_n): mean of K_ii, of K_ij over i != j in one class, over different classes.

    K (N, N) in any sample order; every class needs at least two samples. Chapter ``09_empirical_ntk``.
    """
    K, index, sizes = _kernel_and_labels(K, labels)
    if int(sizes.min()) < 2:
        raise ValueError("labels: every class needs at least two samples for the same-class mean")
    same = index[:, None] == index[None, :]  # (N, N)
    eye = torch.eye(K.shape[0], dtype=torch.bool, device=K.device)
    return BlockMeans(float(K.diagonal().mean()), float(K[same & ~eye].mean()), float(K[~same].mean()))


def block_contrast(means, prefix: str = "kappa") -> float:
    """(kappa_c - kappa_n) / kappa_d: the block contrast of a kernel, from a :class:`BlockMeans` or from a mapping
    (a probe row) with entries ``prefix_c``, ``prefix_n``, ``prefix_d``. Chapter ``09_empirical_ntk``."""
    if isinstance(means, BlockMeans):
        d, c, n = means.diagonal, means.same_class, means.other_class
    else:
        try:
            d, c, n = (float(means[f"{prefix}_{k}"]) for k in ("d", "c", "n"))
        except (KeyError, IndexError, TypeError) as exc:
            raise ValueError(f"means must be a BlockMeans or have entries {prefix}_d, {prefix}_c, {prefix}_n") from exc
    return (c - n) / d


def kernel_alignment(K, labels) -> float:
    """<K, Y Y^T>_F / (||K||_F ||Y Y^T||_F) with Y (N, C) one-hot: the cosine between K and the label kernel.

    Chapter ``09_empirical_ntk``.
    """
    K, index, sizes = _kernel_and_labels(K, labels)
    same = (index[:, None] == index[None, :]).to(K.dtype)  # Y Y^T
    norm = torch.linalg.matrix_norm(K)
    if not norm > 0:
        raise ValueError("K is zero; its alignment is undefined")
    return float((K * same).sum() / (norm * torch.linalg.matrix_norm(same)))


def _invariant_terms(W, H, K, jitter):
    """(W^T W, H^T K^{-1} H), both (p, p), after checking the shapes."""
    W = check_matrix(W, "W")
    H = check_matrix(H, "H", columns=W.shape[1])
    K = check_matrix(K, "K", symmetric=True)
    if K.shape[0] != H.shape[0]:
        raise ValueError(f"K must have shape ({H.shape[0]}, {H.shape[0]}), got {tuple(K.shape)}")
    jitter = check_nonnegative(jitter, "jitter")
    if jitter:
        K = K + jitter * K.diagonal().mean() * torch.eye(K.shape[0], dtype=K.dtype, device=K.device)
    L, info = torch.linalg.cholesky_ex(0.5 * (K + K.T))
    if int(info) != 0:
        raise ValueError("K must be symmetric positive definite (Cholesky failed); try a small jitter")
    Z = torch.linalg.solve_triangular(L, H, upper=False)  # L^{-1} H (N, p), so H^T K^{-1} H = Z^T Z
    return W.T @ W, Z.T @ Z


def invariant(W, H, K, *, jitter: float = 0.0) -> torch.Tensor:
    """E = W^T W - H^T K^{-1} H (p, p); W (C, p), H (N, p), K (N, N) symmetric positive definite.

    Conserved by the block NTK gradient flow (eq. ``ntkc-invariant``, chapter ``08_ntk_collapse_dynamics``).
    ``jitter`` adds jitter * mean(diag K) to the diagonal before the solve (empirical kernels).
    """
    A, B = _invariant_terms(W, H, K, jitter)
    return A - B


@dataclass(frozen=True)
class InvariantStats:
    """E = W^T W - H^T K^{-1} H: ||E||_F, ||E||_F / (||W^T W||_F + ||H^T K^{-1} H||_F), and the cosine
    between W^T W and H^T K^{-1} H (1 when E = 0).

    Eq. ``ntkc-invariant`` of chapter ``08_ntk_collapse_dynamics``.
    """

    norm: float
    relative_norm: float
    alignment: float


def invariant_stats(W, H, K, *, jitter: float = 0.0) -> InvariantStats:
    """Statistics of the :func:`invariant` for read-out W (C, p), features H (N, p) and feature kernel K (N, N).

    ``jitter`` adds jitter * mean(diag K) to the diagonal of K before the (Cholesky) solve. Chapter ``09_empirical_ntk``.
    """
    A, B = _invariant_terms(W, H, K, jitter)
    na, nb, ne = (float(torch.linalg.matrix_norm(M)) for M in (A, B, A - B))
    if not (na > 0 and nb > 0):
        raise ValueError("W or H is zero; the invariant's alignment is undefined")
    return InvariantStats(ne, ne / (na + nb), float((A * B).sum()) / (na * nb))


# --------------------------------------------------------------------------------------------------
# The Neural Feature Ansatz statistic (book chapters ``10_deep_rfm`` and ``11_agop_trained``)


def psd_sqrt(A, *, tol: float = 1e-8) -> torch.Tensor:
    """A^{1/2} = V diag(sqrt(max(lambda, 0))) V^T of a symmetric PSD A (d, d) -> (d, d).

    ``A`` is symmetrised; an asymmetry above ``tol`` times its largest entry, or a negative eigenvalue
    below -sqrt(tol) times the largest one, raises (rounding-sized negative eigenvalues are clipped).
    Chapter ``10_deep_rfm``.
    """
    return psd_sqrt_eig(A, tol=tol)[0]


def psd_sqrt_eig(A, *, tol: float = 1e-8):
    """(A^{1/2}, eigenvalues of A clipped at 0, descending) from one eigendecomposition; see :func:`psd_sqrt`.

    Chapter ``10_deep_rfm``.
    """
    A = check_matrix(A, "A", square=True)
    tol = check_nonnegative(tol, "tol")
    scale = float(A.abs().max())
    if scale == 0.0:
        return torch.zeros_like(A), A.new_zeros(A.shape[0])
    if float((A - A.T).abs().max()) > tol * scale:
        raise ValueError("A must be symmetric")
    lam, V = torch.linalg.eigh(0.5 * (A + A.T))  # (d,), (d, d)
    if float(lam.min()) < -math.sqrt(tol) * float(lam.abs().max()):
        raise ValueError(f"A must be positive semi-definite; its smallest eigenvalue is {float(lam.min()):.3g}")
    lam = lam.clamp_min(0.0)
    root = (V * lam.sqrt()) @ V.T  # (d, d) diag-scaled columns @ (d, d)
    return 0.5 * (root + root.T), lam.flip(0)


def matrix_correlation(A, B, *, centered: bool = False) -> float:
    """<A, B>_F / (||A||_F ||B||_F) of two same-shape matrices (entries mean-centred first if ``centered``).

    Chapter ``11_agop_trained``.
    """
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
    """NFA statistic: corr(W^T W, AGOP^power); W (k, d), agop (d, d) PSD -> float in [-1, 1]. Chapter ``11_agop_trained``."""
    W = check_matrix(W, "W")
    agop = check_psd(agop, "agop")
    if agop.shape[0] != W.shape[1]:
        raise ValueError(f"agop must be ({W.shape[1]}, {W.shape[1]}) to match W's columns, got {tuple(agop.shape)}")
    power = check_positive(power, "power")
    if power == 0.5:
        P = psd_sqrt(agop)
    else:
        lam, V = torch.linalg.eigh(0.5 * (agop + agop.T))
        P = (V * lam.clamp_min(0.0) ** power) @ V.T
    return matrix_correlation(W.T @ W, P, centered=centered)
