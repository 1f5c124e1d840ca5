import math

import pytest
import torch

import nckernels as nk
from nckernels.grids import cell_seed, kernel_nc1_grid, summarize_grid


def test_grid_rows_and_reproducible_cells():
    f = kernel_nc1_grid([[8, 8], [4, 12]], [1, 3], 2, seed=5)
    assert len(f) == 2 * 2 * 2 * 6
    assert set(f["kernel"]) == {"data", "NNGP erf", "NTK erf", "NNGP relu", "NTK relu", "NTK erf (as coded)"}
    g = kernel_nc1_grid([[8, 8], [4, 12]], [1, 3], 2, seed=5)
    assert f["nc1"].equals(g["nc1"])
    assert cell_seed(0, (8, 8), 1, 0) != cell_seed(0, (8, 8), 1, 1)
    assert f[f.kernel == "data"]["nc1_pinv"].notna().all()


def test_failures_are_rows_not_dropped():
    def family(X):
        if X.shape[1] == 3:
            raise RuntimeError("solver diverged")
        K = nk.nngp(X)
        return {"good": K, "nan": K * float("nan")}

    f = kernel_nc1_grid([[6, 6]], [1, 3], 2, kernels=family)
    failed = f[f.status == "failed"]
    assert len(f) == 2 * 3 + 2 * 2  # d0 = 1: data + 2 kernels; d0 = 3: data + 1 failed family row
    assert set(failed["kernel"]) == {"nan", "kernels"}
    assert failed["error"].str.contains("solver diverged|non-finite").all()
    s = summarize_grid(f)
    assert s.loc[("nan", 12, 1), "failed"] == 2 and s.loc[("good", 12, 1), "count"] == 2


def test_bad_input():
    with pytest.raises(ValueError, match="draws"):
        kernel_nc1_grid([[4, 4]], [1], 0)
    with pytest.raises(ValueError, match="d0s"):
        kernel_nc1_grid([[4, 4]], [], 1)


@pytest.mark.parametrize("weights", ["uniform", "class_size"])
def test_streamed_family_equals_full_kernels(weights):
    from nckernels import reference
    from nckernels.grids import two_layer_family_nc1

    data = nk.gaussian_classes([37, 90], 6, generator=torch.Generator().manual_seed(3), shuffle=True)
    for chunk in (1, 16, 1000):
        got = two_layer_family_nc1(data.X, data.labels, sigma_w=1.2, sigma_b=0.3, sigma_a=0.9, chunk=chunk, between_weights=weights)
        for act in ("erf", "relu"):
            full = {"NNGP": nk.nngp(data.X, activation=act, sigma_w=1.2, sigma_b=0.3),
                    "NTK": nk.ntk(data.X, activation=act, sigma_w=1.2, sigma_b=0.3, sigma_a=0.9)}
            for kind, K in full.items():
                want = nk.nc1_from_kernel(K, data.labels, between_weights=weights)
                assert got[f"{kind} {act}"].nc1 == pytest.approx(want.nc1, rel=1e-10)
                assert got[f"{kind} {act}"].trace_within == pytest.approx(want.trace_within, rel=1e-10)
        coded = reference.erf_ntk_as_coded(data.X, sigma_w=1.2, sigma_b=0.3, sigma_a=0.9)
        assert got["NTK erf (as coded)"].nc1 == pytest.approx(nk.nc1_from_kernel(coded, data.labels, between_weights=weights).nc1, rel=1e-10)
    with pytest.raises(ValueError, match="chunk"):
        two_layer_family_nc1(data.X, data.labels, chunk=0)
