import pytest
import torch

import nckernels as nk


def test_shapes_labels_targets_and_reproducibility():
    d = nk.gaussian_classes([3, 5], 4, generator=torch.Generator().manual_seed(0))
    assert d.X.shape == (8, 4) and d.X.dtype == torch.float64
    assert d.labels.tolist() == [0] * 3 + [1] * 5
    assert d.y.tolist() == [-1.0] * 3 + [1.0] * 5
    again = nk.gaussian_classes([3, 5], 4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(d.X, again.X)


def test_class_statistics_follow_means_and_std():
    d = nk.gaussian_classes([20000, 20000], 3, means=(-1.0, 2.5), std=0.7, generator=torch.Generator().manual_seed(1))
    for c, m in enumerate((-1.0, 2.5)):
        Xc = d.X[d.labels == c]
        torch.testing.assert_close(Xc.mean(0), torch.full((3,), m, dtype=torch.float64), atol=5 * 0.7 / 141, rtol=0)
        torch.testing.assert_close(Xc.std(0), torch.full((3,), 0.7, dtype=torch.float64), atol=0.02, rtol=0)


def test_matrix_means_many_classes_and_shuffle():
    means = torch.arange(12, dtype=torch.float64).reshape(3, 4)
    d = nk.gaussian_classes([2, 3, 4], 4, means=means, std=1e-9, shuffle=True, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(d.X, means[d.labels], atol=1e-7, rtol=0)
    assert d.y.shape == (9, 3) and set(d.y.unique().tolist()) == {-1.0, 1.0}
    assert sorted(d.labels.tolist()) == [0, 0, 1, 1, 1, 2, 2, 2, 2]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(class_sizes=[5], d=2), "at least two classes"),
        (dict(class_sizes=[5, 0], d=2), "class_sizes"),
        (dict(class_sizes=[5, 2.5], d=2), "class_sizes"),
        (dict(class_sizes=[5, 5], d=0), "d must be"),
        (dict(class_sizes=[5, 5], d=2, std=0), "std"),
        (dict(class_sizes=[5, 5, 5], d=2), "means has 2 entries"),
        (dict(class_sizes=[5, 5], d=2, means=torch.zeros(2, 3)), r"means must have shape \(2, 2\)"),
        (dict(class_sizes=[5, 5], d=2, means=(0.0, float("nan"))), "means contains"),
    ],
)
def test_bad_input(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):  # a non-integer class size is a TypeError
        nk.gaussian_classes(**kwargs)


def test_class_targets_encodings_and_class_data():
    idx = torch.tensor([0, 2, 1, 2])
    onehot = nk.class_targets(idx, 3, encoding="onehot")
    assert torch.equal(onehot, torch.eye(3, dtype=torch.float64)[idx])
    assert torch.equal(nk.class_targets(idx, 3, encoding="pm1_onehot"), 2 * onehot - 1)
    assert torch.equal(nk.class_targets(idx, 3), 2 * onehot - 1)  # "pm1" with C > 2 is one-hot +-1
    two = torch.tensor([[0, 1], [1, 1]])
    assert torch.equal(nk.class_targets(two, 2), torch.tensor([[-1.0, 1.0], [1.0, 1.0]], dtype=torch.float64))
    assert nk.class_targets(idx, 3, dtype=torch.float32).dtype == torch.float32
    for bad, match in (((idx, 2), "index"), ((idx, 1), "num_classes"), ((idx.double(), 3), "index")):
        with pytest.raises(ValueError, match=match):
            nk.class_targets(*bad)
    with pytest.raises(ValueError, match="encoding"):
        nk.class_targets(idx, 3, encoding="01")
    data = nk.gaussian_classes([3, 4, 2], 2, means=(-1.0, 0.0, 1.0), generator=torch.Generator().manual_seed(0))
    X, y, labels = data
    assert torch.equal(y, nk.class_targets(labels, 3)) and X is data.X
    with pytest.raises(Exception):
        data.X = None
