import pytest
import torch

import nckernels as nk
from nckernels import reference


def _imbalanced(seed, sizes=(7, 19, 40), d=5, p=9):
    gen = torch.Generator().manual_seed(seed)
    data = nk.gaussian_classes(sizes, d, means=torch.randn(len(sizes), d, generator=gen), std=0.8,
                               generator=gen, shuffle=True)
    H = torch.tanh(data.X @ torch.randn(d, p, generator=gen, dtype=torch.float64))
    return H, data.labels


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("weights", nk.BETWEEN_WEIGHTS)
def test_kernel_nc1_equals_feature_nc1_linear_kernel(seed, weights):
    H, labels = _imbalanced(seed)
    f = nk.nc1_from_features(H, labels, between_weights=weights)
    k = nk.nc1_from_kernel(H @ H.T, labels, between_weights=weights)
    assert k.trace_within == pytest.approx(f.trace_within, rel=1e-12)
    assert k.trace_between == pytest.approx(f.trace_between, rel=1e-12)
    assert k.nc1 == pytest.approx(f.nc1, rel=1e-12)
    assert f.class_sizes == k.class_sizes == (7, 19, 40)


def test_direct_covariances_match():
    H, labels = _imbalanced(11)
    N, C = H.shape[0], 3
    mu = torch.stack([H[labels == c].mean(0) for c in range(C)])
    muG = H.mean(0)
    SW = sum((H[labels == c] - mu[c]).T @ (H[labels == c] - mu[c]) for c in range(C)) / N
    n = torch.bincount(labels).double()
    for weights, w in [("uniform", torch.full((C,), 1 / C, dtype=torch.float64)), ("class_size", n / N)]:
        SB = sum(w[c] * torch.outer(mu[c] - muG, mu[c] - muG) for c in range(C))
        r = nk.nc1_from_features(H, labels, between_weights=weights)
        assert r.trace_within == pytest.approx(torch.trace(SW).item(), rel=1e-12)
        assert r.trace_between == pytest.approx(torch.trace(SB).item(), rel=1e-12)
        assert r.nc1_pinv == pytest.approx((torch.trace(SW @ torch.linalg.pinv(SB)) / C).item(), rel=1e-8)
    # with n_c/N weights the total covariance splits exactly
    ST = (H - muG).T @ (H - muG) / N
    r = nk.nc1_from_features(H, labels, between_weights="class_size")
    assert r.trace_within + r.trace_between == pytest.approx(torch.trace(ST).item(), rel=1e-12)


def test_permutation_and_label_values_do_not_matter():
    H, labels = _imbalanced(3)
    K = H @ H.T
    ref = nk.nc1_from_kernel(K, labels)
    perm = torch.randperm(H.shape[0], generator=torch.Generator().manual_seed(0))
    assert nk.nc1_from_kernel(K[perm][:, perm], labels[perm]).nc1 == pytest.approx(ref.nc1, rel=1e-12)
    relabelled = torch.tensor([-3, 7, 100])[labels]
    assert nk.nc1_from_kernel(K, relabelled).nc1 == pytest.approx(ref.nc1, rel=1e-12)
    assert nk.nc1_from_features(H[perm], labels[perm]).nc1_pinv == pytest.approx(nk.nc1_from_features(H, labels).nc1_pinv, rel=1e-9)


def test_scale_invariance_and_mediant():
    H, labels = _imbalanced(4)
    K1, K2 = H @ H.T, torch.exp(-torch.cdist(H, H))
    r1, r2, r12 = (nk.nc1_from_kernel(K, labels) for K in (K1, K2, K1 + K2))
    assert nk.nc1_from_kernel(3.7 * K1, labels).nc1 == pytest.approx(r1.nc1, rel=1e-12)
    assert r12.nc1 == pytest.approx((r1.trace_within + r2.trace_within) / (r1.trace_between + r2.trace_between), rel=1e-12)


def test_balanced_formula_is_exact_only_for_balanced_classes():
    H, labels = _imbalanced(5, sizes=(20, 20, 20))
    K = H @ H.T
    assert reference.nc1_from_kernel_balanced_formula(K, labels).nc1 == pytest.approx(nk.nc1_from_kernel(K, labels).nc1, rel=1e-12)
    assert nk.nc1_from_kernel(K, labels, between_weights="class_size").nc1 == pytest.approx(nk.nc1_from_kernel(K, labels).nc1, rel=1e-12)
    H, labels = _imbalanced(5, sizes=(5, 60))
    K = H @ H.T
    assert abs(reference.nc1_from_kernel_balanced_formula(K, labels).nc1 / nk.nc1_from_kernel(K, labels).nc1 - 1) > 0.05


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtypes(dtype):
    H, labels = _imbalanced(6)
    H = H.to(dtype)
    assert nk.nc1_from_kernel(H @ H.T, labels).nc1 == pytest.approx(nk.nc1_from_features(H, labels).nc1, rel=1e-4 if dtype == torch.float32 else 1e-12)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda H, y: nk.nc1_from_kernel(H @ H.T, torch.zeros_like(y)), "at least two classes"),
        (lambda H, y: nk.nc1_from_kernel(H @ H.T, y[:-1]), "labels has"),
        (lambda H, y: nk.nc1_from_kernel(H, y), "K must be square"),
        (lambda H, y: nk.nc1_from_kernel(H @ H.T, y, between_weights="equal"), "between_weights"),
        (lambda H, y: nk.nc1_from_features(H[:, 0], y), "H must be a 2-D"),
        (lambda H, y: nk.nc1_from_features(H, y + 0.5), "integer"),
        (lambda H, y: nk.nc1_from_features(H * float("inf"), y), "non-finite"),
        (lambda H, y: nk.nc1_from_features(H, y[:, None]), "1-D"),
        (lambda H, y: nk.nc1_from_features(torch.ones_like(H), y), "between-class trace"),
    ],
)
def test_bad_input(call, match):
    H, labels = _imbalanced(7)
    with pytest.raises(ValueError, match=match):
        call(H, labels)


def test_two_nc2_statistics_have_distinct_names_and_old_aliases():
    g = torch.Generator().manual_seed(5)
    H = torch.randn(30, 4, generator=g, dtype=torch.float64)
    labels = torch.arange(30) % 3
    assert nk.nc2_etf_distance is nk.nc2_gram_distance and nk.nc2_from_features is nk.nc2_cosine_mse
    # oracle: both from the class means written out
    M = torch.stack([H[labels == c].mean(0) for c in range(3)])
    M = M - M.mean(0)
    G = M @ M.T
    E = (torch.eye(3, dtype=torch.float64) * 1.5 - 0.5)  # the simplex-ETF Gram, -1/(C-1) = -1/2 off the diagonal
    gram = float(torch.linalg.matrix_norm(G / torch.linalg.matrix_norm(G) - E / torch.linalg.matrix_norm(E)))
    U = M / M.norm(dim=1, keepdim=True)
    cos = float(((U @ U.T - E) ** 2).mean())
    assert nk.nc2_gram_distance(H, labels) == pytest.approx(gram, rel=1e-12)
    assert nk.nc2_cosine_mse(H, labels) == pytest.approx(cos, rel=1e-12)
    assert not nk.nc2_gram_distance(H, labels) == pytest.approx(nk.nc2_cosine_mse(H, labels), rel=1e-3)
