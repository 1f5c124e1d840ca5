"""Layer 0, core: the argument checks every public function runs first (issue 12, "no silent wrong number").

Each failure names the argument: ``TypeError`` for a value of the wrong kind (a float or bool where an int is
needed, a string, a complex or float16 tensor, a generator that is not a ``torch.Generator``), ``ValueError`` for a
value of the right kind that is out of range (a size < 1, NaN/inf entries, a matrix that is not square, symmetric or
PSD, labels outside the training classes, a device this machine lacks). One helper per repeated check:
:func:`check_int` (sizes, chunk sizes, counts), :func:`check_device`, :func:`check_dtype` /
:func:`check_float_dtype`, :func:`check_matrix` / :func:`check_vector`, :func:`check_symmetric` /
:func:`check_psd`, :func:`check_labels` / :func:`check_test_labels`, :func:`check_generator`.

May import: nothing from the package.
"""
from __future__ import annotations

import math
import numbers

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
    "check_int",
    "check_device",
    "check_dtype",
    "check_float_dtype",
    "check_psd",
    "check_symmetric",
    "max_asymmetry",
    "check_test_labels",
    "check_model",
    "check_model_device",
    "check_generator",
    "check_vector",
    "check_real",
    "integer_labels",
]


_LOW_PRECISION = (torch.float16, torch.bfloat16)


def as_float_tensor(x, name: str, *, dtype=None, device=None) -> torch.Tensor:
    """Return ``x`` as a real floating tensor; integers and bools become float64, floats keep their dtype.

    Complex tensors raise ``TypeError`` (casting would drop the imaginary part), and so do float16 /
    bfloat16 ones (too few digits for the Gram matrices and solves of this package: cast to float32 or
    float64 explicitly).
    """
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{name} must be a real array, got {type(x).__name__}")
    if not isinstance(x, torch.Tensor):
        try:
            x = torch.as_tensor(x)
        except Exception as exc:  # noqa: BLE001 - re-raised with the argument's name
            raise TypeError(f"{name} must be a real array, got {type(x).__name__}") from exc
    if dtype is not None:
        check_float_dtype(dtype, "dtype")
    check_device(device, "device")
    if dtype is not None or device is not None:
        x = x.to(dtype=dtype or x.dtype, device=device or x.device)
    check_dtype(x, name)
    if not torch.is_floating_point(x):
        x = x.to(torch.float64)
    return x


def check_dtype(x: torch.Tensor, name: str) -> torch.Tensor:
    """Refuse tensors whose dtype cannot hold the package's float math: complex and float16 / bfloat16."""
    if torch.is_complex(x):
        raise TypeError(f"{name} must be real, got dtype {x.dtype}; pass x.real (or x.abs()) explicitly")
    if x.dtype in _LOW_PRECISION:
        raise TypeError(f"{name} has dtype {x.dtype}, too few digits for this computation; "
                        f"cast it to torch.float32 or torch.float64")
    return x


def check_float_dtype(dtype, name: str = "dtype") -> torch.dtype:
    """A requested output dtype: torch.float32 or torch.float64."""
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"{name} must be torch.float32 or torch.float64, got {dtype!r}")
    return dtype


def check_int(value, name: str, *, minimum: int | None = 1, maximum: int | None = None, allow_none: bool = False):
    """An ``int`` (or an integer numpy/torch scalar; never a bool or a float) with ``minimum <= value <= maximum``."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, torch.Tensor) and value.ndim == 0 and not value.is_floating_point() \
                and value.dtype != torch.bool and not value.is_complex():
            value = int(value)
        else:
            expected = "an integer" if minimum is None else f"an integer >= {minimum}"
            raise TypeError(f"{name} must be {expected}, got {value!r} ({type(value).__name__})")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be an integer <= {maximum}, got {value!r}")
    return value


def check_device(device, name: str = "device"):
    """``None`` or a device this machine has; "cuda" without CUDA, or "mps" without MPS, raises ``ValueError``."""
    if device is None:
        return None
    try:
        dev = torch.device(device)
    except (TypeError, RuntimeError, ValueError) as exc:
        raise ValueError(f"{name} must be a torch device such as 'cpu' or 'cuda', got {device!r}") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{name}={device!r} but CUDA is not available on this machine; use 'cpu'")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"{name}={device!r} but this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(f"{name}={device!r} but MPS is not available on this machine; use 'cpu'")
    elif dev.type not in ("cpu", "meta"):
        raise ValueError(f"{name}={device!r} is not supported; use 'cpu' or 'cuda'")
    return dev


def check_symmetric(A: torch.Tensor, name: str, *, tol: float = 1e-8) -> torch.Tensor:
    """A square matrix whose asymmetry is at most ``tol`` times its largest entry.

    Both maxima are reductions without an N x N temporary for the scale, and the asymmetry is compared tile by
    tile (:func:`max_asymmetry`): ``(A - A.T).abs().max()`` read A's transpose across the whole matrix and took
    80 ms at N = 2048 (float64, one thread), the tiles 11 ms.
    """
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"{name} must be a square matrix, got shape {tuple(A.shape)}")
    if not A.numel():
        return A
    lo, hi = torch.aminmax(A)
    scale = max(-float(lo), float(hi))
    if scale > 0:
        asym = max_asymmetry(A)
        if asym > tol * scale:
            raise ValueError(f"{name} must be symmetric (max |{name} - {name}^T| = {asym:.3g})")
    return A


#: :func:`max_asymmetry` compares tiles of this many rows and columns (the fastest of 64 to 512 at N = 2048).
SYMMETRY_TILE = 256


def max_asymmetry(A: torch.Tensor, *, tile: int = SYMMETRY_TILE) -> float:
    """max |A - A^T| of a square matrix, over the tiles (i, j <= i) and their mirrors, one sync at the end."""
    n = A.shape[0]
    if n <= tile:
        return float((A - A.T).abs().max())
    parts = []
    for i in range(0, n, tile):
        for j in range(0, i + 1, tile):
            parts.append((A[i:i + tile, j:j + tile] - A[j:j + tile, i:i + tile].T).abs().amax())
    return float(torch.stack(parts).max())


def check_psd(A, name: str, *, tol: float = 1e-8) -> torch.Tensor:
    """A finite, square, symmetric positive semi-definite matrix (eigenvalues >= -sqrt(tol) * max |eigenvalue|)."""
    A = check_matrix(A, name, square=True)
    check_symmetric(A, name, tol=tol)
    lam = torch.linalg.eigvalsh(0.5 * (A + A.T))
    top = float(lam.abs().max()) if lam.numel() else 0.0
    if top > 0 and float(lam.min()) < -math.sqrt(tol) * top:
        raise ValueError(f"{name} must be positive semi-definite; its smallest eigenvalue is {float(lam.min()):.3g}")
    return A


def check_model(model, name: str = "model"):
    """A ``torch.nn.Module`` (or a callable for function arguments)."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"{name} must be a torch.nn.Module, got {type(model).__name__}")
    return model


def check_model_device(model, X: torch.Tensor, name: str = "X"):
    """``model``'s parameters on ``X``'s device (a model without parameters passes); ``ValueError`` otherwise."""
    param = next(iter(model.parameters()), None)
    if param is not None and param.device != X.device:
        raise ValueError(f"{name} is on {X.device} but the model's parameters are on {param.device}; "
                         "put both on one device (model.to(X.device))")
    return model


def check_finite(x: torch.Tensor, name: str) -> torch.Tensor:
    """``x`` when every entry is finite; a ``ValueError`` naming ``name`` and the count otherwise.

    A floating tensor is checked by its extremes (``torch.aminmax`` propagates NaN into both and shows +-inf as
    one), a single pass without the N x N boolean temporary of ``isfinite``.
    """
    if x.is_floating_point() and x.numel():
        ok = bool(torch.isfinite(torch.stack(torch.aminmax(x))).all())
    else:
        ok = bool(torch.isfinite(x).all())
    if not ok:
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"{name} contains {bad} non-finite value(s) (NaN or inf)")
    return x


def check_matrix(x, name: str, *, columns: int | None = None, square: bool = False,
                 symmetric: bool = False) -> torch.Tensor:
    """A finite 2-D floating tensor; 1-D input is refused (reshape it explicitly).

    ``symmetric`` (implies ``square``) also refuses an asymmetry above 1e-8 times the largest entry.
    """
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
    if (square or symmetric) and x.shape[0] != x.shape[1]:
        raise ValueError(f"{name} must be square, got shape {tuple(x.shape)}")
    check_finite(x, name)
    if symmetric:
        check_symmetric(x, name)
    return x


def check_vector(x, name: str, *, length: int | None = None) -> torch.Tensor:
    """A finite 1-D floating tensor (of ``length`` entries when given)."""
    x = as_float_tensor(x, name)
    if x.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {tuple(x.shape)}")
    if length is not None and x.shape[0] != length:
        raise ValueError(f"{name} must have {length} entries, got {x.shape[0]}")
    return check_finite(x, name)


def check_generator(generator, name: str = "generator"):
    """``None`` or a ``torch.Generator`` (pass ``torch.Generator().manual_seed(seed)`` for a seed)."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"{name} must be a torch.Generator or None, got {type(generator).__name__}; "
                        f"use torch.Generator().manual_seed(seed)")
    return generator


def _as_number(value, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a real number, got {value!r}") from exc
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return v


def check_real(value, name: str) -> float:
    """A finite real number (Python, numpy or 0-d tensor); strings, None, NaN and inf raise naming ``name``."""
    if isinstance(value, (str, bytes, bool)) or value is None:
        raise TypeError(f"{name} must be a real number, got {value!r}")
    return _as_number(value, name)


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


def integer_labels(labels, n: int, name: str = "labels", *, samples: str = "samples") -> torch.Tensor:
    """``labels`` as a 1-D integer tensor of length ``n`` (integral floats accepted); raises naming ``name``."""
    if not isinstance(labels, torch.Tensor):
        try:
            labels = torch.as_tensor(labels)
        except Exception as exc:  # noqa: BLE001
            raise ValueError(f"{name} must be a 1-D array of integer class labels") from exc
    if labels.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {tuple(labels.shape)}")
    if labels.shape[0] != n:
        raise ValueError(f"{name} has {labels.shape[0]} entries but there are {n} {samples}")
    if torch.is_complex(labels):
        raise TypeError(f"{name} must hold integer class labels, got dtype {labels.dtype}")
    if torch.is_floating_point(labels):
        if not bool(torch.isfinite(labels).all()):
            raise ValueError(f"{name} contains non-finite values (NaN or inf)")
        if not bool((labels == labels.round()).all()):
            raise ValueError(f"{name} must hold integer class labels, got non-integer values")
        labels = labels.round().long()
    return labels


def check_labels(labels, n: int, name: str = "labels", *, device=None):
    """Integer class labels of length ``n`` with at least two classes.

    Returns ``(index, class_sizes)``: ``index`` maps each sample to 0..C-1 in the order of the sorted
    distinct labels, ``class_sizes`` is the (C,) count of each class.
    """
    labels = integer_labels(labels, n, name)
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
    check_int(draws, "draws")
    if not d0s:
        raise ValueError("d0s must list at least one input dimension")
    if not splits:
        raise ValueError("splits must list at least one class-size split")


def check_test_labels(labels_test, n: int, train_labels, name: str = "labels_test", *, device=None) -> torch.Tensor:
    """Class indices of test labels in the order of the *training* classes.

    ``train_labels`` (N,) are the training labels; every test label must be one of them (a label the
    training set lacks cannot be scored) and the result indexes ``torch.unique(train_labels)``, so a
    test split that misses a training class is scored against the right classes.
    """
    if labels_test is None:
        raise ValueError(f"{name} is required with the test inputs")
    labels_test = integer_labels(labels_test, n, name, samples="test samples")
    train = torch.as_tensor(train_labels)
    if torch.is_floating_point(train):
        train = train.round().long()
    classes = torch.unique(train.to(labels_test.device))
    index = torch.searchsorted(classes, labels_test.to(classes.dtype).contiguous())
    found = classes[index.clamp_max(classes.numel() - 1)] == labels_test
    if not bool(found.all()):
        missing = sorted(set(labels_test[~found].tolist()))
        raise ValueError(f"{name} holds class(es) {missing[:5]} that the training labels do not; "
                         f"a test sample can only be scored against the training classes")
    return index if device is None else index.to(device)
