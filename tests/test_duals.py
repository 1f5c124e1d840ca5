import math

import pytest
import torch

import nckernels as nk
from helpers import DTYPES, assert_mc_close


def _random_covariances(gen, n=6):
    """n random 2x2 covariances (cov12, var1, var2), including near-degenerate pairs."""
    v1 = 0.2 + 3 * torch.rand(n, generator=gen, dtype=torch.float64)
    v2 = 0.2 + 3 * torch.rand(n, generator=gen, dtype=torch.float64)
    rho = 2 * torch.rand(n, generator=gen, dtype=torch.float64) - 1
    rho[0], rho[1] = 0.999, -0.999
    return rho * (v1 * v2).sqrt(), v1, v2


@pytest.mark.parametrize("name", ["erf", "relu"])
def test_duals_match_monte_carlo(name):
    gen = torch.Generator().manual_seed(1)
    act = nk.get_activation(name)
    c, v1, v2 = _random_covariances(gen)
    M = 400_000
    for k in range(c.numel()):
        L = torch.linalg.cholesky(torch.tensor([[v1[k], c[k]], [c[k], v2[k]]], dtype=torch.float64))
        uv = torch.randn(M, 2, generator=gen, dtype=torch.float64) @ L.T
        u, v = uv[:, 0], uv[:, 1]
        for sample, exact in [(act.phi(u) * act.phi(v), act.dual(c[k], v1[k], v2[k])),
                              (act.phi_prime(u) * act.phi_prime(v), act.dual_derivative(c[k], v1[k], v2[k]))]:
            assert_mc_close(sample.mean(), sample.std() / math.sqrt(M), exact)


def test_relu_dual_at_coincident_inputs_is_exact():
    v = torch.tensor([1e-8, 0.3, 7.0, 1e6], dtype=torch.float64)
    assert torch.equal(nk.relu_angle(v, v, v), torch.zeros_like(v))
    torch.testing.assert_close(nk.relu_dual(v, v, v), v / 2, rtol=1e-15, atol=0)
    torch.testing.assert_close(nk.relu_dual_derivative(v, v, v), torch.full_like(v, 0.5), rtol=0, atol=0)
    # antipodal: relu(u) relu(-u) = 0
    torch.testing.assert_close(nk.relu_dual(-v, v, v), torch.zeros_like(v), rtol=0, atol=1e-12 * v.max().item())


def test_erf_dual_is_arcsin_form_and_accurate_near_one():
    c = torch.linspace(-3, 3, 41, dtype=torch.float64)
    v1, v2 = torch.tensor(3.0, dtype=torch.float64), torch.tensor(3.5, dtype=torch.float64)
    arcsin_form = (2 / math.pi) * torch.arcsin(2 * c / ((1 + 2 * v1) * (1 + 2 * v2)).sqrt())
    torch.testing.assert_close(nk.erf_dual(c, v1, v2), arcsin_form, rtol=1e-13, atol=1e-15)
    # at c = v (a point with itself) the atan2 form is finite and its derivative dual too
    v = torch.tensor([0.5, 2.0, 50.0], dtype=torch.float64)
    assert torch.isfinite(nk.erf_dual_derivative(v, v, v)).all()
    torch.testing.assert_close(nk.erf_dual_derivative(v, v, v), (4 / math.pi) / (1 + 4 * v).sqrt())


@pytest.mark.parametrize("dtype", DTYPES)
def test_duals_keep_dtype(dtype):
    c, v = torch.tensor(0.3, dtype=dtype), torch.tensor(1.0, dtype=dtype)
    for act in nk.ACTIVATIONS.values():
        assert act.dual(c, v, v).dtype == dtype
        assert act.dual_derivative(c, v, v).dtype == dtype


def test_unknown_activation_is_named():
    with pytest.raises(ValueError, match="activation"):
        nk.get_activation("tanh")


def test_erf_angle_is_the_arcsin_and_serves_every_erf_kernel():
    g = torch.Generator().manual_seed(3)
    v1, v2 = torch.rand(50, generator=g, dtype=torch.float64) * 3, torch.rand(50, generator=g, dtype=torch.float64) * 3
    c = (torch.rand(50, generator=g, dtype=torch.float64) * 2 - 1) * (v1 * v2).sqrt()
    theta, gap = nk.erf_angle(c, v1, v2)
    assert torch.allclose(theta, torch.arcsin(2 * c / ((1 + 2 * v1) * (1 + 2 * v2)).sqrt()), rtol=1e-12, atol=1e-14)
    assert torch.allclose(gap, (1 + 2 * v1) * (1 + 2 * v2) - 4 * c * c, rtol=1e-14, atol=1e-14)
    assert torch.equal(nk.erf_dual(c, v1, v2), (2 / math.pi) * theta)
    X = torch.randn(5, 3, generator=g, dtype=torch.float64)
    Q = nk.adaptive_kernel(X, torch.eye(3, dtype=torch.float64) / 3, sigma_a=1.0)  # Sigma = I/d0: the NNGP
    assert torch.allclose(Q, nk.nngp(X), rtol=1e-14, atol=1e-15)
