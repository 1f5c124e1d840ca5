"""The fused CPU training step: the erf built from exp(-z^2), its fit, and fused training against the eager step."""
import math
import warnings

import numpy as np
import pytest
import torch
from scipy.special import erf as scipy_erf

import nckernels as nk
import nckernels.training as training
from nckernels.fused import (
    ERF_ABS_ERROR,
    ERF_FLOAT32_ABS_ERROR,
    ERF_Q,
    ERF_TAIL_P,
    erf_and_gaussian,
    erf_approximation_error,
    fit_erf_approximation,
    hidden_and_slope,
)
from nckernels.training import TrainingConfig, train_networks

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _grid(dtype):
    z = torch.linspace(-7.0, 7.0, 1_400_001, dtype=torch.float64)
    return z, torch.from_numpy(scipy_erf(z.numpy())), z.to(dtype)


def test_erf_from_gaussian_is_within_its_stated_error():
    z, truth, _ = _grid(torch.float64)
    approx, gauss = erf_and_gaussian(z)
    err = (approx - truth).abs().max().item()
    assert err <= ERF_ABS_ERROR
    assert err > ERF_ABS_ERROR / 10  # the stated bound is tight, not a loose guess
    assert torch.equal(gauss, torch.exp(-z * z))


def test_erf_from_gaussian_in_float32_stays_near_torch_erf():
    z, truth, z32 = _grid(torch.float32)
    approx, gauss = erf_and_gaussian(z32)
    assert approx.dtype == torch.float32
    assert (approx.double() - truth).abs().max().item() <= ERF_FLOAT32_ABS_ERROR
    assert (approx - torch.erf(z32)).abs().max().item() <= ERF_FLOAT32_ABS_ERROR + 1e-7
    torch.testing.assert_close(gauss, torch.exp(-z32 * z32), rtol=0, atol=0)


def test_erf_approximation_error_reports_both_errors():
    e32 = erf_approximation_error(torch.float32, points=200_001)
    assert ERF_FLOAT32_ABS_ERROR / 10 < e32["fused"] <= ERF_FLOAT32_ABS_ERROR
    assert e32["torch"] < e32["fused"]
    e64 = erf_approximation_error(torch.float64, points=200_001)
    assert e64["fused"] <= ERF_ABS_ERROR and e64["torch"] < 1e-15
    with pytest.raises(ValueError, match="dtype"):
        erf_approximation_error(torch.float16)
    with pytest.raises(ValueError, match="points"):
        erf_approximation_error(points=1)


def test_erf_from_gaussian_is_odd_and_saturates():
    z = torch.randn(10_000, generator=torch.Generator().manual_seed(3), dtype=torch.float64) * 3
    torch.testing.assert_close(erf_and_gaussian(-z)[0], -erf_and_gaussian(z)[0], rtol=0, atol=0)
    big = torch.tensor([-math.inf, -30.0, 30.0, math.inf], dtype=torch.float64)
    assert erf_and_gaussian(big)[0].tolist() == [-1.0, -1.0, 1.0, 1.0]
    assert torch.isnan(erf_and_gaussian(torch.tensor([math.nan]))[0]).all()


def test_refit_reproduces_the_stored_coefficients():
    fit = fit_erf_approximation()
    np.testing.assert_allclose(fit["q"], ERF_Q, rtol=0, atol=1e-9)
    assert fit["abs_error"] <= ERF_ABS_ERROR
    lower = fit_erf_approximation(degree=5, p=ERF_TAIL_P)
    assert lower["abs_error"] > 5 * fit["abs_error"]  # one degree less is visibly worse
    with pytest.raises(ValueError, match="degree"):
        fit_erf_approximation(degree=0)
    with pytest.raises(ValueError, match="p must be positive"):
        fit_erf_approximation(p=-1.0)


@pytest.mark.parametrize("d0", [2, 9])  # Z by outer products, and by a GEMM
@pytest.mark.parametrize("activation", ["erf", "relu"])
def test_hidden_and_slope_matches_the_definitions(d0, activation):
    gen = torch.Generator().manual_seed(d0)
    X = torch.randn(3, 7, d0, generator=gen, dtype=torch.float64)
    WT = torch.randn(3, d0, 11, generator=gen, dtype=torch.float64)
    b = torch.randn(3, 1, 11, generator=gen, dtype=torch.float64)
    Z = X @ WT + b
    act = nk.get_activation(activation)
    const = 2 / math.sqrt(math.pi) if activation == "erf" else 1.0
    for k in (1, 3):
        aT = torch.randn(3, k, 11, generator=gen, dtype=torch.float64)
        H, S, f = hidden_and_slope(X, WT, b, aT, activation, fast_erf=False)
        torch.testing.assert_close(H, act.phi(Z))
        torch.testing.assert_close(const * S, act.phi_prime(Z))
        torch.testing.assert_close(f, act.phi(Z) @ aT.transpose(1, 2))
    with pytest.raises(ValueError, match="activation"):
        hidden_and_slope(X, WT, b, aT, "tanh", fast_erf=False)


def test_each_kind_of_call_gets_its_own_compiled_function_and_dynamo_cache():
    # Dynamo caches per code object and stops recompiling one after recompile_limit shapes/constants,
    # running it uncompiled from then on; separate code objects keep each kind of call under that limit.
    from nckernels.fused import compiled_hidden_and_slope

    a = compiled_hidden_and_slope(("test", 1))
    b = compiled_hidden_and_slope(("test", 2))
    assert compiled_hidden_and_slope(("test", 1)) is a and a is not b
    code_a, code_b = (f._torchdynamo_orig_callable.__code__ for f in (a, b))
    assert code_a is not code_b and code_a.co_code == code_b.co_code
    X, WT, bias, aT = torch.randn(2, 5, 2), torch.randn(2, 2, 4), torch.randn(2, 1, 4), torch.randn(2, 1, 4)
    torch.testing.assert_close(a._torchdynamo_orig_callable(X, WT, bias, aT, "erf", False)[0],
                               torch.erf(X @ WT + bias))


def _data(N=(40, 40), d0=1, R=3, dtype=torch.float32, classes=None):
    gen = torch.Generator().manual_seed(d0)
    sizes = list(N) if classes is None else [N[0]] * classes
    kw = {} if classes is None else {"means": torch.linspace(-2, 2, classes).tolist()}
    draws = [nk.gaussian_classes(sizes, d0, generator=gen, **kw) for _ in range(R)]
    return torch.stack([d.X for d in draws]).to(dtype), torch.stack([d.labels for d in draws])


CFG = TrainingConfig(width=64, epochs=60, lr=0.01, momentum=0.5, record_epochs=(0, 60))


@pytest.mark.parametrize("d0", [1, 12])  # Z by outer products (K <= 4) and by a GEMM
def test_fused_float32_training_follows_the_eager_step(d0):
    X, L = _data(N=(40, 39), d0=d0)  # 79 rows in blocks of 24: the fused step pads them to 4 x 20
    fused = train_networks(X, L, [1, 2, 3], CFG, fused=True, block_elements=3 * 64 * 24)
    eager = train_networks(X, L, [1, 2, 3], CFG, fused=False, block_elements=3 * 64 * 24)
    assert (fused.step, eager.step) == ("fused", "eager")
    for name in ("W", "b", "a", "b2"):
        torch.testing.assert_close(getattr(fused.params, name), getattr(eager.params, name), rtol=1e-4, atol=2e-5)
    nc1_f, nc1_e = fused.final()["nc1"].to_numpy(), eager.final()["nc1"].to_numpy()
    np.testing.assert_allclose(nc1_f, nc1_e, rtol=1e-3)
    loss = fused.history.groupby("epoch")["loss"].mean()
    assert loss[60] < 0.5 * loss[0]  # it trained


def test_fused_float64_and_multiclass_relu_equal_the_eager_step():
    # float64 keeps torch.erf inside the compiled loop: the same arithmetic up to rounding.
    X, L = _data(N=(41, 40), d0=3, dtype=torch.float64)  # 81 rows: padded to 5 blocks of 17
    f = train_networks(X, L, [4, 5, 6], CFG, fused=True, block_elements=3 * 64 * 20)
    e = train_networks(X, L, [4, 5, 6], CFG, fused=False, block_elements=3 * 64 * 20)
    for name in ("W", "b", "a", "b2"):
        torch.testing.assert_close(getattr(f.params, name), getattr(e.params, name), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(f.final()["loss"].to_numpy(), e.final()["loss"].to_numpy(), rtol=1e-10)
    X3, L3 = _data(N=(20,), d0=6, dtype=torch.float64, classes=3)
    cfg = TrainingConfig(width=32, epochs=40, lr=0.01, activation="relu")
    f3 = train_networks(X3, L3, [1, 2, 3], cfg, fused=True)
    e3 = train_networks(X3, L3, [1, 2, 3], cfg, fused=False)
    assert f3.params.a.shape[2] == 3
    torch.testing.assert_close(f3.params.W, e3.params.W, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(f3.params.a, e3.params.a, rtol=1e-10, atol=1e-12)


def test_fused_auto_picks_by_size_and_bad_values_raise():
    X, L = _data()
    assert train_networks(X, L, [1, 2, 3], CFG).step == "eager"  # far below FUSED_AUTO_MIN_WORK
    for bad in ("yes", 1, None):
        with pytest.raises(ValueError, match="fused must be True, False or 'auto'"):
            train_networks(X, L, [1, 2, 3], CFG, fused=bad)


def test_failed_compilation_falls_back_under_auto_and_raises_when_asked(monkeypatch):
    def broken(key=()):
        def step(*args):
            raise RuntimeError("no C++ compiler")
        return step

    monkeypatch.setattr(training, "compiled_hidden_and_slope", broken)
    monkeypatch.setattr(training, "FUSED_AUTO_MIN_WORK", 0)
    X, L = _data()
    with pytest.warns(RuntimeWarning, match="no C\\+\\+ compiler"):
        res = train_networks(X, L, [1, 2, 3], CFG)
    assert res.step == "eager"
    torch.testing.assert_close(res.params.W, train_networks(X, L, [1, 2, 3], CFG, fused=False).params.W)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(RuntimeError, match="no C\\+\\+ compiler"):
            train_networks(X, L, [1, 2, 3], CFG, fused=True)
