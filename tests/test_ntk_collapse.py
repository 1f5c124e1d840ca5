"""Block-structured NTK model: eigen-decomposition, gradient flow, invariant, UFM limit, collapse metrics."""
import math

import pytest
import torch

import nckernels as nk
from nckernels.ntk_collapse import (
    BlockKernel,
    BlockState,
    block_flow_rhs,
    collapse_metrics,
    init_block_state,
    invariant,
    loss_components,
    nc2_etf_distance,
    nc3_self_duality,
    simulate_block_flow,
)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


KERNEL = BlockKernel(1.0, 0.6, 0.2, num_classes=3, per_class=4)


def test_eigenvalues_and_multiplicities_match_eigvalsh():
    K = KERNEL.matrix()
    ev = torch.linalg.eigvalsh(K)
    lam0, lamc, lamg = KERNEL.eigenvalues
    expected = torch.tensor([lam0] * 9 + [lamc] * 2 + [lamg], dtype=K.dtype)
    assert KERNEL.multiplicities == (9, 2, 1)
    assert torch.allclose(ev, expected.sort().values, atol=1e-12)
    assert (lam0, lamc, lamg) == pytest.approx((0.4, 0.4 + 4 * 0.4, 2.0 + 12 * 0.2))


def test_projectors_resolve_identity_and_kernel():
    P0, Pc, PG = KERNEL.projectors()
    eye = torch.eye(KERNEL.N, dtype=torch.float64)
    assert torch.allclose(P0 + Pc + PG, eye, atol=1e-14)
    for P, rank in ((P0, 9), (Pc, 2), (PG, 1)):
        assert torch.allclose(P @ P, P, atol=1e-13)
        assert round(float(P.trace())) == rank
    assert torch.allclose(P0 @ Pc, torch.zeros_like(P0), atol=1e-14)
    lams = KERNEL.eigenvalues
    assert torch.allclose(sum(l * P for l, P in zip(lams, (P0, Pc, PG))), KERNEL.matrix(), atol=1e-13)
    assert torch.allclose(KERNEL.inverse() @ KERNEL.matrix(), eye, atol=1e-12)


def test_matrix_entries_are_the_three_kappas():
    K = KERNEL.matrix()
    assert float(K[0, 0]) == pytest.approx(1.0)
    assert float(K[0, 1]) == pytest.approx(0.6)  # same class
    assert float(K[0, 4]) == pytest.approx(0.2)  # other class


def test_rhs_is_the_kernel_gradient_flow():
    """dW, db are minus the loss gradient; dH is minus K times the feature gradient (autograd)."""
    g = torch.Generator().manual_seed(1)
    s = init_block_state(KERNEL, 5, scale=0.7, generator=g)
    W, b, H = (t.clone().requires_grad_(True) for t in (s.W, s.b + 0.3, s.H))
    Y = KERNEL.targets()
    loss = 0.5 * ((H @ W.T + b - Y) ** 2).sum()
    gW, gb, gH = torch.autograd.grad(loss, (W, b, H))
    dW, db, dH = block_flow_rhs(W.detach(), b.detach(), H.detach(), KERNEL.matrix(), Y)
    assert torch.allclose(dW, -gW) and torch.allclose(db, -gb)
    assert torch.allclose(dH, -KERNEL.matrix() @ gH)
    parts = loss_components(W.detach(), b.detach(), H.detach(), KERNEL)
    assert parts["loss"] == pytest.approx(float(loss.detach()), rel=1e-12)
    assert parts["loss global"] + parts["loss class"] + parts["loss within"] == pytest.approx(float(loss.detach()), rel=1e-12)


def test_invariant_is_conserved_and_small_init_collapses():
    g = torch.Generator().manual_seed(0)
    s = init_block_state(KERNEL, 4, scale=0.01, generator=g)
    tr = simulate_block_flow(KERNEL, s, t_max=200.0, num_times=30, loss_tol=1e-7, rtol=1e-9, atol=1e-12)
    f = tr.frame
    assert tr.stopped_by == "loss_tol" and f["loss"].iloc[-1] < 1e-7
    assert tr.max_relative_drift < 1e-7
    # the invariant computed independently agrees with E0 at the end
    E_end = invariant(tr.final.W, tr.final.H, KERNEL.matrix())
    assert float(torch.linalg.matrix_norm(E_end - tr.E0)) < 1e-7 * float(torch.linalg.matrix_norm(tr.final.W.T @ tr.final.W))
    assert f["nc1"].iloc[0] > 1 and f["nc1"].iloc[-1] < 1e-3


def test_integrator_error_follows_the_tolerance():
    """A loose run agrees with a tight one to roughly its tolerance; the tight one conserves E better."""
    g = torch.Generator().manual_seed(2)
    s = init_block_state(KERNEL, 3, scale=0.3, generator=g)
    loose = simulate_block_flow(KERNEL, s, t_max=5.0, num_times=5, rtol=1e-5, atol=1e-8)
    tight = simulate_block_flow(KERNEL, s, t_max=5.0, num_times=5, rtol=1e-11, atol=1e-14)
    err = float(torch.linalg.matrix_norm(loose.final.H - tight.final.H) / torch.linalg.matrix_norm(tight.final.H))
    assert 1e-12 < err < 1e-3
    assert tight.max_relative_drift < loose.max_relative_drift
    assert tight.steps > loose.steps


def test_large_init_does_not_collapse_and_respects_the_bound():
    """At (near) zero loss, ||H P_0||_F^2 <= rank * lambda_0 * ||E||_op (derived in chapter 8)."""
    g = torch.Generator().manual_seed(0)
    s = init_block_state(KERNEL, 4, scale=1.0, generator=g)
    tr = simulate_block_flow(KERNEL, s, t_max=300.0, num_times=20, loss_tol=1e-9, rtol=1e-8)
    assert tr.frame["nc1"].iloc[-1] > 0.05
    H = tr.final.H
    within = H - H.reshape(3, 4, -1).mean(1).repeat_interleave(4, 0)
    bound = min(4, KERNEL.N - 3) * KERNEL.eigenvalues[0] * float(torch.linalg.matrix_norm(tr.E0, ord=2))
    assert float((within**2).sum()) <= bound * (1 + 1e-3)


def test_ufm_limit_kernel_is_scaled_identity_and_collapses():
    ufm = BlockKernel(2.0, 0.0, 0.0, num_classes=3, per_class=3)
    assert ufm.eigenvalues == (2.0, 2.0, 2.0)
    assert torch.equal(ufm.matrix(), 2.0 * torch.eye(9, dtype=torch.float64))
    g = torch.Generator().manual_seed(3)
    s = init_block_state(ufm, 3, scale=0.01, generator=g)
    # H evolves as unconstrained features: dH/dt = -2 R W
    W, b, H = s.W, s.b, s.H
    R = H @ W.T + b - ufm.targets()
    assert torch.allclose(block_flow_rhs(W, b, H, ufm.matrix(), ufm.targets())[2], -2.0 * R @ W)
    tr = simulate_block_flow(ufm, s, t_max=200.0, num_times=20, loss_tol=1e-8)
    m = collapse_metrics(tr.final.W, tr.final.H, ufm.labels())
    assert m.nc1 < 1e-3


def test_etf_and_self_duality_metrics_on_hand_made_features():
    C, p = 4, 6
    M = torch.eye(C, p, dtype=torch.float64)[:, :] - 0.25 * torch.ones(C, p, dtype=torch.float64) * (torch.arange(p) < C)
    labels = torch.arange(C).repeat_interleave(3)
    H = M[labels]
    assert nc2_etf_distance(H, labels) < 1e-12
    assert nc3_self_duality(3.0 * M, H, labels) < 1e-12
    assert nc3_self_duality(-M, H, labels) == pytest.approx(2.0)
    # orthogonal (not centred) means: their centred Gram matrix is still the ETF
    assert nc2_etf_distance(torch.eye(C, dtype=torch.float64)[labels], labels) < 1e-12
    # unequal norms are not an ETF
    H2 = H * torch.tensor([1.0, 1.0, 1.0, 3.0], dtype=torch.float64)[labels, None]
    assert nc2_etf_distance(H2, labels) > 0.1


@pytest.mark.parametrize(
    "args, match",
    [((1.0, 1.0, 0.0, 2, 3), "positive definite"),
     ((1.0, 0.5, 0.1, 1, 3), "num_classes"),
     ((1.0, 0.5, 0.1, 2, 0), "per_class"),
     ((float("nan"), 0.5, 0.1, 2, 3), "kappa_d")],
)
def test_bad_block_kernel(args, match):
    with pytest.raises(ValueError, match=match):
        BlockKernel(*args)


def test_bad_simulation_input():
    s = init_block_state(KERNEL, 3, scale=0.1)
    with pytest.raises(ValueError, match="state"):
        simulate_block_flow(BlockKernel(1.0, 0.5, 0.1, 3, 5), s, t_max=1.0)
    with pytest.raises(ValueError, match="t_max"):
        simulate_block_flow(KERNEL, s, t_max=-1.0)
    with pytest.raises(ValueError, match="t_min"):
        simulate_block_flow(KERNEL, s, t_max=1.0, t_min=2.0)
    with pytest.raises(ValueError, match="H"):
        simulate_block_flow(KERNEL, BlockState(s.W, s.b, s.H[:, :2]), t_max=1.0)
    with pytest.raises(ValueError, match="scale"):
        init_block_state(KERNEL, 3, scale=0.0)
    with pytest.raises(RuntimeError, match="max_steps"):
        simulate_block_flow(KERNEL, s, t_max=100.0, max_steps=5)
    with pytest.raises(ValueError, match="positive definite"):
        invariant(s.W, s.H, torch.zeros(KERNEL.N, KERNEL.N, dtype=torch.float64))


def test_exported():
    assert nk.BlockKernel is BlockKernel and nk.simulate_block_flow is simulate_block_flow


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_block_flow_on_cuda_matches_cpu():
    g = torch.Generator().manual_seed(0)
    s = init_block_state(KERNEL, 4, scale=0.1, generator=g)
    cpu = simulate_block_flow(KERNEL, s, t_max=20.0, num_times=10)
    sc = BlockState(s.W.cuda(), s.b.cuda(), s.H.cuda())
    gpu = simulate_block_flow(KERNEL, sc, t_max=20.0, num_times=10)
    assert gpu.final.H.device.type == "cuda"
    assert torch.allclose(gpu.final.H.cpu(), cpu.final.H, atol=1e-6)


def test_block_flow_metrics_live_in_metrics():
    import nckernels.metrics as metrics

    assert nc2_etf_distance is metrics.nc2_gram_distance and invariant is metrics.invariant
    assert nk.collapse_metrics is metrics.collapse_metrics
