"""Regression targets of class labels: the one place a label becomes a target vector.

Layer 1, data. May import: :mod:`nckernels.validation` only.
"""
from __future__ import annotations

import torch

from ..validation import check_choice, check_float_dtype, check_int

__all__ = ["TARGET_ENCODINGS", "class_targets"]

TARGET_ENCODINGS = ("pm1", "pm1_onehot", "onehot")


def class_targets(index, num_classes: int, *, encoding: str = "pm1", dtype=torch.float64) -> torch.Tensor:
    """Targets of class indices ``index`` (any shape S, values 0..C-1) -> S + (C,) or S.

    * ``"onehot"``: e_c (0/1 entries), shape S + (C,) (chapters ``08_ntk_collapse_dynamics``, ``09_empirical_ntk``,
      ``11_agop_trained``);
    * ``"pm1_onehot"``: 2 e_c - 1 (+-1 entries), shape S + (C,) (chapter ``10_deep_rfm``);
    * ``"pm1"``: for C = 2 the scalar 2c - 1 in {-1, +1}, shape S; for C > 2 as ``"pm1_onehot"`` (the targets of
      chapters ``05_adaptive_kernel`` and ``06_trained_networks``, eq. ``tn-net``).
    """
    check_choice(encoding, "encoding", TARGET_ENCODINGS)
    C = check_int(num_classes, "num_classes", minimum=2)
    check_float_dtype(dtype, "dtype")
    if isinstance(index, (str, bytes)) or index is None:
        raise TypeError(f"index must be an integer array of class indices, got {type(index).__name__}")
    index = torch.as_tensor(index)
    if index.dtype in (torch.bool,) or index.is_floating_point() or index.is_complex():
        raise ValueError(f"index must hold integer class indices, got dtype {index.dtype}")
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= C):
        raise ValueError(f"index must hold class indices in 0..{C - 1}, got values in "
                         f"{int(index.min())}..{int(index.max())}")
    index = index.long()
    if encoding == "pm1" and C == 2:
        return 2.0 * index.to(dtype) - 1.0
    onehot = torch.nn.functional.one_hot(index, C).to(dtype)
    return onehot if encoding == "onehot" else 2.0 * onehot - 1.0
