r"""Networks whose empirical NTK chapter ``09_empirical_ntk`` measures, and SGD training with the NTK probed.

Layer 4, models. :class:`TwoLayerNTKNet` is the two-layer net of :mod:`nckernels.kernels.two_layer` (its one draw
and forward map) in the NTK parametrisation, as an ``nn.Module``; :class:`MLPClassifier` is
:class:`nckernels.models.mlp.MLPNetwork` with He-normal initialisation. The empirical NTK of any model is
:func:`nckernels.empirical_ntk` (kernels layer); the statistics probed are in :mod:`nckernels.metrics`.
The flat module path ``nckernels.empirical_ntk`` of earlier versions is this module (it re-exports the kernel
functions and the metrics it used to hold).
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from ..data.datasets import class_balanced_subset
from ..data.targets import class_targets
from ..errors import DivergenceError
from ..kernels.duals import get_activation
from ..kernels.empirical import (  # noqa: F401  (re-exported: the old module nckernels.empirical_ntk held them)
    NTK_METHODS, NTK_MODES, check_model_inputs, empirical_ntk, feature_ntk, output_ntk,
)
from ..kernels.two_layer import TwoLayerParams, draw_two_layer_params, two_layer_output
from ..metrics import (  # noqa: F401  (re-exported, as above)
    BlockMeans, InvariantStats, block_means, collapse_metrics, invariant_stats, kernel_alignment,
)
from .mlp import MLPClassifier  # noqa: F401  (re-exported, as above)
from ..validation import (check_device, check_float_dtype, check_generator, check_int, check_labels, check_model_device,
                          check_nonnegative, check_positive)

__all__ = ["TwoLayerNTKNet", "ProbedTraining", "probe_row", "train_with_ntk_probes", "train_probed_mlp"]


class TwoLayerNTKNet(nn.Module):
    """f(x) = (sigma_a / sqrt(h)) a^T phi((sigma_w / sqrt(d0)) W x + sigma_b b), a, W, b standard normal.

    NTK parametrisation of book chapter ``03_two_layer_kernels`` (eq. ``tl-ntk``): its empirical NTK at
    initialisation tends to :func:`nckernels.ntk` as the width h grows. Parameters are drawn by
    :func:`nckernels.draw_two_layer_params` and the output is :func:`nckernels.two_layer_output`.
    """

    def __init__(self, d0: int, width: int, *, activation: str = "erf", sigma_w: float = 1.0, sigma_b: float = 0.0,
                 sigma_a: float = 1.0, generator: torch.Generator | None = None, dtype=torch.float64, device=None):
        super().__init__()
        self.act = get_activation(activation)
        self.sigma_w, self.sigma_b = check_nonnegative(sigma_w, "sigma_w"), check_nonnegative(sigma_b, "sigma_b")
        self.sigma_a = check_nonnegative(sigma_a, "sigma_a")
        d0, width = check_int(d0, "d0"), check_int(width, "width")
        check_float_dtype(dtype, "dtype")
        check_device(device, "device")
        check_generator(generator)
        p = draw_two_layer_params(int(d0), int(width), sigma_w=self.sigma_w, sigma_b=self.sigma_b, sigma_a=self.sigma_a,
                                  parametrisation="ntk", generator=generator, dtype=dtype, device=device)
        self.W, self.b, self.a = nn.Parameter(p.W), nn.Parameter(p.b), nn.Parameter(p.a)

    def forward(self, x):
        params = TwoLayerParams(self.W, self.b, self.a, "ntk", self.sigma_w, self.sigma_b, self.sigma_a)
        return two_layer_output(params, x, self.act)[:, None]  # (B, 1)


@dataclass(frozen=True)
class ProbedTraining:
    """Training record: ``frame`` has one row per probe (step, loss, accuracy, kappa_*/gamma_* block means
    of the feature/output NTK, their label alignments, invariant norm/alignment, nc1, nc1_pinv, nc2, nc3);
    ``feature_kernels`` / ``output_kernels`` map each probed step to the (n, n) mean-diagonal kernel on
    the probe samples, which are sorted by class with labels ``probe_labels``.

    Chapter ``09_empirical_ntk``.
    """

    frame: pd.DataFrame
    probe_index: torch.Tensor
    probe_labels: torch.Tensor
    feature_kernels: dict
    output_kernels: dict


def probe_row(model, X, labels, Y, probe_index, jitter):
    """One probe of :func:`train_with_ntk_probes`: (row of statistics, feature NTK, output NTK) on the probe samples.

    Eqs. ``entk-def`` and ``entk-align`` of chapter ``09_empirical_ntk``.
    """
    with torch.no_grad():
        out = model(X)
        H = model.features(X)
    row = {"loss": float(0.5 * ((out - Y) ** 2).sum(1).mean()),
           "accuracy": float((out.argmax(1) == labels).to(X.dtype).mean())}
    W = model.head.weight.detach()
    if not bool(torch.isfinite(out).all()):
        raise DivergenceError("training diverged (non-finite outputs)")
    try:
        m = collapse_metrics(W, H, labels)
    except ValueError as exc:  # e.g. all ReLU features dead: class means coincide
        raise RuntimeError(f"the features became degenerate ({exc})") from exc
    row.update(nc1=m.nc1, nc1_pinv=m.nc1_pinv, nc2=m.nc2, nc3=m.nc3)
    Xp, lp = X[probe_index], labels[probe_index]
    Kh = feature_ntk(model, Xp, mode="mean_diagonal")
    Kf = output_ntk(model, Xp, mode="mean_diagonal")
    for prefix, K in (("kappa", Kh), ("gamma", Kf)):
        bm = block_means(K, lp)
        row.update({f"{prefix}_d": bm.diagonal, f"{prefix}_c": bm.same_class, f"{prefix}_n": bm.other_class})
    row["alignment feature"] = kernel_alignment(Kh, lp)
    row["alignment output"] = kernel_alignment(Kf, lp)
    inv = invariant_stats(W, H[probe_index], Kh, jitter=jitter)
    row.update({"invariant norm": inv.norm, "invariant relative": inv.relative_norm, "invariant alignment": inv.alignment})
    return row, Kh, Kf


def train_with_ntk_probes(
    model: nn.Module,
    X: torch.Tensor,
    labels,
    *,
    steps: int,
    lr: float,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    batch_size: int | None = None,
    probe_every: int = 100,
    probe_per_class: int = 10,
    jitter: float = 1e-10,
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> ProbedTraining:
    r"""Train ``model`` (with ``features`` and a linear ``head``) by SGD on L = (1/2N) sum_i ||f(x_i) - y_i||^2
    (one-hot y), probing every ``probe_every`` steps (and at steps 0 and ``steps``).

    Each probe evaluates the loss, accuracy and NC1-NC3 (features of all of X, W = head weight) and,
    on ``probe_per_class`` samples per class, the mean-diagonal feature and output NTKs, their block
    means and label alignments, and the invariant statistics of (W, H_probe, K^h_probe).
    ``batch_size`` None is full batch. Raises :class:`nckernels.DivergenceError` (epoch = the step) if the loss
    or the outputs become non-finite (checked at every step), ``RuntimeError`` if the features degenerate (e.g.
    every ReLU unit dead, so that NC1 is undefined). Chapter ``09_empirical_ntk``.
    """
    if not (callable(getattr(model, "features", None)) and isinstance(getattr(model, "head", None), nn.Linear)):
        raise ValueError("model must have a features(x) method and a head = nn.Linear(p, C)")
    X = check_model_inputs(X, "X")
    check_model_device(model, X)
    index, sizes = check_labels(labels, X.shape[0], device=X.device)
    C = sizes.numel()
    if model.head.out_features != C:
        raise ValueError(f"model.head has {model.head.out_features} outputs but labels has {C} classes")
    steps, probe_every = check_int(steps, "steps"), check_int(probe_every, "probe_every")
    check_generator(generator)
    lr = check_positive(lr, "lr")
    momentum, weight_decay = check_nonnegative(momentum, "momentum"), check_nonnegative(weight_decay, "weight_decay")
    N = X.shape[0]
    batch_size = check_int(batch_size, "batch_size", maximum=N, allow_none=True)
    Y = class_targets(index, C, encoding="onehot", dtype=X.dtype)  # (N, C)
    probe_index = class_balanced_subset(index, probe_per_class, generator=generator)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    gen_device = generator.device if generator is not None else torch.device("cpu")
    rows, feature_kernels, output_kernels = [], {}, {}
    for step in tqdm(range(steps + 1), disable=not progress, desc="training"):
        if step % probe_every == 0 or step == steps:
            try:
                row, Kh, Kf = probe_row(model, X, index, Y, probe_index, jitter)
            except DivergenceError as exc:
                raise DivergenceError(f"step {step}, lr = {lr}: {exc}", epoch=step) from exc
            except RuntimeError as exc:
                raise RuntimeError(f"step {step}, lr = {lr}: {exc}") from exc
            rows.append({"step": step, **row})
            feature_kernels[step], output_kernels[step] = Kh, Kf
        if step == steps:
            break
        if batch_size is None:
            xb, yb = X, Y
        else:
            sel = torch.randperm(N, generator=generator, device=gen_device)[:batch_size].to(X.device)
            xb, yb = X[sel], Y[sel]
        opt.zero_grad()
        loss = 0.5 * ((model(xb) - yb) ** 2).sum(1).mean()
        if not torch.isfinite(loss):
            raise DivergenceError(f"training diverged (non-finite loss) at step {step}; lower lr = {lr}", epoch=step)
        loss.backward()
        opt.step()
    return ProbedTraining(pd.DataFrame(rows), probe_index, index[probe_index], feature_kernels, output_kernels)


def train_probed_mlp(X, labels, hidden, *, steps: int, lr: float, probe_every: int, seed: int, init_scale: float = 1.0,
                     probe_per_class: int = 10, momentum: float = 0.9, weight_decay: float = 5e-4) -> ProbedTraining:
    """An :class:`MLPClassifier` (widths ``hidden``, C = max label + 1 outputs) drawn from
    ``torch.Generator().manual_seed(seed)`` and trained by :func:`train_with_ntk_probes` with the same generator.

    The model has X's dtype and device; the generator stays on the CPU (its draws are moved), so one seed gives
    the same network, probe samples and batches on every device.
    The run of chapter ``09_empirical_ntk``: one seed fixes the initialisation, the probe samples and the batches.
    """
    X = check_model_inputs(X, "X")
    index = torch.as_tensor(labels)
    g = torch.Generator().manual_seed(seed)
    model = MLPClassifier(X.shape[1], hidden, int(index.max()) + 1, init_scale=init_scale, generator=g,
                          dtype=X.dtype, device=X.device)
    return train_with_ntk_probes(model, X, labels, steps=steps, lr=lr, probe_every=probe_every,
                                 probe_per_class=probe_per_class, momentum=momentum, weight_decay=weight_decay,
                                 generator=g)
