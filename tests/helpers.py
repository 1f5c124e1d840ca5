"""Shared test utilities: dtype tolerances, Monte Carlo comparisons, the header of a toy MyST chapter."""
from __future__ import annotations

import torch

DTYPES = [torch.float32, torch.float64]
RTOL = {torch.float32: 2e-5, torch.float64: 1e-11}


def assert_mc_close(estimate, standard_error, exact, *, z: float = 5.0, floor: float = 1e-12):
    """|estimate - exact| <= z * SE + floor entrywise; non-finite values fail before any tolerance."""
    estimate, standard_error, exact = (torch.as_tensor(t, dtype=torch.float64) for t in (estimate, standard_error, exact))
    assert torch.isfinite(estimate).all() and torch.isfinite(exact).all(), "non-finite value"
    err = (estimate - exact).abs()
    bound = z * standard_error + floor
    worst = (err / bound).max().item()
    assert worst <= 1.0, f"Monte Carlo disagrees: worst |err|/bound = {worst:.2f}"


# Front matter of a MyST text notebook (jupytext); toy chapters in the tests start with it.
MYST_HEADER = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  name: python3
  display_name: Python 3
  language: python
---
"""
