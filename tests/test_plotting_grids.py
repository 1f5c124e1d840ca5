"""Plot functions of the grids take (ax, data, *, ...); the legacy (data, ax) order still draws the same."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

import nckernels as nk  # noqa: E402
from nckernels.plotting import (plot_convergence_map, plot_kernel_means, plot_nc1_lines,  # noqa: E402
                                plot_summary_grid, plot_training_curves)


@pytest.fixture(scope="module")
def frame():
    return nk.trained_network_grid([[4, 4], [6, 6]], [1, 2], 2, nk.TrainingConfig(width=6, epochs=2),
                                   kernels={"NNGP": lambda d: nk.nngp(d.X), "none": lambda d: None})


def test_summary_grid_draws_one_line_per_group(frame):
    summary = nk.summarize(frame, by=("kernel", "N", "d0"))
    kinds = ["data", "NNGP", "none", "trained net"]
    fig, axes = plt.subplots(2, len(kinds))
    plot_summary_grid(axes, summary, kernels=kinds, group="N")
    assert len(axes[0, 1].get_lines()) == 2 and len(axes[1, 3].get_lines()) == 2
    assert len(axes[0, 2].get_lines()) == 0  # a kernel with no successful row draws nothing
    with pytest.raises(ValueError, match="axes"):
        plot_summary_grid(axes[:1], summary, kernels=kinds)
    plt.close(fig)


def test_legacy_argument_order(frame):
    summary = nk.summarize(frame, by=("kernel", "N", "d0"))
    fig, (a, b) = plt.subplots(1, 2)
    plot_nc1_lines(a, summary, kernel="NNGP")
    plot_nc1_lines(summary, b, kernel="NNGP")
    assert [tuple(l.get_ydata()) for l in a.get_lines()] == [tuple(l.get_ydata()) for l in b.get_lines()]
    plt.close(fig)
    fig, ax = plt.subplots()
    plot_kernel_means(ax, frame[frame.N == 8])
    assert {l.get_label() for l in ax.get_lines()} == {"data", "NNGP", "none", "trained net"}
    plt.close(fig)


def test_convergence_map_reads_status_ok():
    rows = pd.DataFrame({"width": [1.0, 1.0, 5.0, 5.0], "noise_var": [1e-2, 1.0, 1e-2, 1.0],
                         "status": ["ok", "failed", "ok", "ok"], "evaluations": [7, 30, 9, 11]})
    fig, ax = plt.subplots()
    plot_convergence_map(ax, rows)
    assert sorted(t.get_text() for t in ax.texts) == ["11", "7", "9", "fail"]
    plt.close(fig)
    history = pd.DataFrame({"epoch": [0, 1, 0, 1], "nc1": [1.0, 0.5, 1.0, 0.25]})
    fig, ax = plt.subplots()
    plot_training_curves(ax, history, "nc1")
    assert len(ax.get_lines()) == 1
    plt.close(fig)


def test_kernel_lines_skip_levels_without_x_and_use_integer_ticks_on_a_linear_axis():
    rows = [{"kernel": k, "depth": d, "draw": r, "status": "ok", "log10_nc1": -1.0 - 0.1 * d + 0.01 * r}
            for k in ("NNGP erf", "NTK erf") for d in (1, 2, 3, 4) for r in (0, 1)]
    rows += [{"kernel": "data", "depth": float("nan"), "draw": r, "status": "ok", "log10_nc1": -0.5} for r in (0, 1)]
    fig, ax = plt.subplots()
    nk.plotting.plot_kernel_lines(ax, pd.DataFrame(rows), x="depth", logx=None, order=["data", "NNGP erf", "NTK erf"])
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["NNGP erf", "NTK erf"]  # no legend entry for a level with nothing drawn
    fig.canvas.draw()
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks), ticks
    plt.close(fig)


def test_plot_scaling_labels_powers_of_two_sizes_in_base_two():
    fig, (ax, bx) = plt.subplots(1, 2)
    nk.plot_scaling(ax, pd.DataFrame({"size": [256, 512, 1024, 2048], "seconds": [0.1, 0.4, 1.6, 6.4]}), expected_order=2)
    nk.plot_scaling(bx, pd.DataFrame({"size": [100, 300, 1000], "seconds": [0.1, 0.3, 1.0]}), expected_order=1)
    fig.canvas.draw()
    base2 = [t.get_text() for t in ax.get_xticklabels() if t.get_visible() and t.get_text()]
    base10 = [t.get_text() for t in bx.get_xticklabels() if t.get_visible() and t.get_text()]
    assert len(base2) >= 3 and all("2^" in t for t in base2), base2  # 2^8 ... 2^11, one per measured size
    assert base10 and not any("2^" in t for t in base10), base10
    plt.close(fig)


def test_plot_scaling_labels_the_measured_sizes_when_few_decades_are_in_range():
    fig, ax = plt.subplots()
    widths = [20, 50, 100, 500, 2000]  # the appendix's width panel: 100 and 1000 the only decade labels
    nk.plot_scaling(ax, pd.DataFrame({"size": widths, "seconds": [0.1, 0.2, 0.4, 2.0, 8.0]}), expected_order=1)
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_visible() and t.get_text()]
    assert labels == [str(w) for w in widths], labels
    plt.close(fig)
