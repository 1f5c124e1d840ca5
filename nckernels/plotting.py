"""Layer 6, figures: plot functions ``plot_x(ax, data, *, ...)``; the caller makes the figure and shows or saves it.

May import every layer below (it needs none: plot functions take computed data, DataFrames or tensors).
Each function draws on the Axes it is given (a few take an array of Axes) and returns it (or the artist).
The (data, ax) argument order of versions <= 0.1 is still accepted by the functions that had it
(``plot_imbalance_error``, ``plot_width_convergence``, ``plot_eos_trace``, ``plot_convergence_map``,
``plot_nc1_lines``, ``plot_training_curves``, ``plot_as_coded_vs_correct``); new code passes the Axes first.
"""
from __future__ import annotations

import re

import numpy as np

from .style import status_colormap

__all__ = ["plot_imbalance_error", "plot_mean_band", "plot_heatmap", "plot_width_convergence", "plot_grid_lines",
           "plot_kernel_means", "plot_summary_grid", "plot_layer_collapse", "plot_agop_spectra", "plot_class_gram",
           "plot_layer_steps", "plot_nfa_history"]


def _ax_first(ax, data):
    """``(ax, data)``, swapping the legacy ``(data, ax)`` order when the Axes came second."""
    from matplotlib.axes import Axes

    if not isinstance(ax, Axes) and isinstance(data, Axes):
        return data, ax
    return ax, data


def plot_mean_band(ax, x, mean, std, *, label=None, marker="o", band="fill", **kw):
    """A line of means with a +-1 std band: shaded (``band="fill"``) or two thin dashed lines (``"lines"``, for a
    line drawn over others, whose shading would mix with theirs)."""
    x, mean, std = (np.asarray(v, dtype=float) for v in (x, mean, std))
    (line,) = ax.plot(x, mean, marker=marker, label=label, **kw)
    if band == "lines":
        for edge in (mean - std, mean + std):
            ax.plot(x, edge, color=line.get_color(), linestyle="--", linewidth=0.7, zorder=line.get_zorder())
    else:
        ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.2, linewidth=0)
    return line


def plot_imbalance_error(ax, frame):
    """log10 NC1 per metric against the minority fraction (columns: metric, minority fraction, log10 NC1).

    Book chapter ``02_nc1_from_kernel``.
    """
    ax, frame = _ax_first(ax, frame)
    for metric, grp in frame.groupby("metric"):
        stats = grp.groupby("minority fraction")["log10 NC1"].agg(["mean", "std"]).fillna(0.0)
        plot_mean_band(ax, stats.index, stats["mean"], stats["std"], label=metric)
    ax.set_xlabel("minority class fraction $n_1/N$")
    ax.set_ylabel(r"$\log_{10}$ NC1")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return ax


def plot_heatmap(ax, K, *, title=None, cmap="viridis"):
    """A kernel matrix as an image (samples assumed sorted by class)."""
    K = np.asarray(K.detach().cpu() if hasattr(K, "detach") else K, dtype=float)
    im = ax.imshow(K, cmap=cmap, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    return im


def plot_width_convergence(ax, curve):
    """Error against width per kernel (``curve``: index width, one column per kernel), log-log, with a -1/2 guide.

    Book chapter ``03_two_layer_kernels``.
    """
    from .style import color_of, linestyle_of, marker_of, ordered_legend

    ax, curve = _ax_first(ax, curve)
    widths = np.asarray(curve.index, dtype=float)
    names = sorted(curve.columns, key=lambda n: (str(n).split()[-1], str(n)))  # by activation, NNGP before NTK
    for name in names:
        ax.loglog(widths, curve[name], marker=marker_of(name), color=color_of(name), linestyle=linestyle_of(name),
                  label=name)
    ref = float(np.exp(np.log(curve.to_numpy(dtype=float)).mean(1)[0]))
    ax.loglog(widths, ref * (widths / widths[0]) ** -0.5, color="0.5", linestyle=(0, (1, 2)), label="slope $-1/2$")
    ax.set_xlabel("width $h$")
    ax.set_ylabel(r"$\max_{ij}\,|K^{(h)}_{ij} - K_{ij}|$")
    ordered_legend(ax, list(names) + ["slope $-1/2$"])
    ax.grid(alpha=0.3, which="both")
    return ax


# --- adaptive kernel (chapter 05_adaptive_kernel) ---------------------------------------------------
__all__ += ["plot_eos_trace", "plot_convergence_map"]


def plot_eos_trace(ax, history, column, *, label=None, ylabel=None, logy=False, reference=None, reference_label=None,
                   **kw):
    """One column of an EoS annealing history against kappa (log x axis, kappa decreasing to the right);
    ``reference``: a constant (the NNGP's value) drawn as a dashed line in the NNGP colour, with a legend.

    Book chapter ``05_adaptive_kernel``.
    """
    from .style import color_of

    ax, history = _ax_first(ax, history)
    kw.setdefault("color", color_of("adaptive"))
    ax.plot(history["kappa"], history[column], marker="o", markersize=3, label=label, **kw)
    ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    if not ax.xaxis_inverted():
        ax.invert_xaxis()
    ax.set_xlabel(r"$\kappa$")
    ax.set_ylabel(ylabel or column)
    ax.grid(alpha=0.3, which="both")
    if reference is not None:
        ax.axhline(reference, color=color_of("nngp"), ls="--", lw=1, label=reference_label)
        ax.legend()
    return ax


def plot_convergence_map(ax, frame, *, x="width", y="noise_var", title=None, xlabel=None, ylabel=None):
    """Converged (status "ok": green, annotated with evaluations) and failed (red, 'fail') cells of a solver sweep.

    ``frame``: rows of :func:`~nckernels.experiments.grids.eos_convergence_map`. Book chapter
    ``05_adaptive_kernel`` (fig. ``fig-ak-map``).
    """
    ax, frame = _ax_first(ax, frame)
    xs = sorted(frame[x].unique())
    ys = sorted(frame[y].unique())
    grid = np.full((len(ys), len(xs)), np.nan)
    for _, row in frame.iterrows():
        i, j = ys.index(row[y]), xs.index(row[x])
        ok = row["status"] == "ok"
        grid[i, j] = 1.0 if ok else 0.0
        ax.text(j, i, f"{int(row['evaluations'])}" if ok else "fail", ha="center", va="center", fontsize=8)
    ax.imshow(grid, cmap=status_colormap(), vmin=0.0, vmax=1.0, origin="lower", aspect="auto")
    ax.set_xticks(range(len(xs)), [f"{v:g}" for v in xs])
    ax.set_yticks(range(len(ys)), [f"{v:g}" for v in ys])
    names = {"width": "width $h$", "noise_var": r"noise variance $\sigma^2$", "d0": "$d_0$"}
    ax.set_xlabel(xlabel or names.get(x, x))
    ax.set_ylabel(ylabel or names.get(y, y))
    ax.grid(False)
    if title:
        ax.set_title(title, fontsize=9)
    return ax


# --- Deep RFM and AGOP (chapters 10_deep_rfm, 11_agop_trained) -------------------------------------

_RFM_STAGES = (("input", r"$X_l$"), ("projected", r"$X_l M_l^{1/2}$"), ("features", r"random features $X_{l+1}$"))
_RFM_STAGE_COLORS = {"input": "#000000", "projected": "#56B4E9", "features": "#999999"}


def plot_layer_collapse(ax, frame, *, metric="nc1", stages=("input", "projected", "features"), label=None, **kw):
    """A Deep RFM metric (``nc1`` or ``nc2``) per layer, log scale, for the chosen representations (one colour
    per representation unless ``color`` is given; with ``label`` the legend names the run).

    ``frame`` has a ``layer`` column and ``{metric}_{stage}`` columns (``DeepRFMResult.frame``). Chapter
    ``10_deep_rfm``.
    """
    names = dict(_RFM_STAGES)
    for stage in stages:
        text = names.get(stage, stage) if label is None else (label if len(stages) == 1 else f"{label}: {names.get(stage, stage)}")
        style = {"color": _RFM_STAGE_COLORS.get(stage)} if label is None else {}
        ax.plot(frame["layer"], frame[f"{metric}_{stage}"], marker="o", markersize=3, label=text, **{**style, **kw})
    ax.set_yscale("log")
    ax.set_xlabel("layer $l$")
    ax.set_ylabel(rf"$\mathrm{{{metric.upper()[:2]}}}_{metric[2:]}$" if metric[:2] == "nc" else metric)
    ax.grid(alpha=0.3)
    return ax


def plot_agop_spectra(ax, spectra, layers, *, num=None, gap=None):
    """Eigenvalues lambda_k / lambda_1 of the AGOP at the given layers against k (log scale); ``gap``: index
    after which a dotted line marks the expected spectral gap (C - 1). Chapter ``10_deep_rfm``."""
    if gap is not None:
        ax.axvline(gap + 0.5, color="gray", linestyle=":", linewidth=1, label=f"$k = {gap}$")
    for color, layer in zip(_scale_colors(len(layers)), layers):  # shades by depth, not the model colours
        lam = np.asarray(spectra[layer], dtype=float)
        lam = lam[: num or lam.size]
        ax.plot(np.arange(1, lam.size + 1), lam / lam[0], marker=".", markersize=4, color=color, label=f"{layer}")
    ax.set_yscale("log")
    ax.set_xlabel("eigenvalue index $k$")
    ax.set_ylabel(r"$\lambda_k / \lambda_1$")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, title="layer $l$")
    return ax


def plot_class_gram(ax, H, labels, *, title=None, max_samples=None):
    """The cosine Gram matrix of features H (N, p) with samples sorted by class, as an image."""
    import torch

    H = torch.as_tensor(H).detach().cpu().to(torch.float64)
    labels = torch.as_tensor(labels).detach().cpu()
    order = torch.argsort(labels, stable=True)
    if max_samples is not None and order.numel() > max_samples:
        order = order[:: int(np.ceil(order.numel() / max_samples))]
    U = H[order] / H[order].norm(dim=1, keepdim=True).clamp_min(1e-300)
    return plot_heatmap(ax, U @ U.T, title=title, cmap="RdBu_r")


def plot_grid_lines(ax, frame, *, kernel, by="N", value="log10_nc1", x="d0", limits=None, title=None):
    """Mean +-1 std of ``value`` against ``x`` (log2 axis), one line per ``by`` level, for one kernel.

    ``frame``: rows of ``grids.kernel_nc1_grid`` (failed rows are skipped here; count them separately);
    ``value="relative"`` draws log10 NC1(K)/NC1(X). ``limits``: optional {"d0=1": y, "d0=inf": y} population
    values drawn as markers / a dashed line. Book chapter ``04_ntk_vs_nngp``.
    """
    sub = frame[(frame["kernel"] == kernel) & (frame["status"] == "ok")]
    for level, grp in sub.groupby(by):
        stats = grp.groupby(x)[value].agg(["mean", "std"]).fillna(0.0)
        plot_mean_band(ax, stats.index, stats["mean"], stats["std"], label=f"{by} = {level}", markersize=3)
    if limits:
        if "d0=1" in limits:
            ax.plot([1], [limits["d0=1"]], "k*", markersize=10, label="population, $d_0=1$")
        if "d0=inf" in limits:
            ax.axhline(limits["d0=inf"], color="k", ls="--", lw=1, label=r"population, $d_0\to\infty$")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("$d_0$")
    ax.set_title(title or kernel, fontsize=10)
    ax.grid(alpha=0.3)
    return ax


def plot_kernel_means(ax, frame, *, x="d0", value="log10_nc1", title=None):
    """Mean over draws of ``value`` against ``x`` (log axis), one line per kernel (ok rows of a grid).

    ``frame``: :func:`~nckernels.experiments.cells.run_grid` rows of one data set family (e.g. one split of
    :func:`~nckernels.experiments.grids.adaptive_nc1_grid`). Book chapter ``05_adaptive_kernel`` (fig. ``fig-ak-grid``).
    """
    from .style import color_of, linestyle_of

    ok = frame[frame["status"] == "ok"]
    for kernel, grp in frame.groupby("kernel"):
        m = ok[ok["kernel"] == kernel].groupby(x)[value].mean().reindex(sorted(grp[x].unique()))
        ax.plot(m.index, m.values, marker="o", label=kernel, color=color_of(kernel), ls=linestyle_of(kernel))
    ax.set_xscale("log")
    if title:
        ax.set_title(title, fontsize=8)
    ax.set_xlabel(f"${x[0]}_{x[1:]}$" if x == "d0" else x)
    ax.grid(alpha=0.3)
    return ax


def plot_summary_grid(axes, summary, *, kernels, group="N", x="d0"):
    """A 2 x len(kernels) panel grid of a grid's summary: log10 NC1 (top) and relative to the data (bottom).

    ``axes``: a (2, len(kernels)) array of Axes (shared rows suit it); ``summary``: rows of
    :func:`~nckernels.experiments.cells.summarize` (or :func:`~nckernels.experiments.results.read_cell_results`)
    with ``log10_nc1_*`` and ``relative_*`` columns; one line per ``group`` level. Book chapter
    ``06_trained_networks`` (figs. ``fig-tn-balanced``, ``fig-tn-imbalanced``).
    """
    axes = np.asarray(axes)
    if axes.shape != (2, len(kernels)):
        raise ValueError(f"axes must have shape (2, {len(kernels)}), got {axes.shape}")
    for j, kind in enumerate(kernels):
        plot_nc1_lines(axes[0, j], summary, kernel=kind, group=group, x=x)
        plot_nc1_lines(axes[1, j], summary, kernel=kind, group=group, x=x, value="relative", title=" ")
    axes[0, 0].set_ylabel(r"$\log_{10}$ NC1")
    axes[1, 0].set_ylabel(r"$\log_{10}$ NC1 / NC1(X)")
    axes[0, -1].legend(fontsize=7)
    return axes


# --- trained networks (chapter 06) and the reference code (chapter 07) ---
__all__ += ["plot_nc1_lines", "plot_training_curves", "plot_as_coded_vs_correct"]


def plot_nc1_lines(ax, summary, *, kernel, group="N", x="d0", value="log10_nc1", title=None):
    """One mean +-1 std line per ``group`` against ``x`` (log2 axis) for one kernel.

    ``summary`` has columns kernel, ``group``, ``x``, ``value + '_mean'`` and ``value + '_std'``
    (:func:`~nckernels.experiments.cells.summarize`); rows without a mean (no successful draw) are left out.
    Book chapter ``06_trained_networks``.
    """
    ax, summary = _ax_first(ax, summary)
    sub = summary[(summary["kernel"] == kernel) & summary[f"{value}_mean"].notna()]
    for name, grp in sub.groupby(group, sort=True):
        grp = grp.sort_values(x)
        plot_mean_band(ax, grp[x], grp[f"{value}_mean"], grp[f"{value}_std"].fillna(0.0), label=f"{group} = {name}",
                       markersize=3)
    ax.set_xscale("log", base=2)
    ax.set_xlabel(f"${x[0]}_{x[1:]}$" if x == "d0" else x)
    ax.set_title(title or kernel, fontsize=9)
    ax.grid(alpha=0.3)
    return ax


def plot_training_curves(ax, history, column="nc1", *, label=None, log10=True, **kw):
    """Mean +-1 std over repeats of ``column`` against epoch (epochs on a symlog axis). Book chapter
    ``06_trained_networks``."""
    ax, history = _ax_first(ax, history)
    vals = history[column].astype(float)
    frame = history.assign(_v=np.log10(vals) if log10 else vals)
    stats = frame.groupby("epoch")["_v"].agg(["mean", "std"]).fillna(0.0)
    line = plot_mean_band(ax, stats.index, stats["mean"], stats["std"], label=label, markersize=3, **kw)
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlabel("epoch")
    ax.set_ylabel(rf"$\log_{{10}}$ {column}" if log10 else column)
    ax.grid(alpha=0.3)
    return line


def plot_as_coded_vs_correct(ax, frame, *, x, label_col="variant", value="value", title=None):
    """Lines of ``value`` against ``x``, one per variant (e.g. "as coded" and "correct"), mean +-1 std.

    Book chapter ``07_reference_code``.
    """
    ax, frame = _ax_first(ax, frame)
    for name, grp in frame.groupby(label_col, sort=False):
        stats = grp.groupby(x)[value].agg(["mean", "std"]).fillna(0.0)
        plot_mean_band(ax, stats.index, stats["mean"], stats["std"], label=str(name), markersize=3)
    ax.set_xlabel(x)
    ax.set_ylabel(value)
    if title:
        ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return ax


def plot_layer_steps(ax, frame):
    """NC1 through an MLP's hidden layers: input, S V^T h (x = l - 1/2), ReLU output (x = l); log scale.

    ``frame`` has columns layer (1-based), nc1_input, nc1_svt, nc1_output (``mlp_layer_analysis``).
    """
    layers = np.asarray(frame["layer"], dtype=float)
    xs = np.concatenate([[0.0], np.ravel(np.column_stack([layers - 0.5, layers]))])
    ys = np.concatenate([[frame["nc1_input"].iloc[0]],
                         np.ravel(np.column_stack([frame["nc1_svt"], frame["nc1_output"]]))])
    from .style import color_of

    ax.plot(xs, ys, color="gray", linewidth=1)
    ax.plot(layers - 0.5, frame["nc1_svt"], "s", color=color_of("trained net"), mfc="white",
            label=r"after $S V^\top$")
    ax.plot(np.concatenate([[0.0], layers]), np.concatenate([[frame["nc1_input"].iloc[0]], frame["nc1_output"]]),
            "o", color=color_of("trained net"), label="layer input / ReLU output")
    ax.set_yscale("log")
    ax.set_xlabel("hidden layer $l$")
    ax.set_ylabel(r"$\mathrm{NC}_1$")
    ax.grid(alpha=0.3)
    return ax


def plot_nfa_history(ax, history):
    """NFA correlation per layer (columns ``nfa_1``, ``nfa_2``, ...) against the epoch (``train_mlp`` history)."""
    cols = sorted((c for c in history.columns if c.startswith("nfa_")), key=lambda c: int(c.split("_")[1]))
    for color, col in zip(_scale_colors(len(cols)), cols):  # shades by depth, not the model colours
        h = history.dropna(subset=[col])
        ax.plot(h["epoch"], h[col], marker="o", markersize=3, color=color, label=f"{col.split('_')[1]}")
    ax.set_xlabel("epoch")
    ax.set_ylabel(r"NFA correlation $\rho_l$")
    ax.grid(alpha=0.3)
    return ax


# --- chapter 9 (empirical NTK): appended -------------------------------------------------------------
__all__ += ["plot_probe_curves", "plot_kernel_pair"]


def plot_probe_curves(ax, frame, columns, *, x="step", logy=False, labels=None, colors=None, styles=None,
                      xlabel="SGD step $t$", legend=True):
    """Columns of a probe DataFrame (one row per probed step) against ``x``, in the given colours and line
    styles. Chapter ``09_empirical_ntk`` (fig. ``fig-entk-curves``)."""
    for i, col in enumerate(columns):
        ax.plot(frame[x], frame[col], marker=".", label=(labels[i] if labels else col),
                color=colors[i] if colors else None, ls=styles[i] if styles else "-")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.grid(alpha=0.3)
    if legend:
        ax.legend(fontsize=7)
    return ax


def plot_kernel_pair(axes, K_start, K_end, *, titles=("init", "end")):
    """Two class-sorted kernels side by side, each divided by the mean of its diagonal, on one shared colour
    scale (clipped at the 98th percentile of the entries of both). Chapter ``09_empirical_ntk``."""
    mats = [np.asarray(K.detach().cpu() if hasattr(K, "detach") else K, dtype=float) for K in (K_start, K_end)]
    mats = [K / np.mean(np.diag(K)) for K in mats]
    # one colour range for both, clipped at the 98th percentile so that a few large diagonal entries do not hide the blocks
    vmin, vmax = min(K.min() for K in mats), float(np.quantile(np.concatenate([K.ravel() for K in mats]), 0.98))
    ims = []
    for ax, K, title in zip(axes, mats, titles):
        ims.append(ax.imshow(K, cmap="viridis", interpolation="nearest", vmin=vmin, vmax=vmax))
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title, fontsize=9)
    return ims


# --- chapters 05, 08-11: tables and figures added for issue 13 --------------------------------------
__all__ += ["plot_rate", "plot_spectrum", "plot_invariant_drift", "plot_loss_split",
            "plot_scale_sweep"]


def plot_rate(ax, series, *, slope=-0.5, label=None, color=None, xlabel="width $h$", ylabel="relative error"):
    """``series`` (index x, values y) on log-log axes with a reference line of the given ``slope`` through its
    first point (``h^{-1/2}``: the Monte Carlo rate). Chapter ``09_empirical_ntk`` (fig. ``fig-entk-wide``)."""
    from .style import color_of

    x, y = np.asarray(series.index, dtype=float), np.asarray(series, dtype=float)
    ax.loglog(x, y, "o-", color=color or color_of("ntk"), label=label)
    ax.loglog(x, y[0] * (x / x[0]) ** slope, "k--", lw=1, label=rf"slope ${slope:g}$")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend()
    return ax


def plot_spectrum(ax, eigenvalues, *, reference=None, label=None, reference_label=None, color=None):
    """Eigenvalues in descending order (log axis) against their index, with an optional constant ``reference``
    spectrum as a dashed line. Chapter ``05_adaptive_kernel`` (fig. ``fig-ak-spectrum``)."""
    from .style import color_of

    lam = np.sort(np.asarray(eigenvalues.detach().cpu() if hasattr(eigenvalues, "detach") else eigenvalues,
                             dtype=float))[::-1]
    ax.semilogy(np.arange(1, lam.size + 1), lam, marker=".", color=color or color_of("adaptive"), label=label)
    if reference is not None:
        ax.axhline(reference, color=color_of("nngp"), ls="--", lw=1, label=reference_label)
    ax.set_xlabel("index $k$")
    ax.set_ylabel(r"eigenvalue $\lambda_k$")
    if label or reference_label:
        ax.legend()
    return ax


def _scale_colors(n):
    import matplotlib as mpl

    return [mpl.colormaps["viridis"](v) for v in np.linspace(0.0, 0.85, max(n, 1))]


def plot_invariant_drift(ax, runs, *, column="invariant drift", norm_column="scale"):
    """Drift of the invariant, ``column`` divided by the run's largest ``norm_column``, against time (log-log),
    one line per run; ``runs`` maps the initial scale s to a flow trace with a ``frame``. Chapter
    ``08_ntk_collapse_dynamics`` (fig. ``fig-ntkc-drift``)."""
    for color, (s, tr) in zip(_scale_colors(len(runs)), sorted(runs.items())):
        f = tr.frame.iloc[1:]
        ax.loglog(f["t"], f[column] / tr.frame[norm_column].max() + 1e-18, color=color, label=f"{s:g}")
    ax.set_xlabel("time $t$")
    ax.set_ylabel(r"$\|E(t)-E(0)\|_F \,/\, \max_t \|W^\top W\|_F$")
    ax.legend(title="initial scale $s$", ncol=2)
    return ax


# neutral colours: the book's model colours (NNGP blue, NTK orange, adaptive green) would mislead here
_LOSS_PARTS = (("loss global", "global mean $L_G$", "#000000"), ("loss class", "class means $L_c$", "#56B4E9"),
               ("loss within", "within class $L_0$", "#999999"))


def plot_loss_split(ax, frame, *, title=None, legend=True):
    """The loss split on the eigenspaces of the block kernel (global mean, class means, within class) against
    time, log-log. Chapter ``08_ntk_collapse_dynamics`` (fig. ``fig-ntkc-phases``)."""
    f = frame.iloc[1:]
    for col, label, color in _LOSS_PARTS:
        ax.loglog(f["t"], f[col] + 1e-16, color=color, label=label)
    ax.set_xlabel("time $t$")
    if title:
        ax.set_title(title)
    if legend:
        ax.legend()
    return ax


def plot_scale_sweep(ax, sweep, columns, *, labels=None, styles=None, xlabel="initial scale $s$", ylabel=None):
    """Columns of a sweep frame (index: the initial scale) against the index, log-log, one line per column.
    Chapter ``08_ntk_collapse_dynamics`` (fig. ``fig-ntkc-scale``)."""
    from .style import color_of

    for i, col in enumerate(columns):
        style = styles[i] if styles else "o-"
        kw = {} if any(c in style for c in "kbgrcmy") else {"color": color_of("trained net")}
        ax.loglog(sweep.index, sweep[col], style, label=labels[i] if labels else col, **kw)
    ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    if len(columns) > 1:
        ax.legend()
    return ax


# --- chapters 02, 03, 04 and 07: kernels against each other, weightings, the reference's errata -------
__all__ += ["WEIGHTING_STYLES", "plot_kernel_lines", "plot_solver_failures", "format_table", "errata_table",
            "CAUSE_SYMBOLS", "readable_cause"]

#: The line style of each between-class weighting (the colour says which kernel, chapter ``02_nc1_from_kernel``).
WEIGHTING_STYLES = {"uniform (1/C)": "-", "class size (n_c/N)": "--", "balanced formula (as coded)": ":"}


def plot_kernel_lines(ax, frame, *, x="d0", value="log10_nc1", hue="kernel", style=None, order=None, limits=None,
                      logx=2, xlabel=None, ylabel=None, legend_title=None, legend=True, markersize=3):
    """Mean +-1 std over draws of ``value`` against ``x``, one line per ``hue`` (and ``style``) level.

    ``frame``: one row per draw (grid rows; rows whose ``status`` is not "ok" are left out, and an x where a
    level has rows but none "ok", e.g. every solve failed, is a gap in its line; "skipped" rows are not
    attempts and leave no gap). Colours come
    from :func:`nckernels.style.color_of` of the ``hue`` level (NNGP, NTK, data, as coded, ...); line styles
    from :data:`WEIGHTING_STYLES` of the ``style`` level when given, else from the activation the ``hue``
    level names. ``order``: the ``hue`` levels to draw, in legend order (default: all, in natural order).
    ``limits``: {hue level: {"d0=1": y, "d0=inf": y}} population values drawn as a star at x = 1 and a
    dotted line in the level's colour. ``logx``: base of a log x axis (None: linear). Chapters
    ``04_ntk_vs_nngp`` and ``07_reference_code``.
    """
    from .style import color_of, linestyle_of, marker_of, natural_key, ordered_legend

    attempted = frame
    if "status" in frame.columns:
        attempted = frame[frame["status"] != "skipped"]
        frame = frame[frame["status"] == "ok"]
    levels = list(order) if order is not None else sorted(frame[hue].unique(), key=natural_key)
    labels = []
    for level in levels:
        sub = frame[frame[hue] == level]
        groups = [(None, sub)] if style is None else list(sub.groupby(style, sort=False))
        if style is not None:
            groups.sort(key=lambda g: list(WEIGHTING_STYLES).index(g[0]) if g[0] in WEIGHTING_STYLES else 99)
        for sty, grp in groups:
            if grp.empty:
                continue
            stats = grp.groupby(x)[value].agg(["mean", "std"]).fillna(0.0)
            if stats.empty:  # no row of this level has an x value (e.g. data rows without a depth): no line, no legend entry
                continue
            tried = attempted[attempted[hue] == level]
            if style is not None:
                tried = tried[tried[style] == sty]
            # an x where this level was attempted but nothing succeeded: NaN, so the line breaks there
            stats = stats.reindex(sorted(set(stats.index) | set(tried[x].dropna())))
            label = str(level) if sty is None or str(sty) in str(level) else f"{level}, {sty}"
            label = label.replace("(1/C)", "($1/C$)").replace("(n_c/N)", "($n_c/N$)")
            ls = WEIGHTING_STYLES.get(sty, "-") if sty is not None else linestyle_of(level)
            plot_mean_band(ax, stats.index, stats["mean"], stats["std"], label=label, color=color_of(level),
                           linestyle=ls, marker=marker_of(level), markersize=markersize)
            labels.append(label)
        lim = (limits or {}).get(level)
        if lim:
            if "d0=1" in lim:
                ax.plot([1], [lim["d0=1"]], marker="*", color=color_of(level), markersize=10, linestyle="none")
            if "d0=inf" in lim:
                ax.axhline(lim["d0=inf"], color=color_of(level), linestyle=":", linewidth=1)
    if logx:
        ax.set_xscale("log", base=logx)
    else:
        xs = frame[x].dropna()
        if len(xs) and bool((xs == xs.round()).all()):  # integer x (depth, layers): integer ticks only
            from matplotlib.ticker import MaxNLocator

            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(xlabel or ("$d_0$" if x == "d0" else x))
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    if legend and labels:
        ordered_legend(ax, labels, title=legend_title)
    return ax


def plot_solver_failures(ax, frame, *, x="width", by="d0", value="nc1"):
    """log10 ``value`` of converged solves against ``x`` (log axis), one line per ``by`` level; failed solves
    as crosses on the lower edge of the axes. ``frame``: rows of
    :func:`~nckernels.experiments.grids.eos_convergence_map`. Chapter ``07_reference_code``.
    """
    from .style import color_of, ordered_legend

    shades = ["#009E73", "#56B4E9", "#0072B2", "#000000"]
    labels = []
    for i, (level, grp) in enumerate(sorted(frame.groupby(by), key=lambda g: g[0])):
        colour = color_of("adaptive") if i == 0 else shades[i % len(shades)]
        ok = grp[grp["status"] == "ok"].sort_values(x)
        label = f"$d_0$ = {level}" if by == "d0" else f"{by} = {level}"
        ax.plot(ok[x], np.log10(ok[value].astype(float)), marker="o", color=colour, label=label)
        bad = grp[grp["status"] != "ok"]
        ax.plot(bad[x], np.zeros(len(bad)), "x", color=colour, markersize=9, clip_on=False,
                transform=ax.get_xaxis_transform())
        labels.append(label)
    ax.set_xscale("log")
    ax.set_xlabel("width $h$")
    ax.set_ylabel(r"$\log_{10}$ NC1")
    if labels:
        ordered_legend(ax, labels)
    return ax


#: A number in Python's scientific notation with a signed exponent of at least two digits (``7.6e-11``, ``1e-06``,
#: ``2.5E+09``), the form its ``e`` and ``g`` formats write; identifiers, hashes and ``5e-4`` do not match.
SCIENTIFIC = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)[eE]([+-])(\d{2,})(?![\w.])")
_SUPERSCRIPT = str.maketrans("0123456789-+", "\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079\u207b\u207a")


def _typeset_power(match) -> str:
    mantissa, sign, exponent = match.groups()
    if int(exponent) == 0:
        return mantissa
    power = "10" + (("-" if sign == "-" else "") + str(int(exponent))).translate(_SUPERSCRIPT)
    return power if mantissa == "1" else f"{mantissa}\u00a0\u00d7\u00a0{power}"  # no-break spaces: one unit


def typeset_numbers(text: str) -> str:
    """``text`` with every number in Python's scientific notation (:data:`SCIENTIFIC`) written as a paper writes it:
    ``7.6e-11`` -> 7.6 × 10⁻¹¹, ``1e-06`` -> 10⁻⁶ (a bare mantissa 1 becomes the power alone; ``1.0e-11`` keeps its
    digits), ``2.5E+09`` -> 2.5 × 10⁹, ``3e+00`` -> 3; anything else unchanged. The spaces around × are no-break
    spaces (U+00A0), so a line never breaks inside a number. Used by :func:`format_table` on every
    cell and by the book's ``glue_numbers`` extension on numbers pasted into the prose."""
    if not isinstance(text, str):
        raise ValueError(f"text must be a string, got {type(text).__name__}")
    return SCIENTIFIC.sub(_typeset_power, text)


def format_table(frame, *, decimals=3, missing="\u2013", note=None, caption=None, max_rows=None, formats=None):
    """A DataFrame for the page: fixed ``decimals`` (a non-zero value too small for them in scientific notation),
    missing values as ``missing`` (a dash) with ``note`` as a
    footnote below the table, at most ``max_rows`` rows (the rest summarised in the footnote); a pandas Styler.
    ``formats``: {column: format string} for columns that need another format (e.g. ``"{:.1e}"``). Every cell's text
    is then typeset by :func:`typeset_numbers` (4.2e-06 -> 4.2 × 10⁻⁶, in a number or inside a string), and so are the
    row and column labels (a float label written with ``:g``) and the caption.

    Raises ValueError when the frame has missing values and no ``note`` says what a dash means.
    Chapters ``02_nc1_from_kernel`` to ``07_reference_code``.
    """
    import pandas as pd

    if not isinstance(frame, (pd.DataFrame, pd.Series)):
        raise ValueError(f"frame must be a DataFrame or Series, got {type(frame).__name__}")
    if not isinstance(decimals, int) or decimals < 0:
        raise ValueError(f"decimals must be a non-negative integer, got {decimals!r}")
    frame = frame.to_frame() if isinstance(frame, pd.Series) else frame
    notes = []
    if frame.isna().to_numpy().any():
        if not note:
            raise ValueError("frame has missing values: pass note= to say what the dash means")
        notes.append(f"{missing} {note}")
    if max_rows is not None and len(frame) > max_rows:
        notes.append(f"first {max_rows} of {len(frame)} rows shown")
        frame = frame.iloc[:max_rows]
    def fixed(value):
        # a non-zero float that would print as 0.000 at this precision is shown in scientific notation
        if isinstance(value, (float, np.floating)) and np.isfinite(value) and value != 0 \
                and abs(value) < 0.5 * 10.0 ** -decimals:
            return typeset_numbers(f"{value:.2e}")
        return f"{value:.{decimals}f}" if isinstance(value, (float, np.floating)) else typeset_numbers(str(value))

    styler = frame.style.format(fixed, na_rep=missing)
    for column, fmt in (formats or {}).items():
        styler = styler.format(lambda value, fmt=fmt: typeset_numbers(fmt.format(value)), subset=[column], na_rep=missing)

    def label(value):
        return typeset_numbers(f"{value:g}" if isinstance(value, (float, np.floating)) else str(value))

    styler = styler.format_index(label, axis=0).format_index(label, axis=1)
    styler = styler.set_table_styles([{"selector": "caption", "props": "caption-side: bottom; font-size: 0.85em;"
                                                                      " text-align: left;"},
                                      {"selector": "td", "props": "padding: 0.1em 0.7em; text-align: right;"},
                                      {"selector": "th", "props": "padding: 0.1em 0.7em;"}])
    text = typeset_numbers(" ".join(t for t in ([caption] if caption else []) + notes))
    return styler.set_caption(text) if text else styler


#: Plain-text pieces of the EoS solver's failure causes and their typeset form (:func:`readable_cause`).
CAUSE_SYMBOLS = (("(d0/sigma_w2) I - G/kappa", "(d\u2080/\u03c3_w\u00b2) I \u2212 G/\u03ba"), ("1/kappa", "1/\u03ba"),
                 ("kappa=", "\u03ba = "), ("Q1 + noise_var I", "Q\u2081 + \u03c3\u00b2 I"), ("Sigma", "\u03a3"),
                 ("max_iter=", "max_iter = "))


def readable_cause(cause: str) -> str:
    """An EoS failure cause (or "kappa=...: cause" error) as a page shows it: the solver's ASCII names of symbols
    replaced by the symbols of the text (d0/sigma_w2 -> d\u2080/\u03c3_w\u00b2, kappa -> \u03ba, Sigma -> \u03a3), nothing else
    changed. Chapters ``05_adaptive_kernel`` and ``13_hard_data``.
    """
    if not isinstance(cause, str):
        raise ValueError(f"cause must be a string, got {type(cause).__name__}")
    for plain, typeset in CAUSE_SYMBOLS:
        cause = cause.replace(plain, typeset)
    return cause


def errata_table(errata):
    """One row per error of the reference code's errata (the dict of ``book/data/reference_errata.yml``): id,
    title, and the file and lines at the recorded commit as links. Chapter ``07_reference_code``."""
    import pandas as pd

    if not isinstance(errata, dict) or "errors" not in errata or "repository" not in errata:
        raise ValueError("errata must be the dict of reference_errata.yml (keys repository, commit, errors)")
    base = f"{str(errata['repository']).rstrip('/')}/blob/{errata['commit']}"

    def span(item):
        return (int(item), int(item)) if not isinstance(item, (list, tuple)) else (int(item[0]), int(item[-1]))

    rows = []
    for err in errata["errors"]:
        links = []
        for item in err["lines"]:
            a, b = span(item)
            text = f"{a}" if a == b else f"{a}\u2013{b}"
            anchor = f"#L{a}" if a == b else f"#L{a}-L{b}"
            links.append(f'<a href="{base}/{err["file"]}{anchor}">{text}</a>')
        rows.append({"error": int(err["id"]), "what": err["title"], "file": err["file"], "lines": ", ".join(links)})
    return pd.DataFrame(rows).set_index("error")


# --- chapter 06: the trained network over its kernels, and one training factor at a time ---------------
__all__ += ["OVERLAY_KINDS", "plot_kernel_overlay", "plot_factor_sweep"]

#: The order of the trained network and its kernels in the overlays of chapter 06 (legends follow it).
OVERLAY_KINDS = ("trained net", "NNGP", "NTK", "adaptive")


def plot_kernel_overlay(ax, summary, *, level, group="N", kernels=OVERLAY_KINDS, value="log10_nc1", x="d0",
                        title=None, legend=False):
    """Mean +-1 std of ``value`` against ``x`` (log2 axis) for each kernel and the trained net, at one ``group`` level.

    ``summary``: rows of :func:`~nckernels.experiments.cells.summarize` (or
    :func:`~nckernels.experiments.results.read_cell_results`), with ``{value}_mean``/``_std`` columns; a kernel
    without a mean at a d0 is left out there. Colours from :func:`nckernels.style.color_of`. Book chapter
    ``06_trained_networks`` (fig. ``fig-tn-overlay``).
    """
    from .style import color_of, ordered_legend

    if group not in summary.columns:
        raise ValueError(f"group: summary has no column {group!r}")
    sub = summary[(summary[group] == level) & summary[f"{value}_mean"].notna()]
    for kind in kernels:
        grp = sub[sub["kernel"] == kind].sort_values(x)
        if len(grp):
            # the net: thick and under the thin kernel lines (a kernel on it stays visible), its spread as dashed
            # lines (a shaded band would mix colours)
            net = kind == "trained net"
            plot_mean_band(ax, grp[x], grp[f"{value}_mean"], grp[f"{value}_std"].fillna(0.0), label=kind,
                           color=color_of(kind), markersize=3, lw=2.2 if net else 1.2, zorder=2 if net else 3,
                           band="lines" if net else "fill")
    ax.set_xscale("log", base=2)
    ax.set_xlabel(f"${x[0]}_{x[1:]}$" if x == "d0" else x)
    ax.set_title(title or f"{group} = {level}", fontsize=9)
    if legend:
        ordered_legend(ax, list(kernels), fontsize=7)
    return ax


def plot_factor_sweep(ax, frame, *, factor, kernels=("trained net", "NNGP", "adaptive"), value="log10_nc1",
                      xlabel=None, logx=True, legend=False):
    """Mean +-1 std over draws of ``value`` against the varied factor's value, one line per kernel.

    ``frame``: rows of :func:`~nckernels.experiments.grids.network_factor_sweep` (ok rows are drawn; a value
    whose trained nets all failed is marked "diverged" on the x axis). Book chapter ``06_trained_networks``
    (fig. ``fig-tn-factors``).
    """
    from .style import color_of, ordered_legend

    sub = frame[frame["factor"] == factor]
    if sub.empty:
        raise ValueError(f"factor: frame has no rows of factor {factor!r}")
    ok = sub[sub["status"] == "ok"]
    for kind in kernels:
        stats = ok[ok["kernel"] == kind].groupby("value")[value].agg(["mean", "std"]).fillna(0.0)
        if len(stats):
            plot_mean_band(ax, stats.index, stats["mean"], stats["std"], label=kind, color=color_of(kind),
                           markersize=3, lw=2.2 if kind == "trained net" else 1.2,
                           zorder=2 if kind == "trained net" else 3)
    nets = sub[sub["kernel"] == "trained net"]
    for v, grp in nets.groupby("value"):
        if (grp["status"] != "ok").all():
            # just above the bottom spine, inside the panel (on the spine the cross hid in the axis line)
            ax.plot([v], [0.05], marker="x", color=color_of("trained net"), transform=ax.get_xaxis_transform(),
                    clip_on=False, ms=7)
            ax.annotate("diverged", (v, 0.05), xycoords=("data", "axes fraction"), xytext=(0, 6),
                        textcoords="offset points", ha="center", fontsize=7, color=color_of("trained net"))
    values = sorted(sub["value"].unique())
    if logx:
        ax.set_xscale("log")
        ax.minorticks_off()
    ax.set_xticks(values, [f"{v:g}" for v in values])
    ax.tick_params(axis="x", labelsize=8)  # five labels such as 0.0005 ... 0.004 beside the next panel's
    ax.set_xlabel(xlabel or factor)
    if legend:
        ordered_legend(ax, list(kernels), fontsize=7)
    return ax


# --- measured cost (appendix appendix_scaling) -------------------------------------------------------
__all__ += ["plot_scaling"]


def plot_scaling(ax, data, *, expected_order: float, title=None, size="size", seconds="seconds"):
    """Measured time against size on log-log axes, with the expected power law through the largest point.

    ``data``: rows with columns ``size`` and ``seconds``; ``expected_order``: the exponent the algorithm
    predicts (dashed line). Appendix ``appendix_scaling``.
    """
    frame = data.sort_values(size)
    x, y = np.asarray(frame[size], dtype=float), np.asarray(frame[seconds], dtype=float)
    ax.loglog(x, y, marker="o", color="#000000", label="measured")
    ax.loglog(x, y[-1] * (x / x[-1]) ** expected_order, "--", color="#999999", label=f"order {expected_order:g}")
    name = frame["size_name"].iloc[0] if "size_name" in frame else "N"
    ax.set_xlabel({"N": "samples $N$", "width": "width $h$"}.get(name, name))
    ax.set_ylabel("seconds")
    from matplotlib.ticker import FixedLocator, FuncFormatter, LogFormatterSciNotation, LogLocator, NullFormatter

    if np.all(np.log2(x) == np.round(np.log2(x))):  # sizes 2^k: label the powers of 2 (a decade holds one label)
        ax.xaxis.set_major_locator(LogLocator(base=2, numticks=6))
        ax.xaxis.set_major_formatter(LogFormatterSciNotation(base=2))
        ax.xaxis.set_minor_locator(LogLocator(base=2, subs=(1.0,), numticks=64))
    elif np.floor(np.log10(x.max())) - np.ceil(np.log10(x.min())) < 2:  # at most two powers of 10 in range:
        ax.xaxis.set_major_locator(FixedLocator(x))  # label the measured sizes themselves
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels (3x10^2, 4x10^2, ...) collide on a short decade
    if title:
        ax.set_title(title)
    ax.legend()
    return ax



# --- solver status over two categorical axes (chapter 13_hard_data) ---------------------------------
__all__ += ["plot_status_map"]


def plot_status_map(ax, frame, *, x="d0", y="family", annotate="evaluations", fail_annotate=None, xlabel=None,
                    ylabel=None):
    """Converged (status "ok": green, annotated with ``annotate``) and failed (red, annotated with ``fail_annotate``,
    default "fail") solves on an x-by-y grid; an annotation column holds numbers (written as integers) or text.

    ``frame``: grid rows with a ``status`` column (one row per (x, y) cell; "skipped" rows are left blank);
    the axes are categorical, in the order of first appearance of ``y`` and ascending ``x``. Book chapter
    ``13_hard_data``.
    """
    xs = sorted(frame[x].unique())
    ys = list(dict.fromkeys(frame[y]))
    grid = np.full((len(ys), len(xs)), np.nan)
    for _, row in frame.iterrows():
        if row["status"] == "skipped":
            continue
        i, j = ys.index(row[y]), xs.index(row[x])
        ok = row["status"] == "ok"
        grid[i, j] = 1.0 if ok else 0.0
        text = row[annotate] if ok else (row[fail_annotate] if fail_annotate else "fail")
        text = f"{int(text)}" if isinstance(text, (int, float, np.integer, np.floating)) else str(text)
        ax.text(j, i, text, ha="center", va="center", fontsize=8)
    ax.imshow(grid, cmap=status_colormap(), vmin=0.0, vmax=1.0, origin="lower", aspect="auto")
    ax.set_xticks(range(len(xs)), [f"{v:g}" if isinstance(v, (int, float)) else str(v) for v in xs])
    ax.set_yticks(range(len(ys)), [str(v) for v in ys])
    ax.set_xlabel(xlabel or ("$d_0$" if x == "d0" else x))
    ax.set_ylabel(ylabel or ("" if y == "family" else y))
    ax.grid(False)
    return ax
