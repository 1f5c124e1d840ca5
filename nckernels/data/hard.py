r"""Layer 1, data: harder synthetic class data than isotropic two-class Gaussians, for the depth and activation study.

Four families, each one seeded function returning :class:`nckernels.data.synthetic.ClassData` (X (N, d), y,
labels (N,) sorted by class unless ``shuffle``), for any input dimension d >= 1 (book chapter ``13_hard_data``):

* :func:`four_class_gaussians`: the reference code's four-class set (``GaussiandD4NL``): class c ~ N(m_c 1, s_c^2 I)
  with the scalar regression targets -3, -1, 1, 3 (or one-hot targets).
* :func:`anisotropic_gaussian_classes`: C classes with per-class covariances (a std per class, per coordinate,
  or a full covariance matrix).
* :func:`xor_clusters`: two classes that no hyperplane separates: four Gaussian clusters at (+-m, +-m, 0, ..., 0)
  labelled by the sign product (d = 1: clusters at -3m, -m, m, 3m labelled alternately 0, 1, 0, 1).
* :func:`concentric_shells`: class c on the sphere of radius r_c sqrt(d) plus Gaussian noise (d = 1: the two points
  +-r_c), so that |x|^2 / d = r_c^2 + noise^2 is what the kernels' K1 = (sigma_w^2/d0) x.x' sees.

May import: :mod:`nckernels.validation` only.
"""
from __future__ import annotations

from typing import Sequence

import torch

from .synthetic import ClassData
from .targets import TARGET_ENCODINGS, class_targets
from ..validation import (as_float_tensor, check_choice, check_device, check_finite, check_float_dtype,
                          check_generator, check_int, check_nonnegative, check_positive)

__all__ = ["REFERENCE_FOUR_CLASS_TARGETS", "four_class_gaussians", "anisotropic_gaussian_classes", "xor_clusters",
           "concentric_shells"]

REFERENCE_FOUR_CLASS_TARGETS = (-3.0, -1.0, 1.0, 3.0)


def _sizes(class_sizes, C: int | None = None) -> list[int]:
    if isinstance(class_sizes, (str, bytes)) or not hasattr(class_sizes, "__iter__"):
        raise ValueError(f"class_sizes must be a sequence of positive integers, got {class_sizes!r}")
    sizes = [check_int(n, "class_sizes") for n in class_sizes]
    if len(sizes) < 2:
        raise ValueError(f"class_sizes must list at least two classes, got {class_sizes!r}")
    if C is not None and len(sizes) != C:
        raise ValueError(f"class_sizes must list {C} classes, got {len(sizes)}")
    return sizes


def _common(class_sizes, d, generator, dtype, device, C=None):
    sizes = _sizes(class_sizes, C)
    d = check_int(d, "d")
    check_float_dtype(dtype, "dtype")
    check_device(device, "device")
    check_generator(generator)
    gen_device = generator.device if generator is not None else torch.device("cpu")
    labels = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    return sizes, d, gen_device, labels


def _randn(shape, generator, gen_device):
    return torch.randn(*shape, generator=generator, dtype=torch.float64, device=gen_device).cpu()


def _finish(X, labels, y, C, *, shuffle, generator, gen_device, dtype, device) -> ClassData:
    if shuffle:
        perm = torch.randperm(X.shape[0], generator=generator, device=gen_device).cpu()
        X, labels, y = X[perm], labels[perm], y[perm]
    return ClassData(X=X.to(dtype=dtype, device=device), y=y.to(dtype=dtype, device=device),
                     labels=labels.to(device=device))


def _targets(labels, C, targets):
    return class_targets(labels, C, encoding=check_choice(targets, "targets", TARGET_ENCODINGS), dtype=torch.float64)


def _per_class(value, name: str, C: int) -> torch.Tensor:
    t = as_float_tensor(value, name).to(torch.float64).reshape(-1)
    if t.numel() == 1:
        t = t.expand(C)
    if t.numel() != C:
        raise ValueError(f"{name} must be one number or one per class ({C}), got {t.numel()} values")
    check_finite(t, name)
    return t.clone()


def four_class_gaussians(class_sizes: Sequence[int] = (64, 64, 64, 64), d: int = 1, *, means=(-3.0, -1.0, 1.0, 3.0),
                         std=0.5, targets: str = "scalar", generator: torch.Generator | None = None,
                         dtype: torch.dtype = torch.float64, device=None, shuffle: bool = False) -> ClassData:
    r"""Four classes x ~ N(m_c 1_d, s_c^2 I_d), c = 0..3, with scalar targets y = (-3, -1, 1, 3)[c] (reference ``GaussiandD4NL``).

    Args:
        class_sizes: (4,) positive integers n_c.
        d: input dimension >= 1.
        means: (4,) scalars m_c or a (4, d) array (the reference reads them from a config; our default puts each
            class mean at its target, -3, -1, 1, 3).
        std: one s > 0 or (4,) per-class stds s_c.
        targets: "scalar" (y (N,) = -3, -1, 1, 3 by class, the reference's regression targets) or an encoding of
            :func:`nckernels.data.class_targets` ("pm1" = "pm1_onehot": (N, 4) one-hot +-1; "onehot": 0/1).
        generator, dtype, device, shuffle: as in :func:`nckernels.data.gaussian_classes`.

    Returns:
        ``ClassData(X (N, d), y (N,) or (N, 4), labels (N,))``. Book chapter ``13_hard_data``.
    """
    sizes, d, gen_device, labels = _common(class_sizes, d, generator, dtype, device, C=4)
    if targets != "scalar":
        check_choice(targets, "targets", ("scalar", *TARGET_ENCODINGS))
    mu = as_float_tensor(means, "means").to(torch.float64)
    if mu.ndim == 1 and mu.numel() == 4:
        mu = mu[:, None].expand(4, d)
    elif tuple(mu.shape) != (4, d):
        raise ValueError(f"means must be 4 scalars or a (4, {d}) array, got shape {tuple(mu.shape)}")
    check_finite(mu, "means")
    s = _per_class(std, "std", 4)
    for v in s.tolist():
        check_positive(v, "std")
    X = mu[labels] + s[labels, None] * _randn((len(labels), d), generator, gen_device)
    if targets == "scalar":
        y = torch.tensor(REFERENCE_FOUR_CLASS_TARGETS, dtype=torch.float64)[labels]
    else:
        y = _targets(labels, 4, targets)
    return _finish(X, labels, y, 4, shuffle=shuffle, generator=generator, gen_device=gen_device, dtype=dtype,
                   device=device)


def anisotropic_gaussian_classes(class_sizes: Sequence[int], d: int, *, means=(-2.0, 2.0), stds=None,
                                 covariances=None, targets: str = "pm1", generator: torch.Generator | None = None,
                                 dtype: torch.dtype = torch.float64, device=None, shuffle: bool = False) -> ClassData:
    r"""C classes x ~ N(mu_c, Sigma_c) with class-specific, possibly anisotropic covariances Sigma_c = L_c L_c^T.

    Args:
        class_sizes: (C,) positive integers n_c.
        d: input dimension >= 1.
        means: (C,) scalars (mu_c = m_c 1_d) or a (C, d) array.
        stds: per-class stds (C,) (Sigma_c = s_c^2 I) or per-coordinate stds (C, d) (Sigma_c = diag(s_c^2)); > 0.
        covariances: instead of ``stds``, (C, d, d) symmetric positive semi-definite matrices (sampled through
            their symmetric square root, so singular ones are allowed).
        targets: an encoding of :func:`nckernels.data.class_targets` (default "pm1").
        generator, dtype, device, shuffle: as in :func:`nckernels.data.gaussian_classes`.

    Returns:
        ``ClassData(X (N, d), y, labels (N,))``. Book chapter ``13_hard_data``.
    """
    sizes, d, gen_device, labels = _common(class_sizes, d, generator, dtype, device)
    C = len(sizes)
    check_choice(targets, "targets", TARGET_ENCODINGS)
    mu = as_float_tensor(means, "means").to(torch.float64)
    if mu.ndim == 1 and mu.numel() == C:
        mu = mu[:, None].expand(C, d)
    elif tuple(mu.shape) != (C, d):
        raise ValueError(f"means must be {C} scalars or a ({C}, {d}) array, got shape {tuple(mu.shape)}")
    check_finite(mu, "means")
    if (stds is None) == (covariances is None):
        raise ValueError("give exactly one of stds and covariances")
    noise = _randn((len(labels), d), generator, gen_device)  # (N, d) standard normal
    if stds is not None:
        s = as_float_tensor(stds, "stds").to(torch.float64)
        if s.ndim == 0 or (s.ndim == 1 and s.numel() == C):
            s = s.reshape(-1).expand(C)[:, None].expand(C, d)
        elif tuple(s.shape) != (C, d):
            raise ValueError(f"stds must be {C} per-class stds or a ({C}, {d}) array of per-coordinate stds, "
                             f"got shape {tuple(s.shape)}")
        check_finite(s, "stds")
        if bool((s <= 0).any()):
            raise ValueError("stds must be > 0")
        X = mu[labels] + s[labels] * noise
    else:
        S = as_float_tensor(covariances, "covariances").to(torch.float64)
        if tuple(S.shape) != (C, d, d):
            raise ValueError(f"covariances must have shape ({C}, {d}, {d}), got {tuple(S.shape)}")
        check_finite(S, "covariances")
        if float((S - S.transpose(1, 2)).abs().max()) > 1e-10 * max(float(S.abs().max()), 1.0):
            raise ValueError("covariances must be symmetric")
        lam, V = torch.linalg.eigh(S)  # (C, d), (C, d, d)
        if float(lam.min()) < -1e-10 * max(float(lam.abs().max()), 1.0):
            raise ValueError(f"covariances must be positive semi-definite; smallest eigenvalue {float(lam.min()):.3g}")
        root = V @ (lam.clamp_min(0).sqrt()[:, :, None] * V.transpose(1, 2))  # (C, d, d) symmetric sqrt
        X = mu[labels] + torch.einsum("nij,nj->ni", root[labels], noise)
    y = _targets(labels, C, targets)
    return _finish(X, labels, y, C, shuffle=shuffle, generator=generator, gen_device=gen_device, dtype=dtype,
                   device=device)


def xor_clusters(class_sizes: Sequence[int] = (128, 128), d: int = 2, *, m: float = 2.0, std: float = 0.5,
                 targets: str = "pm1", generator: torch.Generator | None = None, dtype: torch.dtype = torch.float64,
                 device=None, shuffle: bool = False) -> ClassData:
    r"""XOR data: 4 clusters N(mu_k, std^2 I), mu_k = (s1 m, s2 m, 0, ..., 0), class = [s1 s2 > 0]; no separating hyperplane.

    Class 0 holds the clusters (+m, -m) and (-m, +m), class 1 the clusters (+m, +m) and (-m, -m), each class split
    evenly between its two clusters (the first gets the extra sample when n_c is odd). For d = 1 the
    analogue is four clusters at -3m, -m, m, 3m labelled alternately 0, 1, 0, 1 (class 0: -3m and m; class 1: -m
    and 3m). The means live in the first two coordinates, so x.x'/d of distinct samples tends to 0 as d grows.

    Args:
        class_sizes: (2,) positive integers; d: input dimension >= 1; m > 0: cluster offset; std > 0: noise.
        targets, generator, dtype, device, shuffle: as in :func:`anisotropic_gaussian_classes`.

    Returns:
        ``ClassData(X (N, d), y, labels (N,))``. Book chapter ``13_hard_data``.
    """
    sizes, d, gen_device, labels = _common(class_sizes, d, generator, dtype, device, C=2)
    check_choice(targets, "targets", TARGET_ENCODINGS)
    m = check_positive(m, "m")
    std = check_positive(std, "std")
    if d == 1:
        centres = {0: ((-3 * m,), (m,)), 1: ((-m,), (3 * m,))}
    else:
        centres = {0: ((m, -m), (-m, m)), 1: ((m, m), (-m, -m))}
    mu = torch.zeros(len(labels), d, dtype=torch.float64)
    start = 0
    for c, n in enumerate(sizes):
        first = (n + 1) // 2
        for k, (lo, hi) in enumerate(((0, first), (first, n))):
            mu[start + lo:start + hi, :len(centres[c][k])] = torch.tensor(centres[c][k], dtype=torch.float64)
        start += n
    X = mu + std * _randn((len(labels), d), generator, gen_device)
    y = _targets(labels, 2, targets)
    return _finish(X, labels, y, 2, shuffle=shuffle, generator=generator, gen_device=gen_device, dtype=dtype,
                   device=device)


def concentric_shells(class_sizes: Sequence[int] = (128, 128), d: int = 2, *, radii=(1.0, 2.0), noise: float = 0.1,
                      targets: str = "pm1", generator: torch.Generator | None = None, dtype: torch.dtype = torch.float64,
                      device=None, shuffle: bool = False) -> ClassData:
    r"""Concentric shells: x = r_c sqrt(d) u + noise * eps, u uniform on the unit sphere S^{d-1}, eps ~ N(0, I_d).

    For d = 1 the sphere is {-1, +1}: class c sits at +-r_c (random sign) plus noise. The sqrt(d) keeps
    |x|^2 / d = r_c^2 + noise^2 (on average) fixed as d grows, the scale K1 = (sigma_w^2/d0) x.x' sees. Classes share
    their mean (0), so every linear classifier is at chance.

    Args:
        class_sizes: (C,) positive integers; d: input dimension >= 1.
        radii: (C,) distinct radii r_c > 0; noise: per-coordinate noise std >= 0.
        targets, generator, dtype, device, shuffle: as in :func:`anisotropic_gaussian_classes`.

    Returns:
        ``ClassData(X (N, d), y, labels (N,))``. Book chapter ``13_hard_data``.
    """
    sizes, d, gen_device, labels = _common(class_sizes, d, generator, dtype, device)
    C = len(sizes)
    check_choice(targets, "targets", TARGET_ENCODINGS)
    r = as_float_tensor(radii, "radii").to(torch.float64).reshape(-1)
    if r.numel() != C:
        raise ValueError(f"radii must list one radius per class ({C}), got {r.numel()}")
    check_finite(r, "radii")
    if bool((r <= 0).any()):
        raise ValueError(f"radii must be > 0, got {r.tolist()}")
    if torch.unique(r).numel() != C:
        raise ValueError(f"radii must be distinct (one shell per class), got {r.tolist()}")
    noise_std = check_nonnegative(noise, "noise")
    direction = _randn((len(labels), d), generator, gen_device)
    direction = direction / direction.norm(dim=1, keepdim=True).clamp_min(1e-300)
    eps = _randn((len(labels), d), generator, gen_device)
    X = (r[labels] * d ** 0.5)[:, None] * direction + noise_std * eps
    y = _targets(labels, C, targets)
    return _finish(X, labels, y, C, shuffle=shuffle, generator=generator, gen_device=gen_device, dtype=dtype,
                   device=device)
