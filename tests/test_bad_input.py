"""Regression tests: the silent-wrong results found by ``benchmarks/probe_inputs.py`` (issue 12).

Each case (but two guards: deep_rfm already refused an unseen test class, invariant a singular K) used to
return a NaN/inf, a mis-scored number or a result from an input that cannot be right; each
now raises ``ValueError``/``TypeError`` naming the argument (or stating the cure).
"""
from __future__ import annotations

import pytest
import torch

import nckernels as nk
from nckernels import validation as v

F64 = torch.float64
G = torch.Generator().manual_seed(0)
DATA = nk.gaussian_classes([4, 4], 3, generator=G)
X, LAB = DATA.X, DATA.labels
K = nk.nngp(X)
SPD = torch.eye(3, dtype=F64) + 0.1
ONE = torch.ones(1, dtype=F64)
BK = nk.BlockKernel(1.0, 0.5, 0.1, 2, 3)
ST = nk.init_block_state(BK, 4, scale=0.1, generator=torch.Generator().manual_seed(0))
S_c, R_c, S = nk.class_block_sums(K, LAB, 2)
ASYM = K.clone()
ASYM[0, 1] += 1.0


def _mlp_classifier(*args, **kwargs):
    cls = getattr(nk, "MLPClassifier", None)
    if cls is None:  # being moved between modules
        from nckernels.models.mlp import MLPClassifier as cls
    return cls(*args, **kwargs)


CASES = [
    # dual activations: NaN or a number from something that is not a covariance
    ("erf_dual_derivative |c| > sqrt(v1 v2)", lambda: nk.erf_dual_derivative(3 * ONE, ONE, ONE), "cov12"),
    ("erf_dual_pair |c| > sqrt(v1 v2)", lambda: nk.erf_dual_pair(3 * ONE, ONE, ONE), "cov12"),
    ("relu_dual negative variance", lambda: nk.relu_dual(0 * ONE, -ONE, ONE), "var1"),
    ("erf_dual negative variance", lambda: nk.erf_dual(0 * ONE, ONE, -ONE), "var2"),
    ("relu_angle NaN cov12", lambda: nk.relu_angle(ONE * float("nan"), ONE, ONE), "cov12"),
    # kernels: overflow to inf/NaN, complex and half inputs, bad sizes
    ("nngp huge input", lambda: nk.nngp(X * 1e200), "X"),
    ("ntk huge input", lambda: nk.ntk(X * 1e200), "X"),
    ("preactivation_kernel huge input", lambda: nk.preactivation_kernel(X * 1e200), "X"),
    ("two_layer_kernels huge input", lambda: nk.two_layer_kernels(X * 1e200), "X"),
    ("nngp complex X (imaginary part was dropped)", lambda: nk.nngp(X.to(torch.complex128)), "X"),
    ("nngp float16 X", lambda: nk.nngp(X.half()), "X"),
    ("two_layer_kernels no activations", lambda: nk.two_layer_kernels(X, activations=()), "activations"),
    ("finite_width_kernels chunk=-1", lambda: nk.finite_width_kernels(X, width=4, chunk=-1), "chunk"),
    ("finite_width_kernels chunk=True", lambda: nk.finite_width_kernels(X, width=4, chunk=True), "chunk"),
    ("laplace_kernel indefinite M", lambda: nk.laplace_kernel(X, M=-SPD), "M"),
    ("gaussian_kernel asymmetric M", lambda: nk.gaussian_kernel(X, M=SPD + torch.triu(SPD, 1)), "M"),
    ("mahalanobis_sq_distances huge X", lambda: nk.mahalanobis_sq_distances(X * 1e200), "X"),
    ("laplace_kernel huge X", lambda: nk.laplace_kernel(X * 1e200), "X"),
    # metrics: asymmetric kernels, NaN block sums, wrong class sizes, overflow
    ("nc1_from_kernel asymmetric K", lambda: nk.nc1_from_kernel(ASYM, LAB), "K"),
    ("kernel_alignment asymmetric K", lambda: nk.kernel_alignment(ASYM, LAB), "K"),
    ("block_means asymmetric K", lambda: nk.block_means(ASYM, LAB), "K"),
    ("nc1_from_kernel_balanced_formula asymmetric K", lambda: nk.nc1_from_kernel_balanced_formula(ASYM, LAB), "K"),
    ("class_block_sums NaN K", lambda: nk.class_block_sums(K * float("nan"), LAB, 2), "K"),
    ("class_block_sums num_classes=-1", lambda: nk.class_block_sums(K, LAB, -1), "num_classes"),
    ("nc1_from_block_sums short S_c", lambda: nk.nc1_from_block_sums(K.trace(), S_c[:1], R_c, S, [4, 4]), "S_c"),
    ("nc1_from_block_sums float sizes", lambda: nk.nc1_from_block_sums(K.trace(), S_c, R_c, S, [4.5, 3.5]),
     "class_sizes"),
    ("nc1_from_block_sums negative size", lambda: nk.nc1_from_block_sums(K.trace(), S_c, R_c, S, [-4, 12]),
     "class_sizes"),
    ("nc1_from_features huge features", lambda: nk.nc1_from_features(X * 1e200, LAB), "rescale"),
    ("nc2_etf_distance huge features", lambda: nk.nc2_etf_distance(X * 1e200, LAB), "H"),
    ("nc1_from_class_expectations NaN", lambda: nk.nc1_from_class_expectations([float("nan"), 1.0],
                                                                               [[0.5, 0.1], [0.1, 0.5]]), "diag"),
    ("nc1_from_class_expectations asymmetric cross",
     lambda: nk.nc1_from_class_expectations([1.0, 1.0], [[0.5, 0.1], [0.3, 0.5]]), "cross"),
    ("nc1_from_class_expectations 2-D diag",
     lambda: nk.nc1_from_class_expectations([[1.0], [1.0]], [[0.5, 0.1], [0.1, 0.5]]), "diag"),
    ("population_nc1_large_d0 NaN mean", lambda: nk.population_nc1_large_d0("ntk", means=(float("nan"), 1.0)), "means"),
    ("matrix_correlation complex", lambda: nk.matrix_correlation(SPD.to(torch.complex128), SPD), "A"),
    ("psd_sqrt tol=nan", lambda: nk.psd_sqrt(SPD, tol=float("nan")), "tol"),
    # data
    ("gaussian_classes bool class size", lambda: nk.gaussian_classes([True, 3], 2), "class_sizes"),
    ("gaussian_classes integer dtype", lambda: nk.gaussian_classes([3, 3], 2, dtype=torch.int64), "dtype"),
    ("class_balanced_subset non-integer labels", lambda: nk.class_balanced_subset(LAB.double() + 0.5, 2), "labels"),
    ("class_balanced_subset 2-D labels", lambda: nk.class_balanced_subset(LAB[:, None], 2), "labels"),
    ("standardize_columns NaN", lambda: nk.standardize_columns(X * float("nan")), "X"),
    ("standardize_columns 1-D", lambda: nk.standardize_columns(X[:, 0]), "X"),
    # models
    ("random_features NaN W", lambda: nk.random_features(X, torch.full((4, 3), float("nan"), dtype=F64)), "W"),
    ("random_features 3-D X", lambda: nk.random_features(X[None], torch.ones(4, 3, dtype=F64)), "X"),
    ("MLPClassifier d_in=2.5", lambda: _mlp_classifier(2.5, [4], 2), "d_in"),
    ("MLPClassifier hidden=[2.5]", lambda: _mlp_classifier(3, [2.5], 2), "hidden"),
    ("TwoLayerNTKNet width=True", lambda: nk.TwoLayerNTKNet(3, True), "width"),
    ("MLP num_classes=1", lambda: nk.MLP(3, 4, 2, 1), "num_classes"),
    ("block_flow_rhs NaN W", lambda: nk.block_flow_rhs(ST.W * float("nan"), ST.b, ST.H, BK.matrix(), BK.targets()),
     "W"),
    ("block_flow_rhs asymmetric K", lambda: nk.block_flow_rhs(ST.W, ST.b, ST.H, BK.matrix() + torch.triu(BK.matrix(), 1),
                                                              BK.targets()), "K"),
    ("loss_components inf H", lambda: nk.loss_components(ST.W, ST.b, ST.H + float("inf"), BK), "H"),
    ("simulate_block_flow max_steps=nan", lambda: nk.simulate_block_flow(BK, ST, t_max=1.0, max_steps=float("nan")),
     "max_steps"),
    ("adaptive_kernel indefinite Sigma", lambda: nk.adaptive_kernel(X, -SPD), "Sigma"),
    ("adaptive_kernel_gradient indefinite Sigma",
     lambda: nk.adaptive_kernel_gradient(X, -SPD, torch.eye(8, dtype=F64)), "Sigma"),
    ("eos_label_matrix NaN y", lambda: nk.eos_label_matrix(DATA.y * float("nan"), DATA.y, noise_var=1e-3), "y"),
    ("solve_adaptive_kernel memory=nan", lambda: nk.solve_adaptive_kernel(X, DATA.y, width=50.0, memory=float("nan")),
     "memory"),
    ("log_epochs points=0", lambda: nk.log_epochs(100, 0), "points"),
    ("log_epochs epochs=True", lambda: nk.log_epochs(True), "epochs"),
    ("init_networks outputs=0", lambda: nk.init_networks([0], 3, 0, nk.TrainingConfig(width=4), like=X), "outputs"),
    ("init_networks float seed", lambda: nk.init_networks([0.5], 3, 2, nk.TrainingConfig(width=4), like=X), "seeds"),
    ("train_networks float seed", lambda: nk.train_networks(X, LAB, [0.5], nk.TrainingConfig(width=4, epochs=1)),
     "seeds"),
    ("train_mlp unseen test class", lambda: nk.train_mlp(X, LAB, epochs=1, depth=1, width=4, batch_size=4,
                                                         X_test=X[:3], labels_test=torch.tensor([0, 1, 7])),
     "labels_test"),
    ("deep_rfm unseen test class", lambda: nk.deep_rfm(X, LAB, depth=1, width=8, X_test=X[:3],
                                                       labels_test=torch.tensor([0, 1, 7])), "labels_test"),
    # solvers: singular systems raise the documented error with the cure, never torch's _LinAlgError
    ("krr_fit duplicated samples, ridge=0",
     lambda: nk.krr_fit(torch.cat([X, X]), torch.cat([DATA.y, DATA.y]), ridge=0.0), "ridge"),
    ("invariant singular K", lambda: nk.invariant(ST.W, ST.H, torch.ones(6, 6, dtype=F64)), "jitter"),
]


@pytest.mark.parametrize("name,call,match", CASES, ids=[c[0] for c in CASES])
def test_bad_input_raises(name, call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


@pytest.mark.parametrize("device", ["mps"] + ([] if torch.cuda.is_available() else ["cuda", "cuda:1"]))
def test_missing_device_is_a_clear_value_error(device):
    for call in (lambda: nk.gaussian_classes([2, 2], 2, device=device),
                 lambda: nk.load_digits(device=device),
                 lambda: nk.init_block_state(BK, 4, scale=0.1, device=device),
                 lambda: nk.TwoLayerNTKNet(3, 4, device=device),
                 lambda: nk.MLP(3, 4, 1, 2, device=device)):
        with pytest.raises(ValueError, match="device"):
            call()


def test_test_split_missing_a_training_class_is_scored_against_the_training_classes():
    """Train on classes {0, 1, 2}, test on class 2 only: test labels must index class 2, not class 0."""
    g = torch.Generator().manual_seed(1)
    data = nk.gaussian_classes([5, 5, 5], 3, means=(-3.0, 0.0, 3.0), generator=g)
    Xt = nk.gaussian_classes([1, 1, 3], 3, means=(-3.0, 0.0, 3.0), generator=g).X[2:]
    yt = torch.full((3,), 2)
    assert torch.equal(v.check_test_labels(yt, 3, data.labels), torch.tensor([2, 2, 2]))
    res = nk.train_mlp(data.X, data.labels, epochs=2, depth=1, width=8, batch_size=5, X_test=Xt, labels_test=yt,
                       generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = float((res.model(Xt).argmax(1) == 2).double().mean())
    assert res.history["test_acc"].iloc[-1] == pytest.approx(expected)


def test_check_int_replaces_the_hand_written_checks():
    assert v.check_int(3, "n") == 3
    assert v.check_int(0, "n", minimum=0) == 0
    assert v.check_int(None, "n", allow_none=True) is None
    for bad in (0, -1, 2.5, True, "3", None, float("nan")):
        with pytest.raises((ValueError, TypeError), match="n must be an integer"):
            v.check_int(bad, "n")


def test_model_on_another_device_than_X_is_a_clear_value_error():
    """A model on one device and X on another raise ValueError naming X (the meta device stands in for a GPU)."""
    net = nk.TwoLayerNTKNet(3, 4, generator=torch.Generator().manual_seed(0)).to("meta")
    with pytest.raises(ValueError, match="X is on cpu"):
        nk.empirical_ntk(net, X)
    with pytest.raises(ValueError, match="X is on cpu"):
        nk.mlp_layer_analysis(nk.MLP(3, 4, 1, 2).to("meta"), X, LAB)
    with pytest.raises(ValueError, match="X is on cpu"):
        nk.train_with_ntk_probes(_mlp_classifier(3, (4,), 2).to("meta"), X, LAB, steps=1, lr=0.1)
