"""Grids of chapters 12_depth_and_activation and 13_hard_data (nckernels.experiments.beyond): agreement with the
kernels they are built on, row schema, seeds, failures as rows, bad input."""
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import nckernels as nk  # noqa: E402
from nckernels.experiments.beyond import HardCell  # noqa: E402


def test_fixed_point_depth_one_is_the_population_limit():
    fixed = nk.deep_fixed_point("erf", [1, 3])
    ref = nk.deep_population_nc1_large_d0("nngp", "erf", 1).nc1
    assert fixed.nc1.iloc[0] == pytest.approx(ref, rel=1e-12)
    deep = nk.deep_population_nc1_large_d0("nngp", "erf", 3).nc1
    assert fixed.nc1.iloc[1] == pytest.approx(deep, rel=1e-12)


def test_population_table_rows_and_values():
    pop = nk.deep_population_table(["erf", "relu"], [1, 2], d0_one=("erf",), order=10)
    assert len(pop) == 2 * 2 * 2 + 2 * 2  # d0=inf for both activations, d0=1 for erf only
    row = pop[(pop.activation == "relu") & (pop.depth == 1) & (pop.kind == "NTK") & (pop.limit == "d0=inf")]
    assert row.log10_nc1.iloc[0] == pytest.approx(math.log10(nk.deep_population_nc1_large_d0("ntk", "relu", 1).nc1))


def test_deep_kernel_grid_matches_direct_kernels():
    rows = nk.deep_kernel_grid([[4, 4]], [3], 1, activations=["erf"], depths=[2], seed=5)
    assert set(rows.kernel) == {"data", "NNGP erf", "NTK erf"} and (rows.status == "ok").all()
    data = nk.Cell((4, 4), 3, 0, seed=5).data()
    ref = nk.nc1_from_kernel(nk.deep_nngp(data.X, depth=2), data.labels).nc1
    assert rows[rows.kernel == "NNGP erf"].nc1.iloc[0] == pytest.approx(ref, rel=1e-12)
    assert rows[rows.kernel == "NNGP erf"].depth.iloc[0] == 2


def test_train_deep_network_and_its_errors():
    data = nk.gaussian_classes([6, 6], 3, generator=torch.Generator().manual_seed(0))
    cfg = nk.TrainingConfig(width=8, epochs=3, lr=1e-2)
    a = nk.train_deep_network(data.X, data.labels, depth=2, seed=1, config=cfg)
    b = nk.train_deep_network(data.X, data.labels, depth=2, seed=1, config=cfg)
    assert a.nc1 == b.nc1 and math.isfinite(a.nc1) and 0 <= a.accuracy <= 1
    with pytest.raises(nk.DivergenceError):
        nk.train_deep_network(data.X, data.labels, depth=3, seed=1, config=nk.TrainingConfig(width=8, epochs=50, lr=1e6,
                                                                                             activation="relu"))
    with pytest.raises(ValueError):
        nk.train_deep_network(data.X, data.labels, depth=0, seed=1, config=cfg)


def test_deep_network_grid_rows():
    cfg = nk.TrainingConfig(width=8, epochs=2)
    rows = nk.deep_network_grid([[4, 4]], [2], 1, [1, 2], cfg)
    assert sorted(rows[rows.kernel == "trained net"].depth) == [1, 2]
    assert {"loss", "accuracy", "nc1_init"} <= set(rows.columns)


def test_hard_cell_seeds_options_and_bad_family():
    cell = HardCell((4, 4), 2, 0, seed=1, family="anisotropic", options=(("stds", [0.2, 1.0]),))
    assert hash(cell) == hash(HardCell((4, 4), 2, 0, seed=1, family="anisotropic", options=(("stds", (0.2, 1.0)),)))
    assert torch.equal(cell.data().X, cell.data().X)
    assert cell.columns()["family"] == "anisotropic"
    four = HardCell((2, 2, 2, 2), 1, family="four-class").data()
    assert sorted(set(four.y.tolist())) == [-3.0, -1.0, 1.0, 3.0]
    with pytest.raises(ValueError):
        HardCell((4, 4), 2, family="spiral")


def test_hard_data_grid_rows_and_skipped_adaptive():
    cfg = nk.TrainingConfig(width=8, epochs=2)
    rows = nk.hard_data_grid({"xor": [4, 4], "four-class": [2, 2, 2, 2]}, [2], 1, config=cfg,
                             adaptive={"schedule": [50, 8], "max_iter": 5}, adaptive_d0s=[1])
    assert set(rows.kernel) == {"data", "NNGP erf", "NTK erf", "adaptive", "trained net"}
    assert (rows[rows.kernel == "adaptive"].status == "skipped").all()
    assert set(rows.family) == {"xor", "four-class"}


def test_plot_status_map():
    import pandas as pd

    frame = pd.DataFrame({"family": ["xor", "xor", "shells"], "d0": [1, 8, 1], "status": ["ok", "failed", "skipped"],
                          "evaluations": [12, 40, 0]})
    fig, ax = plt.subplots()
    assert nk.plotting.plot_status_map(ax, frame) is ax
    assert sorted(t.get_text() for t in ax.texts) == ["12", "fail"]  # the skipped cell is blank
    plt.close(fig)
    frame["note"] = ["5 (2 floor)", "3/5 failed", ""]
    fig, ax = plt.subplots()
    nk.plotting.plot_status_map(ax, frame, annotate="note", fail_annotate="note")
    assert sorted(t.get_text() for t in ax.texts) == ["3/5 failed", "5 (2 floor)"]
    plt.close(fig)


def test_beyond_grids_take_a_device():
    """The device argument reaches the cells (CUDA equality: tests/test_cuda.py)."""
    a = nk.hard_data_grid({"xor": [8, 8]}, [2], 1, train=False, device="cpu")
    b = nk.hard_data_grid({"xor": [8, 8]}, [2], 1, train=False)
    assert a["nc1"].tolist() == b["nc1"].tolist() and (a.status == "ok").all()
    with pytest.raises(ValueError, match="device must be a torch device"):
        nk.deep_kernel_grid([[4, 4]], [3], 1, activations=["erf"], depths=[1], device="no-such-device")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            nk.hard_data_grid({"xor": [8, 8]}, [2], 1, train=False, device="cuda")
