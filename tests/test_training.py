"""Trained two-layer networks: batched training against per-network autograd, NC1 of the hidden features."""
import math

import pytest
import torch

import nckernels as nk
from nckernels.training import (
    NetworkParams,
    TrainingConfig,
    batched_feature_nc1,
    hidden_features,
    init_networks,
    log_epochs,
    terminal_phase,
    train_networks,
    train_networks_loop,
)
from nckernels.experiments import trained_network_grid


def _data(sizes=(20, 30), d=5, seed=0, reps=2, dtype=torch.float64, device=None):
    gen = torch.Generator().manual_seed(seed)
    means = torch.linspace(-2, 2, len(sizes)).tolist()
    draws = [nk.gaussian_classes(list(sizes), d, means=means, generator=gen, shuffle=True) for _ in range(reps)]
    X = torch.stack([dd.X for dd in draws]).to(dtype=dtype, device=device)
    L = torch.stack([dd.labels for dd in draws]).to(device)
    return X, L


pytestmark = pytest.mark.usefixtures("one_torch_thread")


SMALL = TrainingConfig(width=24, epochs=40, lr=0.02, record_epochs=(0, 5, 40))


def test_loss_decreases_and_accuracy_reaches_one():
    X, L = _data()
    res = train_networks(X, L, [1, 2], TrainingConfig(width=32, epochs=300, lr=0.01, record_epochs=(0, 30, 300)))
    h = res.history
    for r in range(2):
        loss = h[h.repeat == r].sort_values("epoch")["loss"].to_numpy()
        assert loss[-1] < 0.2 * loss[0]
        assert (loss[1:] <= loss[:-1]).all()
    assert (res.final()["accuracy"] == 1.0).all()


@pytest.mark.parametrize("activation", ["erf", "relu"])
@pytest.mark.parametrize("sizes", [(20, 30), (10, 15, 20)])
def test_batched_matches_per_network_autograd(activation, sizes):
    X, L = _data(sizes, d=12)  # d0 + 1 = 13 is padded to 16 inside the batched trainer
    cfg = TrainingConfig(width=16, epochs=30, lr=0.01, momentum=0.5, sigma_b=0.3, weight_decay=1e-3,
                         activation=activation, record_epochs=(0, 10, 30))
    a = train_networks(X, L, [3, 4], cfg)
    b = train_networks_loop(X, L, [3, 4], cfg)
    cols = ["loss", "accuracy", "nc1", "nc1_pinv", "trace_within", "trace_between"]
    assert list(a.history["epoch"]) == list(b.history["epoch"])
    diff = (a.history[cols] - b.history[cols]).abs().to_numpy()
    scale = b.history[cols].abs().to_numpy() + 1e-12
    assert (diff / scale).max() < 1e-9
    for name in ("W", "b", "a", "b2"):
        torch.testing.assert_close(getattr(a.params, name), getattr(b.params, name), rtol=1e-9, atol=1e-12)
    # the parameters moved (the comparison is not between two untrained nets)
    p0 = init_networks([3, 4], X.shape[2], a.params.a.shape[2], cfg, like=X)
    assert (a.params.W - p0.W).abs().max() > 1e-4


def test_batched_equals_separate_runs_with_same_seeds():
    X, L = _data(reps=3)
    seeds = [11, 12, 13]
    together = train_networks(X, L, seeds, SMALL)
    for r, s in enumerate(seeds):
        alone = train_networks(X[r], L[r], [s], SMALL)
        got = together.history[together.history.repeat == r].reset_index(drop=True)
        for col in ("loss", "nc1", "nc1_pinv", "accuracy"):
            assert got[col].to_numpy() == pytest.approx(alone.history[col].to_numpy(), rel=1e-10, abs=1e-14)
        torch.testing.assert_close(together.params.W[r], alone.params.W[0], rtol=1e-10, atol=1e-13)
    # different seeds give different networks
    assert not torch.allclose(together.params.W[0], together.params.W[1])


def test_nc1_matches_independent_feature_computation():
    X, L = _data(sizes=(15, 25, 10), reps=2)
    res = train_networks(X, L, [5, 6], SMALL)
    fin = res.final()
    H = hidden_features(res.params, X, SMALL.activation)
    for r in range(2):
        ref = nk.nc1_from_features(H[r], L[r])
        assert fin.loc[r, "nc1"] == pytest.approx(ref.nc1, rel=1e-10)
        assert fin.loc[r, "nc1_pinv"] == pytest.approx(ref.nc1_pinv, rel=1e-8)
        assert fin.loc[r, "trace_within"] == pytest.approx(ref.trace_within, rel=1e-10)
    # epoch 0: the features of the initial network, drawn independently with the same generator order
    p0 = init_networks([5], X.shape[2], 3, SMALL, like=X)
    gen = torch.Generator().manual_seed(5)
    W = torch.randn(SMALL.width, X.shape[2], generator=gen, dtype=torch.float64) / math.sqrt(X.shape[2])
    torch.testing.assert_close(p0.W[0], W)
    H0 = torch.erf(X[0] @ W.T)
    first = res.history[(res.history.epoch == 0) & (res.history.repeat == 0)].iloc[0]
    assert first["nc1"] == pytest.approx(nk.nc1_from_features(H0, L[0]).nc1, rel=1e-10)


@pytest.mark.parametrize("weights", ["uniform", "class_size"])
def test_batched_feature_nc1_imbalanced(weights):
    gen = torch.Generator().manual_seed(1)
    H = torch.randn(3, 40, 7, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, 3, (3, 40), generator=gen)
    labels[:, :3] = torch.tensor([0, 1, 2])
    out = batched_feature_nc1(H, labels, 3, between_weights=weights)
    for r in range(3):  # oracle: the p x p covariance matrices written out, pinv of Sigma_B itself
        Hr, lr_ = H[r], labels[r]
        n = torch.bincount(lr_, minlength=3).to(H.dtype)
        means = torch.stack([Hr[lr_ == c].mean(0) for c in range(3)])
        w = torch.full((3,), 1 / 3, dtype=H.dtype) if weights == "uniform" else n / n.sum()
        D = Hr - means[lr_]
        S_W = D.T @ D / Hr.shape[0]
        M = means - Hr.mean(0)
        S_B = (w[:, None] * M).T @ M
        assert float(out["nc1"][r]) == pytest.approx(float(S_W.trace() / S_B.trace()), rel=1e-12)
        assert float(out["nc1_pinv"][r]) == pytest.approx(float((S_W @ torch.linalg.pinv(S_B)).trace()) / 3, rel=1e-7)
        one = nk.nc1_from_features(Hr, lr_, between_weights=weights)
        assert one.nc1 == pytest.approx(float(out["nc1"][r]), rel=1e-13)


def test_initialisation_variances():
    cfg = TrainingConfig(width=4000, sigma_w=1.5, sigma_b=0.7, sigma_a=1.97)
    p = init_networks([0], 8, 1, cfg, like=torch.zeros(1, dtype=torch.float64))
    assert float(p.W.var()) == pytest.approx(1.5**2 / 8, rel=0.05)
    assert float(p.b.var()) == pytest.approx(0.7**2, rel=0.1)
    assert float(p.a.var()) == pytest.approx(1.97**2 / 4000, rel=0.1)
    assert float(p.b2.abs().max()) == 0.0


def test_dtype_follows_input_and_float32_close_to_float64():
    X, L = _data(reps=2)
    r64 = train_networks(X, L, [1, 2], SMALL)
    r32 = train_networks(X.float(), L, [1, 2], SMALL)
    assert r32.params.W.dtype == torch.float32
    assert r32.final()["nc1"].to_numpy() == pytest.approx(r64.final()["nc1"].to_numpy(), rel=1e-3)


def test_shared_inputs_broadcast_over_seeds():
    X, L = _data(reps=1)
    res = train_networks(X[0], L[0], [1, 2, 3], SMALL)
    assert res.params.W.shape == (3, SMALL.width, X.shape[2])
    assert sorted(res.final()["seed"]) == [1, 2, 3]


@pytest.mark.parametrize("record", [(0, 200), (0,)])
def test_divergence_raises(record):
    X, L = _data()
    cfg = TrainingConfig(width=8, epochs=200, lr=1e3, activation="relu", record_epochs=record)
    with pytest.raises(nk.DivergenceError, match="diverged") as info:  # a FloatingPointError
        train_networks(X, L, [1, 2], cfg, fused=False)
    assert isinstance(info.value, FloatingPointError)
    assert 0 < info.value.epoch < 200 and set(info.value.seeds) <= {1, 2} and info.value.seeds
    with pytest.raises(nk.DivergenceError) as loop_info:  # the oracle detects it at the same epoch
        r = [1, 2].index(info.value.seeds[0])
        train_networks_loop(X[r : r + 1], L[r : r + 1], [info.value.seeds[0]], cfg)
    assert loop_info.value.epoch == pytest.approx(info.value.epoch, abs=1)


def test_one_draw_of_the_two_layer_net():
    cfg = TrainingConfig(width=6, sigma_w=1.3, sigma_b=0.4, sigma_a=0.9)
    p = init_networks([7], 3, 2, cfg, like=torch.zeros(1, dtype=torch.float64))
    q = nk.draw_two_layer_params(3, 6, outputs=2, sigma_w=1.3, sigma_b=0.4, sigma_a=0.9,
                                 generator=torch.Generator().manual_seed(7))
    assert torch.equal(p.W[0], q.W) and torch.equal(p.b[0], q.b) and torch.equal(p.a[0], q.a)


def test_terminal_phase_and_log_epochs():
    cfg = terminal_phase(SMALL, epochs=5000, lr=0.1, momentum=0.9, points=10)
    assert cfg.epochs == 5000 and cfg.lr == 0.1 and cfg.momentum == 0.9 and cfg.width == SMALL.width
    with pytest.raises(ValueError, match="momentum"):
        terminal_phase(SMALL, momentum=1.5)
    assert cfg.recorded[0] == 0 and cfg.recorded[-1] == 5000 and len(cfg.recorded) >= 10
    assert log_epochs(1) == (0, 1)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(width=0), "width"),
        (dict(lr=0.0), "lr"),
        (dict(momentum=1.0), "momentum"),
        (dict(epochs=-1), "epochs"),
        (dict(activation="tanh"), "activation"),
        (dict(record_epochs=(0, 50)), "record_epochs"),
        (dict(between_weights="equal"), "between_weights"),
        (dict(weight_decay=-1e-3), "weight_decay"),
    ],
)
def test_bad_config(kwargs, match):
    base = dict(width=4, epochs=10)
    base.update(kwargs)
    with pytest.raises(ValueError, match=match):
        TrainingConfig(**base)


def test_bad_input():
    X, L = _data()
    with pytest.raises(ValueError, match="X"):
        train_networks(X[0, :, 0], L[0], [1], SMALL)
    with pytest.raises(ValueError, match="X"):
        train_networks(X.long(), L, [1, 2], SMALL)
    with pytest.raises(ValueError, match="labels"):
        train_networks(X, L[:, :-1], [1, 2], SMALL)
    with pytest.raises(ValueError, match="seeds"):
        train_networks(X, L, [1], SMALL)
    with pytest.raises(ValueError, match="labels"):
        train_networks(X, torch.zeros_like(L), [1, 2], SMALL)
    bad = X.clone()
    bad[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="X"):
        train_networks(bad, L, [1, 2], SMALL)
    with pytest.raises(ValueError, match="config"):
        train_networks(X, L, [1, 2], {"width": 3})
    with pytest.raises(ValueError, match="draws"):
        trained_network_grid([[4, 4]], [2], 0, SMALL)


def test_trained_network_grid_rows_and_failures():
    def broken(data):
        raise RuntimeError("boom")

    kernels = {"NNGP erf": lambda d: nk.nngp(d.X), "broken": broken}
    frame = trained_network_grid([[10, 10], [6, 14]], [1, 4], 2, SMALL, kernels=kernels, kernel_draws={"broken": 1})
    assert set(frame["kernel"]) == {"data", "NNGP erf", "broken", "trained net"}
    assert len(frame[frame.kernel == "trained net"]) == 2 * 2 * 2
    failed = frame[frame.status == "failed"]
    assert len(failed) == 4 and set(failed["kernel"]) == {"broken"} and failed["error"].str.contains("boom").all()
    ok = frame[frame.status == "ok"]
    assert ok["log10_nc1"].notna().all()
    data = frame[frame.kernel == "data"].set_index(["split", "d0", "draw"])["log10_nc1"]
    net = frame[frame.kernel == "trained net"].set_index(["split", "d0", "draw"])
    assert (net["relative"] - (net["log10_nc1"] - data)).abs().max() < 1e-12
    # the data of a cell is the draw of nckernels.grids for the same seed
    from nckernels.grids import cell_seed

    draw = nk.gaussian_classes([10, 10], 4, generator=torch.Generator().manual_seed(cell_seed(0, (10, 10), 4, 0)))
    expected = math.log10(nk.nc1_from_features(draw.X, draw.labels).nc1)
    assert expected == pytest.approx(float(data[("10/10", 4, 0)]), rel=1e-12)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_batch_matches_cpu():
    X, L = _data(reps=4)
    cfg = TrainingConfig(width=64, epochs=50, lr=0.02, record_epochs=(0, 50))
    cpu = train_networks(X, L, [1, 2, 3, 4], cfg)
    gpu = train_networks(X.to("cuda"), L.to("cuda"), [1, 2, 3, 4], cfg)
    assert gpu.params.W.device.type == "cuda"
    assert gpu.final()["nc1"].to_numpy() == pytest.approx(cpu.final()["nc1"].to_numpy(), rel=1e-8)


def test_row_blocks_do_not_change_the_result():
    X, L = _data(sizes=(20, 30, 25), reps=2)
    whole = train_networks(X, L, [1, 2], SMALL, block_elements=None)
    blocked = train_networks(X, L, [1, 2], SMALL, block_elements=7 * 2 * SMALL.width)  # 7-row blocks
    for col in ("loss", "nc1", "nc1_pinv"):
        assert blocked.history[col].to_numpy() == pytest.approx(whole.history[col].to_numpy(), rel=1e-11)
    torch.testing.assert_close(blocked.params.W, whole.params.W, rtol=1e-11, atol=1e-14)
    with pytest.raises(ValueError, match="block_elements"):
        train_networks(X, L, [1, 2], SMALL, block_elements=0)
