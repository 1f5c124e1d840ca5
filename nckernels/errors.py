"""Layer 0, core: the package's own exceptions (argument errors are plain ``ValueError``/``TypeError``).

May import: nothing from the package.
"""
from __future__ import annotations

__all__ = ["DivergenceError"]


class DivergenceError(FloatingPointError):
    """A training run or an iteration left the finite numbers (NaN or inf in its loss or state).

    ``epoch`` is the first step at which it was detected (None when unknown); ``seeds`` the runs concerned.
    Raised by every trainer; grid rows record it as "diverged at epoch k".
    """

    def __init__(self, message: str, *, epoch: int | None = None, seeds=()):
        super().__init__(message)
        self.epoch = epoch
        self.seeds = tuple(seeds)
