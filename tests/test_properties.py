"""Property-based tests of the public kernel, metric and data functions (hypothesis, derandomized).

Valid inputs give finite results of the documented shape and dtype, with the real properties of each object
(kernels symmetric PSD for Z=None, NC1 invariant to sample permutations and feature rotations, kernel NC1 of
H H^T equal to feature NC1 of H); invalid inputs raise ValueError or TypeError. The whole file runs in seconds.
"""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nckernels as nk
from nckernels import validation as v

settings.register_profile(
    "nckernels-fast", max_examples=8, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FAST = settings.get_profile("nckernels-fast")

BAD = (ValueError, TypeError)
DTYPES = st.sampled_from([torch.float32, torch.float64])
ACTS = st.sampled_from(["erf", "relu"])
SCALE = st.floats(0.1, 3.0)


@st.composite
def class_data(draw, *, min_classes=2, max_classes=4, max_per=5, max_d=5):
    """(H (N, d) float64, labels (N,)) with every class present; labels are arbitrary distinct integers."""
    C = draw(st.integers(min_classes, max_classes))
    sizes = draw(st.lists(st.integers(2, max_per), min_size=C, max_size=C))
    d = draw(st.integers(1, max_d))
    seed = draw(st.integers(0, 2**16))
    values = draw(st.lists(st.integers(-50, 50), min_size=C, max_size=C, unique=True))
    g = torch.Generator().manual_seed(seed)
    means = 3.0 * torch.randn(C, d, generator=g, dtype=torch.float64)
    labels = torch.repeat_interleave(torch.tensor(values), torch.tensor(sizes))
    H = means.repeat_interleave(torch.tensor(sizes), 0) + torch.randn(sum(sizes), d, generator=g, dtype=torch.float64)
    perm = torch.randperm(sum(sizes), generator=g)
    return H[perm], labels[perm]


@st.composite
def inputs(draw, *, max_n=6, max_d=4):
    n, d = draw(st.integers(1, max_n)), draw(st.integers(1, max_d))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    dtype = draw(DTYPES)
    return (draw(st.floats(0.2, 3.0)) * torch.randn(n, d, generator=g, dtype=torch.float64)).to(dtype)


def assert_psd(K: torch.Tensor):
    assert torch.equal(K, K.T), "Z=None must give an exactly symmetric kernel"
    lam = torch.linalg.eigvalsh(K.double())
    tol = (1e-4 if K.dtype == torch.float32 else 1e-9) * max(1.0, float(lam.abs().max()))
    assert float(lam.min()) >= -tol, f"kernel not PSD: smallest eigenvalue {float(lam.min()):.3g}"


def random_rotation(d: int, seed: int) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(d, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))


# ----------------------------------------------------------------------------------------------- kernels
KERNEL_FNS = {
    "preactivation_kernel": lambda X, Z, act, sw, sb: nk.preactivation_kernel(X, Z, sigma_w=sw, sigma_b=sb),
    "nngp": lambda X, Z, act, sw, sb: nk.nngp(X, Z, activation=act, sigma_w=sw, sigma_b=sb),
    "derivative_kernel": lambda X, Z, act, sw, sb: nk.derivative_kernel(X, Z, activation=act, sigma_w=sw, sigma_b=sb),
    "ntk": lambda X, Z, act, sw, sb: nk.ntk(X, Z, activation=act, sigma_w=sw, sigma_b=sb),
    "laplace_kernel": lambda X, Z, act, sw, sb: nk.laplace_kernel(X, Z, bandwidth=sw),
    "gaussian_kernel": lambda X, Z, act, sw, sb: nk.gaussian_kernel(X, Z, bandwidth=sw),
}
if hasattr(nk, "deep_nngp"):  # the deep recursion (depth 2), where this checkout has it
    KERNEL_FNS["deep_nngp"] = lambda X, Z, act, sw, sb: nk.deep_nngp(X, Z, activation=act, sigma_w=sw, sigma_b=sb, depth=2)
    KERNEL_FNS["deep_ntk"] = lambda X, Z, act, sw, sb: nk.deep_ntk(X, Z, activation=act, sigma_w=sw, sigma_b=sb, depth=2)


@pytest.mark.parametrize("name", sorted(KERNEL_FNS))
@FAST
@given(X=inputs(), act=ACTS, sw=SCALE, sb=st.floats(0.0, 2.0), m=st.integers(1, 5))
def test_kernels_valid(name, X, act, sw, sb, m):
    fn = KERNEL_FNS[name]
    K = fn(X, None, act, sw, sb)
    assert K.shape == (X.shape[0], X.shape[0]) and K.dtype == X.dtype
    assert torch.isfinite(K).all()
    assert_psd(K)
    Z = torch.randn(m, X.shape[1], dtype=X.dtype)
    KZ = fn(X, Z, act, sw, sb)
    assert KZ.shape == (X.shape[0], m) and KZ.dtype == X.dtype and torch.isfinite(KZ).all()
    # the (X, Z) form agrees with the symmetric form on the stacked inputs
    full = fn(torch.cat([X, Z]), None, act, sw, sb)
    tol = 1e-4 if X.dtype == torch.float32 else 1e-10
    assert torch.allclose(KZ, full[: X.shape[0], X.shape[0]:], rtol=tol, atol=tol)


BAD_MATRICES = st.sampled_from(["nan", "inf", "1-D", "3-D", "empty", "complex", "float16", "string", "None"])


def make_bad(X: torch.Tensor, kind: str):
    return {"nan": X * float("nan"), "inf": X + float("inf"), "1-D": X[:, 0], "3-D": X[None], "empty": X[:0],
            "complex": X.to(torch.complex128), "float16": X.to(torch.float16), "string": "X", "None": None}[kind]


@pytest.mark.parametrize("name", sorted(KERNEL_FNS))
@FAST
@given(X=inputs(), kind=BAD_MATRICES)
def test_kernels_invalid_inputs(name, X, kind):
    with pytest.raises(BAD):
        KERNEL_FNS[name](make_bad(X, kind), None, "erf", 1.0, 0.0)
    with pytest.raises(BAD):  # Z with the wrong number of columns
        KERNEL_FNS[name](X, torch.zeros(2, X.shape[1] + 1, dtype=X.dtype), "erf", 1.0, 0.0)


@FAST
@given(X=inputs(), bad=st.sampled_from([-1.0, float("nan"), float("inf"), "a", None]))
def test_kernel_scales_invalid(X, bad):
    for kw in ("sigma_w", "sigma_b"):
        with pytest.raises(BAD, match=kw):
            nk.nngp(X, **{kw: bad})
    with pytest.raises(BAD, match="sigma_a"):
        nk.ntk(X, sigma_a=bad)
    with pytest.raises(BAD, match="bandwidth"):
        nk.laplace_kernel(X, bandwidth=bad if bad is not None else 0.0)


@FAST
@given(X=inputs(max_d=3), seed=st.integers(0, 1000), kernel=st.sampled_from(["laplace", "gaussian"]))
def test_mahalanobis_kernels(X, seed, kernel):
    d = X.shape[1]
    A = torch.randn(d, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    M = (A @ A.T).to(X.dtype)
    K = nk.mahalanobis_kernel(X, kernel=kernel, M=M)
    assert K.shape == (X.shape[0],) * 2 and torch.isfinite(K).all() and torch.all(K.diagonal() == 1)
    assert_psd(K)
    D = nk.mahalanobis_sq_distances(X, M=M)
    assert torch.all(D >= 0) and torch.all(D.diagonal() == 0)
    with pytest.raises(BAD, match="M"):  # indefinite
        nk.mahalanobis_kernel(X, kernel=kernel, M=-M - torch.eye(d, dtype=X.dtype))
    if d > 1:
        B = M.clone()
        B[0, 1] += 1.0 + float(B.abs().max())
        with pytest.raises(BAD, match="M"):  # asymmetric
            nk.mahalanobis_sq_distances(X, M=B)


@FAST
@given(cov=st.floats(-1.0, 1.0), v1=st.floats(0.0, 5.0), v2=st.floats(0.0, 5.0))
def test_duals_valid(cov, v1, v2):
    c = torch.tensor([cov * math.sqrt(v1 * v2)], dtype=torch.float64)
    a, b = torch.tensor([v1], dtype=torch.float64), torch.tensor([v2], dtype=torch.float64)
    for fn in (nk.erf_dual, nk.erf_dual_derivative, nk.relu_dual, nk.relu_dual_derivative, nk.relu_angle):
        out = fn(c, a, b)
        assert out.shape == (1,) and torch.isfinite(out).all()
    for pair, one, two in ((nk.erf_dual_pair, nk.erf_dual, nk.erf_dual_derivative),
                           (nk.relu_dual_pair, nk.relu_dual, nk.relu_dual_derivative)):
        p, q = pair(c, a, b)
        assert torch.allclose(p, one(c, a, b), rtol=1e-12, atol=1e-14)
        assert torch.allclose(q, two(c, a, b), rtol=1e-12, atol=1e-14)
    assert 0.0 <= float(nk.relu_angle(c, a, b)) <= math.pi


@FAST
@given(v1=st.floats(0.1, 5.0), excess=st.floats(1.1, 10.0), neg=st.floats(0.01, 5.0))
def test_duals_invalid(v1, excess, neg):
    one = torch.tensor([v1], dtype=torch.float64)
    for fn in (nk.erf_dual, nk.erf_dual_derivative, nk.relu_dual, nk.relu_dual_derivative, nk.relu_angle,
               nk.erf_dual_pair, nk.relu_dual_pair):
        with pytest.raises(BAD, match="cov12"):  # not a covariance: |c| > sqrt(v1 v2)
            fn(one * excess, one, one)
        with pytest.raises(BAD, match="var1"):
            fn(one * 0, -neg * one, one)
        with pytest.raises(BAD, match="cov12"):
            fn(one * float("nan"), one, one)


@FAST
@given(X=inputs(), act=ACTS, width=st.integers(2, 20), seed=st.integers(0, 100))
def test_finite_width(X, act, width, seed):
    g = torch.Generator().manual_seed(seed)
    H = nk.two_layer_features(X, width=width, activation=act, generator=g)
    assert H.shape == (X.shape[0], width) and H.dtype == X.dtype and torch.isfinite(H).all()
    fw = nk.finite_width_kernels(X, width=width, activation=act, generator=g, chunk=3)
    for K in (fw.nngp, fw.ntk):
        assert K.shape == (X.shape[0],) * 2 and torch.isfinite(K).all()
    for bad in (0, -1, 2.5, True, "3", None):
        with pytest.raises(BAD, match="width"):
            nk.two_layer_features(X, width=bad)
        with pytest.raises(BAD, match="chunk"):
            nk.finite_width_kernels(X, width=width, chunk=bad)


# ----------------------------------------------------------------------------------------------- metrics
@FAST
@given(data=class_data(), seed=st.integers(0, 1000), weights=st.sampled_from(nk.BETWEEN_WEIGHTS))
def test_nc1_properties(data, seed, weights):
    H, labels = data
    r = nk.nc1_from_features(H, labels, between_weights=weights)
    assert math.isfinite(r.nc1) and r.nc1 >= 0 and r.trace_between > 0 and math.isfinite(r.nc1_pinv)
    assert sum(r.class_sizes) == H.shape[0]
    # permutation of the samples (with their labels)
    perm = torch.randperm(H.shape[0], generator=torch.Generator().manual_seed(seed))
    rp = nk.nc1_from_features(H[perm], labels[perm], between_weights=weights)
    assert rp.nc1 == pytest.approx(r.nc1, rel=1e-9, abs=1e-12)
    # orthogonal rotation of the features
    Q = random_rotation(H.shape[1], seed)
    rq = nk.nc1_from_features(H @ Q, labels, between_weights=weights)
    assert rq.nc1 == pytest.approx(r.nc1, rel=1e-8, abs=1e-12)
    assert rq.nc1_pinv == pytest.approx(r.nc1_pinv, rel=1e-6, abs=1e-9)
    # the kernel route: nc1_from_kernel(H H^T) == nc1_from_features(H)
    rk = nk.nc1_from_kernel(H @ H.T, labels, between_weights=weights)
    assert rk.nc1 == pytest.approx(r.nc1, rel=1e-8, abs=1e-12)
    assert rk.trace_within == pytest.approx(r.trace_within, rel=1e-8, abs=1e-10)
    # relabelling the classes by a monotone map changes nothing
    assert nk.nc1_from_features(H, 7 * labels + 3, between_weights=weights).nc1 == pytest.approx(r.nc1, rel=1e-12)


@FAST
@given(data=class_data(), kind=st.sampled_from(["one class", "short", "non-integer", "2-D", "nan", "string"]))
def test_nc1_invalid_labels(data, kind):
    H, labels = data
    N = H.shape[0]
    bad = {"one class": torch.zeros(N, dtype=torch.long), "short": labels[:-1],
           "non-integer": labels.double() + 0.5, "2-D": labels[:, None], "nan": torch.full((N,), float("nan")),
           "string": "ab"}[kind]
    for fn, first in ((nk.nc1_from_features, H), (nk.nc1_from_kernel, H @ H.T), (nk.kernel_alignment, H @ H.T)):
        with pytest.raises(BAD, match="labels"):
            fn(first, bad)


@FAST
@given(data=class_data(), kind=BAD_MATRICES)
def test_nc1_invalid_features(data, kind):
    H, labels = data
    with pytest.raises(BAD):
        nk.nc1_from_features(make_bad(H, kind), labels)
    with pytest.raises(BAD, match="between_weights"):
        nk.nc1_from_features(H, labels, between_weights="bogus")
    K = H @ H.T
    if K.shape[0] > 1:
        A = K.clone()
        A[0, 1] += 1.0 + float(K.abs().max())
        with pytest.raises(BAD, match="K"):  # a kernel must be symmetric
            nk.nc1_from_kernel(A, labels)
    with pytest.raises(BAD, match="K"):
        nk.nc1_from_kernel(K[:, :-1], labels)


@FAST
@given(data=class_data())
def test_block_sums_and_alignment(data):
    H, labels = data
    K = H @ H.T
    index = torch.unique(labels, return_inverse=True)[1]
    C = int(index.max()) + 1
    S_c, R_c, S = nk.class_block_sums(K, index, C)
    assert S_c.shape == (C,) and R_c.shape == (C,) and torch.isfinite(S_c).all()
    sizes = torch.bincount(index)
    r = nk.nc1_from_block_sums(K.trace(), S_c, R_c, S, sizes)
    assert r.nc1 == pytest.approx(nk.nc1_from_kernel(K, labels).nc1, rel=1e-12)
    a = nk.kernel_alignment(K, labels)
    assert -1.0 <= a <= 1.0
    for bad in (0, -1, 2.5, True):
        with pytest.raises(BAD, match="num_classes"):
            nk.class_block_sums(K, index, bad)
    with pytest.raises(BAD, match="class_sizes"):
        nk.nc1_from_block_sums(K.trace(), S_c, R_c, S, [float(n) + 0.5 for n in sizes])
    with pytest.raises(BAD, match="S_c"):
        nk.nc1_from_block_sums(K.trace(), S_c[:-1], R_c, S, sizes)


@FAST
@given(d=st.integers(1, 5), seed=st.integers(0, 1000), rank=st.integers(0, 5))
def test_psd_sqrt(d, seed, rank):
    A = torch.randn(d, min(rank, d), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    P = A @ A.T
    R = nk.psd_sqrt(P)
    assert R.shape == (d, d) and torch.isfinite(R).all() and torch.equal(R, R.T)
    assert torch.allclose(R @ R, P, atol=1e-8 * max(1.0, float(P.abs().max())))
    if rank > 0 and float(P.abs().max()) > 0:
        with pytest.raises(BAD, match="A"):
            nk.psd_sqrt(-P - torch.eye(d, dtype=torch.float64))
    with pytest.raises(BAD, match="tol"):
        nk.psd_sqrt(P, tol=float("nan"))


@FAST
@given(data=class_data(max_d=3), ridge=st.floats(1e-6, 1.0), kernel=st.sampled_from(["laplace", "gaussian"]))
def test_krr(data, ridge, kernel):
    X, labels = data
    Y = torch.nn.functional.one_hot(torch.unique(labels, return_inverse=True)[1]).double()
    model = nk.krr_fit(X, Y, kernel=kernel, ridge=ridge)
    assert model.alpha.shape == Y.shape and torch.isfinite(model.alpha).all() and model.residual < 1e-6
    pred = model.predict(X)
    assert pred.shape == Y.shape and torch.isfinite(pred).all()
    agop = nk.kernel_agop(model)
    assert agop.shape == (X.shape[1],) * 2 and torch.isfinite(agop).all()
    assert_psd(agop)
    # duplicated samples with no ridge: a clear error with the cure, never torch's _LinAlgError
    Xd, Yd = torch.cat([X, X]), torch.cat([Y, Y])
    try:
        m2 = nk.krr_fit(Xd, Yd, kernel=kernel, ridge=0.0)
        assert torch.isfinite(m2.alpha).all()
    except ValueError as exc:
        assert "ridge" in str(exc)
    with pytest.raises(BAD, match="ridge"):
        nk.krr_fit(X, Y, ridge=-1.0)
    with pytest.raises(BAD, match="Y"):
        nk.krr_fit(X, Y[:-1])


@FAST
@given(data=class_data(max_d=3))
def test_alignment_and_block_means_shapes(data):
    H, labels = data
    K = nk.nngp(H)
    bm = nk.block_means(K, labels)
    assert all(math.isfinite(x) for x in (bm.diagonal, bm.same_class, bm.other_class))
    assert 0 < nk.kernel_alignment(K, labels) <= 1


# ----------------------------------------------------------------------------------------------- data
@FAST
@given(sizes=st.lists(st.integers(1, 6), min_size=2, max_size=4), d=st.integers(1, 5), std=st.floats(0.05, 3.0),
       dtype=DTYPES, shuffle=st.booleans(), seed=st.integers(0, 1000))
def test_gaussian_classes(sizes, d, std, dtype, shuffle, seed):
    data = nk.gaussian_classes(sizes, d, means=[2.0 * c for c in range(len(sizes))], std=std, dtype=dtype, shuffle=shuffle,
                               generator=torch.Generator().manual_seed(seed))
    N, C = sum(sizes), len(sizes)
    assert data.X.shape == (N, d) and data.X.dtype == dtype and torch.isfinite(data.X).all()
    assert data.labels.shape == (N,) and torch.equal(torch.bincount(data.labels, minlength=C), torch.tensor(sizes))
    assert data.y.shape == ((N,) if C == 2 else (N, C))


@FAST
@given(bad=st.sampled_from([0, -1, 2.5, True, "3", None]))
def test_gaussian_classes_invalid(bad):
    with pytest.raises(BAD, match="d"):
        nk.gaussian_classes([2, 2], bad)
    with pytest.raises(BAD, match="class_sizes"):
        nk.gaussian_classes([2, bad], 2)
    with pytest.raises(BAD, match="dtype"):
        nk.gaussian_classes([2, 2], 2, dtype=torch.int64)
    with pytest.raises(BAD, match="generator"):
        nk.gaussian_classes([2, 2], 2, generator=7)


def test_device_requests_without_the_device():
    missing = ["mps"] + ([] if torch.cuda.is_available() else ["cuda", "cuda:0"])
    for device in missing:
        with pytest.raises(ValueError, match="device"):
            nk.gaussian_classes([2, 2], 2, device=device)
        with pytest.raises(ValueError, match="device"):
            nk.MLP(2, 3, 1, 2, device=device)
        with pytest.raises(ValueError, match="device"):
            v.check_device(device)


# ----------------------------------------------------------------------------------------------- population
@FAST
@given(kind=st.sampled_from(list(nk.KERNEL_KINDS)), act=ACTS, m=st.floats(0.5, 3.0), std=st.floats(0.1, 2.0))
def test_population_large_d0(kind, act, m, std):
    r = nk.population_nc1_large_d0(kind, activation=act, means=(-m, m), std=std)
    assert all(math.isfinite(x) for x in r) and r.nc1 >= 0
    with pytest.raises(BAD, match="means"):
        nk.population_nc1_large_d0(kind, means=(m,))
    with pytest.raises(BAD, match="std"):
        nk.population_nc1_large_d0(kind, std=-std)


@FAST
@given(m=st.floats(0.5, 3.0), std=st.floats(0.2, 1.0), order=st.integers(4, 12))
def test_population_1d(m, std, order):
    r = nk.population_nc1_1d(lambda a, b=None: nk.nngp(a, b), means=(-m, m), std=std, order=order)
    assert all(math.isfinite(x) for x in r) and r.nc1 >= 0
    for bad in (1, 2.5, True):
        with pytest.raises(BAD, match="order"):
            nk.population_nc1_1d(lambda a, b=None: nk.nngp(a, b), order=bad)


# ----------------------------------------------------------------------------------------------- validation
@FAST
@given(value=st.one_of(st.integers(-5, 5), st.sampled_from([2.0, 2.5, float("nan"), True, False, "3", None, 1j])))
def test_check_int(value):
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
    if ok:
        assert v.check_int(value, "n") == value
    else:
        with pytest.raises(BAD, match="n"):
            v.check_int(value, "n")


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 700), seed=st.integers(0, 2**31 - 1), tile=st.sampled_from([1, 7, 64, 256]))
def test_tiled_asymmetry_is_the_full_asymmetry(n, seed, tile):
    from nckernels.validation import max_asymmetry

    g = torch.Generator().manual_seed(seed)
    A = torch.randn(n, n, generator=g, dtype=torch.float64)
    A = A + A.T
    i, j = torch.randint(0, n, (2,), generator=g).tolist()
    A[i, j] += 1e-3  # one asymmetric pair, wherever it falls among the tiles
    assert max_asymmetry(A, tile=tile) == float((A - A.T).abs().max())


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 600), seed=st.integers(0, 2**31 - 1), bad=st.sampled_from([math.nan, math.inf, -math.inf]),
       dtype=st.sampled_from([torch.float32, torch.float64]))
def test_check_finite_finds_one_bad_entry_anywhere(n, seed, bad, dtype):
    from nckernels.validation import check_finite

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g).to(dtype)
    check_finite(x, "x")  # finite: passes
    x.view(-1)[int(torch.randint(0, x.numel(), (1,), generator=g))] = bad
    with pytest.raises(ValueError, match="x contains 1 non-finite"):
        check_finite(x, "x")
