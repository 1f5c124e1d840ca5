"""Gaussian-quadrature duals against every closed form (erf, relu, gelu), the GELU closed form against quadrature,
the adaptive order, custom callables with autograd derivatives, and bad input."""
import math
import warnings

import pytest
import torch

import nckernels as nk
from nckernels.kernels import quadrature as q
from nckernels.kernels.duals import erf_dual, erf_dual_derivative, relu_dual, relu_dual_derivative


def _covariances(n=120, vmax=8.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    v1 = 0.05 + vmax * torch.rand(n, generator=g, dtype=torch.float64)
    v2 = 0.05 + vmax * torch.rand(n, generator=g, dtype=torch.float64)
    rho = 2 * torch.rand(n, generator=g, dtype=torch.float64) - 1
    rho[:10], rho[10:20], rho[20:30] = 1.0, -1.0, 0.999
    v2[:10] = v1[:10]  # exact diagonal entries c = v1 = v2
    return rho * (v1 * v2).sqrt(), v1, v2


def _erf_prime(z):
    return 2 / math.sqrt(math.pi) * torch.exp(-z * z)


SMOOTH = [  # (phi, phi', dual, derivative dual)
    ("erf", torch.erf, _erf_prime, erf_dual, erf_dual_derivative),
    ("gelu", torch.nn.functional.gelu, None, q.gelu_dual, q.gelu_dual_derivative),
]


@pytest.mark.parametrize("name,phi,dphi,dual,ddual", SMOOTH, ids=[s[0] for s in SMOOTH])
def test_trapezoid_rule_matches_smooth_closed_forms_to_1e_13(name, phi, dphi, dual, ddual):
    c, v1, v2 = _covariances()
    k = q.gaussian_expectation(phi, phi, c, v1, v2, order=129)
    err = (k - dual(c, v1, v2)).abs().max().item()
    assert err < 1e-13, err
    act = q.quadrature_activation(phi, dphi)  # adaptive order, phi' by autograd for gelu
    kdot = act.dual_derivative(c, v1, v2)
    err_dot = (kdot - ddual(c, v1, v2)).abs().max().item()
    assert err_dot < 1e-10, err_dot


def test_hermite_rule_agrees_but_needs_more_nodes():
    c, v1, v2 = _covariances(n=60, vmax=4.0)
    exact = erf_dual(c, v1, v2)
    err = {n: (q.gaussian_expectation(torch.erf, torch.erf, c, v1, v2, order=n, rule="hermite") - exact).abs().max().item()
           for n in (128, 256)}
    assert err[256] < 1e-13 and err[128] > 1e-10  # Gauss-Hermite: 1e-9 at 128 where the trapezoid rule is at 1e-15


def test_gelu_closed_form_is_the_c_derivative_and_matches_torch_gelu():
    c, v1, v2 = _covariances(vmax=4.0)
    c = c.clone().requires_grad_(True)
    k = q.gelu_dual(c, v1, v2)
    (grad,) = torch.autograd.grad(k.sum(), c)
    torch.testing.assert_close(grad, q.gelu_dual_derivative(c.detach(), v1, v2), rtol=1e-12, atol=1e-13)
    z = torch.linspace(-6, 6, 101, dtype=torch.float64)
    torch.testing.assert_close(q.DEEP_ACTIVATIONS["gelu"].phi(z), torch.nn.functional.gelu(z), rtol=1e-15, atol=1e-15)
    pair = q.gelu_dual_pair(c.detach(), v1, v2)
    assert torch.equal(pair[0], k.detach()) and torch.equal(pair[1], q.gelu_dual_derivative(c.detach(), v1, v2))


def test_relu_quadrature_is_only_algebraically_accurate():
    c, v1, v2 = _covariances(n=100, vmax=4.0)
    step = lambda z: (z > 0).to(z.dtype)  # noqa: E731
    err = [(q.gaussian_expectation(torch.relu, torch.relu, c, v1, v2, order=n) - relu_dual(c, v1, v2)).abs().max().item()
           for n in (65, 257)]
    err_dot = (q.gaussian_expectation(step, step, c, v1, v2, order=257) - relu_dual_derivative(c, v1, v2)).abs().max().item()
    assert err[1] < 1e-3 and err[1] < err[0] / 4  # the documented lower accuracy: ~6e-4 at n = 257
    assert err_dot < 5e-2
    with pytest.warns(RuntimeWarning, match="did not reach"):
        assert q.choose_quadrature_order(torch.relu, 0.5, 2.0) == q.QUADRATURE_ORDERS["trapezoid"][-1]


def test_adaptive_order_meets_tol_for_tanh():
    # tanh has no closed form: compare the adaptive choice with the finest rule
    c, v1, v2 = _covariances(n=60, vmax=4.0)
    act = q.DEEP_ACTIVATIONS["tanh"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the adaptive choice must converge at these variances
        k, kdot = act.both(c, v1, v2)
    fine = q.gaussian_expectation(torch.tanh, torch.tanh, c, v1, v2, order=513)
    dfine = q.gaussian_expectation(act.phi_prime, act.phi_prime, c, v1, v2, order=513)
    assert (k - fine).abs().max().item() < 1e-10
    assert (kdot - dfine).abs().max().item() < 1e-10
    assert q.choose_quadrature_order(torch.erf, 0.1, 1.0) <= 65


def test_custom_callable_uses_autograd_and_follows_dtype_and_shape():
    act = q.resolve_activation(torch.sin)  # E[sin u sin v] = exp(-(v1+v2)/2) sinh(c)
    c, v1, v2 = torch.tensor([[0.3], [-0.2]], dtype=torch.float64), torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64), 1.5
    k = act.dual(c, v1, v2)
    assert k.shape == (2, 3) and k.dtype == torch.float64
    torch.testing.assert_close(k, torch.exp(-(v1 + v2) / 2) * torch.sinh(c), rtol=0, atol=1e-12)
    torch.testing.assert_close(act.dual_derivative(c, v1, v2), torch.exp(-(v1 + v2) / 2) * torch.cosh(c), rtol=0, atol=1e-12)
    k32 = act.dual(c.float(), v1.float(), torch.tensor(1.5))
    assert k32.dtype == torch.float32


def test_zero_variance_is_a_point_mass():
    zero = torch.zeros(3, dtype=torch.float64)
    v = torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64)
    k = q.gaussian_expectation(torch.cos, torch.cos, zero, zero, v, order=65)
    torch.testing.assert_close(k, torch.exp(-v / 2), rtol=0, atol=1e-14)  # cos(0) E[cos v]


def test_bad_input():
    with pytest.raises(ValueError, match="activation"):
        q.resolve_activation("softsign")
    with pytest.raises(ValueError, match="activation"):
        q.resolve_activation(3.0)
    with pytest.raises(ValueError, match="rule"):
        q.gaussian_rule(9, rule="simpson", like=torch.zeros(1))
    with pytest.raises(ValueError, match="order"):
        q.gaussian_rule(1, like=torch.zeros(1))
    with pytest.raises(ValueError, match="order"):
        q.gaussian_rule(500, rule="hermite", like=torch.zeros(1))
    with pytest.raises(ValueError, match="tol"):
        q.quadrature_activation(torch.tanh, tol=0)
    with pytest.raises(ValueError, match="phi"):
        q.quadrature_activation("tanh")
    with pytest.raises(ValueError, match="phi_prime"):
        q.quadrature_activation(torch.tanh, phi_prime=1.0)
    assert nk.resolve_activation("erf") is nk.ACTIVATIONS["erf"]
