r"""NC1 of features and of a kernel, for any class sizes and any sample order.

With class index sets I_c of size n_c, N = sum n_c, class means mu_c and global mean mu_G:

    Sigma_W = (1/N) sum_c sum_{i in I_c} (h_i - mu_c)(h_i - mu_c)^T
    Sigma_B = sum_c w_c (mu_c - mu_G)(mu_c - mu_G)^T,   w_c = 1/C ("uniform") or n_c/N ("class_size")
    NC1 = Tr Sigma_W / Tr Sigma_B,   NC1_pinv = (1/C) Tr(Sigma_W Sigma_B^+).

Both traces are linear in the Gram matrix K = H H^T; the block-sum forms are derived in book chapter
``02_nc1_from_kernel``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .validation import check_choice, check_labels, check_matrix

__all__ = ["NC1Result", "BETWEEN_WEIGHTS", "nc1_from_features", "nc1_from_kernel", "nc1_from_block_sums", "class_block_sums"]

BETWEEN_WEIGHTS = ("uniform", "class_size")


@dataclass(frozen=True)
class NC1Result:
    """Traces of the within- and between-class covariances and their ratio (``nc1_pinv``: features only)."""

    trace_within: float
    trace_between: float
    nc1: float
    between_weights: str
    class_sizes: tuple[int, ...]
    nc1_pinv: float | None = None


def _finish(tw: torch.Tensor, tb: torch.Tensor, weights, sizes, pinv=None) -> NC1Result:
    tw, tb = float(tw), float(tb)
    if not tb > 0:
        raise ValueError(
            f"the between-class trace is {tb:.3g} (class means coincide); NC1 is undefined for this input"
        )
    return NC1Result(tw, tb, tw / tb, weights, tuple(int(n) for n in sizes), pinv)


def class_block_sums(K: torch.Tensor, index: torch.Tensor, num_classes: int):
    """S_c = sum_{i,j in I_c} K_ij, R_c = sum_{i in I_c} sum_j K_ij and S = sum_ij K_ij.

    ``index`` (N,) holds class indices 0..C-1; one-hot products cost O(N^2 C).
    """
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
    """
    K = check_matrix(K, "K", square=True)
    check_choice(between_weights, "between_weights", BETWEEN_WEIGHTS)
    index, sizes = check_labels(labels, K.shape[0], device=K.device)
    S_c, R_c, S = class_block_sums(K, index, sizes.numel())
    return nc1_from_block_sums(K.diagonal().sum(), S_c, R_c, S, sizes, between_weights=between_weights)


def nc1_from_block_sums(trace, S_c, R_c, S, class_sizes, *, between_weights: str = "uniform") -> NC1Result:
    """NC1 from tr(K), the block sums S_c, R_c (C,) and S of :func:`class_block_sums`, and the class sizes.

    Lets a caller stream kernel rows into the sums without forming K (``grids.two_layer_family_nc1``).
    """
    check_choice(between_weights, "between_weights", BETWEEN_WEIGHTS)
    sizes = torch.as_tensor(class_sizes)
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
    r"""NC1 of explicit features H (N, p), from class means; also NC1_pinv = (1/C) Tr(Sigma_W Sigma_B^+)."""
    H = check_matrix(H, "H")
    check_choice(between_weights, "between_weights", BETWEEN_WEIGHTS)
    N = H.shape[0]
    index, sizes = check_labels(labels, N, device=H.device)
    C = sizes.numel()
    n = sizes.to(H.dtype)
    Y = torch.nn.functional.one_hot(index, C).to(H.dtype)  # (N, C)
    means = (Y.T @ H) / n[:, None]  # (C, p)
    mu_G = H.mean(0)  # (p,)
    centred_W = H - means[index]  # (N, p)
    w = torch.full_like(n, 1.0 / C) if between_weights == "uniform" else n / N
    centred_B = means - mu_G  # (C, p)
    tw = (centred_W * centred_W).sum() / N
    tb = (w[:, None] * centred_B * centred_B).sum()
    # Sigma_B = M^T M with M = sqrt(w) (mu_c - mu_G) (C, p), so Sigma_B^+ = M^+ M^+^T and
    # Tr(Sigma_W Sigma_B^+) = ||centred_W M^+||_F^2 / N: a C-dimensional computation, never p x p.
    M_pinv = torch.linalg.pinv(w.sqrt()[:, None] * centred_B)  # (p, C)
    pinv = float(((centred_W @ M_pinv) ** 2).sum() / N) / C  # (N, p) @ (p, C)
    return _finish(tw, tb, between_weights, sizes, pinv)
