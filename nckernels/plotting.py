"""Layer 6, figures: plot functions ``plot_x(ax, data, *, ...)``; the caller makes the figure and shows or saves it.

May import every layer below (it needs none: plot functions take computed data, DataFrames or tensors).
Each function draws on the Axes it is given (a few take an array of Axes) and returns it (or the artist).
The (data, ax) argument order of versions <= 0.1 is still accepted by the functions that had it
(``plot_imbalance_error``, ``plot_width_convergence``, ``plot_eos_trace``, ``plot_convergence_map``,
``plot_nc1_lines``, ``plot_training_curves``, ``plot_as_coded_vs_correct``); new code passes the Axes first.
"""
from __future__ import annotations

import numpy as np

__all__ = ["plot_imbalance_error", "plot_mean_band", "plot_heatmap", "plot_width_convergence", "plot_grid_lines",
           "plot_kernel_means", "plot_summary_grid", "plot_layer_collapse", "plot_agop_spectra", "plot_class_gram",
           "plot_layer_steps", "plot_nfa_history"]


def _ax_first(ax, data):
    """``(ax, data)``, swapping the legacy ``(data, ax)`` order when the Axes came second."""
    from matplotlib.axes import Axes

    if not isinstance(ax, Axes) and isinstance(data, Axes):
        return data, ax
    return ax, data


def plot_mean_band(ax, x, mean, std, *, label=None, marker="o", **kw):
    """A line of means with a +-1 std band."""
    x, mean, std = (np.asarray(v, dtype=float) for v in (x, mean, std))
    (line,) = ax.plot(x, mean, marker=marker, label=label, **kw)
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
    ax, curve = _ax_first(ax, curve)
    widths = np.asarray(curve.index, dtype=float)
    for name in curve.columns:
        ax.loglog(widths, curve[name], marker="o", label=name)
    ref = float(np.exp(np.log(curve.to_numpy(dtype=float)).mean(1)[0]))
    ax.loglog(widths, ref * (widths / widths[0]) ** -0.5, "k--", label="slope -1/2")
    ax.set_xlabel("width $h$")
    ax.set_ylabel("max |finite - closed form|")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    return ax


# --- adaptive kernel (chapter 05_adaptive_kernel) ---------------------------------------------------
__all__ += ["plot_eos_trace", "plot_convergence_map"]


def plot_eos_trace(ax, history, column, *, label=None, ylabel=None, logy=False, **kw):
    """One column of an EoS annealing history against kappa (log x axis, kappa decreasing to the right).

    Book chapter ``05_adaptive_kernel``.
    """
    ax, history = _ax_first(ax, history)
    ax.plot(history["kappa"], history[column], marker="o", markersize=3, label=label, **kw)
    ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    if not ax.xaxis_inverted():
        ax.invert_xaxis()
    ax.set_xlabel(r"$\kappa$")
    ax.set_ylabel(ylabel or column)
    ax.grid(alpha=0.3, which="both")
    return ax


def plot_convergence_map(ax, frame, *, x="width", y="noise_var", title=None):
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
    ax.imshow(grid, cmap="RdYlGn", vmin=-0.5, vmax=1.5, origin="lower", aspect="auto")
    ax.set_xticks(range(len(xs)), [f"{v:g}" for v in xs])
    ax.set_yticks(range(len(ys)), [f"{v:g}" for v in ys])
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    if title:
        ax.set_title(title, fontsize=9)
    return ax


# --- Deep RFM and AGOP (chapters 10_deep_rfm, 11_agop_trained) -------------------------------------

_RFM_STAGES = (("input", r"$X_l$"), ("projected", r"$X_l M_l^{1/2}$"), ("features", "random features"))


def plot_layer_collapse(ax, frame, *, metric="nc1", stages=("input", "projected", "features"), label=None, **kw):
    """A Deep RFM metric (``nc1`` or ``nc2``) per layer, log scale, for the chosen representations.

    ``frame`` has a ``layer`` column and ``{metric}_{stage}`` columns (``DeepRFMResult.frame``).
    """
    names = dict(_RFM_STAGES)
    for stage in stages:
        text = names.get(stage, stage) if label is None else f"{label}: {names.get(stage, stage)}"
        ax.plot(frame["layer"], frame[f"{metric}_{stage}"], marker="o", markersize=3, label=text, **kw)
    ax.set_yscale("log")
    ax.set_xlabel("layer $l$")
    ax.set_ylabel(metric.upper())
    ax.grid(alpha=0.3)
    return ax


def plot_agop_spectra(ax, spectra, layers, *, num=None):
    """Eigenvalues lambda_k / lambda_1 of the AGOP at the given layers against k (log scale)."""
    for layer in layers:
        lam = np.asarray(spectra[layer], dtype=float)
        lam = lam[: num or lam.size]
        ax.plot(np.arange(1, lam.size + 1), lam / lam[0], marker=".", markersize=4, label=f"layer {layer}")
    ax.set_yscale("log")
    ax.set_xlabel("eigenvalue index $k$")
    ax.set_ylabel(r"$\lambda_k / \lambda_1$")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
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
    ok = frame[frame["status"] == "ok"]
    for kernel, grp in frame.groupby("kernel"):
        m = ok[ok["kernel"] == kernel].groupby(x)[value].mean().reindex(sorted(grp[x].unique()))
        ax.plot(m.index, m.values, marker="o", label=kernel)
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
    ax.plot(xs, ys, color="gray", linewidth=1)
    ax.plot(layers - 0.5, frame["nc1_svt"], "s", label=r"after $S V^\top$")
    ax.plot(np.concatenate([[0.0], layers]), np.concatenate([[frame["nc1_input"].iloc[0]], frame["nc1_output"]]),
            "o", label="layer input / ReLU output")
    ax.set_yscale("log")
    ax.set_xlabel("hidden layer $l$")
    ax.set_ylabel("NC1")
    ax.grid(alpha=0.3)
    return ax


def plot_nfa_history(ax, history):
    """NFA correlation per layer (columns ``nfa_1``, ``nfa_2``, ...) against the epoch (``train_mlp`` history)."""
    cols = sorted((c for c in history.columns if c.startswith("nfa_")), key=lambda c: int(c.split("_")[1]))
    for col in cols:
        h = history.dropna(subset=[col])
        ax.plot(h["epoch"], h[col], marker="o", markersize=3, label=f"layer {col.split('_')[1]}")
    ax.set_xlabel("epoch")
    ax.set_ylabel(r"NFA correlation $\rho_l$")
    ax.grid(alpha=0.3)
    return ax


# --- chapter 9 (empirical NTK): appended -------------------------------------------------------------
__all__ += ["plot_probe_curves", "plot_kernel_pair"]


def plot_probe_curves(ax, frame, columns, *, x="step", logy=False, labels=None):
    """Columns of a probe DataFrame (one row per probed step) against ``x``."""
    for i, col in enumerate(columns):
        ax.plot(frame[x], frame[col], marker=".", label=(labels[i] if labels else col))
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(x)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return ax


def plot_kernel_pair(axes, K_start, K_end, *, titles=("init", "end")):
    """Two class-sorted kernels side by side, each divided by the mean of its diagonal (colours clipped at
    the 98th percentile of the entries)."""
    ims = []
    for ax, K, title in zip(axes, (K_start, K_end), titles):
        K = np.asarray(K.detach().cpu() if hasattr(K, "detach") else K, dtype=float)
        K = K / np.mean(np.diag(K))
        # colour range clipped at the 98th percentile so that a few large diagonal entries do not hide the blocks
        ims.append(ax.imshow(K, cmap="viridis", interpolation="nearest", vmin=K.min(), vmax=np.quantile(K, 0.98)))
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title, fontsize=9)
    return ims
