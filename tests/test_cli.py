"""The command line: parameters are data, checked before anything runs; errors are one line; quiet terminal."""
import pathlib
import subprocess
import sys

import pytest

from nckernels.__main__ import main
from nckernels.scales import check_parameters, load_yaml, parameter_names, parse_value, scale_parameters
from test_sweeps import chapter  # noqa: F401 - the tiny chapter fixture

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "nckernels", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=240)


def test_yaml_floats_follow_yaml_1_2():
    assert load_yaml("[1e-3, 1E5, 2.5e+2, .5, -2., 1.0e-6, 1, .inf, 007, '1e-3', NA, nan]", "t") == \
        [1e-3, 1e5, 250.0, 0.5, -2.0, 1e-6, 1, float("inf"), 7, "1e-3", "NA", "nan"]
    assert parse_value("1e-3") == 1e-3 and isinstance(parse_value("1e-3"), float)
    book = ROOT / "book" / "05_adaptive_kernel.md"
    assert all(isinstance(v, float) for v in scale_parameters(book, "paper")["map_noise_vars"][:3])


def test_parameter_names_come_from_the_parameters_cell(chapter):
    assert parameter_names(chapter) == ("x", "fail", "log")
    with pytest.raises(ValueError, match=r"'y' is not a parameter of 99_tiny.md; its parameters are: x, fail, log"):
        check_parameters(chapter, {"y": 1})
    for bad in ("x=1;import os;y", "x\nimport os", "import", "__import__('os')"):
        with pytest.raises(ValueError, match="not a Python identifier"):
            check_parameters(chapter, {bad: 1})
    import datetime
    with pytest.raises(ValueError, match="not data"):
        check_parameters(chapter, {"x": datetime.date(2020, 1, 1)})
    tricky = ['a"b', "x\\\"); import os; (\"", '\n"""\nimport os\n"""', "{x}", "'", "\\", float("nan")]
    for value in tricky:
        assert check_parameters(chapter, {"log": value}) == {"log": value}


def test_cli_refuses_unknown_and_injected_names_before_running(chapter, tmp_path, capsys):
    marker = tmp_path / "ran.txt"
    out = tmp_path / "o.ipynb"
    for name in ("y", "x=1;open('" + str(marker) + "','w');z", "log\nimport os"):
        code = main(["run", str(chapter), "-p", name, "1", "-p", "log", str(marker), "--out", str(out)])
        assert code == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and repr(name) in err and "Traceback" not in err
    assert "its parameters are: x, fail, log" in err or "identifier" in err
    assert not marker.exists() and not out.exists()
    grid = tmp_path / "grid.yml"
    grid.write_text("grid:\n  x: [1, 2]\n  sleep: [1]\n")
    assert main(["sweep", str(chapter), "--grid", str(grid), "--out", str(tmp_path / "s"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert str(grid) in err and "'sleep' is not a parameter" in err and "x, fail, log" in err
    assert not (tmp_path / "s" / "runs").exists()


def test_cli_errors_are_one_line_naming_the_file(chapter, tmp_path, capsys):
    grid = tmp_path / "bad.yml"
    grid.write_text("grid:\n  x: [1, 2\n")
    assert main(["sweep", str(chapter), "--grid", str(grid), "--out", str(tmp_path / "s"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(grid) in err and "malformed YAML" in err
    assert main(["run", str(tmp_path / "nope.md")]) == 2
    assert "nope.md does not exist" in capsys.readouterr().err
    scales = chapter.parent / "scales"
    scales.mkdir()
    (scales / "99_tiny.yml").write_text("smoke: {x: [1\n")
    assert main(["run", str(chapter), "--scale", "smoke"]) == 2
    err = capsys.readouterr().err
    assert "99_tiny.yml" in err and "malformed YAML" in err
    assert main(["run", str(chapter), "-p", "x", "[1,"]) == 2
    assert "parameter x: malformed YAML" in capsys.readouterr().err
    with pytest.raises(ValueError):
        main(["--debug", "run", str(chapter), "-p", "nope", "1"])


@pytest.mark.slow  # a subprocess starts a kernel
def test_run_is_quiet_and_prints_its_glued_values(chapter, tmp_path):
    out = tmp_path / "r" / "tiny.ipynb"
    res = _cli("run", chapter, "-p", "x", "1e-3", "-p", "log", "", "--out", out)
    assert res.returncode == 0, res.stderr
    assert "without encryption" not in res.stderr and "INFO" not in res.stderr
    assert "t_double" in res.stdout and "0.002" in res.stdout and f"wrote {out}" in res.stdout
    assert "x = 0.001" in out.read_text()
    bad = _cli("run", chapter, "-p", "fail", "true", "--out", tmp_path / "bad.ipynb")
    assert bad.returncode == 1 and "asked to fail at x=1" in bad.stderr and "Traceback" not in bad.stderr
    assert (tmp_path / "bad.failed.ipynb").is_file()


@pytest.mark.slow  # spawned workers start kernels
def test_sweep_terminal_is_quiet(chapter, tmp_path):
    grid = tmp_path / "grid.yml"
    grid.write_text("grid:\n  x: [1, 2]\npoints:\n  - {x: 3, fail: true}\n")
    res = _cli("sweep", chapter, "--grid", grid, "--out", tmp_path / "q", "--workers", "2")
    assert res.returncode == 1  # a failed row
    assert "without encryption" not in res.stderr and "INFO" not in res.stderr
    assert "asked to fail at x=3" in res.stderr and "3 runs in" in res.stdout
