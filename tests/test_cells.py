"""The experiments layer's grid engine: cells, measures, the one row schema, summaries."""
import math

import pandas as pd
import pytest
import torch

import nckernels as nk
from nckernels.errors import DivergenceError
from nckernels.experiments import grids
from nckernels.experiments.cells import ROW_COLUMNS, Cell, Measure, cell_seed, describe_error, run_grid, summarize

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _cells(draws=2, d0s=(2,)):
    return [Cell((5, 7), d0, r, seed=3) for d0 in d0s for r in range(draws)]


def test_cell_data_is_the_seeded_draw():
    cell = Cell([5, 7], 2, 1, seed=3)
    assert cell.split == (5, 7) and isinstance(cell.split[0], int)
    want = nk.gaussian_classes([5, 7], 2, generator=torch.Generator().manual_seed(cell_seed(3, (5, 7), 2, 1)))
    torch.testing.assert_close(cell.data().X, want.X, rtol=0, atol=0)
    assert cell.columns() == {"N": 12, "split": "5/7", "n_min": 5, "minority": 5 / 12, "d0": 2, "draw": 1}
    keyed = Cell((4, 4), 2, seed=0, seed_key=(0, 8, 2))
    assert keyed.generator_seed == cell_seed(0, 8, 2)
    assert Cell((5, 7), 2, 0, dtype=torch.float32).data().X.dtype == torch.float32
    for bad, match in [(dict(split=(5,), d0=2), "split"), (dict(split=(5, 0), d0=2), "split"),
                       (dict(split=(5, 5), d0=0), "d0"), (dict(split=(5, 5), d0=2.5), "d0"),
                       (dict(split=(5, 5), d0=2, draw=-1), "draw"), (dict(split="55", d0=2), "split")]:
        with pytest.raises((ValueError, TypeError), match=match):  # TypeError: not an integer (check_int)
            Cell(**bad)


def test_measure_outcomes_are_rows():
    def boom(data):
        raise RuntimeError("boom")

    def extras(data):
        return {"result": nk.nngp(data.X), "evaluations": 4}

    def declined(data):
        return {"error": "kappa=500: not positive definite", "evaluations": 9}

    measures = [Measure("NNGP", lambda d: nk.nngp(d.X)), Measure("boom", boom), Measure("none", lambda d: None),
                Measure("extras", extras), Measure("declined", declined), Measure("nan", lambda d: {"nc1": math.nan}),
                Measure("wrong type", lambda d: "a string"), Measure("first draw", lambda d: nk.ntk(d.X), draws=1),
                Measure("const", lambda d: nk.nc1_from_features(d.X, d.labels), columns={"width": 5.0})]
    f = run_grid(_cells(), measures)
    assert tuple(f.columns[: len(ROW_COLUMNS)]) == ROW_COLUMNS
    by = {k: g for k, g in f.groupby("kernel")}
    assert len(by["data"]) == 2 and len(by["first draw"]) == 1 and by["first draw"]["draw"].iloc[0] == 0
    assert (by["boom"]["status"] == "failed").all() and (by["boom"]["error"] == "RuntimeError: boom").all()
    assert (by["none"]["status"] == "skipped").all() and (by["none"]["error"] == "").all()
    assert by["none"]["nc1"].isna().all()
    assert (by["extras"]["status"] == "ok").all() and (by["extras"]["evaluations"] == 4).all()
    torch.testing.assert_close(torch.tensor(by["extras"]["nc1"].to_numpy()), torch.tensor(by["NNGP"]["nc1"].to_numpy()))
    assert (by["declined"]["status"] == "failed").all() and (by["declined"]["evaluations"] == 9).all()
    assert (by["declined"]["error"] == "kappa=500: not positive definite").all()
    assert by["nan"]["error"].str.startswith("FloatingPointError: non-finite NC1").all()
    assert by["wrong type"]["error"].str.startswith("TypeError").all()
    assert (by["const"]["width"] == 5.0).all() and (by["const"]["relative"].abs() < 1e-12).all()
    ok = f[f.status == "ok"]
    assert (ok["seconds"] >= 0).all() and ok["log10_nc1"].notna().all()
    data_log = by["data"].set_index("draw")["log10_nc1"]
    nngp = by["NNGP"].set_index("draw")
    assert ((nngp["relative"] - (nngp["log10_nc1"] - data_log)).abs() < 1e-12).all()


def test_divergence_is_recorded_with_its_epoch():
    assert describe_error(DivergenceError("loss is nan", epoch=7)) == "diverged at epoch 7"
    assert describe_error(DivergenceError("loss is nan")) == "diverged: loss is nan"
    assert describe_error(ValueError("x")) == "ValueError: x"

    def train(cells, datas):
        raise DivergenceError("loss is inf", epoch=12, seeds=[1, 2])

    f = run_grid(_cells(draws=3), [Measure("net", train, batched=True)])
    net = f[f.kernel == "net"]
    assert len(net) == 3 and (net["status"] == "failed").all() and (net["error"] == "diverged at epoch 12").all()


def test_trained_network_grid_records_divergence(monkeypatch):
    def diverging(X, labels, seeds, config, **kw):
        raise DivergenceError("NaN in the loss", epoch=3, seeds=seeds)

    monkeypatch.setattr(grids, "train_networks", diverging)
    f = nk.trained_network_grid([[4, 4]], [2], 2, nk.TrainingConfig(width=4, epochs=5))
    net = f[f.kernel == "trained net"]
    assert len(net) == 2 and (net["error"] == "diverged at epoch 3").all() and net["nc1"].isna().all()
    assert (f[f.kernel != "trained net"]["status"] == "ok").all()


def test_batched_measure_gets_all_draws():
    seen = []

    def batched(cells, datas):
        seen.append([c.draw for c in cells])
        return [nk.nc1_from_features(d.X, d.labels) for d in datas]

    f = run_grid(_cells(draws=3, d0s=(1, 2)), [Measure("b", batched, batched=True)])
    assert seen == [[0, 1, 2], [0, 1, 2]]
    b = f[f.kernel == "b"]
    assert len(b) == 6 and (b["relative"].abs() < 1e-12).all()
    f = run_grid(_cells(draws=2), [Measure("short", lambda c, d: [None], batched=True)])
    assert set(f[f.kernel == "short"]["status"]) == {"failed"}


def test_run_grid_bad_input():
    with pytest.raises(ValueError, match="cells"):
        run_grid([], [])
    with pytest.raises(ValueError, match="cells"):
        run_grid([(5, 7)], [])
    with pytest.raises(ValueError, match="measures"):
        run_grid(_cells(), [lambda d: None])
    with pytest.raises(ValueError, match="name"):
        Measure("", lambda d: None)
    with pytest.raises(ValueError, match="fn"):
        Measure("x", 3)
    with pytest.raises(ValueError, match="draws"):
        Measure("x", lambda d: None, draws=-1)


def test_summarize_counts_failures_and_skips():
    frame = pd.DataFrame({
        "kernel": ["a", "a", "a", "a", "b", "b"],
        "d0": [1, 1, 1, 1, 1, 1],
        "status": ["ok", "ok", "failed", "skipped", "failed", "failed"],
        "log10_nc1": [-1.0, -3.0, math.nan, math.nan, math.nan, math.nan],
        "relative": [0.5, 1.5, math.nan, math.nan, math.nan, math.nan],
    })
    s = summarize(frame, by=("kernel", "d0"), index=True)
    assert s.loc[("a", 1), "log10_nc1_mean"] == -2.0 and s.loc[("a", 1), "log10_nc1_std"] == pytest.approx(math.sqrt(2))
    assert s.loc[("a", 1), "relative_mean"] == 1.0 and s.loc[("a", 1), "log10_nc1_count"] == 2
    assert s.loc[("a", 1), "failed"] == 1 and s.loc[("a", 1), "skipped"] == 1
    assert s.loc[("b", 1), "failed"] == 2 and s.loc[("b", 1), "log10_nc1_count"] == 0
    assert math.isnan(s.loc[("b", 1), "log10_nc1_mean"])
    flat = summarize(frame, by=("kernel", "d0"))
    assert list(flat.columns[:2]) == ["kernel", "d0"] and len(flat) == 2
    with pytest.raises(ValueError, match="by"):
        summarize(frame, by=("N",))
    with pytest.raises(ValueError, match="frame"):
        summarize([1, 2])
