"""Plot and table helpers of chapters 02, 03, 04 and 07: book colours, legend order, dashes for missing values."""
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402

from nckernels import plotting, style  # noqa: E402

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def _rows():
    rows = []
    for kernel in ("NNGP erf", "NTK erf", "data", "NTK erf (as coded)"):
        for d0 in (1, 2, 8):
            for draw in range(2):
                rows.append({"kernel": kernel, "d0": d0, "draw": draw, "status": "ok", "log10_nc1": d0 + draw * 0.1})
    rows.append({"kernel": "NNGP erf", "d0": 16, "draw": 0, "status": "failed", "log10_nc1": math.nan})
    return pd.DataFrame(rows)


def test_kernel_lines_use_book_colours_and_order():
    fig, ax = plt.subplots()
    order = ["data", "NNGP erf", "NTK erf", "NTK erf (as coded)"]
    plotting.plot_kernel_lines(ax, _rows(), order=order, limits={"NNGP erf": {"d0=1": 0.5, "d0=inf": 2.0}})
    lines = {l.get_label(): l for l in ax.get_lines() if not l.get_label().startswith("_")}
    for name in order:
        assert matplotlib.colors.same_color(lines[name].get_color(), style.color_of(name))
        if name != "NNGP erf":
            assert list(lines[name].get_xdata()) == [1, 2, 8]
    # a failed row leaves no point: at d0 = 16, where NNGP erf has only a failed row, its line breaks (NaN)
    x, y = lines["NNGP erf"].get_xdata(), lines["NNGP erf"].get_ydata()
    assert list(x) == [1, 2, 8, 16] and np.isnan(y[-1]) and np.isfinite(y[:-1]).all()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == order
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "$d_0$"
    plt.close(fig)


def test_kernel_lines_break_where_every_attempt_failed_not_where_skipped():
    rows = _rows()
    extra = pd.DataFrame([{"kernel": "NTK erf", "d0": 4, "draw": d, "status": "failed", "log10_nc1": math.nan}
                          for d in range(2)] + [{"kernel": "data", "d0": 4, "draw": 0, "status": "skipped",
                                                 "log10_nc1": math.nan}])
    fig, ax = plt.subplots()
    plotting.plot_kernel_lines(ax, pd.concat([rows, extra]), order=["data", "NTK erf"])
    lines = {l.get_label(): l for l in ax.get_lines() if not l.get_label().startswith("_")}
    assert list(lines["NTK erf"].get_xdata()) == [1, 2, 4, 8] and np.isnan(lines["NTK erf"].get_ydata()[2])
    assert list(lines["data"].get_xdata()) == [1, 2, 8]  # skipped: not an attempt, no gap
    plt.close(fig)


def test_kernel_lines_style_by_weighting():
    frame = pd.concat([_rows().assign(weighting=w) for w in plotting.WEIGHTING_STYLES])
    fig, ax = plt.subplots()
    plotting.plot_kernel_lines(ax, frame, order=["NNGP erf"], style="weighting", logx=None)
    styles = [l.get_linestyle() for l in ax.get_lines()]
    assert styles == ["-", "--", ":"]
    plt.close(fig)


def test_solver_failures_marks_failed_cells():
    frame = pd.DataFrame({"d0": [2, 2, 16, 16], "width": [500, 1, 500, 1], "status": ["ok", "failed", "ok", "ok"],
                          "nc1": [0.1, np.nan, 0.2, 0.05]})
    fig, ax = plt.subplots()
    plotting.plot_solver_failures(ax, frame)
    crosses = [l for l in ax.get_lines() if l.get_marker() == "x"]
    assert sum(len(l.get_xdata()) for l in crosses) == 1
    plt.close(fig)


def test_width_convergence_colours():
    curve = pd.DataFrame({"NNGP erf": [1.0, 0.5], "NTK relu": [2.0, 1.0]}, index=[16, 64])
    fig, ax = plt.subplots()
    plotting.plot_width_convergence(ax, curve)
    lines = {l.get_label(): l for l in ax.get_lines()}
    assert lines["NTK relu"].get_linestyle() == "--"
    assert matplotlib.colors.same_color(lines["NNGP erf"].get_color(), style.color_of("NNGP"))
    plt.close(fig)


def test_format_table_dashes_and_notes():
    frame = pd.DataFrame({"a": [1.23456, math.nan], "b": [2.0, 3.0]})
    html = plotting.format_table(frame, decimals=2, note="not defined").to_html()
    assert "1.23" in html and "1.235" not in html and "nan" not in html.lower() and "\u2013 not defined" in html
    with pytest.raises(ValueError, match="note"):
        plotting.format_table(frame)
    with pytest.raises(ValueError, match="decimals"):
        plotting.format_table(frame.fillna(0), decimals=-1)
    long = pd.DataFrame({"x": range(30)})
    assert "first 5 of 30 rows" in plotting.format_table(long, max_rows=5).to_html()


def test_errata_table_links_each_error():
    errata = yaml.safe_load((ROOT / "book" / "data" / "reference_errata.yml").read_text())
    table = plotting.errata_table(errata)
    assert list(table.index) == [e["id"] for e in errata["errors"]]
    assert errata["commit"] in table.loc[1, "lines"] and "#L354" in table.loc[1, "lines"]
    assert "#L219-L227" in table.loc[2, "lines"]
    with pytest.raises(ValueError, match="errata"):
        plotting.errata_table({"errors": []})


def test_format_table_per_column_format():
    html = plotting.format_table(pd.DataFrame({"a": [1.5], "err": [3.2e-16]}), formats={"err": "{:.1e}"}).to_html()
    assert "3.2\u00a0\u00d7\u00a010\u207b\u00b9\u2076" in html and "1.500" in html and "e-16" not in html


def test_format_table_small_values_are_not_printed_as_zero():
    frame = pd.DataFrame({"nc1": [0.25, 4.2e-6, 0.0, -3e-9], "n": [1, 2, 3, 4], "name": list("abcd")})
    html = plotting.format_table(frame, decimals=5).to_html()
    assert "4.20\u00a0×\u00a010⁻⁶" in html and "-3.00\u00a0×\u00a010⁻⁹" in html and "0.25000" in html and "0.00000" in html
    assert ">2<" in html and ">c<" in html  # integers and strings unchanged
    # numbers a chapter wrote into strings are typeset too; other text is not
    cells = pd.DataFrame({"noise": ["1e-06", "kappa=6.4e+06: failed", "f_tol 5e-4", "3e+00"]})
    html = plotting.format_table(cells).to_html()
    assert ">10⁻⁶<" in html and "kappa=6.4\u00a0×\u00a010⁶: failed" in html and "f_tol 5e-4" in html and ">3<" in html
    # row and column labels and the caption too (a float label written with :g)
    labelled = pd.DataFrame({"1e-06": [1.0]}, index=pd.Index([1e-4], name="noise"))
    html = plotting.format_table(labelled, caption="tol 1e-10").to_html()
    assert ">10⁻⁶<" in html and ">0.0001<" in html and "tol 10⁻¹⁰" in html and "1e-" not in html


def test_readable_cause_typesets_every_solver_cause():
    # every cause the EoS solver writes, with the ASCII names the pages must not show
    from nckernels.models.adaptive import solver as eos_solver
    from nckernels.plotting import CAUSE_SYMBOLS, readable_cause

    text = (f"kappa=6.4e+06: the precision (d0/sigma_w2) I - G/kappa is not positive definite; Q1 + noise_var I is not "
            f"positive definite; max_iter=200 reached (the step in 1/kappa cannot halve below "
            f"{eos_solver.MIN_CONTINUATION_STEP:g} of 1/width); {eos_solver.FLOOR_CAUSE}: the root is bracketed in Sigma")
    out = readable_cause(text)
    for plain, typeset in CAUSE_SYMBOLS:
        assert plain not in out and typeset in out, plain
    assert "kappa" not in out and "sigma" not in out and "Sigma" not in out and "noise_var" not in out
    assert out.startswith("κ = 6.4e+06: the precision (d₀/σ_w²) I − G/κ is not positive definite")
    assert readable_cause("no damped step reduces the residual") == "no damped step reduces the residual"
    with pytest.raises(ValueError, match="cause must be a string"):
        readable_cause(None)
