"""Empirical NTK (two methods, autograd loop, wide-net limit), block statistics, probed training, loaders."""
import pytest
import torch

import nckernels as nk
from nckernels.datasets import class_balanced_subset, load_digits, load_npz
from nckernels.empirical_ntk import (
    MLPClassifier,
    TwoLayerNTKNet,
    block_means,
    empirical_ntk,
    feature_ntk,
    invariant_stats,
    kernel_alignment,
    output_ntk,
    train_with_ntk_probes,
)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _small(seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(5, 4, dtype=dtype, generator=g)
    return X, MLPClassifier(4, (6, 3), 3, activation="tanh", generator=g, dtype=dtype)


def _autograd_loop_ntk(model, X, forward):
    """Reference: one torch.autograd.grad call per (sample, output), then all inner products."""
    params = [p for p in model.parameters()]
    rows = []
    for x in X:
        out = forward(model, x[None])[0]
        grads = [torch.autograd.grad(o, params, retain_graph=True) for o in out]
        rows.append(torch.stack([torch.cat([g.reshape(-1) for g in gs]) for gs in grads]))
    J = torch.stack(rows)  # (n, k, P)
    return torch.einsum("nap,mbp->nmab", J, J)


@pytest.mark.parametrize("which", ["output", "features"])
def test_two_methods_and_autograd_loop_agree(which):
    X, model = _small()
    fn = (lambda m, x: m(x)) if which == "output" else (lambda m, x: m.features(x))
    rev = empirical_ntk(model, X, forward=fn)
    fwd = empirical_ntk(model, X, forward=fn, method="jacfwd", chunk_size=2)
    ref = _autograd_loop_ntk(model, X, fn) if which == "output" else None
    assert rev.shape == (5, 5, 3, 3)
    assert torch.allclose(rev, fwd, atol=1e-12)
    if ref is not None:
        assert torch.allclose(rev, ref, atol=1e-12)
    assert torch.equal(rev, rev.permute(1, 0, 3, 2))
    md = empirical_ntk(model, X, forward=fn, mode="mean_diagonal")
    assert torch.allclose(md, rev.diagonal(dim1=2, dim2=3).mean(-1), atol=1e-12)


def test_feature_ntk_matches_autograd_loop_on_body():
    X, model = _small(1)
    body_only = torch.nn.Sequential(*model.body)  # same parameters, without the head
    ref = _autograd_loop_ntk(body_only, X, lambda m, x: m(x))
    assert torch.allclose(feature_ntk(model, X), ref, atol=1e-12)


def test_output_ntk_decomposes_through_the_head():
    """f = W h + b: Theta^f = W Theta^h W^T + (h.h' + 1) I_C exactly."""
    X, model = _small(2)
    Kh, Kf = feature_ntk(model, X), output_ntk(model, X)
    W = model.head.weight.detach()
    H = model.features(X).detach()
    pred = torch.einsum("ca,nmab,db->nmcd", W, Kh, W) + (H @ H.T + 1)[:, :, None, None] * torch.eye(3, dtype=X.dtype)
    assert torch.allclose(pred, Kf, atol=1e-12)


def test_cross_kernel_blocks_agree_with_joint_kernel():
    X, model = _small(3)
    full = output_ntk(model, X, mode="mean_diagonal")
    cross = output_ntk(model, X[:2], X[2:], mode="mean_diagonal")
    assert torch.allclose(cross, full[:2, 2:], atol=1e-12)


@pytest.mark.parametrize("activation", ["erf", "relu"])
def test_wide_two_layer_net_approaches_closed_form(activation):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(4, 3, dtype=torch.float64, generator=g)
    kw = dict(activation=activation, sigma_w=1.3, sigma_b=0.4, sigma_a=0.9)
    T = nk.ntk(X, **kw)
    errs = []
    for width in (64, 16384):
        net = TwoLayerNTKNet(3, width, generator=g, **kw)
        E = empirical_ntk(net, X)[:, :, 0, 0]
        errs.append(float(torch.linalg.matrix_norm(E - T) / torch.linalg.matrix_norm(T)))
    assert errs[1] < 0.05
    assert errs[1] < errs[0]


def test_block_statistics_on_hand_made_kernel():
    labels = torch.tensor([2, 0, 1, 0, 2, 1, 1, 0, 2])  # shuffled classes
    same = labels[:, None] == labels[None, :]
    K = torch.where(same, 0.5, 0.1).to(torch.float64)
    K.fill_diagonal_(2.0)
    bm = block_means(K, labels)
    assert (bm.diagonal, bm.same_class, bm.other_class) == pytest.approx((2.0, 0.5, 0.1))
    YY = same.to(torch.float64)
    assert kernel_alignment(YY, labels) == pytest.approx(1.0)
    assert kernel_alignment(3.0 * YY, labels) == pytest.approx(1.0)
    expected = float((K * YY).sum() / (K.norm() * YY.norm()))
    assert kernel_alignment(K, labels) == pytest.approx(expected)
    assert kernel_alignment(torch.ones(9, 9, dtype=torch.float64), labels) == pytest.approx(1 / 3**0.5)


def test_invariant_stats_zero_when_balanced():
    g = torch.Generator().manual_seed(0)
    K = torch.eye(6, dtype=torch.float64) * 2.0
    H = torch.randn(6, 3, dtype=torch.float64, generator=g)
    # W^T W = H^T K^{-1} H = H^T H / 2: take W = H / sqrt(2) (6 "classes" as rows is allowed here)
    s = invariant_stats(H / 2**0.5, H, K)
    assert s.norm < 1e-12 and s.alignment == pytest.approx(1.0)
    s2 = invariant_stats(torch.randn(2, 3, dtype=torch.float64, generator=g), H, K)
    assert s2.norm > 0.01 and s2.alignment < 1.0
    assert nk.invariant(H / 2**0.5, H, K).abs().max() < 1e-12


def test_probed_training_records_and_learns():
    g = torch.Generator().manual_seed(0)
    data = nk.gaussian_classes([12, 12, 12], 5, means=torch.randn(3, 5, generator=g, dtype=torch.float64) * 2,
                               std=0.5, generator=g, shuffle=True)
    model = MLPClassifier(5, (16, 6), 3, generator=g)
    tr = train_with_ntk_probes(model, data.X, data.labels, steps=60, lr=0.02, probe_every=30, probe_per_class=4,
                               generator=g)
    f = tr.frame
    assert list(f["step"]) == [0, 30, 60]
    assert f["loss"].iloc[-1] < f["loss"].iloc[0]
    assert set(tr.feature_kernels) == {0, 30, 60} and tr.feature_kernels[0].shape == (12, 12)
    assert torch.equal(tr.probe_labels, torch.arange(3).repeat_interleave(4))
    for col in ("kappa_d", "gamma_n", "alignment feature", "invariant alignment", "nc1", "nc2", "nc3"):
        assert torch.isfinite(torch.tensor(f[col].to_numpy())).all()


def test_bad_input():
    X, model = _small()
    with pytest.raises(ValueError, match="model"):
        empirical_ntk(lambda x: x, X)
    with pytest.raises(ValueError, match="mode"):
        empirical_ntk(model, X, mode="trace")
    with pytest.raises(ValueError, match="method"):
        empirical_ntk(model, X, method="finite_difference")
    with pytest.raises(ValueError, match="Z"):
        empirical_ntk(model, X, torch.zeros(2, 7, dtype=X.dtype))
    with pytest.raises(ValueError, match="X"):
        empirical_ntk(model, X[0])
    with pytest.raises(ValueError, match="X"):
        empirical_ntk(model, X * float("nan"))
    with pytest.raises(ValueError, match="features"):
        feature_ntk(torch.nn.Linear(4, 2).double(), X)
    labels = torch.tensor([0, 0, 1, 1, 2])
    with pytest.raises(ValueError, match="two samples"):
        block_means(torch.eye(5, dtype=torch.float64), labels)
    with pytest.raises(ValueError, match="labels"):
        kernel_alignment(torch.eye(5, dtype=torch.float64), labels[:4])
    with pytest.raises(ValueError, match="K must be square"):
        block_means(torch.ones(5, 4, dtype=torch.float64), labels)
    with pytest.raises(ValueError, match="positive definite"):
        invariant_stats(torch.ones(3, 2, dtype=torch.float64), torch.ones(5, 2, dtype=torch.float64),
                        torch.zeros(5, 5, dtype=torch.float64))
    with pytest.raises(ValueError, match="lr"):
        train_with_ntk_probes(model, X, torch.tensor([0, 0, 1, 1, 2, ]), steps=1, lr=0.0)
    with pytest.raises(ValueError, match="head"):
        train_with_ntk_probes(model, X, torch.tensor([0, 0, 1, 1, 1]), steps=1, lr=0.1)
    with pytest.raises(ValueError, match="per_class"):
        class_balanced_subset(labels, 3)


def test_digits_loader_and_npz(tmp_path):
    X, labels = load_digits()
    assert X.shape == (1797, 64) and X.dtype == torch.float64 and set(labels.tolist()) == set(range(10))
    assert torch.allclose(X.mean(0), torch.zeros(64, dtype=X.dtype), atol=1e-10)
    import numpy as np

    np.savez(tmp_path / "d.npz", x_train=np.zeros((4, 2, 2), dtype=np.uint8) + 255, y_train=np.array([0, 1, 0, 1]))
    Xn, ln = load_npz(tmp_path / "d.npz", standardize=False)
    assert Xn.shape == (4, 4) and float(Xn.max()) == 1.0 and ln.tolist() == [0, 1, 0, 1]
    with pytest.raises(ValueError, match="x_test"):
        load_npz(tmp_path / "d.npz", x_key="x_test")
    with pytest.raises(ValueError, match="path"):
        load_npz(tmp_path / "missing.npz")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_empirical_ntk_and_training_on_cuda():
    X, model = _small()
    ref = output_ntk(model, X)
    Xc, mc = X.cuda(), model.cuda()
    got = output_ntk(mc, Xc)
    assert got.device.type == "cuda" and torch.allclose(got.cpu(), ref, atol=1e-10)
    g = torch.Generator().manual_seed(0)
    data = nk.gaussian_classes([6, 6], 4, generator=g, device="cuda")
    m2 = MLPClassifier(4, (8, 4), 2, generator=g, device="cuda")
    tr = train_with_ntk_probes(m2, data.X, data.labels, steps=10, lr=0.01, probe_every=5, probe_per_class=3)
    assert tr.feature_kernels[10].device.type == "cuda"


def test_empirical_ntk_module_holds_no_models():
    import nckernels.kernels.empirical as kernel_module

    assert not hasattr(kernel_module, "MLPClassifier") and not hasattr(kernel_module, "train_with_ntk_probes")
    assert MLPClassifier is nk.MLPClassifier and TwoLayerNTKNet is nk.TwoLayerNTKNet


def test_probed_training_divergence_is_a_divergence_error():
    g = torch.Generator().manual_seed(0)
    data = nk.gaussian_classes([8, 8], 3, generator=g)
    model = MLPClassifier(3, (6,), 2, generator=g)
    with pytest.raises(nk.DivergenceError, match="diverged") as info:
        train_with_ntk_probes(model, data.X * 100, data.labels, steps=40, lr=50.0, probe_every=100, probe_per_class=3)
    assert info.value.epoch is not None


def test_train_probed_mlp_builds_its_model_like_X():
    """The model of train_probed_mlp has X's dtype and device (float32 here; tests/test_cuda.py for CUDA)."""
    data = nk.gaussian_classes([6, 6], 3, generator=torch.Generator().manual_seed(0), dtype=torch.float32)
    tr = nk.train_probed_mlp(data.X, data.labels, [8], steps=4, lr=0.01, probe_every=2, seed=0, probe_per_class=3)
    assert tr.feature_kernels[4].dtype == torch.float32 and list(tr.frame["step"]) == [0, 2, 4]
