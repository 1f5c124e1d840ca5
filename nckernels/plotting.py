"""Plot functions: each takes data (a DataFrame or tensors) and a matplotlib Axes; the caller shows or saves."""
from __future__ import annotations

import numpy as np

__all__ = ["plot_imbalance_error", "plot_mean_band", "plot_heatmap"]


def plot_mean_band(ax, x, mean, std, *, label=None, marker="o", **kw):
    """A line of means with a +-1 std band."""
    x, mean, std = (np.asarray(v, dtype=float) for v in (x, mean, std))
    (line,) = ax.plot(x, mean, marker=marker, label=label, **kw)
    ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.2, linewidth=0)
    return line


def plot_imbalance_error(frame, ax):
    """log10 NC1 per metric against the minority fraction (columns: metric, minority fraction, log10 NC1)."""
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
