"""Probe: call public nckernels functions with bad inputs and numeric edge cases, classify each outcome.

    .venv/bin/python benchmarks/probe_inputs.py [--show silent,unclear] [--csv out.csv]

Outcomes:
  clear    ValueError / TypeError (or a package error: DivergenceError, EoSConvergenceError) whose message
           names the argument (bad-input cases) or states the cure (edge cases)
  unclear  another exception, or a message that does not name the argument
  silent   returned although the input is bad, or returned a non-finite / wrong-shaped value
  ok       (edge cases only) a finite result of the documented shape
Each case is (function, battery, label); ``bad`` cases must not return, ``edge`` cases may return finite values.
"""
from __future__ import annotations

import argparse
import math
import sys
import warnings
from collections import Counter

import torch

import nckernels as nk

warnings.filterwarnings("ignore")
torch.manual_seed(0)
F64 = torch.float64
CLEAR_TYPES = (ValueError, TypeError, nk.DivergenceError, nk.EoSConvergenceError)


def _nk(name):
    """A public name, followed to its module if the top level does not (yet) export it."""
    if hasattr(nk, name):
        return getattr(nk, name)
    import importlib
    for mod in ("nckernels.models.mlp", "nckernels.kernels.empirical", "nckernels.metrics"):
        try:
            m = importlib.import_module(mod)
        except ImportError:
            continue
        if hasattr(m, name):
            return getattr(m, name)
    raise AttributeError(name)


def data(n_per=4, d=3, C=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return nk.gaussian_classes([n_per] * C, d, generator=g)


D = data()
X, LAB = D.X, D.labels  # (8, 3), labels 0/1
Z = data(seed=1).X[:5]
H = torch.randn(8, 4, dtype=F64, generator=torch.Generator().manual_seed(2))
K = nk.nngp(X)
SPD = torch.eye(3, dtype=F64) + 0.1


def matrix_bads(A, name):
    """Bad values for a 2-D float matrix argument."""
    n, d = A.shape
    return {
        "nan": A.clone().fill_(float("nan")), "inf": A.clone().fill_(float("inf")),
        "1-D": A[:, 0], "3-D": A[None], "empty": A[:0], "complex": A.to(torch.complex128),
        "float16": A.to(torch.float16), "bfloat16": A.to(torch.bfloat16), "string": "abc", "None": None,
    }


def square_bads(A):
    out = matrix_bads(A, "")
    out["non-square"] = A[:, :-1]
    if A.shape[0] > 1:
        B = A.clone()
        B[0, 1] += 1.0
        out["asymmetric"] = B
    return out


def labels_bads(n):
    return {
        "one class": torch.zeros(n, dtype=torch.long), "short": LAB[: n - 1] if n == 8 else torch.arange(n - 1) % 2,
        "non-integer": torch.linspace(0, 1, n, dtype=F64), "2-D": torch.zeros(n, 1, dtype=torch.long),
        "nan": torch.full((n,), float("nan")), "string": "ab", "complex": (torch.arange(n) % 2).to(torch.complex64),
    }


INT_BADS = {"0": 0, "-1": -1, "2.5": 2.5, "True": True, "'3'": "3", "None": None, "nan": float("nan")}
POS_BADS = {"0": 0.0, "-1": -1.0, "nan": float("nan"), "inf": float("inf"), "'a'": "a", "None": None}
NONNEG_BADS = {"-1": -1.0, "nan": float("nan"), "inf": float("inf"), "'a'": "a", "None": None}
CHOICE_BADS = {"'bogus'": "bogus", "None": None, "3": 3}
DEVICE_BADS = {"'cuda'": "cuda", "'mps'": "mps", "'gpu'": "gpu", "'cuda:7'": "cuda:7"}
DTYPE_BADS = {"float16": torch.float16, "int64": torch.int64, "complex128": torch.complex128, "'float'": "float"}
if torch.cuda.is_available():
    DEVICE_BADS = {"'mps'": "mps", "'gpu'": "gpu", "'cuda:99'": "cuda:99"}

CASES = []  # (qualified name, battery, label, thunk, expected argument name, result checker)


def finite(r):
    """True when every float in the result is finite (tensors, numbers, tuples, dataclasses, frames)."""
    if isinstance(r, torch.Tensor):
        return not r.is_floating_point() or bool(torch.isfinite(r).all())
    if isinstance(r, float):
        return math.isfinite(r)
    if isinstance(r, (tuple, list)):
        return all(finite(v) for v in r)
    if isinstance(r, dict):
        return all(finite(v) for v in r.values())
    if hasattr(r, "__dataclass_fields__"):
        return all(finite(getattr(r, f)) for f in r.__dataclass_fields__ if f not in ("history", "frame"))
    return True


def add(fn_name, fn, base_args, base_kwargs, arg_bads, *, shape=None, edges=()):
    """Register bad-input cases: replace one argument (positional index or keyword) by each bad value."""
    for arg, bads in arg_bads.items():
        for label, value in bads.items():
            args, kwargs = list(base_args), dict(base_kwargs)
            if isinstance(arg, int):
                while len(args) <= arg:  # pad with the declared defaults
                    args.append(list(_params(fn).values())[len(args)].default)
                args[arg] = value
                argname = list(_params(fn))[arg]
            else:
                kwargs[arg] = value
                argname = arg
            param = _params(fn).get(argname)
            if value is None and param is not None and param.default is None:
                continue  # None is this argument's documented default, not a bad value
            CASES.append((fn_name, "bad", f"{argname}={label}", _thunk(fn, args, kwargs), argname, None))
    for label, args, kwargs, checker in edges:
        CASES.append((fn_name, "edge", label, _thunk(fn, args, kwargs), None, checker))


def _params(fn):
    import inspect
    return inspect.signature(fn).parameters


def _thunk(fn, args, kwargs):
    return lambda: fn(*args, **kwargs)


def shape_is(*s):
    return lambda r: isinstance(r, torch.Tensor) and tuple(r.shape) == s


# ----------------------------------------------------------------------------------------------- kernels
XZ_BADS = {0: matrix_bads(X, "X")}
for kname in ("preactivation_kernel", "nngp", "derivative_kernel", "ntk", "erf_derivative_kernel_as_coded",
              "erf_ntk_as_coded"):
    fn = getattr(nk, kname)
    bads = {0: matrix_bads(X, "X"), 1: {**{k: v for k, v in matrix_bads(Z, "Z").items() if k != "None"},
                                        "wrong cols": Z[:, :2]},
            "sigma_w": NONNEG_BADS, "sigma_b": NONNEG_BADS}
    if "activation" in _params(fn):
        bads["activation"] = CHOICE_BADS
    if "sigma_a" in _params(fn):
        bads["sigma_a"] = NONNEG_BADS
    big = X * 1e200
    add(kname, fn, [X, None], {}, bads, edges=[
        ("duplicate rows", [torch.cat([X, X])], {}, shape_is(16, 16)),
        ("zero input, sigma_b=0", [torch.zeros(4, 3, dtype=F64)], {}, shape_is(4, 4)),
        ("huge input 1e200", [big], {}, shape_is(8, 8)),
        ("tiny input 1e-300", [X * 1e-300], {}, shape_is(8, 8)),
        ("integer X", [X.round().long()], {}, shape_is(8, 8)),
        ("float32 X", [X.float()], {}, lambda r: r.dtype == torch.float32 and r.shape == (8, 8)),
        ("sigma_w=0", [X], {"sigma_w": 0.0}, shape_is(8, 8)),
    ] + ([("relu zero input", [torch.zeros(4, 3, dtype=F64)], {"activation": "relu"}, shape_is(4, 4))]
         if "activation" in _params(fn) else []))

add("two_layer_kernels", nk.two_layer_kernels, [X], {},
    {0: matrix_bads(X, "X"), "activations": {"'bogus'": ("bogus",), "'erf'(str)": "erf", "None": None, "()": ()},
     "sigma_a": NONNEG_BADS},
    edges=[("huge input", [X * 1e200], {}, None)])
add("two_layer_features", nk.two_layer_features, [X], {"width": 5},
    {0: matrix_bads(X, "X"), "width": INT_BADS, "generator": {"'seed'": "seed", "3": 3}},
    edges=[("huge input", [X * 1e200], {"width": 5}, shape_is(8, 5))])
add("finite_width_kernels", nk.finite_width_kernels, [X], {"width": 5},
    {0: matrix_bads(X, "X"), "width": {**INT_BADS, "1": 1}, "chunk": INT_BADS,
     "generator": {"'seed'": "seed"}})
COV = torch.tensor([0.5, 0.9, -0.3], dtype=F64)
V1 = torch.tensor([1.0, 1.0, 2.0], dtype=F64)
for dname in ("erf_dual", "erf_dual_derivative", "relu_dual", "relu_dual_derivative", "relu_angle", "erf_dual_pair",
              "relu_dual_pair"):
    fn = getattr(nk, dname)
    add(dname, fn, [COV, V1, V1], {},
        {0: {"nan": COV * float("nan"), "string": "x", "None": None, "complex": COV.to(torch.complex128)},
         1: {"negative var": -V1, "nan": V1 * float("nan"), "None": None},
         2: {"negative var": -V1},
         },
        edges=[("|c| > sqrt(v1 v2)", [torch.tensor([3.0], dtype=F64), torch.tensor([1.0], dtype=F64),
                                      torch.tensor([1.0], dtype=F64)], {}, None),
               ("c = v1 = v2 (perfectly correlated)", [V1, V1, V1], {}, None),
               ("zero variance", [torch.zeros(1, dtype=F64)] * 3, {}, None),
               ("python floats", [0.5, 1.0, 1.0], {}, None)])
add("get_activation", nk.get_activation, ["erf"], {}, {0: CHOICE_BADS})
add("population_nc1_1d", nk.population_nc1_1d, [lambda a, b=None: nk.nngp(a, b)], {"order": 8},
    {0: {"None": None, "'nngp'": "nngp"}, "std": POS_BADS, "order": {**INT_BADS, "1": 1},
     "means": {"one mean": (1.0,), "nan": (float("nan"), 1.0), "string": "ab"}},
    edges=[("equal means (no between-class spread)", [lambda a, b=None: nk.nngp(a, b)],
            {"order": 8, "means": (1.0, 1.0)}, None)])
add("population_nc1_large_d0", nk.population_nc1_large_d0, ["ntk"], {},
    {0: CHOICE_BADS, "activation": CHOICE_BADS, "std": POS_BADS, "sigma_w": NONNEG_BADS, "sigma_b": NONNEG_BADS,
     "sigma_a": NONNEG_BADS, "means": {"one mean": (1.0,), "nan": (float("nan"), 1.0), "string": "ab",
                                        "2-D": ((1.0, 2.0), (3.0, 4.0))}},
    edges=[("equal means", ["ntk"], {"means": (1.0, 1.0)}, None),
           ("data kind, zero means", ["data"], {"means": (0.0, 0.0)}, None),
           ("sigma_a=0", ["ntk"], {"sigma_a": 0.0}, None),
           ("sigma_w=0, sigma_b=0", ["nngp"], {"sigma_w": 0.0}, None)])
add("nc1_from_class_expectations", nk.nc1_from_class_expectations, [[1.0, 1.0], [[0.5, 0.1], [0.1, 0.5]]], {},
    {0: {"nan": [float("nan"), 1.0], "2-D": [[1.0], [1.0]], "string": "ab", "one class": [1.0],
         "complex": [1j, 1.0]},
     1: {"wrong shape": [[0.5, 0.1]], "nan": [[float("nan"), 0.1], [0.1, 0.5]], "asymmetric": [[0.5, 0.1], [0.3, 0.5]]}},
    edges=[("equal blocks", [[1.0, 1.0], [[0.5, 0.5], [0.5, 0.5]]], {}, None)])

# ----------------------------------------------------------------------------------------------- metrics
for mname in ("nc1_from_features", "nc2_from_features", "nc2_etf_distance"):
    fn = getattr(nk, mname)
    bads = {0: matrix_bads(H, "H"), 1: labels_bads(8)}
    if "between_weights" in _params(fn):
        bads["between_weights"] = CHOICE_BADS
    add(mname, fn, [H, LAB], {}, bads, edges=[
        ("identical features (zero between)", [torch.ones(8, 4, dtype=F64), LAB], {}, None),
        ("one sample per class", [H[:2], torch.tensor([0, 1])], {}, None),
        ("huge features 1e200", [H * 1e200, LAB], {}, None),
        ("tiny features 1e-300", [H * 1e-300, LAB], {}, None),
        ("labels 5/9 (non-contiguous)", [H, LAB * 4 + 5], {}, None),
    ])
for mname in ("nc1_from_kernel", "nc1_from_kernel_balanced_formula", "kernel_alignment", "block_means"):
    fn = getattr(nk, mname)
    bads = {0: square_bads(K), 1: labels_bads(8)}
    if "between_weights" in _params(fn):
        bads["between_weights"] = CHOICE_BADS
    Kneg = -torch.eye(8, dtype=F64)
    add(mname, fn, [K, LAB], {}, bads, edges=[
        ("constant kernel", [torch.ones(8, 8, dtype=F64), LAB], {}, None),
        ("indefinite kernel", [Kneg, LAB], {}, None),
        ("huge kernel 1e300", [K * 1e300, LAB], {}, None),
        ("imbalanced labels", [K, torch.tensor([0, 0, 0, 0, 0, 0, 1, 1])], {}, None),
        ("one sample per class", [K[:2, :2], torch.tensor([0, 1])], {}, None),
    ])
S_c, R_c, S = nk.class_block_sums(K, LAB, 2)
add("nc1_from_block_sums", nk.nc1_from_block_sums, [K.trace(), S_c, R_c, S, [4, 4]], {},
    {1: {"nan": S_c * float("nan"), "string": "ab", "None": None, "wrong length": S_c[:1]},
     2: {"nan": R_c * float("nan"), "None": None, "wrong length": R_c[:1]},
     4: {"zero size": [0, 8], "negative": [-4, 12], "float": [4.5, 3.5], "wrong length": [8], "string": "ab"},
     "between_weights": CHOICE_BADS},
    edges=[("python float trace", [float(K.trace()), S_c, R_c, float(S), [4, 4]], {}, None)])
add("class_block_sums", nk.class_block_sums, [K, LAB, 2], {},
    {0: square_bads(K), 1: {"out of range": LAB + 5, "negative": LAB - 1, "float": LAB.double(), "short": LAB[:4]},
     2: {**INT_BADS, "1 (< classes)": 1}})
add("batched_feature_nc1", nk.batched_feature_nc1, [H[None], LAB, 2], {},
    {0: {"nan": H[None] * float("nan"), "2-D": H, "complex": H[None].to(torch.complex128), "float16": H[None].half()},
     1: {"out of range": LAB + 5, "negative": LAB - 1, "short": LAB[:4], "float": LAB.double()},
     2: {**INT_BADS, "1": 1}, "between_weights": CHOICE_BADS})
add("matrix_correlation", nk.matrix_correlation, [SPD, SPD], {},
    {0: matrix_bads(SPD, "A"), 1: {"wrong shape": SPD[:2], "nan": SPD * float("nan"), "complex": SPD.to(torch.complex128)}},
    edges=[("zero matrix", [torch.zeros(3, 3, dtype=F64), SPD], {}, None)])
Wr = torch.randn(5, 3, dtype=F64, generator=torch.Generator().manual_seed(3))
add("nfa_correlation", nk.nfa_correlation, [Wr, SPD], {},
    {0: matrix_bads(Wr, "W"), 1: {**square_bads(SPD), "indefinite": -SPD, "wrong size": torch.eye(4, dtype=F64)},
     "power": {"nan": float("nan"), "'a'": "a", "None": None}},
    edges=[("zero W", [torch.zeros(5, 3, dtype=F64), SPD], {}, None)])

# ----------------------------------------------------------------------------------------------- data
add("gaussian_classes", nk.gaussian_classes, [[3, 3], 2], {},
    {0: {"one class": [3], "zero": [0, 3], "float": [2.5, 3], "bool": [True, 3], "string": "ab", "None": None},
     1: INT_BADS, "std": POS_BADS, "means": {"nan": (float("nan"), 1.0), "wrong count": (1.0,), "string": "ab"},
     "dtype": DTYPE_BADS, "device": DEVICE_BADS, "generator": {"'seed'": "seed", "3": 3}},
    edges=[("huge std", [[3, 3], 2], {"std": 1e200}, None)])
add("class_balanced_subset", nk.class_balanced_subset, [LAB, 2], {},
    {0: {"2-D": LAB[:, None], "float non-int": LAB.double() + 0.5, "string": "ab", "None": None, "nan": LAB * float("nan")},
     1: {**INT_BADS, "too many": 5}, "generator": {"'seed'": "seed"}})
add("standardize_columns", nk.standardize_columns, [X], {},
    {0: matrix_bads(X, "X")},
    edges=[("one row", [X[:1]], {}, shape_is(1, 3)), ("integer X", [X.round().long()], {}, None),
           ("huge X", [X * 1e200], {}, None)])
add("load_digits", nk.load_digits, [], {}, {"dtype": DTYPE_BADS, "device": DEVICE_BADS})

# ----------------------------------------------------------------------------------------------- rfm
for kname in ("laplace_kernel", "gaussian_kernel", "mahalanobis_kernel", "mahalanobis_sq_distances"):
    fn = getattr(nk, kname)
    bads = {0: matrix_bads(X, "X"), 1: {"wrong cols": Z[:, :2], "nan": Z * float("nan")},
            "M": {**square_bads(SPD), "indefinite": -SPD, "wrong size": torch.eye(4, dtype=F64)}}
    if "bandwidth" in _params(fn):
        bads["bandwidth"] = POS_BADS
    if "kernel" in _params(fn):
        bads["kernel"] = CHOICE_BADS
    add(kname, fn, [X, None], {}, bads, edges=[
        ("huge X", [X * 1e200, None], {}, None), ("duplicate rows", [torch.cat([X, X]), None], {}, None),
        ("M = 0", [X, None], {"M": torch.zeros(3, 3, dtype=F64)}, None)])
add("psd_sqrt", nk.psd_sqrt, [SPD], {},
    {0: {**square_bads(SPD), "indefinite": -SPD}, "tol": NONNEG_BADS},
    edges=[("zero", [torch.zeros(3, 3, dtype=F64)], {}, None), ("rank-1", [torch.ones(3, 3, dtype=F64)], {}, None),
           ("huge 1e300", [SPD * 1e300], {}, None)])
Yk = D.y
add("krr_fit", nk.krr_fit, [X, Yk], {},
    {0: matrix_bads(X, "X"), 1: {"nan": Yk * float("nan"), "wrong length": Yk[:3], "3-D": Yk[None, None],
                                 "complex": Yk.to(torch.complex128), "string": "ab", "None": None},
     "ridge": NONNEG_BADS, "bandwidth": POS_BADS, "kernel": CHOICE_BADS,
     "M": {**square_bads(SPD), "indefinite": -SPD}},
    edges=[("duplicate rows ridge=0", [torch.cat([X, X]), torch.cat([Yk, Yk])], {"ridge": 0.0}, None),
           ("duplicate rows gaussian ridge=0", [torch.cat([X, X]), torch.cat([Yk, Yk])],
            {"ridge": 0.0, "kernel": "gaussian"}, None),
           ("huge bandwidth ridge=0", [X, Yk], {"ridge": 0.0, "bandwidth": 1e12}, None),
           ("Y zero", [X, torch.zeros_like(Yk)], {}, None)])
MODEL = nk.krr_fit(X, Yk)
add("kernel_agop", nk.kernel_agop, [MODEL], {},
    {0: {"None": None, "string": "ab"}, 1: {"wrong cols": Z[:, :2], "nan": Z * float("nan"), "1-D": Z[0]}})
Wf = torch.randn(6, 3, dtype=F64)
add("random_features", nk.random_features, [X, Wf], {},
    {0: matrix_bads(X, "X"), 1: {"wrong cols": Wf[:, :2], "nan": Wf * float("nan"), "1-D": Wf[0],
                                 "complex": Wf.to(torch.complex128)},
     "kind": CHOICE_BADS},
    edges=[("cosine without b", [X, Wf], {"kind": "cosine"}, None)])
add("deep_rfm", nk.deep_rfm, [X, LAB], {"depth": 1, "width": 8},
    {0: matrix_bads(X, "X"), 1: labels_bads(8), "depth": INT_BADS, "width": INT_BADS,
     "ridge": NONNEG_BADS, "bandwidth": POS_BADS, "features": CHOICE_BADS, "kernel": CHOICE_BADS,
     "feature_bandwidth": POS_BADS,
     "labels_test": {"unseen class": torch.tensor([0, 1, 7, 1, 0])}, "generator": {"'seed'": "seed"}},
    edges=[("test split missing a class", [X, LAB], {"depth": 1, "width": 8, "X_test": Z[:2],
                                                     "labels_test": torch.tensor([1, 1])}, None)])

# ----------------------------------------------------------------------------------------------- agop / mlp
add("model_agop", nk.model_agop, [lambda x: x @ Wf.T, X], {},
    {0: {"None": None, "string": "ab"}, 1: matrix_bads(X, "X"), "batch_size": {**INT_BADS}})
add("MLP", nk.MLP, [3, 4, 2, 2], {},
    {0: INT_BADS, 1: INT_BADS, 2: INT_BADS, 3: {**INT_BADS, "1": 1}, "init_scale": POS_BADS,
     "dtype": DTYPE_BADS, "device": DEVICE_BADS})
MLP = nk.MLP(3, 4, 2, 2, generator=torch.Generator().manual_seed(0))
add("mlp_layer_analysis", nk.mlp_layer_analysis, [MLP, X, LAB], {},
    {0: {"None": None, "string": "ab"}, 1: {**matrix_bads(X, "X"), "wrong cols": X[:, :2]}, 2: labels_bads(8)})
add("train_mlp", nk.train_mlp, [X, LAB], {"epochs": 1, "depth": 1, "width": 4, "batch_size": 4},
    {0: matrix_bads(X, "X"), 1: labels_bads(8), "epochs": INT_BADS, "depth": INT_BADS, "width": INT_BADS,
     "batch_size": INT_BADS, "lr": POS_BADS, "momentum": NONNEG_BADS, "weight_decay": NONNEG_BADS,
     "device": DEVICE_BADS,
     "labels_test": {"unseen class": torch.tensor([0, 1, 7, 1, 0])}},
    edges=[("test split missing a class", [X, torch.tensor([0, 0, 0, 1, 1, 1, 2, 2])],
            {"epochs": 1, "depth": 1, "width": 4, "batch_size": 4, "X_test": Z[:2], "labels_test": torch.tensor([2, 2])},
            None)])
add("MLPClassifier", _nk("MLPClassifier"), [3, [4], 2], {},
    {0: INT_BADS, 1: {"[0]": [0], "[2.5]": [2.5], "[]": [], "string": "ab", "None": None}, 2: {**INT_BADS, "1": 1},
     "activation": CHOICE_BADS, "init_scale": POS_BADS, "dtype": DTYPE_BADS, "device": DEVICE_BADS})
add("TwoLayerNTKNet", nk.TwoLayerNTKNet, [3, 4], {},
    {0: INT_BADS, 1: INT_BADS, "activation": CHOICE_BADS, "sigma_w": NONNEG_BADS, "dtype": DTYPE_BADS,
     "device": DEVICE_BADS})
NET = nk.TwoLayerNTKNet(3, 4, generator=torch.Generator().manual_seed(0))
for ename in ("empirical_ntk", "feature_ntk", "output_ntk"):
    fn = getattr(nk, ename)
    bads = {0: {"None": None, "string": "ab"}, 1: {k: v for k, v in matrix_bads(X, "X").items() if k != "3-D"},
            2: {"wrong cols": Z[:, :2], "nan": Z * float("nan")}}
    if ename == "empirical_ntk":
        bads.update({"mode": CHOICE_BADS, "method": CHOICE_BADS, "chunk_size": {k: v for k, v in INT_BADS.items() if k != "None"}})
    add(ename, fn, [NET if ename == "empirical_ntk" else _nk("MLPClassifier")(3, [4], 2), X, None], {}, bads)
add("invariant_stats", nk.invariant_stats, [Wr[:2], H[:, :3], K + torch.eye(8, dtype=F64)], {},
    {0: matrix_bads(Wr[:2], "W"), 1: matrix_bads(H[:, :3], "H"), 2: {**square_bads(K), "indefinite": -K - torch.eye(8, dtype=F64)},
     "jitter": NONNEG_BADS},
    edges=[("singular K, jitter=0", [Wr[:2], H[:, :3], torch.ones(8, 8, dtype=F64)], {}, None)])

# ----------------------------------------------------------------------------------------------- block NTK
BK = nk.BlockKernel(1.0, 0.5, 0.1, 2, 3)
ST = nk.init_block_state(BK, 4, scale=0.1, generator=torch.Generator().manual_seed(0))
add("BlockKernel", nk.BlockKernel, [1.0, 0.5, 0.1, 2, 3], {},
    {0: {"nan": float("nan"), "'a'": "a"}, 3: {**INT_BADS, "1": 1}, 4: INT_BADS},
    edges=[("singular (kappa_d = kappa_c = kappa_n)", [1.0, 1.0, 1.0, 2, 3], {}, None)])
add("init_block_state", nk.init_block_state, [BK, 4], {"scale": 0.1},
    {0: {"None": None, "string": "ab"}, 1: INT_BADS, "scale": NONNEG_BADS, "dtype": DTYPE_BADS, "device": DEVICE_BADS})
KB = BK.matrix()
add("invariant", nk.invariant, [ST.W, ST.H, KB], {},
    {0: matrix_bads(ST.W, "W"), 1: matrix_bads(ST.H, "H"), 2: {**square_bads(KB), "indefinite": -KB}, "jitter": NONNEG_BADS},
    edges=[("singular K", [ST.W, ST.H, torch.ones(6, 6, dtype=F64)], {}, None)])
add("collapse_metrics", nk.collapse_metrics, [ST.W, ST.H, BK.labels()], {},
    {0: matrix_bads(ST.W, "W"), 1: matrix_bads(ST.H, "H"), 2: labels_bads(6)})
add("nc3_self_duality", nk.nc3_self_duality, [ST.W, ST.H, BK.labels()], {},
    {0: matrix_bads(ST.W, "W"), 1: matrix_bads(ST.H, "H"), 2: labels_bads(6)})
add("loss_components", nk.loss_components, [ST.W, ST.b, ST.H, BK], {},
    {0: matrix_bads(ST.W, "W"), 2: matrix_bads(ST.H, "H"), 3: {"None": None, "string": "ab"}})
add("block_flow_rhs", nk.block_flow_rhs, [ST.W, ST.b, ST.H, KB, BK.targets()], {},
    {0: matrix_bads(ST.W, "W"), 2: matrix_bads(ST.H, "H"), 3: square_bads(KB)})
add("simulate_block_flow", nk.simulate_block_flow, [BK, ST], {"t_max": 1.0, "num_times": 3},
    {"t_max": POS_BADS, "num_times": INT_BADS, "rtol": POS_BADS, "atol": POS_BADS, "max_steps": INT_BADS})

# ----------------------------------------------------------------------------------------------- adaptive
Xa, ya = D.X[:, :2], D.y
Sig = torch.eye(2, dtype=F64) / 2
add("adaptive_kernel", nk.adaptive_kernel, [Xa, Sig], {},
    {0: matrix_bads(Xa, "X"), 1: {**square_bads(Sig), "indefinite": -Sig, "wrong size": torch.eye(3, dtype=F64)},
     "sigma_a2": NONNEG_BADS},
    edges=[("huge X", [Xa * 1e200, Sig], {}, None)])
add("adaptive_kernel_gradient", nk.adaptive_kernel_gradient, [Xa, Sig, torch.eye(8, dtype=F64)], {},
    {0: matrix_bads(Xa, "X"), 1: {**square_bads(Sig), "indefinite": -Sig}, 2: {k: b for k, b in square_bads(torch.eye(8, dtype=F64)).items() if k != "asymmetric"}})  # A: symmetric part used
add("eos_update", nk.eos_update, [Xa, ya, Sig], {"kappa": 0.1},
    {0: matrix_bads(Xa, "X"), 1: {"nan": ya * float("nan"), "wrong length": ya[:3]},
     2: {**square_bads(Sig), "indefinite": -Sig}, "kappa": POS_BADS, "noise_var": POS_BADS,
     "label_term": CHOICE_BADS})
add("eos_residual", nk.eos_residual, [Xa, ya, Sig], {"kappa": 0.1},
    {0: matrix_bads(Xa, "X"), 2: {**square_bads(Sig), "indefinite": -Sig}, "kappa": POS_BADS})
add("eos_label_matrix", nk.eos_label_matrix, [ya, ya * 0.5], {"noise_var": 1e-3},
    {0: {"nan": ya * float("nan"), "string": "ab"}, 1: {"wrong length": ya[:3], "nan": ya * float("nan")},
     "noise_var": POS_BADS, "label_term": CHOICE_BADS})
add("solve_adaptive_kernel", nk.solve_adaptive_kernel, [Xa, ya], {"width": 50.0, "max_iter": 5},
    {0: matrix_bads(Xa, "X"), 1: {"nan": ya * float("nan"), "wrong length": ya[:3]}, "width": POS_BADS,
     "max_iter": INT_BADS, "tol": POS_BADS, "memory": INT_BADS})
add("default_schedule", nk.default_schedule, [100.0], {}, {0: POS_BADS})

# ----------------------------------------------------------------------------------------------- training
CFG = nk.TrainingConfig(width=4, epochs=2)
add("TrainingConfig", nk.TrainingConfig, [], {},
    {"width": INT_BADS, "epochs": {k: v for k, v in INT_BADS.items() if k not in ("0",)}, "lr": POS_BADS,
     "activation": CHOICE_BADS, "sigma_a": NONNEG_BADS, "momentum": NONNEG_BADS})
add("log_epochs", nk.log_epochs, [100], {}, {0: INT_BADS, 1: {**INT_BADS, "1": 1}})
add("terminal_phase", nk.terminal_phase, [CFG], {}, {0: {"None": None, "string": "ab"}, "epochs": INT_BADS,
                                                     "points": INT_BADS, "lr": POS_BADS})
add("init_networks", nk.init_networks, [[0], 3, 2, CFG], {"like": X},
    {0: {"empty": [], "float": [0.5], "string": "ab", "None": None}, 1: INT_BADS, 2: INT_BADS,
     3: {"None": None, "string": "ab"}, "like": {"complex": X.to(torch.complex128), "float16": X.half(), "None": None}})
PAR = nk.init_networks([0], 3, 2, CFG, like=X)
add("hidden_features", nk.hidden_features, [PAR, X[None]], {},
    {0: {"None": None, "string": "ab"},
     1: {**{k: v[None] for k, v in matrix_bads(X, "X").items() if isinstance(v, torch.Tensor)},
         "2-D": X, "wrong cols": X[None, :, :2]}, 2: CHOICE_BADS})
add("train_networks", nk.train_networks, [X, LAB, [0]], {"config": CFG},
    {0: {k: v for k, v in matrix_bads(X, "X").items() if k != "3-D"}, 1: labels_bads(8),
     2: {"empty": [], "float": [0.5], "string": "ab", "None": None}, "config": {"None": None, "string": "ab"}})


# ----------------------------------------------------------------------------------------------- newer API
# (registered only where this checkout has it: the package is being reorganised while the probe is used)
def _opt(name):
    try:
        return _nk(name)
    except AttributeError:
        return None


for kname in ("deep_nngp", "deep_ntk"):
    fn = _opt(kname)
    if fn is not None:
        add(kname, fn, [X, None], {"depth": 2},
            {0: matrix_bads(X, "X"), 1: {"wrong cols": Z[:, :2], "nan": Z * float("nan")}, "depth": INT_BADS,
             "activation": CHOICE_BADS, "sigma_w": NONNEG_BADS, "sigma_b": NONNEG_BADS},
            edges=[("huge input", [X * 1e200, None], {"depth": 2}, None),
                   ("depth 3 relu", [X, None], {"depth": 3, "activation": "relu"}, shape_is(8, 8))])
if _opt("deep_population_nc1_large_d0") is not None:
    add("deep_population_nc1_large_d0", _opt("deep_population_nc1_large_d0"), ["ntk"], {"depth": 2},
        {0: CHOICE_BADS, "depth": INT_BADS, "std": POS_BADS, "means": {"one mean": (1.0,), "nan": (float("nan"), 1.0)}},
        edges=[("equal means", ["ntk"], {"depth": 2, "means": (1.0, 1.0)}, None)])
for dname in ("gelu_dual", "gelu_dual_derivative", "gelu_dual_pair"):
    fn = _opt(dname)
    if fn is not None:
        add(dname, fn, [COV, V1, V1], {},
            {0: {"nan": COV * float("nan"), "string": "x", "None": None}, 1: {"negative var": -V1, "nan": V1 * float("nan")}},
            edges=[("|c| > sqrt(v1 v2)", [torch.tensor([3.0], dtype=F64), torch.tensor([1.0], dtype=F64),
                                          torch.tensor([1.0], dtype=F64)], {}, None),
                   ("zero variance", [torch.zeros(1, dtype=F64)] * 3, {}, None)])
if _opt("class_means") is not None:
    add("class_means", _opt("class_means"), [H, LAB], {}, {0: matrix_bads(H, "H"), 1: labels_bads(8)})
for hname, base in (("four_class_gaussians", [[3, 3, 3, 3], 2]), ("xor_clusters", [[4, 4], 2]),
                    ("concentric_shells", [[4, 4], 2]), ("anisotropic_gaussian_classes", [[3, 3], 2])):
    fn = _opt(hname)
    if fn is not None:
        add(hname, fn, base, {},
            {0: {"one class": [3], "zero": [0, 3], "float": [2.5, 3], "bool": [True, 3], "string": "ab", "None": None},
             1: INT_BADS, "dtype": DTYPE_BADS, "device": DEVICE_BADS, "generator": {"'seed'": "seed", "3": 3},
             "targets": CHOICE_BADS})
if _opt("draw_two_layer_params") is not None:
    add("draw_two_layer_params", _opt("draw_two_layer_params"), [3, 4], {},
        {0: INT_BADS, 1: INT_BADS, "outputs": {k: b for k, b in INT_BADS.items() if k != "None"},
         "sigma_w": NONNEG_BADS, "sigma_a": NONNEG_BADS, "generator": {"'seed'": "seed"}})
if _opt("class_targets") is not None:
    add("class_targets", _opt("class_targets"), [LAB, 2], {},
        {0: {"out of range": LAB + 5, "negative": LAB - 1, "float": LAB.double() + 0.5,
             "string": "ab"}, 1: {**INT_BADS, "1": 1}, "encoding": CHOICE_BADS, "dtype": DTYPE_BADS})
if _opt("MLPNetwork") is not None:
    add("MLPNetwork", _opt("MLPNetwork"), [3, [4], 2], {},
        {0: INT_BADS, 1: {"[0]": [0], "[2.5]": [2.5], "[]": [], "string": "ab", "None": None}, 2: INT_BADS,
         "activation": CHOICE_BADS, "init": CHOICE_BADS, "init_scale": POS_BADS, "dtype": DTYPE_BADS,
         "device": DEVICE_BADS, "generator": {"'seed'": "seed"}})


# ----------------------------------------------------------------------------------------------- run
def classify(case):
    name, battery, label, thunk, argname, checker = case
    try:
        r = thunk()
    except CLEAR_TYPES as exc:
        msg = str(exc)
        if battery == "edge" or (argname and argname in msg):
            return "clear", f"{type(exc).__name__}: {msg[:110]}"
        return "unclear", f"{type(exc).__name__} (argument not named): {msg[:110]}"
    except Exception as exc:  # noqa: BLE001
        return "unclear", f"{type(exc).__name__}: {str(exc)[:110]}"
    if battery == "bad":
        return "silent", "returned: " + ("non-finite" if not finite(r) else "accepted the bad input")
    if not finite(r):
        return "silent", "returned non-finite values"
    if checker is not None and not checker(r):
        shape = getattr(r, "shape", None)
        return "silent", f"wrong shape/dtype {tuple(shape) if shape is not None else type(r).__name__}"
    return "ok", ""


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--show", default="silent,unclear", help="outcomes to list, comma-separated ('' for none)")
    ap.add_argument("--csv", default=None)
    args = ap.parse_args(argv)
    rows = []
    for case in CASES:
        outcome, why = classify(case)
        rows.append((case[0], case[1], case[2], outcome, why))
    show = set(filter(None, args.show.split(",")))
    for r in rows:
        if r[3] in show:
            print(f"{r[3]:8s} {r[1]:4s} {r[0]}({r[2]}): {r[4]}")
    print()
    for battery in ("bad", "edge"):
        c = Counter(r[3] for r in rows if r[1] == battery)
        print(f"{battery:5s} inputs: {sum(c.values()):4d} cases | clear {c['clear']:4d} | unclear {c['unclear']:4d} "
              f"| silent {c['silent']:4d} | ok {c['ok']:4d}")
    if args.csv:
        import csv
        with open(args.csv, "w", newline="") as fh:
            csv.writer(fh).writerows([("function", "battery", "case", "outcome", "detail"), *rows])
    return rows


if __name__ == "__main__":
    main()
    sys.exit(0)
