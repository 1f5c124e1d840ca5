"""Deep NNGP/NTK: depth 1 is the two-layer kernel, every depth equals neural-tangents' stax kernels (stored fixture),
the kernels are symmetric PSD, and the population limits agree with finite-N kernels."""
import pathlib

import numpy as np
import pytest
import torch

import nckernels as nk
from nckernels.kernels.population import population_nc1_1d, population_nc1_large_d0

FIXTURE = np.load(pathlib.Path(__file__).parent / "data" / "deep_kernels_nt.npz")


def _data(n=7, d=3, seed=0):
    return nk.gaussian_classes([n, n], d, generator=torch.Generator().manual_seed(seed)).X


@pytest.mark.parametrize("activation", ["erf", "relu"])
@pytest.mark.parametrize("sigma_b", [0.0, 0.4])
def test_depth_one_is_the_two_layer_kernel(activation, sigma_b):
    X, Z = _data(), _data(n=3, seed=1)
    kw = dict(activation=activation, sigma_w=1.3, sigma_b=sigma_b)
    for B in (None, Z):
        nngp2, ntk2 = nk.nngp(X, B, **kw), nk.ntk(X, B, sigma_a=0.7, **kw)
        nngp_deep, ntk_deep = nk.deep_nngp(X, B, depth=1, **kw), nk.deep_ntk(X, B, sigma_a=0.7, depth=1, **kw)
        for deep, two in ((nngp_deep, nngp2), (ntk_deep, ntk2)):
            assert torch.equal(deep, two) or torch.allclose(deep, two, rtol=1e-15, atol=0)


def _settings(key):
    sigma_w, sigma_b, sigma_a = (float(v) for v in FIXTURE[f"{key}/settings"])
    return dict(sigma_w=sigma_w, sigma_b=sigma_b, sigma_a=sigma_a)


@pytest.mark.parametrize("key", ["a", "b"])
@pytest.mark.parametrize("activation", ["erf", "relu", "gelu"])
def test_matches_neural_tangents_at_every_depth(key, activation):
    """NT's nngp is the read-out kernel sigma_a^2 * deep_nngp; its ntk is deep_ntk (see tests/data/make_deep_kernel_fixture.py)."""
    X, Z = torch.tensor(FIXTURE["X"]), torch.tensor(FIXTURE["Z"])
    s = _settings(key)
    for pair, B in (("XX", None), ("XZ", Z)):
        ref = torch.tensor(FIXTURE[f"{key}/{activation}/{pair}"])  # (depth, [nngp, ntk], n, m)
        for i, depth in enumerate(FIXTURE["depths"].tolist()):
            k = nk.deep_kernels(X, B, activation=activation, depth=depth, **s)
            torch.testing.assert_close(s["sigma_a"] ** 2 * k.nngp, ref[i, 0], rtol=1e-10, atol=1e-12)
            torch.testing.assert_close(k.ntk, ref[i, 1], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("key", ["a", "b"])
def test_tanh_matches_neural_tangents_quadrature(key):
    """NT's ElementwiseNumerical(tanh, deg=200) is Gauss-Hermite; at variance ~4 it is itself off by ~1e-7."""
    X, Z = torch.tensor(FIXTURE["X"]), torch.tensor(FIXTURE["Z"])
    s = _settings(key)
    for pair, B in (("XX", None), ("XZ", Z)):
        ref = torch.tensor(FIXTURE[f"{key}/tanh/{pair}"])
        for i, depth in enumerate(FIXTURE["depths"].tolist()[: ref.shape[0]]):
            k = nk.deep_kernels(X, B, activation="tanh", depth=depth, **s)
            torch.testing.assert_close(s["sigma_a"] ** 2 * k.nngp, ref[i, 0], rtol=1e-6, atol=1e-8)
            torch.testing.assert_close(k.ntk, ref[i, 1], rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("activation", ["erf", "relu", "gelu", "tanh"])
def test_symmetric_psd_for_z_none(activation):
    X = _data(n=6, d=4)
    k = nk.deep_kernels(X, activation=activation, sigma_w=1.2, sigma_b=0.3, sigma_a=0.9, depth=3)
    for K in (k.nngp, k.ntk):
        assert torch.equal(K, K.T)
        lam = torch.linalg.eigvalsh(K)
        assert lam.min() >= -1e-12 * lam.max()
    # the cross kernel of X with itself passed explicitly agrees with Z=None; for relu, x.x computed as X @ Z^T and as
    # |x|^2 differ by rounding, and sqrt(v1 v2 - c^2) turns that into an angle of ~1e-8 on the diagonal
    cross = nk.deep_ntk(X, X.clone(), activation=activation, sigma_w=1.2, sigma_b=0.3, sigma_a=0.9, depth=3)
    tol = dict(rtol=1e-7, atol=1e-8) if activation == "relu" else dict(rtol=1e-12, atol=1e-13)
    torch.testing.assert_close(cross, k.ntk, **tol)


def test_callable_activation_matches_closed_form_and_dtype_follows():
    X = _data(n=4, d=3)
    exact = nk.deep_ntk(X, activation="erf", sigma_b=0.2, depth=2)
    quad = nk.deep_ntk(X, activation=torch.erf, sigma_b=0.2, depth=2)  # trapezoid rule, erf' by autograd
    torch.testing.assert_close(quad, exact, rtol=1e-10, atol=1e-12)
    k32 = nk.deep_nngp(X.float(), activation="gelu", depth=3)
    assert k32.dtype == torch.float32
    torch.testing.assert_close(k32.double(), nk.deep_nngp(X, activation="gelu", depth=3), rtol=1e-5, atol=1e-6)


def _finite_n_expectation(pop, n, C=2):
    """E-ratio of the balanced finite-N NC1: Tr_W (1 - 1/n) / (Tr_B + Tr_W (1/n - 1/N)) (diagonal terms of S_c and S)."""
    N = C * n
    return (1 - 1 / n) * pop.trace_within / (pop.trace_between + pop.trace_within * (1 / n - 1 / N))


@pytest.mark.parametrize("kind", ["nngp", "ntk"])
@pytest.mark.parametrize("activation", ["erf", "relu"])
def test_large_d0_population_depth_one_is_the_two_layer_limit(kind, activation):
    for std in (0.5, 1.0):
        deep = nk.deep_population_nc1_large_d0(kind, activation, 1, std=std, sigma_b=0.3, sigma_a=1.4)
        two = population_nc1_large_d0(kind, activation=activation, std=std, sigma_b=0.3, sigma_a=1.4)
        assert deep.nc1 == pytest.approx(two.nc1, rel=1e-14)


def test_large_d0_population_matches_finite_n_kernels():
    n, d0 = 100, 2000
    data = nk.gaussian_classes([n, n], d0, means=(-1.0, 1.5), std=0.7, generator=torch.Generator().manual_seed(0))
    for activation in ("erf", "relu", "gelu"):
        for depth in (2, 3):
            k = nk.deep_kernels(data.X, activation=activation, depth=depth, sigma_w=1.3, sigma_b=0.2)
            for kind, K in (("nngp", k.nngp), ("ntk", k.ntk)):
                pop = nk.deep_population_nc1_large_d0(kind, activation, depth, means=(-1.0, 1.5), std=0.7,
                                                      sigma_w=1.3, sigma_b=0.2)
                finite = nk.nc1_from_kernel(K, data.labels).nc1
                assert finite == pytest.approx(_finite_n_expectation(pop, n), rel=1e-2), (activation, depth, kind)  # seen: < 0.4 %


def test_large_d0_population_per_class_stds_and_data_kind():
    pop = nk.deep_population_nc1_large_d0("data", means=(-2.0, 2.0), std=(0.5, 1.0))
    # Tr_W = mean(s_c^2) = 0.625, Tr_B = mean(m_c^2) - mean(m)^2 = 4
    assert pop.nc1 == pytest.approx(0.625 / 4, rel=1e-14)
    a = nk.deep_population_nc1_large_d0("ntk", "gelu", 2, std=(0.5, 0.5))
    b = nk.deep_population_nc1_large_d0("ntk", "gelu", 2, std=0.5)
    assert a.nc1 == pytest.approx(b.nc1, rel=1e-15)


def test_one_dimensional_population():
    kw = dict(sigma_b=0.2)
    two = population_nc1_1d(lambda A, B: nk.ntk(A, B, activation="erf", **kw), order=60)
    deep = nk.deep_population_nc1_1d("ntk", "erf", 1, order=60, **kw)
    assert deep.nc1 == pytest.approx(two.nc1, rel=1e-13)
    pop = nk.deep_population_nc1_1d("nngp", "relu", 3, order=60, **kw)
    data = nk.gaussian_classes([600, 600], 1, generator=torch.Generator().manual_seed(0))
    finite = nk.nc1_from_kernel(nk.deep_nngp(data.X, activation="relu", depth=3, **kw), data.labels).nc1
    assert finite == pytest.approx(_finite_n_expectation(pop, 600), rel=0.1)  # sampling noise of N = 1200 at d0 = 1


def test_bad_input():
    X = _data(n=2)
    with pytest.raises(ValueError, match="depth"):
        nk.deep_ntk(X, depth=0)
    with pytest.raises(TypeError, match="depth"):
        nk.deep_nngp(X, depth=1.5)
    with pytest.raises(ValueError, match="activation"):
        nk.deep_nngp(X, activation="swish")
    with pytest.raises(ValueError, match="sigma_w"):
        nk.deep_ntk(X, sigma_w=-1.0)
    with pytest.raises(ValueError, match="sigma_a"):
        nk.deep_ntk(X, sigma_a=float("nan"))
    with pytest.raises(ValueError, match="Z"):
        nk.deep_ntk(X, torch.zeros(2, 5, dtype=torch.float64))
    with pytest.raises(ValueError, match="X"):
        nk.deep_nngp(torch.zeros(4, dtype=torch.float64))
    with pytest.raises(ValueError, match="kind"):
        nk.deep_population_nc1_large_d0("feature", "erf", 2)
    with pytest.raises(ValueError, match="std"):
        nk.deep_population_nc1_large_d0("nngp", "erf", 2, std=(0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="std"):
        nk.deep_population_nc1_large_d0("nngp", "erf", 2, std=-0.5)
    with pytest.raises(ValueError, match="means"):
        nk.deep_population_nc1_large_d0("nngp", "erf", 2, means=(1.0,))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("activation", ["erf", "relu", "gelu", "tanh"])
def test_deep_kernels_on_cuda_match_cpu(activation):
    X = _data(n=5, d=3)
    cpu = nk.deep_kernels(X, activation=activation, sigma_b=0.2, depth=3)
    gpu = nk.deep_kernels(X.to("cuda"), activation=activation, sigma_b=0.2, depth=3)
    assert gpu.ntk.device.type == "cuda" and gpu.ntk.dtype == torch.float64
    torch.testing.assert_close(gpu.nngp.cpu(), cpu.nngp, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(gpu.ntk.cpu(), cpu.ntk, rtol=1e-10, atol=1e-12)
    pop = nk.deep_population_nc1_large_d0("ntk", activation, 2)
    assert pop.nc1 > 0


def test_two_layer_entry_points_take_depth_and_new_activations():
    X, Z = _data(n=4), _data(n=3, seed=2)
    for activation in ("erf", "relu", "gelu", "tanh", torch.sin):
        for depth in (1, 3):
            kw = dict(activation=activation, sigma_w=1.1, sigma_b=0.2, depth=depth)
            assert torch.equal(nk.nngp(X, Z, **kw), nk.deep_nngp(X, Z, **kw))
            assert torch.equal(nk.ntk(X, sigma_a=0.8, **kw), nk.deep_ntk(X, sigma_a=0.8, **kw))
    torch.testing.assert_close(nk.derivative_kernel(X, activation="gelu"),
                               nk.gelu_dual_derivative(*(lambda K: (K, K.diagonal()[:, None], K.diagonal()[None, :]))(
                                   nk.preactivation_kernel(X))), rtol=1e-15, atol=0)
    with pytest.raises(ValueError, match="depth"):
        nk.ntk(X, depth=0)
    with pytest.raises(ValueError, match="activation"):
        nk.nngp(X, activation="swish")
