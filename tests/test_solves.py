"""The EoS solve store (nckernels.experiments.solves): a stored solve reads back bit for bit, is found under every
spelling of the same call and under no other, and chapter 6's grid reads the solves chapter 5's grid made."""
from __future__ import annotations

import pandas as pd
import pytest
import torch

import nckernels as nk
from nckernels.experiments import solves
from nckernels.experiments.solves import SOLVE_STORE_ENV, solve_key, stored_solve


def _data(seed=0, split=(20, 28), d0=2):
    return nk.gaussian_classes(list(split), d0, generator=torch.Generator().manual_seed(seed))


KW = dict(width=500, noise_var=1e-6, tol=1e-10)


def _same(a, b):
    assert torch.equal(a.Sigma, b.Sigma) and torch.equal(a.kernel, b.kernel) and torch.equal(a.fbar, b.fbar)
    assert (a.converged, a.residual, a.evaluations, a.at_floor, a.label_term, a.width, a.noise_var, a.tol) == \
        (b.converged, b.residual, b.evaluations, b.at_floor, b.label_term, b.width, b.noise_var, b.tol)
    pd.testing.assert_frame_equal(a.history, b.history)


@pytest.mark.parametrize("d0", [1, 8])
def test_a_stored_solve_reads_back_bit_for_bit(tmp_path, d0):
    d = _data(d0=d0)
    first, reused = stored_solve(d.X, d.y, labels=d.labels, store=tmp_path, **KW)
    assert not reused and len(list(tmp_path.glob("*.pt"))) == 1
    again, reused = stored_solve(d.X, d.y, labels=d.labels, store=tmp_path, **KW)
    assert reused
    _same(again, first)
    _same(again, nk.solve_adaptive_kernel(d.X, d.y, labels=d.labels, **KW))  # and equals a plain solve


def test_the_key_ignores_only_what_cannot_change_a_converged_answer():
    d = _data()
    key = solve_key(d.X, d.y, labels=d.labels, **KW)
    # the same call spelled otherwise: strict, progress, the scales as deviations, variances or defaults
    assert solve_key(d.X, d.y, labels=d.labels, strict=False, progress=True, **KW) == key
    assert solve_key(d.X, d.y, labels=d.labels, sigma_a2=1 / 128, sigma_w=1.0, **KW) == key
    sa = nk.models.adaptive.DEFAULT_SIGMA_A  # a deviation: the same solve exactly when its square is the variance
    assert (solve_key(d.X, d.y, labels=d.labels, sigma_a=sa, **KW) == key) == (sa**2 == 1 / 128)
    # anything else is another solve
    X2 = d.X.clone()
    X2[0, 0] += 1e-12
    others = [solve_key(X2, d.y, labels=d.labels, **KW), solve_key(d.X, -d.y, labels=d.labels, **KW),
              solve_key(d.X, d.y, **KW), solve_key(d.X, d.y, labels=d.labels, **{**KW, "tol": 1e-9}),
              solve_key(d.X, d.y, labels=d.labels, **{**KW, "width": 400}),
              solve_key(d.X, d.y, labels=d.labels, label_term="reference", **KW),
              solve_key(d.X, d.y, labels=d.labels, init=torch.eye(2, dtype=torch.float64) / 2, **KW),
              solve_key(d.X.float(), d.y.float(), labels=d.labels, **KW)]
    assert len({key, *others}) == len(others) + 1


def test_a_change_to_the_solver_code_is_another_key(monkeypatch):
    d = _data()
    key = solve_key(d.X, d.y, **KW)
    monkeypatch.setattr(solves, "code_fingerprint", lambda: "0" * 64)
    assert solve_key(d.X, d.y, **KW) != key


def test_failures_are_not_stored_and_a_bad_entry_is_solved_again(tmp_path):
    d = _data(d0=8)
    failed, reused = stored_solve(d.X, d.y, store=tmp_path, strict=False, max_iter=1, jump_iter=1, max_halvings=0, **KW)
    assert not failed.converged and not reused and not list(tmp_path.glob("*.pt"))
    path = tmp_path / f"{solve_key(d.X, d.y, **KW)}.pt"
    path.write_bytes(b"not a torch file")
    res, reused = stored_solve(d.X, d.y, store=tmp_path, **KW)
    assert res.converged and not reused
    assert stored_solve(d.X, d.y, store=tmp_path, **KW)[1]  # overwritten with the solve


def test_without_a_store_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.delenv(SOLVE_STORE_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    d = _data()
    assert stored_solve(d.X, d.y, **KW)[1] is False and not list(tmp_path.rglob("*"))


def test_chapter_6_grid_reads_the_solves_of_chapter_5_grid(tmp_path, monkeypatch):
    # the two chapters' paper grids share data draws and solver settings; with a store the second makes no solve
    monkeypatch.setenv(SOLVE_STORE_ENV, str(tmp_path))
    splits, d0s, draws = [[20, 28]], [1, 4], 3
    five = nk.adaptive_nc1_grid(splits, d0s, draws, label_terms=("eos",), width=500, noise_var=1e-6, tol=1e-10)
    ad = five[five.kernel == "adaptive (eos)"]
    assert (ad.status == "ok").all() and not ad.reused.astype(bool).any()
    stored = sorted(tmp_path.glob("*.pt"))
    assert len(stored) == len(ad)
    calls = []
    monkeypatch.setattr(solves, "solve_adaptive_kernel", lambda *a, **k: calls.append(1))
    six = nk.trained_network_grid(splits, d0s, draws, nk.TrainingConfig(width=500, epochs=2),
                                  kernels={"adaptive": nk.network_kernels(nk.TrainingConfig(width=500),
                                                                          adaptive_max_N=100)["adaptive"]})
    assert not calls and sorted(tmp_path.glob("*.pt")) == stored
    assert (six[six.kernel == "adaptive"].status == "ok").all(), six[six.kernel == "adaptive"].error.tolist()
    nc1 = lambda f, k: f[f.kernel == k].set_index(["d0", "draw"]).nc1  # noqa: E731
    pd.testing.assert_series_equal(nc1(six, "adaptive"), nc1(five, "adaptive (eos)"))
    again = nk.adaptive_nc1_grid(splits, d0s, draws, label_terms=("eos",), width=500, noise_var=1e-6, tol=1e-10)
    assert again[again.kernel == "adaptive (eos)"].reused.astype(bool).all()
