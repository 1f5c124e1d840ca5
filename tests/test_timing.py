"""Power-law fits of recorded timings, reading recorded benchmarks and the build's chapter times."""
import json

import numpy as np
import pytest

from nckernels.experiments.timing import chapter_times, fit_power_law, load_timings


def test_fit_recovers_the_exponent_and_prefactor():
    n = np.array([1e3, 2e3, 4e3, 8e3])
    p, c = fit_power_law(n, 3e-9 * n**2.0)
    assert p == pytest.approx(2.0, abs=1e-12) and c == pytest.approx(3e-9, rel=1e-9)
    rng = np.random.default_rng(0)
    p_noisy, _ = fit_power_law(n, 1e-6 * n * np.exp(rng.normal(0, 0.05, 4)))
    assert abs(p_noisy - 1.0) < 0.15


@pytest.mark.parametrize("sizes,seconds", [([1, 1], [1, 2]), ([1, 2], [0, 1]), ([1, 2], [1]), ([[1, 2]], [[1, 2]])])
def test_fit_refuses_what_it_cannot_fit(sizes, seconds):
    with pytest.raises(ValueError):
        fit_power_law(sizes, seconds)


def test_load_timings_and_missing_cache(tmp_path):
    with pytest.raises(ValueError, match="run the benchmark"):
        load_timings(tmp_path / "none.json")
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"machine": {"threads": 2}, "rows": [{"step": "kernels", "size": 4, "seconds": 1.0}]}))
    rows, machine = load_timings(path)
    assert machine == {"threads": 2} and rows["size"].tolist() == [4]
    assert chapter_times(tmp_path / "no_cache").empty


def test_paper_times_adds_runs_per_set_and_counts_each_session_once(tmp_path):
    from nckernels.experiments.timing import paper_times, wall_time_floor

    shared = {"started": "2026-11-30T07:00:00", "seconds": 600.0}
    for name, runs, secs, sessions in [("a", [60.0, 40.0], 100.0, [shared]),
                                       ("b", [50.0], 50.0, [shared, {"started": "x", "seconds": 30.0}])]:
        (tmp_path / f"{name}.provenance.json").write_text(json.dumps(
            {"name": name, "n_runs": len(runs), "failed_runs": 0, "run_seconds": secs, "workers": 2, "threads_per_run": 1,
             "device": "cpu", "last_finished": "2026-11-30T08:00:00", "sessions": sessions,
             "runs": [{"run": f"{name}{i}", "seconds": s} for i, s in enumerate(runs)]}))
    sets, wall, n_sessions = paper_times(tmp_path)
    assert list(sets["set"]) == ["a", "b"] and sets["run_seconds"].sum() == 150.0
    assert list(sets["longest_run_seconds"]) == [60.0, 50.0]
    assert wall == 630.0 and n_sessions == 2 and list(sets["finished"]) == ["2026-11-30"] * 2
    # 150 s of runs: 2 workers need at least 75 s, 3 at least the longest run, 60 s
    assert wall_time_floor(sets, 1) == 150.0 and wall_time_floor(sets, 2) == 75.0 and wall_time_floor(sets, 3) == 60.0
    with pytest.raises(ValueError, match="workers"):
        wall_time_floor(sets, 0)
    empty, none, no_sessions = paper_times(tmp_path / "missing")
    assert empty.empty and none == 0.0 and no_sessions == 0 and wall_time_floor(empty, 2) == 0.0


def test_value_span_one_value_or_range():
    from nckernels.experiments.timing import value_span

    assert value_span([10.21, 10.21], ".1f") == "10.2"
    assert value_span([98.3, 580.84], ".0f") == "98 to 581"
    assert value_span([18, 17], "d") == "17 to 18"
    with pytest.raises(ValueError, match="values"):
        value_span([], "d")
