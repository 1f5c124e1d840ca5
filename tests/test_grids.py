import math

import pandas as pd
import pytest
import torch

import nckernels as nk
from nckernels.experiments.cells import ROW_COLUMNS, STATUSES
from nckernels.grids import cell_seed, kernel_nc1_grid, summarize_grid

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_grid_rows_and_reproducible_cells():
    f = kernel_nc1_grid([[8, 8], [4, 12]], [1, 3], 2, seed=5)
    assert len(f) == 2 * 2 * 2 * 6
    assert set(f["kernel"]) == {"data", "NNGP erf", "NTK erf", "NNGP relu", "NTK relu", "NTK erf (as coded)"}
    g = kernel_nc1_grid([[8, 8], [4, 12]], [1, 3], 2, seed=5)
    assert f["nc1"].equals(g["nc1"])
    assert cell_seed(0, (8, 8), 1, 0) != cell_seed(0, (8, 8), 1, 1)
    assert f[f.kernel == "data"]["nc1_pinv"].notna().all()
    # the cell's data are gaussian_classes with cell_seed(seed, split, d0, draw), as before the grid engine
    data = nk.gaussian_classes((4, 12), 3, generator=torch.Generator().manual_seed(cell_seed(5, (4, 12), 3, 1)))
    row = f[(f.kernel == "NTK relu") & (f.split == "4/12") & (f.d0 == 3) & (f.draw == 1)].iloc[0]
    assert row["nc1"] == pytest.approx(nk.nc1_from_kernel(nk.ntk(data.X, activation="relu"), data.labels).nc1, rel=1e-10)
    data_log = math.log10(nk.nc1_from_features(data.X, data.labels).nc1)
    assert row["relative"] == pytest.approx(row["log10_nc1"] - data_log, abs=1e-12)
    assert (f.loc[f.kernel == "data", "relative"] == 0).all()
    assert row["minority"] == 0.25 and row["n_min"] == 4 and row["N"] == 16


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
    assert failed["nc1"].isna().all() and failed["log10_nc1"].isna().all()
    s = summarize_grid(f)
    assert s.loc[("nan", 12, 1), "failed"] == 2 and s.loc[("good", 12, 1), "count"] == 2
    t = nk.summarize(f, by=("kernel", "d0"), index=True)
    assert t.loc[("kernels", 3), "failed"] == 2 and t.loc[("kernels", 3), "log10_nc1_count"] == 0
    assert t.loc[("good", 1), "relative_count"] == 2


def test_bad_input():
    with pytest.raises(ValueError, match="draws"):
        kernel_nc1_grid([[4, 4]], [1], 0)
    with pytest.raises(ValueError, match="d0s"):
        kernel_nc1_grid([[4, 4]], [], 1)
    with pytest.raises(ValueError, match="split"):
        kernel_nc1_grid([[4, 0]], [1], 1)
    with pytest.raises(ValueError, match="N"):
        nk.eos_convergence_map(1, [2], [500], [1e-2])
    with pytest.raises(ValueError, match="adaptive_max_N"):
        nk.network_kernels(adaptive_max_N=-1)


def test_one_schema_across_the_four_grids():
    frames = {
        "kernel": nk.kernel_nc1_grid([[4, 4]], [2], 1),
        "trained": nk.trained_network_grid([[4, 4]], [2], 2, nk.TrainingConfig(width=8, epochs=3)),
        "adaptive": nk.adaptive_nc1_grid([[4, 4]], [2], 1, label_terms=("eos",), noise_var=1e-2),
        "map": nk.eos_convergence_map(8, [2], [500], [1e-2]),
    }
    for name, f in frames.items():
        assert tuple(f.columns[: len(ROW_COLUMNS)]) == ROW_COLUMNS, name
        assert set(f["status"]) <= set(STATUSES), name
        ok = f[f.status == "ok"]
        assert (ok["error"] == "").all() and ok["log10_nc1"].notna().all(), name
        assert (ok["log10_nc1"] - ok["nc1"].map(math.log10)).abs().max() < 1e-12, name
    assert {"loss", "accuracy"} <= set(frames["trained"].columns)
    assert {"residual", "evaluations", "trace_sigma"} <= set(frames["adaptive"].columns)
    assert {"width", "noise_var", "label_term"} <= set(frames["map"].columns)
    assert "data" not in set(frames["map"]["kernel"]) and set(frames["map"]["kernel"]) == {"adaptive (eos)"}
    # the map's data are drawn with cell_seed(seed, N, d0); its NC1 is the solver's kernel's
    row = frames["map"].iloc[0]
    data = nk.gaussian_classes([4, 4], 2, generator=torch.Generator().manual_seed(cell_seed(0, 8, 2)))
    sol = nk.solve_adaptive_kernel(data.X, data.y, width=500.0, noise_var=1e-2, sigma_a2=1 / 128, labels=data.labels,
                                   strict=False)
    assert row["status"] == ("ok" if sol.converged else "failed") and row["evaluations"] == sol.evaluations
    if sol.converged:
        assert row["nc1"] == pytest.approx(nk.nc1_from_kernel(sol.kernel, data.labels).nc1, rel=1e-12)
    # relative is against the data row of the same cell, for every grid
    for name in ("kernel", "trained", "adaptive"):
        f = frames[name]
        data_log = f[f.kernel == "data"].set_index(["split", "d0", "draw"])["log10_nc1"]
        other = f[(f.kernel != "data") & (f.status == "ok")].set_index(["split", "d0", "draw"])
        assert (other["relative"] - (other["log10_nc1"] - data_log.reindex(other.index))).abs().max() < 1e-12, name
    # the four frames concatenate into one table
    assert len(pd.concat(frames.values(), ignore_index=True).columns) >= len(ROW_COLUMNS)


def test_network_kernels_and_skipped_adaptive():
    config = nk.TrainingConfig(width=8, epochs=2, sigma_a=1.5)
    kernels = nk.network_kernels(config, adaptive_max_N=4)
    data = nk.gaussian_classes([3, 3], 2, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(kernels["NNGP"](data), nk.nngp(data.X))
    torch.testing.assert_close(kernels["NTK"](data), nk.ntk(data.X, sigma_a=1.5))
    assert kernels["adaptive"](data) is None  # 6 samples > adaptive_max_N: a skipped row
    f = nk.trained_network_grid([[3, 3]], [2], 2, config, kernels=kernels, kernel_draws={"adaptive": 1})
    ad = f[f.kernel == "adaptive"]
    assert len(ad) == 1 and ad["status"].iloc[0] == "skipped" and ad["error"].iloc[0] == ""
    s = nk.summarize(f, by=("kernel", "N", "d0"), index=True)
    assert s.loc[("adaptive", 6, 2), "skipped"] == 1 and s.loc[("adaptive", 6, 2), "log10_nc1_count"] == 0


def test_population_limits_and_kernel_by_name():
    X = torch.randn(5, 1, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    torch.testing.assert_close(nk.kernel_by_name("NTK relu")(X), nk.ntk(X, activation="relu"))
    torch.testing.assert_close(nk.kernel_by_name("data")(X, X[:2]), X @ X[:2].T)
    limits = nk.population_limits(["data", "NNGP erf"], (-2.0, 2.0), 0.5)
    assert limits["data"]["d0=1"] == pytest.approx(math.log10(0.25 / 4), abs=1e-9)
    assert limits["data"]["d0=inf"] == pytest.approx(math.log10(0.25 / 4), abs=1e-9)
    assert limits["NNGP erf"]["d0=1"] < limits["data"]["d0=1"] < limits["NNGP erf"]["d0=inf"]
    with pytest.raises(ValueError, match="name"):
        nk.kernel_by_name("GP tanh")


@pytest.mark.parametrize("weights", ["uniform", "class_size"])
def test_streamed_family_equals_full_kernels(weights):
    from nckernels import reference
    from nckernels.grids import two_layer_family_nc1

    data = nk.gaussian_classes([37, 90], 6, generator=torch.Generator().manual_seed(3), shuffle=True)
    for chunk in (1, 16, 1000, None):
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


def test_streaming_chunk_keeps_blocks_small():
    from nckernels.experiments.grids import streaming_chunk

    assert streaming_chunk(1024) == 256 and streaming_chunk(127) == 256  # small N: the 256-row cap
    for N in (4096, 8192, 16384, 65536):
        c = streaming_chunk(N)
        assert 8 <= c < 256 and c * N <= 2**19 < 2 * c * N  # about 2^19 entries per block array
    assert streaming_chunk(10**7) == 8
    with pytest.raises(ValueError, match="N"):
        streaming_chunk(0)
