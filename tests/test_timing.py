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
