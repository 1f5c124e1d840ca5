"""The sweep engine loses nothing: concurrent sweeps on one DIR, kill -9 with workers, types read back as
written, failed rows that name their partial notebook, files only inside DIR."""
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from helpers import MYST_HEADER
from nckernels import sweeps
from test_sweeps import CHAPTER, _log

ROOT = pathlib.Path(__file__).resolve().parents[1]

NAPPING = MYST_HEADER + '''
# A chapter whose cells sleep when TOY_NAP is set

```{code-cell} ipython3
:tags: [parameters]

x = 1
started = ""
```

```{code-cell} ipython3
import os, time
from myst_nb import glue

if started:
    open(os.path.join(started, f"{x}.{os.getpid()}"), "w").close()
time.sleep(float(os.environ.get("TOY_NAP", "0")))
glue("t_double", 2 * x, display=False)
```
'''

LABELS = {"a": "007", "b": "NA", "c": "nan", "d": "1e5", "e": "", "f": "True", "g": "null"}

TYPED = MYST_HEADER + """
# String parameters that look like other things

```{code-cell} ipython3
:tags: [parameters]

x = 1
log = ""
""" + "".join(f"{k} = 'z'\n" for k in LABELS) + """```

```{code-cell} ipython3
from myst_nb import glue

if log:
    with open(log, "a") as fh:
        fh.write(f"{x}\\n")
""" + "".join(f"glue('t_{k}', {k}, display=False)\n" for k in LABELS) + """```
"""


def _chapter(tmp_path, text, name="99_tiny.md"):
    path = tmp_path / "book" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def _env(**extra):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), **extra)
    env.setdefault("MPLBACKEND", "Agg")
    return env


def _sweep_cmd(chapter, grid, out, *extra):
    return [sys.executable, "-m", "nckernels", "sweep", str(chapter), "--grid", str(grid), "--out", str(out),
            "--quiet", *extra]


@pytest.mark.slow  # two processes start a kernel per run
def test_two_concurrent_sweeps_on_one_out_land_every_row(tmp_path):
    chapter = _chapter(tmp_path, CHAPTER)
    grids = []
    for name, xs in (("a", [1, 2]), ("b", [11, 12])):
        grids.append(tmp_path / f"{name}.yml")
        grids[-1].write_text(f"grid:\n  x: {xs}\n")
    out = tmp_path / "shared"
    procs = [subprocess.Popen(_sweep_cmd(chapter, g, out), cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for g in grids]
    results = [p.communicate(timeout=240) for p in procs]
    for p, (stdout, stderr) in zip(procs, results):
        assert p.returncode == 0, stdout + stderr
    csv = pd.read_csv(out / "results.csv", dtype={"run": str})
    assert sorted(csv["x"]) == [1, 2, 11, 12] and (csv["status"] == "ok").all()
    assert sorted(sweeps.read_results(out)["t_double"]) == [2, 4, 22, 24]
    assert len(list((out / "records").glob("*.json"))) == 4
    assert not list(out.rglob("*.tmp"))


def _descendants(pid):
    psutil = pytest.importorskip("psutil")
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


@pytest.mark.slow  # spawned workers and their kernels start, then a resume
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, "worker"], ids=["kill-9", "sigterm", "worker-kill-9"])
def test_killing_the_sweep_leaves_no_worker_or_kernel_and_resume_completes(tmp_path, sig):
    psutil = pytest.importorskip("psutil")
    chapter = _chapter(tmp_path, NAPPING)
    started = tmp_path / "started"
    started.mkdir()
    grid = tmp_path / "grid.yml"
    grid.write_text(f"parameters:\n  started: {json.dumps(str(started))}\ngrid:\n  x: [1, 2, 3]\n")
    out = tmp_path / "killed"
    stderr = tmp_path / "stderr.txt"
    with open(stderr, "w") as err:
        proc = subprocess.Popen(_sweep_cmd(chapter, grid, out, "--workers", "2"), cwd=ROOT, env=_env(TOY_NAP="30"),
                                stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.monotonic() + 120
    while len(list(started.iterdir())) < 2 and time.monotonic() < deadline:  # both workers are in a cell
        time.sleep(0.2)
    assert len(list(started.iterdir())) == 2, "the workers never started their kernels"
    family = _descendants(proc.pid)
    kernels = [int(p.name.split(".")[1]) for p in started.iterdir()]
    assert set(kernels) <= {p.pid for p in family}
    if sig == "worker":  # one worker dies: the sweep stops, records no false failure, ends the rest
        worker = next(p for p in family if "spawn_main" in " ".join(p.cmdline()))
        os.kill(worker.pid, signal.SIGKILL)
    else:
        os.kill(proc.pid, sig)
    code = proc.wait(timeout=30)
    if sig == "worker":
        assert code == 1 and "worker processes died" in stderr.read_text() and "Traceback" not in stderr.read_text()
    if sig == signal.SIGTERM:  # handled like Ctrl-C: the queue is cancelled, one line says how to resume
        assert code == 130 and "resume" in stderr.read_text() and "Traceback" not in stderr.read_text()
    gone, alive = psutil.wait_procs(family, timeout=10)
    alive = [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not alive, f"still running after the sweep was killed: {[p.cmdline()[:4] for p in alive]}"
    assert not (out / "records").exists() or not list((out / "records").glob("*.json"))  # nothing finished
    frame = sweeps.run_sweep(chapter, grid, out, progress=False)  # resume (no nap): every row lands
    assert sorted(frame["x"]) == [1, 2, 3] and (frame["status"] == "ok").all()


def _numeric_looking_point(log):
    # a point whose run name pandas would read as a number ("123456789012" or "1e5...")
    for x in range(100000):
        point = {"x": x, "log": log, **LABELS}
        key = sweeps.run_key("99_typed", point)
        if key.isdigit() or (key[0].isdigit() and key[1] == "e" and key[2:].isdigit()):
            return point, key
    raise AssertionError("no numeric-looking run name found")


def test_types_survive_resume_and_nothing_reruns(tmp_path):
    chapter = _chapter(tmp_path, TYPED, "99_typed.md")
    log = tmp_path / "log.txt"
    point, key = _numeric_looking_point(str(log))
    out = tmp_path / "typed"
    frame = sweeps.run_sweep(chapter, {"points": [point]}, out, progress=False)
    assert _log(log) == [point["x"]] and list(frame["run"]) == [key] and list(frame["status"]) == ["ok"]
    for _ in range(2):  # resume twice: nothing runs again
        frame = sweeps.run_sweep(chapter, {"points": [point]}, out, progress=False)
    assert _log(log) == [point["x"]]
    row = frame.iloc[0]
    assert row["run"] == key and row["x"] == point["x"]
    for name, label in LABELS.items():
        assert row[name] == label and row[f"t_{name}"] == label
    # the CSV view keeps them too when read as text
    csv = pd.read_csv(out / "results.csv", dtype=str, keep_default_na=False)
    assert list(csv["run"]) == [key] and all(csv.loc[0, k] == v for k, v in LABELS.items())
    record = json.loads((out / "records" / f"{key}.json").read_text())
    assert record["run"] == key and record["parameters"] == point


def test_a_failed_row_names_its_partial_notebook_and_retry_replaces_it(tmp_path):
    chapter = _chapter(tmp_path, CHAPTER)
    out = tmp_path / "failing"
    frame = sweeps.run_sweep(chapter, {"points": [{"x": 3, "fail": True}, {"x": 4}]}, out, progress=False)
    frame = frame.set_index("x")
    assert frame.loc[3, "status"] == "failed" and frame.loc[3, "notebook"].endswith(".failed.ipynb")
    for x in (3, 4):
        assert (out / frame.loc[x, "notebook"]).is_file()
    csv = pd.read_csv(out / "results.csv", dtype=str, keep_default_na=False)
    for notebook in csv["notebook"]:
        assert (out / notebook).is_file()
    assert (out / "logs" / f"{frame.loc[3, 'run']}.log").is_file()


def test_the_results_view_is_not_written_through_a_symlink(tmp_path):
    chapter = _chapter(tmp_path, CHAPTER)
    out = tmp_path / "linked"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (out / "results.csv").symlink_to(victim)
    (out / "records").mkdir()  # not a legacy directory
    sweeps.run_sweep(chapter, {"points": [{"x": 1}]}, out, progress=False)
    assert victim.read_text() == "keep me" and not (out / "results.csv").is_symlink()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (tmp_path / "linked2").mkdir()
    (tmp_path / "linked2" / "runs").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ValueError, match="symlink"):
        sweeps.run_sweep(chapter, {"points": [{"x": 1}]}, tmp_path / "linked2", progress=False)
    assert not list(outside.iterdir())


def test_a_results_csv_from_before_records_resumes(tmp_path):
    chapter = _chapter(tmp_path, CHAPTER)
    point = {"x": 1, "fail": False, "log": ""}
    key = sweeps.run_key(chapter, point)
    out = tmp_path / "legacy"
    out.mkdir()
    pd.DataFrame([{"run": key, "status": "ok", "error": "", "seconds": 1.0, "finished": "2026-01-01T00:00:00",
                   "notebook": f"runs/{key}.ipynb", **point, "t_double": 2}]).to_csv(out / "results.csv", index=False)
    log = tmp_path / "log.txt"
    frame = sweeps.run_sweep(chapter, {"points": [point, {"x": 2, "log": str(log)}]}, out, progress=False)
    assert _log(log) == [2]  # the legacy row was not run again
    assert sorted(frame["t_double"]) == [2, 4]
