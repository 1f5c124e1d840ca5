"""Real data without downloads: scikit-learn's bundled digits, and loaders for data the user supplies.

The book only uses :func:`load_digits`; :func:`load_npz` and :func:`load_image_folder` read MNIST,
CIFAR-10 or similar from a path the user gives (nothing is fetched).
"""
from __future__ import annotations

import pathlib

import numpy as np
import torch

from ..validation import check_device, check_float_dtype, check_generator, check_int, check_matrix

__all__ = ["load_digits", "load_npz", "load_image_folder", "class_balanced_subset", "standardize_columns"]


def standardize_columns(X: torch.Tensor) -> torch.Tensor:
    """(X - mean) / std per column; constant columns become 0. X (N, d) -> (N, d).

    Chapters ``09_empirical_ntk``, ``10_deep_rfm`` and ``11_agop_trained``.
    """
    X = check_matrix(X, "X")
    mean = X.mean(0)
    std = X.std(0)
    std = torch.where(std > 0, std, torch.ones_like(std))
    return (X - mean) / std


def _finish(X, y, dtype, device, standardize):
    check_float_dtype(dtype, "dtype")
    check_device(device, "device")
    X = torch.as_tensor(np.asarray(X, dtype=np.float64)).reshape(len(y), -1).to(dtype)
    labels = torch.as_tensor(np.asarray(y).astype(np.int64)).reshape(-1)
    if standardize:
        X = standardize_columns(X)
    return X.to(device), labels.to(device)


def load_digits(*, dtype=torch.float64, device=None, standardize: bool = True):
    """scikit-learn's bundled 8x8 digits: X (1797, 64) and integer labels (1797,) in 0..9.

    ``standardize`` z-scores each pixel (constant pixels become 0); otherwise pixels are 0..16.
    Chapters ``09_empirical_ntk``, ``10_deep_rfm`` and ``11_agop_trained``.
    """
    from sklearn.datasets import load_digits as _sk_digits

    data = _sk_digits()
    return _finish(data.data, data.target, dtype, device, standardize)


def load_npz(path, *, x_key: str = "x_train", y_key: str = "y_train", dtype=torch.float64, device=None,
             standardize: bool = True, scale: float | None = 255.0):
    """Arrays from a user-supplied ``.npz`` (for example MNIST's ``mnist.npz``): X (N, prod(shape)), labels (N,).

    ``scale`` divides the raw values first (255 for 8-bit images; None keeps them).
    Chapters ``09_empirical_ntk``, ``10_deep_rfm`` and ``11_agop_trained``.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise ValueError(f"path {path} is not a file")
    with np.load(path) as archive:
        for key in (x_key, y_key):
            if key not in archive:
                raise ValueError(f"{path} has no array {key!r}; it holds {sorted(archive.files)}")
        X, y = archive[x_key], archive[y_key]
    if len(X) != len(y):
        raise ValueError(f"{x_key} has {len(X)} rows but {y_key} has {len(y)}")
    X = X.astype(np.float64) / (scale or 1.0)
    return _finish(X, y, dtype, device, standardize)


def load_image_folder(root, *, dtype=torch.float64, device=None, standardize: bool = True, grayscale: bool = True):
    """Images in ``root/<class name>/*.(png|jpg|jpeg)``, all of one size: X (N, pixels), labels (N,).

    Classes are numbered in the sorted order of the sub-folder names.
    Chapters ``09_empirical_ntk``, ``10_deep_rfm`` and ``11_agop_trained``.
    """
    from PIL import Image

    root = pathlib.Path(root)
    if not root.is_dir():
        raise ValueError(f"root {root} is not a folder")
    classes = sorted(p for p in root.iterdir() if p.is_dir())
    if len(classes) < 2:
        raise ValueError(f"root {root} must hold at least two class folders, found {len(classes)}")
    images, labels = [], []
    for index, folder in enumerate(classes):
        for file in sorted(folder.iterdir()):
            if file.suffix.lower() in (".png", ".jpg", ".jpeg"):
                img = Image.open(file).convert("L" if grayscale else "RGB")
                images.append(np.asarray(img, dtype=np.float64) / 255.0)
                labels.append(index)
    if not images:
        raise ValueError(f"no .png/.jpg images under {root}")
    if len({im.shape for im in images}) != 1:
        raise ValueError(f"images under {root} differ in size")
    return _finish(np.stack(images), np.asarray(labels), dtype, device, standardize)


def class_balanced_subset(labels, per_class: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Indices of ``per_class`` samples of every class, sorted by class (random within a class if a
    generator is given, else the first ones). Raises if a class has fewer samples.

    Chapters ``09_empirical_ntk``, ``10_deep_rfm`` and ``11_agop_trained``.
    """
    if isinstance(labels, (str, bytes)) or labels is None:
        raise TypeError(f"labels must be a 1-D array of integer class labels, got {type(labels).__name__}")
    labels = torch.as_tensor(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {tuple(labels.shape)}")
    if labels.is_complex() or (labels.is_floating_point() and not bool((labels == labels.round()).all())):
        raise ValueError("labels must hold integer class labels (finite, whole numbers)")
    per_class = check_int(per_class, "per_class")
    check_generator(generator)
    out = []
    for c in torch.unique(labels).tolist():
        idx = torch.nonzero(labels == c).flatten().cpu()
        if idx.numel() < per_class:
            raise ValueError(f"class {c} has {idx.numel()} samples, fewer than per_class = {per_class}")
        if generator is not None:
            gen_device = generator.device
            idx = idx[torch.randperm(idx.numel(), generator=generator, device=gen_device).cpu()]
        out.append(idx[:per_class].sort().values)
    return torch.cat(out).to(labels.device)
