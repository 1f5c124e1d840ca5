"""Synthetic class data: isotropic Gaussian classes, balanced or imbalanced."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from .targets import class_targets
from ..validation import (as_float_tensor, check_device, check_finite, check_float_dtype, check_generator, check_int,
                          check_positive)

__all__ = ["ClassData", "gaussian_classes"]


@dataclass(frozen=True)
class ClassData:
    """Samples ``X`` (N, d), targets ``y`` and integer ``labels`` (N,) in 0..C-1; ``X, y, labels = data`` unpacks.

    ``y`` = :func:`nckernels.class_targets` (labels, C) ("pm1"): (N,) with -1 for class 0 and +1 for class 1
    when C = 2, and the (N, C) one-hot matrix with entries +-1 when C > 2.
    Chapter ``02_nc1_from_kernel``.
    """

    X: torch.Tensor
    y: torch.Tensor
    labels: torch.Tensor

    def __iter__(self):
        return iter((self.X, self.y, self.labels))

    def __len__(self):
        return 3

    def __getitem__(self, i):
        return (self.X, self.y, self.labels)[i]


def _class_sizes(class_sizes) -> list[int]:
    if isinstance(class_sizes, (str, bytes)) or not hasattr(class_sizes, "__iter__"):
        raise TypeError(f"class_sizes must be a sequence of positive integers, got {class_sizes!r}")
    sizes = [check_int(n, "class_sizes") for n in class_sizes]
    if len(sizes) < 2:
        raise ValueError(f"class_sizes must list at least two classes, got {class_sizes!r}")
    if any(n <= 0 or n != float(m) for n, m in zip(sizes, class_sizes)):
        raise ValueError(f"class_sizes must be positive integers, got {class_sizes!r}")
    return sizes


def gaussian_classes(
    class_sizes: Sequence[int],
    d: int,
    *,
    means=(-2.0, 2.0),
    std: float = 0.5,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
    device=None,
    shuffle: bool = False,
) -> ClassData:
    r"""Draw ``n_c`` samples of class c from N(mu_c, std^2 I_d).

    Args:
        class_sizes: (C,) positive integers n_c; N = sum n_c.
        d: input dimension d0 >= 1.
        means: (C,) scalars (mu_c = m_c * 1_d, the notes' D1 data for (-2, 2)) or a (C, d) array.
        std: per-coordinate standard deviation s > 0.
        generator: a ``torch.Generator`` for reproducible draws (its device is where sampling runs).
        dtype, device: of the returned tensors.
        shuffle: interleave the classes with a random permutation (default: samples sorted by class).

    Returns:
        ``ClassData(X (N, d), y, labels (N,))``.
    Chapter ``02_nc1_from_kernel``.
    """
    sizes = _class_sizes(class_sizes)
    d = check_int(d, "d")
    check_float_dtype(dtype, "dtype")
    check_device(device, "device")
    check_generator(generator)
    std = check_positive(std, "std")
    mu = as_float_tensor(means, "means").to(torch.float64)
    C = len(sizes)
    if mu.ndim == 1:
        if mu.shape[0] != C:
            raise ValueError(f"means has {mu.shape[0]} entries but class_sizes has {C} classes")
        mu = mu[:, None].expand(C, d)
    elif mu.ndim == 2:
        if tuple(mu.shape) != (C, d):
            raise ValueError(f"means must have shape ({C}, {d}), got {tuple(mu.shape)}")
    else:
        raise ValueError(f"means must be (C,) scalars or a (C, d) array, got shape {tuple(mu.shape)}")
    check_finite(mu, "means")
    gen_device = generator.device if generator is not None else torch.device("cpu")
    N = sum(sizes)
    labels = torch.repeat_interleave(torch.arange(C), torch.tensor(sizes))
    noise = torch.randn(N, d, generator=generator, dtype=torch.float64, device=gen_device).cpu()
    X = mu[labels] + std * noise
    if shuffle:
        perm = torch.randperm(N, generator=generator, device=gen_device).cpu()
        X, labels = X[perm], labels[perm]
    y = class_targets(labels, C, encoding="pm1", dtype=torch.float64)
    return ClassData(X.to(dtype=dtype, device=device), y.to(dtype=dtype, device=device), labels.to(device=device))
