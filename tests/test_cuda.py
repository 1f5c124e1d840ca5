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


# Chapters 9-11 (device parameter): the data are drawn by CPU generators and moved, the models built on the data's
# device; every heavy path runs there, returns tensors there, and agrees with the same run on the CPU.
CUDA = torch.device("cuda")


def _assert_frames_close(gpu, cpu, rtol=1e-6, atol=1e-9):
    assert list(gpu.columns) == list(cpu.columns) and len(gpu) == len(cpu)
    numeric = cpu.select_dtypes("number").columns
    torch.testing.assert_close(torch.tensor(gpu[numeric].to_numpy(dtype=float)),
                               torch.tensor(cpu[numeric].to_numpy(dtype=float)), rtol=rtol, atol=atol, equal_nan=True)


def test_chapter_09_empirical_ntk_on_cuda_matches_cpu():
    kw = dict(activation="erf", sigma_w=1.5, sigma_b=0.5, sigma_a=1.0)
    X = torch.randn(6, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    nets = {dev: nk.TwoLayerNTKNet(3, 256, generator=torch.Generator().manual_seed(1), device=dev, **kw)
            for dev in (None, CUDA)}
    assert nets[CUDA].W.device.type == CUDA.type
    emp = nk.empirical_ntk(nets[CUDA], X.to(CUDA))
    assert emp.device.type == CUDA.type and emp.dtype == torch.float64
    torch.testing.assert_close(emp.cpu(), nk.empirical_ntk(nets[None], X), rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="X is on"):
        nk.empirical_ntk(nets[CUDA], X)  # the model on the GPU, X on the CPU
    g = torch.Generator().manual_seed(2)
    data = nk.gaussian_classes([10, 10, 10], 5, means=torch.randn(3, 5, generator=g, dtype=torch.float64),
                               std=1.0, generator=g, shuffle=True)
    runs = {dev: nk.train_probed_mlp(data.X.to(dev), data.labels.to(dev), [16, 8], steps=40, lr=0.02, probe_every=20,
                                     seed=3, probe_per_class=3) for dev in (torch.device("cpu"), CUDA)}
    gpu, cpu = runs[CUDA], runs[torch.device("cpu")]
    assert gpu.feature_kernels[40].device.type == CUDA.type and gpu.probe_index.device.type == CUDA.type
    assert torch.equal(gpu.probe_index.cpu(), cpu.probe_index)  # one seed: the same probes on every device
    _assert_frames_close(gpu.frame, cpu.frame)
    torch.testing.assert_close(gpu.feature_kernels[40].cpu(), cpu.feature_kernels[40], rtol=1e-6, atol=1e-9)


def test_chapter_10_deep_rfm_on_cuda_matches_cpu():
    X, labels = nk.load_digits()
    sub = nk.class_balanced_subset(labels, 12, generator=torch.Generator().manual_seed(0))
    X, labels = X[sub], labels[sub]
    runs = {dev: nk.deep_rfm(X.to(dev), labels.to(dev), X_test=X[:20].to(dev), labels_test=labels[:20].to(dev),
                             depth=3, width=64, keep=(2,), generator=torch.Generator().manual_seed(1))
            for dev in (torch.device("cpu"), CUDA)}
    gpu, cpu = runs[CUDA], runs[torch.device("cpu")]
    assert gpu.kept[2]["input"].device.type == CUDA.type and gpu.spectra[0].device.type == "cpu"
    _assert_frames_close(gpu.frame, cpu.frame)
    torch.testing.assert_close(gpu.kept[2]["input"].cpu(), cpu.kept[2]["input"], rtol=1e-6, atol=1e-9)
    fit = nk.krr_fit(X.to(CUDA), nk.class_targets(labels, 10, encoding="pm1_onehot"), bandwidth=2.0, ridge=1e-3)
    G = nk.kernel_agop(fit)
    assert fit.alpha.device.type == CUDA.type and G.device.type == CUDA.type
    G_cpu = nk.kernel_agop(nk.krr_fit(X, nk.class_targets(labels, 10, encoding="pm1_onehot"), bandwidth=2.0, ridge=1e-3))
    torch.testing.assert_close(G.cpu(), G_cpu, rtol=1e-8, atol=1e-12)


def test_chapter_10_adaptive_kernel_on_cuda_matches_cpu():
    data = nk.gaussian_classes([16, 16], 6, std=2.0, generator=torch.Generator().manual_seed(4))
    gpu = nk.solve_adaptive_kernel(data.X.to(CUDA), data.y.to(CUDA), width=100)
    cpu = nk.solve_adaptive_kernel(data.X, data.y, width=100)
    assert gpu.Sigma.device.type == CUDA.type and gpu.kernel.device.type == CUDA.type
    torch.testing.assert_close(gpu.Sigma.cpu(), cpu.Sigma, rtol=1e-6, atol=1e-10)


def test_chapter_11_trained_mlp_and_nfa_on_cuda_match_cpu():
    X, labels = nk.load_digits()
    sub = nk.class_balanced_subset(labels, 10, generator=torch.Generator().manual_seed(0))
    X, labels = X[sub], labels[sub]
    runs = {dev: nk.train_mlp(X.to(dev), labels.to(dev), X_test=X[:20].to(dev), labels_test=labels[:20].to(dev),
                              depth=2, width=16, epochs=4, batch_size=25, checkpoints=(0, 4),
                              generator=torch.Generator().manual_seed(1))
            for dev in (torch.device("cpu"), CUDA)}
    gpu, cpu = runs[CUDA], runs[torch.device("cpu")]
    assert next(gpu.model.parameters()).device.type == CUDA.type
    _assert_frames_close(gpu.history, cpu.history)
    _assert_frames_close(nk.mlp_layer_analysis(gpu.model, X.to(CUDA), labels.to(CUDA)),
                         nk.mlp_layer_analysis(cpu.model, X, labels))
    G = nk.model_agop(lambda z: gpu.model.tail(z, 1), gpu.model.layer_inputs(X.to(CUDA))[1].detach())
    assert G.device.type == CUDA.type
    G_cpu = nk.model_agop(lambda z: cpu.model.tail(z, 1), cpu.model.layer_inputs(X)[1].detach())
    torch.testing.assert_close(G.cpu(), G_cpu, rtol=1e-6, atol=1e-10)
    with pytest.raises(ValueError, match="X is on"):
        nk.mlp_layer_analysis(gpu.model, X, labels)  # the model on the GPU, X on the CPU
