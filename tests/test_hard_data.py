"""The harder data families: shapes, label balance, targets, seeding, geometry, bad input."""
import pytest
import torch

import nckernels as nk


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


FAMILIES = [
    (nk.four_class_gaussians, dict(class_sizes=[30, 20, 25, 35]), 4),
    (nk.anisotropic_gaussian_classes, dict(class_sizes=[30, 20, 25], means=(-1.0, 0.0, 1.0), stds=(0.5, 1.0, 2.0)), 3),
    (nk.xor_clusters, dict(class_sizes=[31, 40]), 2),
    (nk.concentric_shells, dict(class_sizes=[30, 20, 25], radii=(1.0, 2.0, 3.0)), 3),
]
IDS = [f[0].__name__ for f in FAMILIES]


@pytest.mark.parametrize("fn,kw,C", FAMILIES, ids=IDS)
@pytest.mark.parametrize("d", [1, 2, 7, 128])
def test_shapes_balance_and_seeding(fn, kw, C, d):
    data = fn(d=d, generator=_gen(), **kw)
    N = sum(kw["class_sizes"])
    assert isinstance(data, nk.ClassData)
    assert data.X.shape == (N, d) and data.X.dtype == torch.float64 and data.labels.shape == (N,)
    assert torch.bincount(data.labels, minlength=C).tolist() == list(kw["class_sizes"])
    assert torch.isfinite(data.X).all()
    again = fn(d=d, generator=_gen(), **kw)
    assert torch.equal(again.X, data.X) and torch.equal(again.labels, data.labels) and torch.equal(again.y, data.y)
    assert not torch.equal(fn(d=d, generator=_gen(1), **kw).X, data.X)
    shuffled = fn(d=d, generator=_gen(), shuffle=True, **kw)
    assert torch.bincount(shuffled.labels, minlength=C).tolist() == list(kw["class_sizes"])
    assert not torch.equal(shuffled.labels, data.labels)
    f32 = fn(d=d, generator=_gen(), dtype=torch.float32, **kw)
    assert f32.X.dtype == torch.float32 and f32.y.dtype == torch.float32


def test_four_class_targets_and_statistics():
    data = nk.four_class_gaussians([2000] * 4, 3, std=(0.5, 0.5, 1.0, 1.0), generator=_gen())
    assert data.y.shape == (8000,)
    assert torch.equal(data.y, torch.tensor([-3.0, -1.0, 1.0, 3.0], dtype=torch.float64)[data.labels])
    for c, (m, s) in enumerate(zip((-3.0, -1.0, 1.0, 3.0), (0.5, 0.5, 1.0, 1.0))):
        Xc = data.X[data.labels == c]
        assert Xc.mean().item() == pytest.approx(m, abs=0.05)
        assert Xc.std().item() == pytest.approx(s, rel=0.05)
    onehot = nk.four_class_gaussians([3] * 4, 2, targets="onehot", generator=_gen())
    assert onehot.y.shape == (12, 4) and torch.equal(onehot.y.argmax(1), onehot.labels)
    assert torch.equal(nk.four_class_gaussians([3] * 4, 2, targets="pm1", generator=_gen()).y, 2 * onehot.y - 1)


def test_anisotropic_covariances():
    d = 3
    stds = torch.tensor([[0.2, 1.0, 3.0], [1.0, 1.0, 1.0]], dtype=torch.float64)
    data = nk.anisotropic_gaussian_classes([4000, 4000], d, means=(0.0, 5.0), stds=stds, generator=_gen())
    for c in range(2):
        torch.testing.assert_close(data.X[data.labels == c].std(0), stds[c], rtol=0.05, atol=0)
    cov = torch.tensor([[2.0, 1.2, 0.0], [1.2, 1.0, 0.0], [0.0, 0.0, 0.0]], dtype=torch.float64)  # singular
    data = nk.anisotropic_gaussian_classes([20000, 10], d, means=(0.0, 1.0), covariances=torch.stack([cov, torch.eye(3)]),
                                           generator=_gen())
    X0 = data.X[data.labels == 0]
    torch.testing.assert_close(torch.cov(X0.T), cov, rtol=0, atol=0.08)
    assert X0[:, 2].abs().max() < 1e-12  # the zero-variance direction stays at its mean
    assert data.y.shape == (20010,) and set(data.y.tolist()) == {-1.0, 1.0}


@pytest.mark.parametrize("d", [1, 2, 16])
def test_xor_is_not_linearly_separable(d):
    data = nk.xor_clusters([2000, 2000], d, m=2.0, std=0.3, generator=_gen())
    # class means coincide (each class is a symmetric pair of clusters), so the best linear fit explains ~nothing
    X1 = torch.cat([data.X, torch.ones(len(data.X), 1, dtype=data.X.dtype)], 1)
    w = torch.linalg.lstsq(X1, data.y[:, None]).solution
    acc = ((X1 @ w).squeeze(1).sign() == data.y).double().mean().item()
    assert acc < 0.8 if d == 1 else acc < 0.6
    if d == 1:
        centres = torch.tensor([-6.0, -2.0, 2.0, 6.0], dtype=torch.float64)
        nearest = (data.X - centres).abs().argmin(1)
        assert torch.equal(nearest % 2, data.labels)  # -3m, -m, m, 3m labelled 0, 1, 0, 1
    else:
        sign = (data.X[:, 0] * data.X[:, 1] > 0).long()
        assert (sign == data.labels).double().mean().item() > 0.99
        assert d == 2 or data.X[:, 2:].abs().max() < 0.3 * 6


@pytest.mark.parametrize("d", [1, 3, 64])
def test_shell_radii(d):
    data = nk.concentric_shells([500, 500], d, radii=(1.0, 2.0), noise=0.0, generator=_gen())
    r = data.X.norm(dim=1) / d ** 0.5
    torch.testing.assert_close(r, torch.tensor([1.0, 2.0], dtype=torch.float64)[data.labels], rtol=1e-12, atol=0)
    noisy = nk.concentric_shells([3000, 3000], d, radii=(1.0, 2.0), noise=0.1, generator=_gen())
    for c, rc in enumerate((1.0, 2.0)):
        sq = (noisy.X[noisy.labels == c] ** 2).sum(1) / d
        assert sq.mean().item() == pytest.approx(rc**2 + 0.01, rel=0.02)
    if d == 1:
        assert (data.X > 0).double().mean().item() == pytest.approx(0.5, abs=0.05)


def test_bad_input():
    g = _gen()
    with pytest.raises(ValueError, match="class_sizes"):
        nk.four_class_gaussians([5, 5, 5], 2, generator=g)
    with pytest.raises(ValueError, match="class_sizes"):
        nk.xor_clusters([5, 5, 5], 2)
    with pytest.raises(ValueError, match="class_sizes"):
        nk.concentric_shells([5], 2)
    with pytest.raises(ValueError, match="class_sizes"):
        nk.anisotropic_gaussian_classes([5, 0], 2, stds=1.0)
    with pytest.raises(ValueError, match="class_sizes"):
        nk.concentric_shells(10, 2)
    with pytest.raises(ValueError, match="d"):
        nk.xor_clusters([5, 5], 0)
    with pytest.raises(TypeError, match="d"):
        nk.concentric_shells([5, 5], 2.5)
    with pytest.raises(ValueError, match="targets"):
        nk.four_class_gaussians([5] * 4, 2, targets="ordinal")
    with pytest.raises(ValueError, match="targets"):
        nk.xor_clusters([5, 5], 2, targets="scalar")
    with pytest.raises(ValueError, match="means"):
        nk.four_class_gaussians([5] * 4, 2, means=(1.0, 2.0))
    with pytest.raises(ValueError, match="std"):
        nk.four_class_gaussians([5] * 4, 2, std=(0.5, -0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="std"):
        nk.xor_clusters([5, 5], 2, std=0.0)
    with pytest.raises(ValueError, match="m"):
        nk.xor_clusters([5, 5], 2, m=-1.0)
    with pytest.raises(ValueError, match="stds"):
        nk.anisotropic_gaussian_classes([5, 5], 3, stds=torch.ones(2, 2))
    with pytest.raises(ValueError, match="stds"):
        nk.anisotropic_gaussian_classes([5, 5], 3, stds=(1.0, 0.0))
    with pytest.raises(ValueError, match="stds and covariances"):
        nk.anisotropic_gaussian_classes([5, 5], 3)
    with pytest.raises(ValueError, match="covariances"):
        nk.anisotropic_gaussian_classes([5, 5], 2, covariances=torch.tensor([[[1.0, 0.0], [0.0, -1.0]]] * 2))
    with pytest.raises(ValueError, match="covariances"):
        nk.anisotropic_gaussian_classes([5, 5], 2, covariances=torch.tensor([[[1.0, 0.5], [0.0, 1.0]]] * 2))
    with pytest.raises(ValueError, match="covariances"):
        nk.anisotropic_gaussian_classes([5, 5], 2, covariances=torch.eye(2))
    with pytest.raises(ValueError, match="radii"):
        nk.concentric_shells([5, 5], 2, radii=(1.0, 1.0))
    with pytest.raises(ValueError, match="radii"):
        nk.concentric_shells([5, 5], 2, radii=(1.0, -2.0))
    with pytest.raises(ValueError, match="radii"):
        nk.concentric_shells([5, 5], 2, radii=(1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match="noise"):
        nk.concentric_shells([5, 5], 2, noise=-0.1)
    with pytest.raises(TypeError, match="generator"):
        nk.xor_clusters([5, 5], 2, generator=0)
    with pytest.raises(TypeError, match="dtype"):
        nk.xor_clusters([5, 5], 2, dtype=torch.int64)
