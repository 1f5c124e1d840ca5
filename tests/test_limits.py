"""Population limits and the notes' reference table (log10 NC1, trace ratio, mu = 2, s = 0.5)."""
import math

import pytest
import torch

import nckernels as nk
from nckernels.grids import kernel_nc1_grid, summarize_grid
from nckernels.limits import nc1_from_class_expectations, population_nc1_1d, population_nc1_large_d0

# kernel: (d0 = 1 population, d0 = 1 N = 1024 mean of 10, d0 -> inf, d0 = 128 N = 1024)
REFERENCE = {
    "data": (-1.204, -1.209, -1.204, -1.205),
    "NNGP erf": (-2.053, -2.066, -0.972, -0.977),
    "NTK erf": (-1.489, -1.496, -0.669, -0.674),
    "NNGP relu": (-0.903, -0.908, -0.936, -0.937),
    "NTK relu": (-0.903, -0.908, -0.638, -0.640),
}


def _kernel_fn(name):
    if name == "data":
        return lambda X, Z: X @ (X if Z is None else Z).T
    kind, act = name.split()
    return lambda X, Z: getattr(nk, kind.lower())(X, Z, activation=act)


@pytest.mark.parametrize("name", REFERENCE)
def test_population_limits_match_reference(name):
    pop1 = population_nc1_1d(_kernel_fn(name))
    kind = "data" if name == "data" else name.split()[0].lower()
    act = "erf" if name == "data" else name.split()[1]
    popinf = population_nc1_large_d0(kind, activation=act)
    assert math.log10(pop1.nc1) == pytest.approx(REFERENCE[name][0], abs=6e-4)
    assert math.log10(popinf.nc1) == pytest.approx(REFERENCE[name][2], abs=6e-4)


def test_finite_samples_approach_the_population_limits():
    """Large-N kernel NC1 at d0 = 1 and d0 = 512 against the two limits (a Monte Carlo check)."""
    gen = torch.Generator().manual_seed(0)
    for d0, limit in [(1, lambda k: population_nc1_1d(_kernel_fn(k))), (512, None)]:
        data = nk.gaussian_classes([1500, 1500], d0, generator=gen)
        for name in ("NNGP erf", "NTK erf"):
            K = _kernel_fn(name)(data.X, None)
            est = math.log10(nk.nc1_from_kernel(K, data.labels).nc1)
            target = limit(name).nc1 if limit else population_nc1_large_d0(name.split()[0].lower()).nc1
            assert est == pytest.approx(math.log10(target), abs=0.04 if d0 == 1 else 0.01)


def test_grid_means_match_reference_within_noise():
    frame = kernel_nc1_grid([[512, 512]], [1, 128], 10, seed=123)
    assert (frame["status"] == "ok").all()
    stats = summarize_grid(frame)
    for name, ref in REFERENCE.items():
        for d0, value in ((1, ref[1]), (128, ref[3])):
            mean, std = stats.loc[(name, 1024, d0), ["mean", "std"]]
            # two independent means of 10 draws: 4 standard errors of their difference, plus rounding
            assert mean == pytest.approx(value, abs=4 * math.sqrt(2) * std / math.sqrt(10) + 2e-3), (name, d0)


def test_ntk_never_below_nngp_and_erf_below_relu_in_population():
    for kind in ("nngp", "ntk"):
        assert population_nc1_large_d0(kind, activation="erf").nc1 < population_nc1_large_d0(kind, activation="relu").nc1
    for act in ("erf", "relu"):
        assert population_nc1_large_d0("ntk", activation=act).nc1 >= population_nc1_large_d0("nngp", activation=act).nc1


def test_bad_input():
    with pytest.raises(ValueError, match="kind"):
        population_nc1_large_d0("gp")
    with pytest.raises(ValueError, match="std"):
        population_nc1_1d(_kernel_fn("data"), std=0)
    with pytest.raises(ValueError, match="cross"):
        nc1_from_class_expectations([1.0, 1.0], [[1.0]])


def test_population_nc1_is_a_frozen_iterable_result():
    r = population_nc1_large_d0("nngp")
    tw, tb, nc1 = r
    assert (r.trace_within, r.trace_between, r.nc1) == (tw, tb, nc1) and r[2] == nc1 == tw / tb
    with pytest.raises(Exception):
        r.nc1 = 0.0
