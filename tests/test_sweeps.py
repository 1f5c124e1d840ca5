"""Sweeps with papermill: run naming, resume after interruption, failures as rows, glued values, Dask."""
import pathlib

import nbformat
import pandas as pd
import pytest

from helpers import MYST_HEADER
from nckernels import sweeps
from nckernels.__main__ import main


CHAPTER = MYST_HEADER + '''
# A tiny chapter

```{code-cell} ipython3
:tags: [parameters]

x = 1
fail = False
log = ""
```

```{code-cell} ipython3
import numpy as np
from myst_nb import glue

if log:
    with open(log, "a") as fh:
        fh.write(f"{x}\\n")
if fail:
    raise RuntimeError(f"asked to fail at x={x}")
glue("t_double", 2 * x, display=False)
glue("t_label", f"x{x}", display=False)
glue("t_quarter", np.float64(x) / 4)
glue("t_table", [1, 2], display=False)
```
'''


@pytest.fixture
def chapter(tmp_path):
    path = tmp_path / "book" / "99_tiny.md"
    path.parent.mkdir()
    path.write_text(CHAPTER)
    return path


def _log(path):
    return [int(v) for v in path.read_text().split()] if path.exists() else []


def test_grid_points_and_run_keys(chapter):
    grid = sweeps.load_grid({"parameters": {"log": ""}, "grid": {"x": [1, 2], "fail": [False, True]},
                             "points": [{"x": 9}]})
    points = sweeps.grid_points(grid, chapter)
    assert len(points) == 5 and points[-1] == {"log": "", "x": 9}
    keys = [sweeps.run_key(chapter, p) for p in points]
    assert len(set(keys)) == 5
    # the name depends on the values, not on the order of the keys
    assert sweeps.run_key(chapter, {"x": 1, "log": ""}) == sweeps.run_key(chapter, {"log": "", "x": 1})
    assert sweeps.run_key(chapter, {"x": 1}) != sweeps.run_key(chapter.with_name("98_other.md"), {"x": 1})
    for bad, match in [({"grid": {"x": []}}, "non-empty"), ({"grid": {}}, "at least one"),
                       ({"grid": {"x": [1]}, "scale": "huge"}, "scale"), ({"grdi": {"x": [1]}}, "unknown")]:
        with pytest.raises(ValueError, match=match):
            sweeps.load_grid(bad)
    with pytest.raises(ValueError, match="does not exist"):
        sweeps.load_grid(chapter.with_name("missing.yml"))


def test_harvest_glue_scalars_only():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("")
    prefix = "application/papermill.record/"
    cell.outputs = [
        nbformat.v4.new_output("display_data", data={prefix + "text/plain": "0.25"},
                               metadata={"scrapbook": {"name": "a", "mime_prefix": prefix}}),
        nbformat.v4.new_output("display_data", data={"text/plain": "np.float64(-1.5)"},
                               metadata={"scrapbook": {"name": "b", "mime_prefix": ""}}),
        nbformat.v4.new_output("display_data", data={prefix + "text/plain": "'ten'"},
                               metadata={"scrapbook": {"name": "c", "mime_prefix": prefix}}),
        nbformat.v4.new_output("display_data", data={prefix + "text/plain": "<Figure size 640x480>"},
                               metadata={"scrapbook": {"name": "fig", "mime_prefix": prefix}}),
        nbformat.v4.new_output("display_data", data={"text/plain": "3"}, metadata={}),
    ]
    nb.cells.append(cell)
    assert sweeps.harvest_glue(nb) == {"a": 0.25, "b": -1.5, "c": "ten"}


def test_sweep_resumes_records_failures_and_harvests(chapter, tmp_path, monkeypatch):
    log = tmp_path / "log.txt"
    grid = {"parameters": {"log": str(log)}, "grid": {"x": [1, 2]}, "points": [{"x": 3, "fail": True}]}
    out = tmp_path / "out"
    real = sweeps.execute_run

    def interrupted(ch, params, nb, **kw):
        if params["x"] == 2:
            raise KeyboardInterrupt
        return real(ch, params, nb, **kw)

    monkeypatch.setattr(sweeps, "execute_run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        sweeps.run_sweep(chapter, grid, out, progress=False)
    first = pd.read_csv(out / "results.csv")  # complete and parseable after the interruption
    assert list(first["x"]) == [1] and list(first["status"]) == ["ok"]
    assert _log(log) == [1]
    assert not list(out.rglob(".*.tmp")) and not list(out.rglob("*.partial*"))

    monkeypatch.setattr(sweeps, "execute_run", real)
    frame = sweeps.run_sweep(chapter, grid, out, progress=False)
    assert _log(log) == [1, 2, 3]  # the finished run was skipped
    frame = frame.set_index("x")
    assert list(frame.loc[[1, 2], "status"]) == ["ok", "ok"]
    assert list(frame.loc[[1, 2], "t_double"]) == [2, 4]
    assert list(frame.loc[[1, 2], "t_label"]) == ["x1", "x2"]
    assert frame.loc[2, "t_quarter"] == pytest.approx(0.5)
    assert "t_table" not in frame.columns  # not a scalar
    assert frame.loc[3, "status"] == "failed" and "asked to fail at x=3" in frame.loc[3, "error"]
    assert pd.isna(frame.loc[3, "t_double"])
    for run in frame["run"]:
        assert len(run) == 12
    assert (out / frame.loc[1, "notebook"]).is_file()
    assert (out / "runs" / f"{frame.loc[3, 'run']}.failed.ipynb").is_file()

    sweeps.run_sweep(chapter, grid, out, progress=False)  # everything finished: nothing runs
    assert _log(log) == [1, 2, 3]
    again = sweeps.run_sweep(chapter, grid, out, progress=False, retry_failed=True)
    assert _log(log) == [1, 2, 3, 3]
    assert len(again) == 3 and len(pd.read_csv(out / "results.csv")) == 4  # old failed row kept


def test_cli_sweep_with_workers(chapter, tmp_path):
    grid = tmp_path / "grid.yml"
    grid.write_text("grid:\n  x: [5, 6]\n")
    out = tmp_path / "cli"
    assert main(["sweep", str(chapter), "--grid", str(grid), "--out", str(out), "--workers", "2", "--quiet"]) == 0
    frame = sweeps.read_results(out)
    assert sorted(frame["t_double"]) == [10, 12] and (frame["status"] == "ok").all()
    with pytest.raises(ValueError, match="workers"):
        sweeps.run_sweep(chapter, grid, out, workers=0)


def test_sweep_on_a_local_dask_cluster(chapter, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        frame = sweeps.run_sweep(chapter, {"grid": {"x": [7]}, "points": [{"x": 8, "fail": True}]},
                                 tmp_path / "dask", scheduler=cluster.scheduler_address, progress=False)
    frame = frame.set_index("x")
    assert frame.loc[7, "status"] == "ok" and frame.loc[7, "t_double"] == 14
    assert frame.loc[8, "status"] == "failed" and "asked to fail" in frame.loc[8, "error"]
