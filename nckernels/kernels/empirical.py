r"""Empirical NTK of any torch model (book chapter ``09_empirical_ntk``, eq. ``entk-def``).

Layer 3, kernels. The networks it is applied to (``TwoLayerNTKNet``, ``MLPClassifier``) and the training
with NTK probes live in :mod:`nckernels.models.probed`; the block statistics of a kernel in :mod:`nckernels.metrics`.

For a model with per-sample output f(x) in R^k and parameters theta, the empirical NTK is
Theta(x, z) = J(x) J(z)^T (k, k) with J(x) = df(x)/dtheta (k, P). The output NTK uses the network's
output (k = C), the feature NTK its penultimate features h(x) (k = p). Jacobians are computed once per
sample (torch.func.vmap over jacrev, or over jacfwd) and contracted with an einsum.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import pandas as pd
import torch
from torch import nn
from torch.func import functional_call, jacfwd, jacrev, vmap

from ..validation import (check_choice, check_device, check_dtype, check_float_dtype, check_generator, check_int,
                          check_labels, check_matrix, check_model_device, check_nonnegative, check_positive)

__all__ = [
    "empirical_ntk",
    "output_ntk",
    "feature_ntk",
    "check_model_inputs",
]

NTK_MODES = ("full", "mean_diagonal")
NTK_METHODS = ("jacrev", "jacfwd")


class _Call(nn.Module):
    """Wraps ``forward(model, x)`` as a module so torch.func.functional_call can swap its parameters."""

    def __init__(self, model: nn.Module, forward: Callable):
        super().__init__()
        self.model = model
        self._forward = forward

    def forward(self, x):
        return self._forward(self.model, x)


def check_model_inputs(X, name: str, like: torch.Tensor | None = None) -> torch.Tensor:
    """A floating, finite (n_samples, ...) batch of model inputs (with X's sample shape when ``like`` is given).

    Chapter ``09_empirical_ntk``.
    """
    if not isinstance(X, torch.Tensor) or not torch.is_floating_point(X):
        raise ValueError(f"{name} must be a floating torch tensor of shape (n_samples, ...)")
    check_dtype(X, name)
    if X.ndim < 2 or X.shape[0] == 0:
        raise ValueError(f"{name} must have shape (n_samples, ...) with n_samples >= 1, got {tuple(X.shape)}")
    if not bool(torch.isfinite(X).all()):
        raise ValueError(f"{name} contains non-finite values")
    if like is not None and X.shape[1:] != like.shape[1:]:
        raise ValueError(f"{name} has sample shape {tuple(X.shape[1:])} but X has {tuple(like.shape[1:])}")
    return X


def _jacobians(wrapper, params, buffers, X, method, chunk_size):
    """Per-sample Jacobians {name: (n, k, P_name)} of the flattened output, computed once per sample."""

    def single(p, x):  # one sample x (...) -> (k,)
        return functional_call(wrapper, (p, buffers), (x.unsqueeze(0),)).reshape(-1)

    jac_fn = vmap((jacrev if method == "jacrev" else jacfwd)(single), in_dims=(None, 0), chunk_size=chunk_size)
    jac = jac_fn(params, X)  # name -> (n, k, *param shape)
    return {name: j.reshape(j.shape[0], j.shape[1], -1) for name, j in jac.items()}


def empirical_ntk(
    model: nn.Module,
    X: torch.Tensor,
    Z: torch.Tensor | None = None,
    *,
    forward: Callable | None = None,
    mode: str = "full",
    method: str = "jacrev",
    chunk_size: int | None = None,
) -> torch.Tensor:
    r"""Empirical NTK Theta(x, z) = J(x) J(z)^T, summed over all trainable parameters of ``model``.

    Args:
        model: any ``nn.Module`` (parameters with ``requires_grad``; put BatchNorm in eval mode).
        X: (n, ...) inputs; Z: (m, ...) or None (Z = X, Jacobians reused, result exactly symmetric).
        forward: ``forward(model, x_batch) -> (batch, ...)`` giving the k outputs per sample whose NTK
            is wanted (default ``model(x)``); e.g. ``lambda m, x: m.features(x)`` for the feature NTK.
        mode: "full" -> (n, m, k, k); "mean_diagonal" -> (n, m) = (1/k) sum_a Theta_aa(x, z).
        method: "jacrev" (reverse mode, k vector-Jacobian products per sample) or "jacfwd" (forward
            mode, P Jacobian-vector products per sample); both vmapped over samples.
        chunk_size: samples per vmap chunk (memory), None for all at once.
    Returns:
        Tensor with the parameters' dtype and device (X must be on that device: ValueError otherwise).
    Eq. ``entk-def`` of chapter ``09_empirical_ntk``.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    check_choice(mode, "mode", NTK_MODES)
    check_choice(method, "method", NTK_METHODS)
    chunk_size = check_int(chunk_size, "chunk_size", allow_none=True)
    if forward is not None and not callable(forward):
        raise TypeError(f"forward must be a callable forward(model, x) or None, got {type(forward).__name__}")
    X = check_model_inputs(X, "X")
    same = Z is None
    Z = X if same else check_model_inputs(Z, "Z", like=X)
    params = {f"model.{n}": p.detach() for n, p in model.named_parameters() if p.requires_grad}
    if not params:
        raise ValueError("model has no trainable parameters")
    check_model_device(model, X)
    buffers = {f"model.{n}": b for n, b in model.named_buffers()}
    wrapper = _Call(model, forward or (lambda m, x: m(x)))
    Jx = _jacobians(wrapper, params, buffers, X, method, chunk_size)
    Jz = Jx if same else _jacobians(wrapper, params, buffers, Z, method, chunk_size)
    k = next(iter(Jx.values())).shape[1]
    if mode == "full":
        out = sum(torch.einsum("nap,mbp->nmab", Jx[n], Jz[n]) for n in Jx)  # (n, m, k, k)
        if same:
            out = 0.5 * (out + out.permute(1, 0, 3, 2))
    else:
        out = sum(torch.einsum("nap,map->nm", Jx[n], Jz[n]) for n in Jx) / k  # (n, m)
        if same:
            out = 0.5 * (out + out.T)
    if not bool(torch.isfinite(out).all()):
        raise ValueError("the empirical NTK is not finite (check the model and inputs)")
    return out


def output_ntk(model, X, Z=None, **kwargs) -> torch.Tensor:
    """Output NTK of ``model``: Theta^f(x, z) = (df(x)/dtheta)(df(z)/dtheta)^T; see :func:`empirical_ntk`.

    Eq. ``entk-def`` of chapter ``09_empirical_ntk``.
    """
    return empirical_ntk(model, X, Z, **kwargs)


def feature_ntk(model, X, Z=None, **kwargs) -> torch.Tensor:
    """Feature NTK Theta^h(x, z) of ``model.features`` (the penultimate layer); see :func:`empirical_ntk`.

    Eq. ``entk-def`` of chapter ``09_empirical_ntk``.
    """
    if not callable(getattr(model, "features", None)):
        raise ValueError("model must have a features(x) method for the feature NTK")
    return empirical_ntk(model, X, Z, forward=lambda m, x: m.features(x), **kwargs)
