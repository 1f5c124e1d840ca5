"""Mahalanobis kernels, KRR, closed-form AGOP, PSD square root and Deep RFM (nckernels.rfm)."""
import math

import pytest
import torch

import nckernels as nk
from nckernels import rfm
from nckernels.agop import model_agop


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _data(n=12, d=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    A = torch.randn(d, d, generator=g, dtype=torch.float64)
    M = A @ A.T / d + 0.1 * torch.eye(d, dtype=torch.float64)
    Y = torch.randn(n, 3, generator=g, dtype=torch.float64)
    return X, M, Y, g


@pytest.mark.parametrize("kernel", rfm.KERNELS)
def test_kernels_match_pairwise_formula(kernel):
    X, M, _, g = _data()
    Z = torch.randn(7, X.shape[1], generator=g, dtype=torch.float64)
    L = 1.7
    K = rfm.mahalanobis_kernel(X, Z, kernel=kernel, bandwidth=L, M=M)
    for i in range(X.shape[0]):
        for j in range(Z.shape[0]):
            v = X[i] - Z[j]
            q = float(v @ M @ v)
            want = math.exp(-math.sqrt(q) / L) if kernel == "laplace" else math.exp(-q / (2 * L**2))
            assert abs(float(K[i, j]) - want) < 1e-12
    Kxx = rfm.mahalanobis_kernel(X, kernel=kernel, bandwidth=L, M=M)
    assert torch.equal(Kxx, Kxx.T)
    assert torch.equal(Kxx.diagonal(), torch.ones(X.shape[0], dtype=torch.float64))
    # M = None is the identity
    assert torch.allclose(rfm.mahalanobis_kernel(X, Z, kernel=kernel, bandwidth=L),
                          rfm.mahalanobis_kernel(X, Z, kernel=kernel, bandwidth=L, M=torch.eye(X.shape[1], dtype=torch.float64)),
                          rtol=0, atol=1e-13)


@pytest.mark.parametrize("kernel", rfm.KERNELS)
def test_krr_matches_direct_solve(kernel):
    X, M, Y, g = _data()
    model = rfm.krr_fit(X, Y, kernel=kernel, bandwidth=2.0, ridge=0.05, M=M)
    K = rfm.mahalanobis_kernel(X, kernel=kernel, bandwidth=2.0, M=M)
    alpha = torch.linalg.solve(K + 0.05 * torch.eye(X.shape[0], dtype=torch.float64), Y)
    assert torch.allclose(model.alpha, alpha, rtol=1e-10, atol=1e-12)
    assert model.residual < 1e-12
    Z = torch.randn(4, X.shape[1], generator=g, dtype=torch.float64)
    assert torch.allclose(model.predict(Z), rfm.mahalanobis_kernel(Z, X, kernel=kernel, bandwidth=2.0, M=M) @ alpha)
    # a 1-D target becomes one column
    assert rfm.krr_fit(X, Y[:, 0], kernel=kernel).alpha.shape == (X.shape[0], 1)


def _loo_autograd_agop(model):
    """AGOP at the centres by autograd, each point's own centre left out (the index mask)."""
    X, alpha = model.centres, model.alpha
    n, d = X.shape
    total = X.new_zeros(d, d)
    for i in range(n):
        keep = torch.arange(n) != i

        def f(x, keep=keep):
            K = rfm.mahalanobis_kernel(x[None], X[keep], kernel=model.kernel, bandwidth=model.bandwidth, M=model.M)
            return (K @ alpha[keep])[0]

        J = torch.autograd.functional.jacobian(f, X[i].clone())  # (C, d)
        total += J.T @ J
    return total / n


@pytest.mark.parametrize("kernel", rfm.KERNELS)
@pytest.mark.parametrize("with_M", [False, True])
def test_closed_form_agop_matches_autograd_at_centres(kernel, with_M):
    X, M, Y, _ = _data()
    model = rfm.krr_fit(X, Y, kernel=kernel, bandwidth=1.5, ridge=1e-2, M=M if with_M else None)
    G = rfm.kernel_agop(model)
    want = _loo_autograd_agop(model)
    assert torch.allclose(G, want, rtol=1e-9, atol=1e-12)
    if kernel == "gaussian":  # smooth: the self term has zero gradient, so the full predictor agrees too
        assert torch.allclose(G, model_agop(model.predict, X), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kernel", rfm.KERNELS)
def test_closed_form_agop_matches_torch_func_off_centres(kernel):
    X, M, Y, g = _data()
    model = rfm.krr_fit(X, Y, kernel=kernel, bandwidth=1.5, ridge=1e-2, M=M)
    P = torch.randn(9, X.shape[1], generator=g, dtype=torch.float64)
    assert torch.allclose(rfm.kernel_agop(model, P), model_agop(model.predict, P), rtol=1e-9, atol=1e-12)


def test_laplace_agop_mask_is_by_index_not_distance():
    X, _, Y, _ = _data(n=8)
    model = rfm.krr_fit(X, Y, kernel="laplace", ridge=0.1)
    # two distinct centres 1e-4 apart: a distance-threshold mask (as float32 code needs) would drop
    # this legitimate pair; the index mask keeps it, as the leave-one-out autograd value does
    Xs = X.clone()
    step = torch.ones(X.shape[1], dtype=torch.float64)
    Xs[3] = X[5] + 1e-4 * step / step.norm()
    close = rfm.KRRModel(Xs, model.alpha, "laplace", model.bandwidth, model.ridge, None, 0.0)
    assert torch.allclose(rfm.kernel_agop(close), _loo_autograd_agop(close), rtol=1e-6, atol=1e-12)
    # a duplicated sample: finite, and equal to autograd with every coincident centre left out
    Xd = torch.cat([X, X[:1]])
    Yd = torch.cat([Y, Y[:1]])
    dup = rfm.krr_fit(Xd, Yd, kernel="laplace", ridge=0.1)
    G = rfm.kernel_agop(dup)
    n, d = Xd.shape
    want = Xd.new_zeros(d, d)
    for i in range(n):
        keep = (Xd != Xd[i]).any(1)

        def f(x, keep=keep):
            return (rfm.laplace_kernel(x[None], Xd[keep], bandwidth=dup.bandwidth) @ dup.alpha[keep])[0]

        J = torch.autograd.functional.jacobian(f, Xd[i].clone())
        want += J.T @ J
    assert torch.allclose(G, want / n, rtol=1e-9, atol=1e-12)


def test_psd_sqrt():
    _, M, _, g = _data(d=6)
    R = rfm.psd_sqrt(M)
    assert torch.allclose(R @ R, M, atol=1e-12)
    assert torch.allclose(R, R.T)
    assert float(torch.linalg.eigvalsh(R).min()) > 0
    # rank-deficient PSD (as an AGOP of few outputs is)
    B = torch.randn(6, 2, generator=g, dtype=torch.float64)
    P = B @ B.T
    Rp = rfm.psd_sqrt(P)
    assert torch.allclose(Rp @ Rp, P, atol=1e-10)
    assert int((torch.linalg.eigvalsh(Rp) > 1e-6).sum()) == 2
    # a diagonal matrix: the entrywise root
    D = torch.diag(torch.tensor([4.0, 9.0, 0.0], dtype=torch.float64))
    assert torch.allclose(rfm.psd_sqrt(D), torch.diag(torch.tensor([2.0, 3.0, 0.0], dtype=torch.float64)))


def test_nc2_etf_and_known_value():
    C = 4
    E = torch.eye(C, dtype=torch.float64) - 1.0 / C  # simplex ETF means (rows), centred
    H = E.repeat_interleave(5, 0) + 1e-3 * torch.randn(20, C, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    labels = torch.arange(C).repeat_interleave(5)
    # class means exactly E up to the noise's class means; tiny deviation
    assert rfm.nc2_from_features(E.repeat_interleave(5, 0), labels) < 1e-28
    assert rfm.nc2_from_features(H, labels) < 1e-4
    # orthogonal (not centred-ETF) means in 2 classes: centred means are antipodal -> ETF for C = 2
    assert rfm.nc2_from_features(torch.eye(2, dtype=torch.float64), torch.tensor([0, 1])) < 1e-28


def _tiny_gauss(seed=0):
    g = torch.Generator().manual_seed(seed)
    means = 0.8 * torch.randn(3, 10, generator=g, dtype=torch.float64)
    return nk.gaussian_classes([20, 20, 20], 10, means=means, std=1.0, generator=g), g


def test_deep_rfm_collapses_with_agop_and_not_without():
    data, g = _tiny_gauss()
    res = rfm.deep_rfm(data.X, data.labels, depth=4, width=64, generator=g)
    nc1 = res.frame["nc1_input"].to_numpy()
    assert (nc1[1:] < nc1[:-1]).all(), nc1
    assert nc1[-1] < 0.2 * nc1[0]
    assert (res.frame["nc1_projected"] < res.frame["nc1_input"]).all()
    assert len(res.spectra) == 4 and res.spectra[0].shape == (10,) and res.spectra[1].shape == (64,)
    assert torch.all(res.spectra[1][:-1] >= res.spectra[1][1:])
    # M is scaled to largest entry 1, so its top eigenvalue lies in [1, d]
    assert 1 - 1e-12 <= float(res.spectra[0][0]) <= 10
    g2 = torch.Generator().manual_seed(0)
    base = rfm.deep_rfm(data.X, data.labels, depth=4, width=64, use_agop=False, generator=g2)
    b = base.frame["nc1_input"].to_numpy()
    assert b[-1] > 0.7 * b[0], b
    assert torch.allclose(torch.tensor(base.frame["nc1_projected"].to_numpy()), torch.tensor(b))


def test_deep_rfm_cosine_test_data_and_keep():
    data, g = _tiny_gauss(1)
    res = rfm.deep_rfm(data.X[::2], data.labels[::2], X_test=data.X[1::2], labels_test=data.labels[1::2],
                       depth=2, width=32, features="cosine", keep=(1,), generator=g)
    assert res.frame["test_acc"].between(0, 1).all()
    assert set(res.kept) == {1} and res.kept[1]["features"].shape == (30, 32)
    # a model whose layer-0 test accuracy equals a direct KRR prediction
    Xn = data.X[::2] / data.X[::2].norm(dim=1, keepdim=True)
    Tn = data.X[1::2] / data.X[1::2].norm(dim=1, keepdim=True)
    Y = 2.0 * torch.nn.functional.one_hot(data.labels[::2], 3).to(torch.float64) - 1
    pred = rfm.krr_fit(Xn, Y).predict(Tn).argmax(1)
    assert abs(res.frame["test_acc"][0] - float((pred == data.labels[1::2]).double().mean())) < 1e-12


def test_bad_input():
    X, M, Y, _ = _data()
    with pytest.raises(ValueError, match="bandwidth"):
        rfm.laplace_kernel(X, bandwidth=0.0)
    with pytest.raises(ValueError, match="M"):
        rfm.laplace_kernel(X, M=torch.eye(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="kernel"):
        rfm.krr_fit(X, Y, kernel="cauchy")
    with pytest.raises(ValueError, match="ridge"):
        rfm.krr_fit(X, Y, ridge=-1.0)
    with pytest.raises(ValueError, match="Y"):
        rfm.krr_fit(X, Y[:5])
    with pytest.raises(ValueError, match="X"):
        rfm.krr_fit(X[0], Y)
    with pytest.raises(ValueError, match="symmetric"):
        rfm.psd_sqrt(torch.triu(M))
    with pytest.raises(ValueError, match="semi-definite"):
        rfm.psd_sqrt(-M)
    with pytest.raises(ValueError, match="non-finite"):
        rfm.laplace_kernel(torch.full((3, 2), float("nan"), dtype=torch.float64))
    labels = torch.arange(12) % 3
    with pytest.raises(ValueError, match="depth"):
        rfm.deep_rfm(X, labels, depth=0)
    with pytest.raises(ValueError, match="features"):
        rfm.deep_rfm(X, labels, features="tanh")
    with pytest.raises(ValueError, match="labels"):
        rfm.deep_rfm(X, labels[:5])
    with pytest.raises(ValueError, match="labels_test"):
        rfm.deep_rfm(X, labels, X_test=X)
    with pytest.raises(ValueError, match="points"):
        rfm.kernel_agop(rfm.krr_fit(X, Y), torch.zeros(2, 3, dtype=torch.float64))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_deep_rfm_and_agop_on_cuda():
    data, _ = _tiny_gauss()
    dev = torch.device("cuda")
    gc = torch.Generator(device=dev).manual_seed(0)
    res = rfm.deep_rfm(data.X.to(dev), data.labels.to(dev), depth=3, width=64, generator=gc)
    nc1 = res.frame["nc1_input"].to_numpy()
    assert (nc1[1:] < nc1[:-1]).all()
    X, M, Y, _ = _data()
    cpu = rfm.krr_fit(X, Y, M=M)
    gpu = rfm.krr_fit(X.to(dev), Y.to(dev), M=M.to(dev))
    assert gpu.alpha.device.type == "cuda"
    assert torch.allclose(rfm.kernel_agop(gpu).cpu(), rfm.kernel_agop(cpu), rtol=1e-8, atol=1e-12)
    assert torch.allclose(model_agop(gpu.predict, X.to(dev)[:3] + 0.1).cpu(), model_agop(cpu.predict, X[:3] + 0.1),
                          rtol=1e-8, atol=1e-12)
