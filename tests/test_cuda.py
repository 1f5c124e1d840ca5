"""The kernels on CUDA agree with the CPU (skipped without a CUDA device)."""
import pytest
import torch

import nckernels as nk
from nckernels.grids import kernel_nc1_grid

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_kernels_on_cuda_match_cpu(dtype):
    data = nk.gaussian_classes([50, 70], 16, generator=torch.Generator().manual_seed(0), dtype=dtype)
    Xg = data.X.to("cuda")
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-12)
    for act in ("erf", "relu"):
        for fn in (nk.nngp, nk.ntk, nk.derivative_kernel):
            Kg = fn(Xg, activation=act, sigma_b=0.2)
            assert Kg.device.type == "cuda" and Kg.dtype == dtype
            torch.testing.assert_close(Kg.cpu(), fn(data.X, activation=act, sigma_b=0.2), **tol)
    K = nk.ntk(Xg)
    r_gpu = nk.nc1_from_kernel(K, data.labels.to("cuda"))
    r_cpu = nk.nc1_from_kernel(K.cpu(), data.labels)
    assert r_gpu.nc1 == pytest.approx(r_cpu.nc1, rel=1e-4 if dtype == torch.float32 else 1e-10)
    assert nk.nc1_from_features(Xg, data.labels.to("cuda")).nc1 == pytest.approx(nk.nc1_from_features(data.X, data.labels).nc1, rel=1e-4)


def test_finite_width_and_grid_on_cuda():
    X = nk.gaussian_classes([4, 4], 3, generator=torch.Generator().manual_seed(1)).X.cuda()
    mc = nk.finite_width_kernels(X, width=200_000, generator=torch.Generator(device="cuda").manual_seed(0))
    assert mc.nngp.device.type == "cuda"
    assert ((mc.nngp - nk.nngp(X)).abs() <= 5 * mc.nngp_se + 1e-12).all()
    f = kernel_nc1_grid([[64, 64]], [2, 32], 2, device="cuda")
    g = kernel_nc1_grid([[64, 64]], [2, 32], 2)
    assert (f.status == "ok").all()
    torch.testing.assert_close(torch.tensor(f["nc1"].to_numpy()), torch.tensor(g["nc1"].to_numpy()), rtol=1e-9, atol=0)


def test_chapter_12_and_13_grids_on_cuda_match_cpu():
    kw = dict(activations=["erf", "relu"], depths=[1, 3])
    f = nk.deep_kernel_grid([[32, 32]], [2, 16], 1, device="cuda", **kw)
    g = nk.deep_kernel_grid([[32, 32]], [2, 16], 1, **kw)
    assert (f.status == "ok").all() and len(f) == len(g)
    torch.testing.assert_close(torch.tensor(f["nc1"].to_numpy()), torch.tensor(g["nc1"].to_numpy()), rtol=1e-9, atol=0)
    families = {"xor": [16, 16], "shells": [16, 16]}
    f = nk.hard_data_grid(families, [2, 8], 1, train=False, device="cuda")
    g = nk.hard_data_grid(families, [2, 8], 1, train=False)
    torch.testing.assert_close(torch.tensor(f["nc1"].to_numpy()), torch.tensor(g["nc1"].to_numpy()), rtol=1e-9, atol=0)
