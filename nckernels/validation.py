"""Argument checks shared by the package: every failure is a ``ValueError`` naming the argument."""
from __future__ import annotations

import math

import torch

__all__ = [
    "as_float_tensor",
    "check_matrix",
    "check_finite",
    "check_nonnegative",
    "check_positive",
    "check_labels",
    "check_choice",
    "check_pair",
    "check_grid",
]


def as_float_tensor(x, name: str, *, dtype=None, device=None) -> torch.Tensor:
    """Return ``x`` as a floating tensor; integers become float64, floats keep their dtype."""
    if not isinstance(x, torch.Tensor):
        try:
            x = torch.as_tensor(x)
        except Exception as exc:  # noqa: BLE001 - re-raised with the argument's name
            raise ValueError(f"{name} must be array-like, got {type(x).__name__}") from exc
    if dtype is not None or device is not None:
        x = x.to(dtype=dtype or x.dtype, device=device or x.device)
    if not torch.is_floating_point(x):
        x = x.to(torch.float64)
    return x


def check_finite(x: torch.Tensor, name: str) -> torch.Tensor:
    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"{name} contains {bad} non-finite value(s) (NaN or inf)")
    return x


def check_matrix(x, name: str, *, columns: int | None = None, square: bool = False) -> torch.Tensor:
    """A finite 2-D floating tensor; 1-D input is refused (reshape it explicitly)."""
    x = as_float_tensor(x, name)
    if x.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array of shape (n_samples, n_features), got shape {tuple(x.shape)}"
            + ("; reshape a single feature with x[:, None]" if x.ndim == 1 else "")
        )
    if x.shape[0] == 0:
        raise ValueError(f"{name} has no rows")
    if columns is not None and x.shape[1] != columns:
        raise ValueError(f"{name} must have {columns} columns, got {x.shape[1]}")
    if square and x.shape[0] != x.shape[1]:
        raise ValueError(f"{name} must be square, got shape {tuple(x.shape)}")
    return check_finite(x, name)


def _as_number(value, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a real number, got {value!r}") from exc
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return v


def check_nonnegative(value, name: str) -> float:
    v = _as_number(value, name)
    if v < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return v


def check_positive(value, name: str) -> float:
    v = _as_number(value, name)
    if v <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return v


def check_choice(value, name: str, choices) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}")
    return value


def check_labels(labels, n: int, name: str = "labels", *, device=None):
    """Integer class labels of length ``n`` with at least two classes.

    Returns ``(index, class_sizes)``: ``index`` maps each sample to 0..C-1 in the order of the sorted
    distinct labels, ``class_sizes`` is the (C,) count of each class.
    """
    if not isinstance(labels, torch.Tensor):
        try:
            labels = torch.as_tensor(labels)
        except Exception as exc:  # noqa: BLE001
            raise ValueError(f"{name} must be a 1-D array of integer class labels") from exc
    if labels.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {tuple(labels.shape)}")
    if labels.shape[0] != n:
        raise ValueError(f"{name} has {labels.shape[0]} entries but there are {n} samples")
    if torch.is_floating_point(labels) or torch.is_complex(labels):
        if not bool((labels == labels.round()).all()):
            raise ValueError(f"{name} must hold integer class labels, got non-integer values")
        labels = labels.round().long()
    if device is not None:
        labels = labels.to(device)
    classes, index = torch.unique(labels, return_inverse=True)
    if classes.numel() < 2:
        raise ValueError(f"{name} must contain at least two classes, got {classes.numel()}")
    sizes = torch.bincount(index, minlength=classes.numel())
    return index, sizes


def check_pair(X, Z):
    """Validate the two inputs of a kernel: returns (X, Z, same), with Z = X and same = True when Z is None or X."""
    X = check_matrix(X, "X")
    if Z is None or Z is X:
        return X, X, True
    Z = check_matrix(Z, "Z", columns=X.shape[1])
    if Z.device != X.device:
        raise ValueError(f"Z is on {Z.device} but X is on {X.device}; put both on one device")
    dtype = torch.promote_types(X.dtype, Z.dtype)
    return X.to(dtype), Z.to(dtype), False


def check_grid(splits, d0s, draws) -> None:
    """Validate a (class-size splits x input dimensions x draws) grid of the book's sweeps."""
    if not isinstance(draws, int) or draws < 1:
        raise ValueError(f"draws must be a positive integer, got {draws!r}")
    if not d0s:
        raise ValueError("d0s must list at least one input dimension")
    if not splits:
        raise ValueError("splits must list at least one class-size split")
