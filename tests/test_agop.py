"""AGOP of torch models, the NFA statistic and the per-layer MLP analysis (nckernels.agop)."""
import math

import pytest
import torch

import nckernels as nk
from nckernels import agop
from nckernels.rfm import psd_sqrt


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_model_agop_of_linear_and_quadratic_maps():
    g = torch.Generator().manual_seed(0)
    A = torch.randn(3, 5, generator=g, dtype=torch.float64)
    X = torch.randn(20, 5, generator=g, dtype=torch.float64)
    assert torch.allclose(agop.model_agop(lambda x: x @ A.T, X), A.T @ A, atol=1e-12)
    # f(x) = ||x||^2 / 2 has gradient x: AGOP = X^T X / n; batches do not change it
    f = lambda x: 0.5 * (x * x).sum(1)  # noqa: E731
    assert torch.allclose(agop.model_agop(f, X, batch_size=7), X.T @ X / 20, atol=1e-12)


def test_matrix_correlation_known_values():
    d = 6
    eye = torch.eye(d, dtype=torch.float64)
    ones = torch.ones(d, d, dtype=torch.float64)
    assert abs(agop.matrix_correlation(eye, ones) - 1 / math.sqrt(d)) < 1e-14
    assert abs(agop.matrix_correlation(eye, 3.0 * eye) - 1.0) < 1e-14
    assert abs(agop.matrix_correlation(eye, -eye) + 1.0) < 1e-14
    assert abs(agop.matrix_correlation(eye, ones - eye)) < 1e-14


def test_nfa_is_one_for_a_balanced_linear_network():
    # f(x) = W2 W1 x with W2^T W2 = W1 W1^T: AGOP = W1^T W2^T W2 W1 = (W1^T W1)^2, so AGOP^{1/2} = W1^T W1
    g = torch.Generator().manual_seed(2)
    W1 = torch.randn(4, 7, generator=g, dtype=torch.float64)
    U, S, Vh = torch.linalg.svd(W1, full_matrices=False)
    W2 = torch.diag(S) @ U.T  # (4, 4): W2^T W2 = U S^2 U^T = W1 W1^T
    X = torch.randn(30, 7, generator=g, dtype=torch.float64)
    G = agop.model_agop(lambda x: x @ W1.T @ W2.T, X)
    assert abs(agop.nfa_correlation(W1, G) - 1.0) < 1e-10
    # an unbalanced head breaks it
    W2u = torch.diag(torch.tensor([5.0, 1.0, 0.2, 0.1], dtype=torch.float64)) @ W2
    Gu = agop.model_agop(lambda x: x @ W1.T @ W2u.T, X)
    assert agop.nfa_correlation(W1, Gu) < 0.99
    # power 1 with the same construction: corr(W1^T W1, (W1^T W1)^2) < 1 unless singular values are equal
    assert agop.nfa_correlation(W1, G, power=1.0) < 1.0 - 1e-6


def test_layer_analysis_svt_isometry_and_nfa_range():
    g = torch.Generator().manual_seed(3)
    data = nk.gaussian_classes([15, 15, 15], 6, means=torch.randn(3, 6, generator=g, dtype=torch.float64),
                               std=0.7, generator=g)
    model = agop.MLP(6, 8, 3, 3, generator=g)
    frame = agop.mlp_layer_analysis(model, data.X, data.labels)
    assert list(frame["layer"]) == [1, 2, 3]
    assert frame["nfa"].between(-1, 1).all()
    hs = model.layer_inputs(data.X)
    with torch.no_grad():
        for l, lin in enumerate(model.hidden):
            pre = lin(hs[l])  # W h + b: U is an isometry and b a shift, so NC1 equals that of S V^T h
            assert abs(nk.nc1_from_features(pre, data.labels).nc1 - frame["nc1_svt"][l]) < 1e-10
            assert abs(nk.nc1_from_features(hs[l + 1], data.labels).nc1 - frame["nc1_output"][l]) < 1e-12
    # the per-layer AGOP is that of the tail network: check layer 3 against an explicit Jacobian
    h = hs[2].detach()
    J = torch.stack([torch.autograd.functional.jacobian(lambda z: model.tail(z[None], 2)[0], h[i]) for i in range(h.shape[0])])
    G = torch.einsum("ncd,nce->de", J, J) / h.shape[0]
    want = agop.matrix_correlation(model.hidden[2].weight.detach().T @ model.hidden[2].weight.detach(), psd_sqrt(G))
    assert abs(frame["nfa"][2] - want) < 1e-7  # sqrt of rounding-level eigenvalues (rank <= C) is ~1e-8


def test_train_mlp_fits_and_records():
    g = torch.Generator().manual_seed(4)
    data = nk.gaussian_classes([20, 20, 20], 5, means=3 * torch.randn(3, 5, generator=g, dtype=torch.float64),
                               std=0.5, generator=g)
    res = agop.train_mlp(data.X, data.labels, depth=2, width=16, epochs=30, lr=0.05, batch_size=20,
                         checkpoints=(0, 30), generator=g)
    h = res.history
    assert list(h["epoch"]) == [0, 30]
    assert h["loss"].iloc[-1] < 0.2 * h["loss"].iloc[0]
    assert h["train_acc"].iloc[-1] == 1.0
    assert {"nfa_1", "nfa_2", "nc1_1", "nc1_2"} <= set(h.columns)
    with pytest.raises(ValueError, match="lr"):
        agop.train_mlp(data.X, data.labels, epochs=1, lr=0.0)


def test_bad_input():
    X = torch.zeros(4, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="batch_size"):
        agop.model_agop(lambda x: x, X, batch_size=0)
    with pytest.raises(ValueError, match="same shape"):
        agop.matrix_correlation(torch.eye(2), torch.eye(3))
    with pytest.raises(ValueError, match="zero matrix"):
        agop.matrix_correlation(torch.eye(2), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="agop"):
        agop.nfa_correlation(torch.ones(2, 3), torch.eye(2))
    with pytest.raises(ValueError, match="width"):
        agop.MLP(3, 0, 2, 2)
    with pytest.raises(ValueError, match="init_scale"):
        agop.MLP(3, 4, 2, 2, init_scale=-1.0)
    with pytest.raises(ValueError, match="labels"):
        agop.train_mlp(torch.randn(4, 3, dtype=torch.float64), torch.zeros(4), epochs=1)


def test_layer_analysis_records_a_dead_layer():
    # a layer whose units are all off (relu(W h + b) = 0 on every sample) leaves NC1 undefined downstream:
    # the analysis records NaN and the dead units instead of failing the whole training run
    g = torch.Generator().manual_seed(4)
    data = nk.gaussian_classes([12, 12], 5, generator=g)
    model = agop.MLP(5, 6, 3, 2, generator=g)
    with torch.no_grad():
        model.hidden[1].bias.fill_(-1e3)  # W h + b < 0 for every sample and unit
    frame = agop.mlp_layer_analysis(model, data.X, data.labels).set_index("layer")
    assert list(frame["dead_units"]) == [frame.loc[1, "dead_units"], 6, 6]
    assert frame.loc[1, "dead_units"] < 6 and math.isfinite(frame.loc[1, "nc1_output"])
    assert math.isnan(frame.loc[2, "nc1_output"]) and math.isnan(frame.loc[3, "nc1_input"])
    assert math.isfinite(frame.loc[2, "nc1_svt"])  # S V^T h of a live input is defined
    with pytest.raises(ValueError, match="X must have 5 columns"):
        agop.mlp_layer_analysis(model, data.X[:, :4], data.labels)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_mlp_agop_on_cuda():
    dev = torch.device("cuda")
    g = torch.Generator(device=dev).manual_seed(0)
    data = nk.gaussian_classes([10, 10], 4, generator=g, device=dev)
    res = agop.train_mlp(data.X, data.labels, depth=2, width=8, epochs=3, checkpoints=(3,), generator=g)
    assert next(res.model.parameters()).device.type == "cuda"
    frame = agop.mlp_layer_analysis(res.model, data.X, data.labels)
    assert frame["nfa"].between(-1, 1).all()


def test_train_mlp_raises_divergence_error():
    data = nk.gaussian_classes([10, 10], 4, generator=torch.Generator().manual_seed(0))
    with pytest.raises(nk.DivergenceError, match="diverged") as info:
        agop.train_mlp(data.X * 1e3, data.labels, depth=2, width=16, epochs=50, lr=1e3, batch_size=20,
                       generator=torch.Generator().manual_seed(1))
    assert info.value.epoch >= 1


def test_the_two_mlps_are_one_class():
    from nckernels.models.mlp import MLPNetwork

    m = agop.MLP(3, 5, 2, 2, init_scale=1.5, generator=torch.Generator().manual_seed(2))
    base = MLPNetwork(3, [5, 5], 2, init="uniform", init_scale=1.5, generator=torch.Generator().manual_seed(2))
    c = nk.MLPClassifier(3, (5, 5), 2, generator=torch.Generator().manual_seed(2))
    X = torch.randn(4, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    assert isinstance(m, MLPNetwork) and isinstance(c, MLPNetwork)
    assert torch.equal(m(X), base(X)) and torch.equal(m.features(X), m.layer_inputs(X)[-1])
    # He-normal: weights N(0, 2/fan_in), biases 0; the head N(0, 1/fan_in)
    big = nk.MLPClassifier(400, (300,), 200, generator=torch.Generator().manual_seed(4))
    assert float(big.hidden[0].weight.detach().var()) == pytest.approx(2 / 400, rel=0.05)
    assert float(big.head.weight.detach().var()) == pytest.approx(1 / 300, rel=0.05) and float(big.head.bias.detach().abs().max()) == 0
