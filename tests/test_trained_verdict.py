"""The verdict of chapter 06 (closest kernel per cell), the one-factor sweep and their plot functions."""
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import nckernels as nk  # noqa: E402
from nckernels.plotting import plot_factor_sweep, plot_kernel_overlay  # noqa: E402
from nckernels.style import color_of  # noqa: E402


def _summary(values, group="N"):
    """values: {(level, d0): {kernel: mean}} -> rows of summarize's schema."""
    rows = [{"kernel": k, group: level, "d0": d0, "log10_nc1_mean": v, "log10_nc1_std": 0.01,
             "relative_mean": v + 1, "relative_std": 0.01}
            for (level, d0), kernels in values.items() for k, v in kernels.items()]
    return pd.DataFrame(rows)


def test_verdict_counts_and_means():
    s = _summary({(128, 1): {"trained net": -2.0, "NNGP": -2.01, "NTK": -1.5, "adaptive": -2.3},
                  (128, 8): {"trained net": -1.0, "NNGP": -0.9, "NTK": -0.7, "adaptive": -1.05},
                  (256, 1): {"trained net": -2.0, "NNGP": -2.02, "NTK": -1.5, "adaptive": math.nan}})
    v = nk.closest_kernel_verdict(s, group="N")
    assert v.n_cells == 3 and list(v.cells["closest"]) == ["NNGP", "adaptive", "NNGP"]
    assert v.counts.to_dict() == {"NNGP": 2, "NTK": 0, "adaptive": 1} and v.winner == "NNGP"
    assert v.missing.to_dict() == {"NNGP": 0, "NTK": 0, "adaptive": 1}
    assert list(v.cells["complete"]) == [True, True, False]
    assert v.mean_abs["NNGP"] == pytest.approx((0.01 + 0.1 + 0.02) / 3)
    assert v.mean_abs["adaptive"] == pytest.approx((0.3 + 0.05) / 2)  # over the cells where it was solved
    assert v.cells.loc[(128, 8), "NTK"] == pytest.approx(0.3)  # kernel - reference, signed


def test_verdict_bad_input_and_missing_reference():
    s = _summary({(128, 1): {"trained net": math.nan, "NNGP": -2.0, "NTK": -1.5, "adaptive": -2.2},
                  (128, 8): {"trained net": -1.0, "NNGP": -0.9, "NTK": -0.7, "adaptive": -1.3}})
    v = nk.closest_kernel_verdict(s, group="N")
    assert v.n_cells == 1 and v.winner == "NNGP"  # a cell without a network value is left out
    with pytest.raises(ValueError, match="split"):
        nk.closest_kernel_verdict(s, group="split")
    with pytest.raises(ValueError, match="reference"):
        nk.closest_kernel_verdict(s, group="N", kernels=["trained net"])
    with pytest.raises(ValueError, match="DataFrame"):
        nk.closest_kernel_verdict([1, 2], group="N")


def test_verdict_of_a_computed_grid():
    config = nk.TrainingConfig(width=6, epochs=2)
    kernels = nk.network_kernels(config, adaptive_max_N=8)
    f = nk.trained_network_grid([[4, 4], [6, 6]], [1, 2], 2, config, kernels=kernels)
    v = nk.closest_kernel_verdict(nk.summarize(f, by=("kernel", "N", "d0")), group="N")
    assert v.n_cells == 4 and int(v.counts.sum()) == 4
    assert int(v.missing["adaptive"]) == 2  # N = 12 > adaptive_max_N: skipped, never a winner
    net = f[(f.kernel == "trained net") & (f.N == 8) & (f.d0 == 2)]["log10_nc1"].mean()
    nngp = f[(f.kernel == "NNGP") & (f.N == 8) & (f.d0 == 2)]["log10_nc1"].mean()
    assert v.cells.loc[(8, 2), "NNGP"] == pytest.approx(nngp - net, abs=1e-12)


@pytest.fixture(scope="module")
def sweep():
    config = nk.TrainingConfig(width=8, epochs=5)
    return nk.network_factor_sweep([6, 6], 2, 2, config, factors={"lr": [1e-3, 1e-2], "width": [4, 8]},
                                   along={"lr": {"momentum": 0.5}})


def test_factor_sweep_rows(sweep):
    assert set(sweep["factor"]) == {"lr", "width"} and set(sweep["kernel"]) == {"data", "NNGP", "adaptive", "trained net"}
    assert (sweep["status"] == "ok").all()
    assert len(sweep) == 4 * 2 * 4  # (factor, value) runs x draws x kernels
    # the same data draws in every run; the adaptive kernel changes with the width only
    ad = sweep[sweep.kernel == "adaptive"]
    assert ad[ad.factor == "lr"].groupby("draw")["log10_nc1"].nunique().eq(1).all()
    w = ad[ad.factor == "width"].pivot_table(index="draw", columns="value", values="log10_nc1")
    assert not np.allclose(w[4.0], w[8.0])
    # the width-8 run is the base config: its adaptive kernel equals the lr runs'
    assert np.allclose(w[8.0], ad[ad.factor == "lr"].groupby("draw")["log10_nc1"].first())
    data = sweep[sweep.kernel == "data"].groupby("draw")["log10_nc1"].nunique()
    assert data.eq(1).all()
    with pytest.raises(ValueError, match="factors"):
        nk.network_factor_sweep([4, 4], 2, 1, factors={"activation": ["relu"]})
    with pytest.raises(ValueError, match="along"):
        nk.network_factor_sweep([4, 4], 2, 1, factors={"lr": [1e-3]}, along={"width": {"momentum": 0.5}})
    with pytest.raises(ValueError, match="factors"):
        nk.network_factor_sweep([4, 4], 2, 1, factors={})


def test_factor_sweep_summary(sweep):
    s = nk.factor_sweep_summary(sweep)
    assert list(s.index) == ["lr", "width"] and (s["values"] == 2).all()
    for f in s.index:
        sub = sweep[sweep.factor == f].pivot_table(index="value", columns="kernel", values="log10_nc1")
        shift = sub["trained net"] - sub["NNGP"]
        at = shift.abs().idxmax()
        assert s.loc[f, "value"] == at and s.loc[f, "net_shift"] == pytest.approx(shift[at])
        assert s.loc[f, "follower_shift"] == pytest.approx(sub.loc[at, "adaptive"] - sub.loc[at, "NNGP"])
        assert s.loc[f, "gap"] == pytest.approx(s.loc[f, "net_shift"] - s.loc[f, "follower_shift"])
        assert math.isnan(s.loc[f, "diverged"])
    rows = sweep.copy()
    diverged = (rows.factor == "lr") & (rows.value == 1e-2) & (rows.kernel == "trained net")
    rows.loc[diverged, "status"], rows.loc[diverged, "log10_nc1"] = "failed", math.nan
    s = nk.factor_sweep_summary(rows)
    assert s.loc["lr", "diverged"] == 1e-2 and s.loc["lr", "value"] == 1e-3
    with pytest.raises(ValueError, match="factor"):
        nk.factor_sweep_summary(sweep.drop(columns="factor"))


def test_plot_factor_sweep_and_overlay(sweep):
    fig, (a, b) = plt.subplots(1, 2)
    plot_factor_sweep(a, sweep, factor="width", legend=True)
    lines = {l.get_label(): l for l in a.get_lines()}
    assert set(lines) == {"trained net", "NNGP", "adaptive"}
    assert lines["adaptive"].get_color() == color_of("adaptive")
    assert [t.get_text() for t in a.get_legend().get_texts()] == ["trained net", "NNGP", "adaptive"]
    assert list(lines["NNGP"].get_xdata()) == [4.0, 8.0]
    with pytest.raises(ValueError, match="factor"):
        plot_factor_sweep(b, sweep, factor="epochs")
    s = _summary({(128, 1): {"trained net": -2.0, "NNGP": -2.01, "NTK": -1.5, "adaptive": math.nan},
                  (128, 8): {"trained net": -1.0, "NNGP": -0.9, "NTK": -0.7, "adaptive": -1.05}})
    plot_kernel_overlay(b, s, level=128, legend=True)
    lines = {l.get_label(): l for l in b.get_lines()}
    assert len(lines["adaptive"].get_xdata()) == 1 and len(lines["NNGP"].get_xdata()) == 2  # missing left out
    assert lines["trained net"].get_color() == color_of("trained net")
    assert [t.get_text() for t in b.get_legend().get_texts()] == ["trained net", "NNGP", "NTK", "adaptive"]
    with pytest.raises(ValueError, match="group"):
        plot_kernel_overlay(b, s, level=128, group="split")
    plt.close(fig)


def test_factor_sweep_records_failures():
    config = nk.TrainingConfig(width=4, epochs=3)
    f = nk.network_factor_sweep([4, 4], 2, 1, config, factors={"lr": [1e3]}, adaptive=False)
    nets = f[f.kernel == "trained net"]
    assert (nets["status"] == "failed").all() and (nets["error"] != "").all()  # a failure is a row
    assert "adaptive" not in set(f["kernel"])
