"""Benchmark: the nckernels EoS solver against a faithful port of the reference code's solve, in one run.

Problem (the reference's configuration): two balanced Gaussian classes, N = 1024, d0 = 128, width 500,
noise_var 1e-6, sigma_a^2 = 1/128, sigma_w = 1, the reference label term (``label_term="reference"``).

* per-evaluation profile: one evaluation of the map, written out (:func:`evaluate_direct`, the code
  before this change) and fast (:func:`evaluate`), timed interleaved, with torch.profiler's top operators;
* solves, interleaved: ours (``schedule="adaptive"``) at tol 1e-6 (before and after the port, the
  median reported) and at tol 1e-10; the previous solver (``schedule="reference"`` with the written-out
  evaluation, i.e. the code before this change) at tol 1e-6; and the reference port
  (``reference_eos_port.py``: float32, newton_krylov f_tol 5e-4, autograd, explicit inverses);
  distances ||Sigma - Sigma_ours(1e-10)||_F / ||Sigma_ours(1e-10)||_F;
* cost against N (256 ... 4096, d0 = 128, one solve each at tol 1e-6) and the fitted exponent;
* warm start: the draws of one cell (N = 1024, d0 = 1) solved cold and from the previous draw's solution;
* Newton at small d0: the cells of chapter 6's imbalanced grid where the Anderson jump fails (N = 2048, d0 = 1,
  split 1024/1024, draws 0 and 1 by default), each solved cold with the Newton step (``newton_dims=3``, the
  default) and with the continuation alone (``newton_dims=0``, the solver before it), interleaved;
* warm routes at small d0: from the previous draw's Sigma (as the grids start each draw), Newton with Broyden's
  update against the Anderson jump, on chapter 6's N = 2048 grid (split 768/1280, d0 = 1 and 2, draws 1-3);
* warm solves at the rounding floor (d0 = 1, where the map's residual cannot reach tol): the solver from the previous
  draw's Sigma against the cold solve of the same draw, interleaved, on chapter 13's four families (N = 256, draws
  1-4) and chapter 6's N = 2048 draw where Broyden met the floor (split 256/1792, draw 3);
* the route to (Q1 + sigma^2 I)^{-1} (``EoSWorkspace.inverse``): one evaluation (N = 1024 ... 4096, d0 = 128) with
  two triangular solves against I (the baseline) and with potri, interleaved, with 1 and 2 torch threads.

Writes benchmarks/out/eos_benchmark.json, eos_scaling.json, eos_warm_start.json, eos_newton.json,
eos_warm_routes.json, eos_floor_routes.json and eos_inverse.json (with machine facts).

    python benchmarks/bench_eos.py --threads 2            # the full run
    python benchmarks/bench_eos.py --quick                # smoke run (N = 128, d0 = 16; < 30 s)
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

import nckernels as nk
from nckernels.models.adaptive import map as eos_map
from nckernels.models.adaptive import solver as eos_solver
from nckernels.models.adaptive.map import EoSWorkspace, evaluate, evaluate_direct, make_problem
from nckernels.models.adaptive.solver import solve_adaptive_kernel

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference_eos_port import ReferenceEoSPort  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"


def machine():
    return {"threads": torch.get_num_threads(), "cpus": os.cpu_count(), "device": "cpu",
            "date": datetime.date.today().isoformat(),
            "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
            "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "load_average_1_5_15": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version(),
            "platform": platform.platform(), "processor": platform.processor()}


def relative(a, b):
    return float(torch.linalg.matrix_norm(a.to(torch.float64) - b) / torch.linalg.matrix_norm(b))


def data_of(N, d0, seed=0):
    return nk.gaussian_classes([N // 2, N - N // 2], d0, generator=torch.Generator().manual_seed(seed))


def profile_evaluation(problem, Sigma, kappa, reps):
    """Interleaved timings of one evaluation, written out vs fast, and the top operators of each."""
    ws = EoSWorkspace(problem)
    funcs = {"before (evaluate_direct)": lambda: evaluate_direct(problem, Sigma, kappa),
             "after (evaluate)": lambda: evaluate(problem, Sigma, kappa, workspace=ws)}
    times = {k: [] for k in funcs}
    for f in funcs.values():
        f()
    for _ in range(reps):
        for k, f in funcs.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    out = {}
    from torch.profiler import ProfilerActivity, profile

    for k, f in funcs.items():
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(3):
                f()
        ops = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:10]
        out[k] = {"median_s": statistics.median(times[k]), "min_s": min(times[k]), "times_s": times[k],
                  "top_ops_ms_per_evaluation": {e.key: e.self_cpu_time_total / 1e3 / 3 for e in ops}}
    out["ratio_median"] = out["before (evaluate_direct)"]["median_s"] / out["after (evaluate)"]["median_s"]
    return out


def solve_ours(data, *, tol, schedule="adaptive", direct=False, **kw):
    """One solve; ``direct=True`` swaps in the written-out evaluation (the solver before this change)."""
    saved = eos_solver.evaluate
    if direct:
        eos_solver.evaluate = lambda problem, Sigma, kappa, workspace=None: evaluate_direct(problem, Sigma, kappa)
    try:
        t0 = time.perf_counter()
        r = solve_adaptive_kernel(data.X, data.y, width=kw.pop("width", 500.0), noise_var=kw.pop("noise_var", 1e-6),
                                  label_term="reference", tol=tol, schedule=schedule, strict=False, **kw)
        seconds = time.perf_counter() - t0
    finally:
        eos_solver.evaluate = saved
    return r, {"seconds": seconds, "evaluations": int(r.evaluations), "converged": bool(r.converged),
               "residual": float(r.residual), "steps": len(r.history), "schedule": schedule, "tol": tol}


def compare(N, d0, *, width, noise_var, quick):
    data = data_of(N, d0)
    problem = make_problem(data.X, data.y, noise_var=noise_var, label_term="reference")
    Sigma0 = torch.eye(d0, dtype=torch.float64) / d0
    print(f"per-evaluation profile at N={N}, d0={d0} (NNGP Sigma, kappa = width)", flush=True)
    prof = profile_evaluation(problem, Sigma0, width, reps=3 if quick else 7)
    for k in ("before (evaluate_direct)", "after (evaluate)"):
        print(f"  {k:26s} median {prof[k]['median_s'] * 1e3:8.1f} ms  min {prof[k]['min_s'] * 1e3:8.1f} ms")
        print("     " + ", ".join(f"{op} {ms:.1f}" for op, ms in list(prof[k]["top_ops_ms_per_evaluation"].items())[:6]))
    print(f"  ratio {prof['ratio_median']:.2f}x", flush=True)

    runs = {}
    sol_tight, runs["ours tol 1e-10"] = solve_ours(data, tol=1e-10, width=width, noise_var=noise_var)
    sol_a, runs["ours tol 1e-6 (a)"] = solve_ours(data, tol=1e-6, width=width, noise_var=noise_var)
    sol_prev, runs["previous solver tol 1e-6"] = solve_ours(data, tol=1e-6, schedule="reference", direct=True,
                                                            width=width, noise_var=noise_var)
    sol_rs, runs["ours reference schedule tol 1e-6"] = solve_ours(data, tol=1e-6, schedule="reference",
                                                                  width=width, noise_var=noise_var)
    port = ReferenceEoSPort(data.X, data.y, sig2=noise_var)
    t0 = time.perf_counter()
    S_port, port_status, port_rows = port.solve()
    runs["reference port"] = {"seconds": time.perf_counter() - t0, "evaluations": port.evaluations,
                              "status": port_status, "steps": port_rows}
    sol_b, runs["ours tol 1e-6 (b)"] = solve_ours(data, tol=1e-6, width=width, noise_var=noise_var)
    for name, S in [("ours tol 1e-10", sol_tight.Sigma), ("ours tol 1e-6 (a)", sol_a.Sigma), ("ours tol 1e-6 (b)", sol_b.Sigma),
                    ("previous solver tol 1e-6", sol_prev.Sigma), ("ours reference schedule tol 1e-6", sol_rs.Sigma),
                    ("reference port", S_port)]:
        runs[name]["sigma_rel_dist_to_ours_1e-10"] = relative(S, sol_tight.Sigma)
    ours_s = statistics.median([runs["ours tol 1e-6 (a)"]["seconds"], runs["ours tol 1e-6 (b)"]["seconds"]])
    ratios = {"port / ours(1e-6)": runs["reference port"]["seconds"] / ours_s,
              "port / ours(1e-10)": runs["reference port"]["seconds"] / runs["ours tol 1e-10"]["seconds"],
              "previous / ours(1e-6)": runs["previous solver tol 1e-6"]["seconds"] / ours_s}
    S_port = 0.5 * (S_port + S_port.T)
    port_res = eos_map.eos_residual(data.X, data.y, S_port, kappa=width, noise_var=noise_var, label_term="reference")
    runs["reference port"]["relative_fixed_point_residual_float64"] = port_res
    for name, r in runs.items():
        print(f"  {name:34s} {r['seconds']:8.2f} s {r['evaluations']:5d} evaluations  "
              f"dist {r['sigma_rel_dist_to_ours_1e-10']:.2e}  {r.get('status', 'converged' if r.get('converged') else 'FAILED')}")
    for k, v in ratios.items():
        print(f"  ratio {k}: {v:.1f}x")
    return {"problem": {"N": N, "d0": d0, "width": width, "noise_var": noise_var, "sigma_a2": 1 / 128, "sigma_w": 1.0,
                        "label_term": "reference", "seed": 0},
            "evaluation_profile": prof, "solves": runs, "ours_1e-6_median_s": ours_s, "ratios": ratios}


def scaling(Ns, d0, *, width, noise_var):
    rows = []
    print(f"cost against N (d0={d0}, tol 1e-6, adaptive schedule, one solve each)", flush=True)
    for N in Ns:
        data = data_of(N, d0)
        r, info = solve_ours(data, tol=1e-6, width=width, noise_var=noise_var)
        info.update(step="EoS solve (adaptive, tol 1e-6)", size_name="N", size=N, N=N, d0=d0, expected_order=3,
                    seconds_per_evaluation=info["seconds"] / max(info["evaluations"], 1))
        rows.append(info)
        print(f"  N={N:5d}: {info['seconds']:8.2f} s, {info['evaluations']:3d} evaluations, "
              f"{info['seconds_per_evaluation'] * 1e3:8.1f} ms per evaluation, converged={info['converged']}", flush=True)
    logN = np.log([r["N"] for r in rows])
    fit = {k: float(np.polyfit(logN, np.log([r[k] for r in rows]), 1)[0]) for k in ("seconds", "seconds_per_evaluation")}
    print(f"  fitted exponent: seconds ~ N^{fit['seconds']:.2f}, per evaluation ~ N^{fit['seconds_per_evaluation']:.2f}")
    return {"rows": rows, "fitted_exponent": fit}


def warm_start(N, d0, draws, *, width, noise_var):
    """The draws of one grid cell solved cold (each from the NNGP) and warm (each from the previous draw's
    solution, as the grids do), interleaved draw by draw: evaluations, seconds, and the largest relative
    distance between the two answers (default label term, tol 1e-10)."""
    cold_t, warm_t, cold_e, warm_e, dist, cold_ok, warm_ok = [], [], [], [], [], [], []
    previous = None
    for draw in range(draws):
        data = data_of(N, d0, seed=100 + draw)
        t0 = time.perf_counter()
        cold = solve_adaptive_kernel(data.X, data.y, width=width, noise_var=noise_var, strict=False)
        t1 = time.perf_counter()
        warm = solve_adaptive_kernel(data.X, data.y, width=width, noise_var=noise_var, init=previous, strict=False)
        t2 = time.perf_counter()
        previous = warm.Sigma if warm.converged else None  # as the grids: only a converged solution is passed on
        cold_t.append(t1 - t0), warm_t.append(t2 - t1)
        cold_e.append(cold.evaluations), warm_e.append(warm.evaluations)
        cold_ok.append(cold.converged), warm_ok.append(warm.converged)
        if cold.converged and warm.converged:
            dist.append(relative(warm.Sigma, cold.Sigma))
        print(f"warm start N={N} d0={d0} draw {draw}: cold {cold.evaluations} evaluations {t1 - t0:.2f} s "
              f"({'converged' if cold.converged else 'failed'}), warm {warm.evaluations} evaluations {t2 - t1:.2f} s "
              f"({'converged' if warm.converged else 'failed'})"
              + (f", distance {dist[-1]:.1e}" if cold.converged and warm.converged else ""), flush=True)
    out = {"N": N, "d0": d0, "draws": draws, "cold_seconds": cold_t, "warm_seconds": warm_t,
           "cold_evaluations": cold_e, "warm_evaluations": warm_e, "cold_converged": cold_ok, "warm_converged": warm_ok,
           "max_relative_distance": max(dist) if dist else None,
           "ratio_seconds": sum(cold_t) / sum(warm_t), "ratio_evaluations": sum(cold_e) / sum(warm_e)}
    print(f"warm start over {draws} draws: {out['ratio_seconds']:.2f}x faster ({out['ratio_evaluations']:.2f}x fewer "
          f"evaluations); converged cold {sum(cold_ok)}, warm {sum(warm_ok)}; max distance {out['max_relative_distance']}",
          flush=True)
    return out


def newton_vs_continuation(split, d0, draws, *, width, noise_var):
    """The cells (split, d0, draw) of chapter 6's grid data solved cold (from the NNGP, the default label term,
    tol 1e-10) with the Newton step (the default) and without it (``newton_dims=0``: the continuation after the
    failed jump), interleaved draw by draw: seconds, evaluations, the method of the first step, and the
    relative distance between the two answers."""
    from nckernels.experiments.cells import Cell
    rows = []
    for draw in draws:
        data = Cell(tuple(split), d0, draw).data()
        t0 = time.perf_counter()
        newton = solve_adaptive_kernel(data.X, data.y, width=width, noise_var=noise_var, strict=False)
        t1 = time.perf_counter()
        cont = solve_adaptive_kernel(data.X, data.y, width=width, noise_var=noise_var, strict=False, newton_dims=0)
        t2 = time.perf_counter()
        row = {"split": "/".join(map(str, split)), "N": sum(split), "d0": d0, "draw": draw,
               "newton_seconds": t1 - t0, "newton_evaluations": int(newton.evaluations),
               "newton_converged": bool(newton.converged), "newton_method": str(newton.history["method"].iloc[0]),
               "continuation_seconds": t2 - t1, "continuation_evaluations": int(cont.evaluations),
               "continuation_converged": bool(cont.converged),
               "relative_distance": relative(newton.Sigma, cont.Sigma) if newton.converged and cont.converged else None}
        row["ratio_seconds"] = row["continuation_seconds"] / row["newton_seconds"]
        rows.append(row)
        print(f"Newton vs continuation {row['split']} d0={d0} draw {draw}: Newton {row['newton_evaluations']} evaluations "
              f"{row['newton_seconds']:.1f} s (first step: {row['newton_method']}), continuation "
              f"{row['continuation_evaluations']} evaluations {row['continuation_seconds']:.1f} s, "
              f"ratio {row['ratio_seconds']:.1f}x, distance {row['relative_distance']}", flush=True)
    total = sum(r["continuation_seconds"] for r in rows) / sum(r["newton_seconds"] for r in rows)
    print(f"Newton vs continuation over {len(rows)} solves: {total:.1f}x faster", flush=True)
    return {"rows": rows, "ratio_seconds": total}


def warm_routes(split, d0s, draws, *, width, noise_var):
    """The first route of a warm solve at small d0, two ways from the same start (the previous draw's Sigma, as
    the grids do): Newton with Broyden's update (``newton_step(broyden=True)``, the default first route) against
    the Anderson jump (the first route before it), interleaved, on chapter 6's grid data (split, d0, draws 1...;
    draw 0 is solved cold for the first start). Default label term, tol 1e-10, at most 30 iterations each (the
    solver's ``newton_iter`` and ``jump_iter``): evaluations, seconds, whether each converged, and the relative
    distance between their answers."""
    from nckernels.experiments.cells import Cell
    from nckernels.models.adaptive import make_problem
    from nckernels.models.adaptive.solver import _jump, newton_step

    rows = []
    for d0 in d0s:
        first = Cell(tuple(split), d0, 0).data()
        start = solve_adaptive_kernel(first.X, first.y, width=width, noise_var=noise_var).Sigma
        for draw in range(1, draws + 1):
            data = Cell(tuple(split), d0, draw).data()
            problem = make_problem(data.X, data.y, noise_var=noise_var)
            t0 = time.perf_counter()
            ev_b, _, e_b, cause_b = newton_step(problem, start, width, tol=1e-10, max_iter=30, broyden=True)
            t1 = time.perf_counter()
            ev_j, _, e_j, cause_j = _jump(problem, start, width, tol=1e-10, max_iter=30, memory=6, damping=1.0,
                                          workspace=None)
            t2 = time.perf_counter()
            row = {"split": "/".join(map(str, split)), "N": sum(split), "d0": d0, "draw": draw,
                   "broyden_seconds": t1 - t0, "broyden_evaluations": int(e_b), "broyden_converged": not cause_b,
                   "jump_seconds": t2 - t1, "jump_evaluations": int(e_j), "jump_converged": not cause_j,
                   "relative_distance": relative(ev_b.Sigma, ev_j.Sigma) if not (cause_b or cause_j) else None}
            rows.append(row)
            print(f"warm routes {row['split']} d0={d0} draw {draw}: Broyden {e_b} evaluations {t1 - t0:.1f} s "
                  f"({'converged' if not cause_b else cause_b}), jump {e_j} evaluations {t2 - t1:.1f} s "
                  f"({'converged' if not cause_j else cause_j}), distance {row['relative_distance']}", flush=True)
            if not cause_b:
                start = ev_b.Sigma
            else:
                start = solve_adaptive_kernel(data.X, data.y, width=width, noise_var=noise_var, init=start).Sigma
    both = [r for r in rows if r["broyden_converged"] and r["jump_converged"]]
    ratio = (sum(r["jump_seconds"] for r in both) / sum(r["broyden_seconds"] for r in both)) if both else None
    print(f"warm routes: Broyden converged {sum(r['broyden_converged'] for r in rows)} of {len(rows)}, jump "
          f"{sum(r['jump_converged'] for r in rows)}; where both did, the jump took {ratio}x the time", flush=True)
    return {"rows": rows, "ratio_seconds": ratio}


def floor_routes(families, draws, *, width, noise_var, large=True):
    """Warm solves where the map's rounding floor lies above tol (d0 = 1), each against the cold solve of the same
    draw, interleaved: the solver (default settings, tol 1e-10) from the previous draw's Sigma (``init``: Broyden, its
    stop at the floor and the bracket from the warm start) and from the NNGP. Chapter 13's families at d0 = 1 (their
    paper class sizes, draws 1 ... ``draws``, each from the previous draw's cold answer) and, with ``large``, chapter
    6's N = 2048 draw where Broyden met the floor (split 256/1792, draw 3, from draw 2's answer along the grid's warm
    chain). Per row: evaluations and seconds of both, the route that answered, ``at_floor`` and the relative distance
    of the two answers."""
    from nckernels.experiments.beyond import HardCell
    from nckernels.experiments.cells import Cell

    def pair(case, draw, data, start):
        kw = dict(width=width, noise_var=noise_var)
        t0 = time.perf_counter()
        warm = solve_adaptive_kernel(data.X, data.y, init=start, **kw)
        t1 = time.perf_counter()
        cold = solve_adaptive_kernel(data.X, data.y, **kw)
        t2 = time.perf_counter()
        row = {"case": case, "N": int(data.X.shape[0]), "draw": draw,
               "warm_evaluations": int(warm.evaluations), "warm_seconds": t1 - t0,
               "warm_route": str(warm.history.method.iloc[0]), "warm_at_floor": bool(warm.at_floor),
               "cold_evaluations": int(cold.evaluations), "cold_seconds": t2 - t1,
               "cold_route": str(cold.history.method.iloc[0]), "cold_at_floor": bool(cold.at_floor),
               "relative_distance": relative(warm.Sigma, cold.Sigma)}
        print(f"floor routes {case} draw {draw}: warm {row['warm_evaluations']} evaluations {row['warm_seconds']:.2f} s "
              f"({row['warm_route']}), cold {row['cold_evaluations']} evaluations {row['cold_seconds']:.2f} s "
              f"({row['cold_route']}), distance {row['relative_distance']:.2g}", flush=True)
        return row, cold

    rows = []
    for family, split in families.items():
        cells = [HardCell(tuple(split), 1, r, seed=0, family=family).data() for r in range(draws + 1)]  # chapter 13's stds
        start = solve_adaptive_kernel(cells[0].X, cells[0].y, width=width, noise_var=noise_var).Sigma
        for draw in range(1, draws + 1):
            row, cold = pair(f"13 {family}", draw, cells[draw], start)
            rows.append(row)
            start = cold.Sigma
    if large:
        start = None
        for draw in range(3):  # the grid's warm chain up to draw 2
            data = Cell((256, 1792), 1, draw).data()
            start = solve_adaptive_kernel(data.X, data.y, width=width, noise_var=noise_var, init=start).Sigma
        rows.append(pair("06 256/1792", 3, Cell((256, 1792), 1, 3).data(), start)[0])
    total = {k: sum(r[k] for r in rows) for k in ("warm_evaluations", "cold_evaluations", "warm_seconds", "cold_seconds")}
    print(f"floor routes: warm {total['warm_evaluations']} evaluations {total['warm_seconds']:.1f} s, cold "
          f"{total['cold_evaluations']} evaluations {total['cold_seconds']:.1f} s", flush=True)
    return {"rows": rows, "totals": total, "ratio_seconds": total["cold_seconds"] / total["warm_seconds"]}


def inverse_routes(Ns, d0, threads_list, *, noise_var, reps):
    """One evaluation with each route to (Q1 + sigma^2 I)^{-1}, interleaved, per N and torch thread count; the ratio
    of medians triangular_solves / cholesky_inverse (> 1: potri faster) and the relative gap of the new Sigmas."""
    saved = torch.get_num_threads()
    rows = []
    try:
        for threads in threads_list:
            torch.set_num_threads(threads)
            for N in Ns:
                data = data_of(N, d0)
                problem = make_problem(data.X, data.y, noise_var=noise_var, sigma_a2=1 / 128)
                Sigma = torch.eye(d0, dtype=torch.float64) / d0
                routes = {r: EoSWorkspace(problem, inverse=r) for r in ("triangular_solves", "cholesky_inverse")}
                times = {r: [] for r in routes}
                kappa = 1e5  # the first annealing value: the map is defined at the NNGP's Sigma (the cost does not depend on kappa)
                ev = {r: evaluate(problem, Sigma, kappa, workspace=w) for r, w in routes.items()}  # warm-up
                for _ in range(reps):
                    for r, w in routes.items():
                        t0 = time.perf_counter()
                        evaluate(problem, Sigma, kappa, workspace=w)
                        times[r].append(time.perf_counter() - t0)
                med = {r: statistics.median(t) for r, t in times.items()}
                row = {"N": N, "d0": d0, "threads": threads, "reps": reps,
                       "triangular_solves_s": med["triangular_solves"], "cholesky_inverse_s": med["cholesky_inverse"],
                       "ratio": med["triangular_solves"] / med["cholesky_inverse"],
                       "default": EoSWorkspace.default_inverse(data.X.device),
                       "new_sigma_gap": relative(ev["cholesky_inverse"].new_Sigma, ev["triangular_solves"].new_Sigma)}
                rows.append(row)
                print(f"inverse route, {threads} thread(s), N = {N}: solves {row['triangular_solves_s']:.3f} s, potri "
                      f"{row['cholesky_inverse_s']:.3f} s per evaluation, ratio {row['ratio']:.2f} (default "
                      f"{row['default']})", flush=True)
    finally:
        torch.set_num_threads(saved)
    return {"rows": rows, "potri_max_threads": eos_map.POTRI_MAX_THREADS}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="N = 128, d0 = 16, scaling N = 64 ... 256 (smoke run)")
    p.add_argument("--N", type=int, default=1024)
    p.add_argument("--d0", type=int, default=128)
    p.add_argument("--width", type=float, default=500)
    p.add_argument("--noise-var", type=float, default=1e-6)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--scaling-Ns", type=int, nargs="+", default=[256, 512, 1024, 2048, 4096])
    p.add_argument("--skip-compare", action="store_true")
    p.add_argument("--skip-scaling", action="store_true")
    p.add_argument("--skip-warm", action="store_true", help="skip the cold-vs-warm-start comparison over draws")
    p.add_argument("--warm-N", type=int, default=1024, help="N of the warm-start comparison (d0 = 1, its hard case)")
    p.add_argument("--warm-draws", type=int, default=5)
    p.add_argument("--skip-newton", action="store_true", help="skip the Newton-vs-continuation comparison")
    p.add_argument("--newton-split", type=int, nargs="+", default=[1024, 1024],
                   help="class sizes of the Newton comparison (chapter 6's imbalanced grid, d0 = 1)")
    p.add_argument("--newton-draws", type=int, nargs="+", default=[0, 1])
    p.add_argument("--skip-warm-routes", action="store_true", help="skip Broyden against the jump from a warm start")
    p.add_argument("--warm-routes-split", type=int, nargs="+", default=[768, 1280],
                   help="class sizes of the warm-route cell (chapter 6's N = 2048 grid)")
    p.add_argument("--warm-routes-draws", type=int, default=3, help="warm solves per d0 (draws 1 ... this)")
    p.add_argument("--skip-floor-routes", action="store_true", help="skip warm against cold solves at the floor")
    p.add_argument("--floor-routes-draws", type=int, default=4, help="chapter 13 draws per family (1 ... this)")
    p.add_argument("--skip-inverse", action="store_true", help="skip the comparison of the two inverse routes")
    p.add_argument("--inverse-Ns", type=int, nargs="+", default=[1024, 2048, 4096])
    p.add_argument("--inverse-threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--out", type=Path, default=OUT, help="folder of the JSON records")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    N, d0 = (128, 16) if args.quick else (args.N, args.d0)
    Ns = [64, 128, 256] if args.quick else args.scaling_Ns
    d0_scaling = 16 if args.quick else 128
    args.out.mkdir(parents=True, exist_ok=True)
    suffix = "_quick" if args.quick else ""
    print(f"EoS benchmark, torch threads {torch.get_num_threads()}, {os.cpu_count()} CPUs", flush=True)
    if not args.skip_compare:
        rec = {"machine": dict(machine(), quick=args.quick), **compare(N, d0, width=args.width, noise_var=args.noise_var, quick=args.quick)}
        rec["machine_after"] = machine()
        (args.out / f"eos_benchmark{suffix}.json").write_text(json.dumps(rec, indent=1))
    if not args.skip_warm:
        rec = {"machine": dict(machine(), quick=args.quick), "width": args.width, "noise_var": args.noise_var,
               **warm_start(128 if args.quick else args.warm_N, 1, 3 if args.quick else args.warm_draws,
                            width=args.width, noise_var=args.noise_var)}
        (args.out / f"eos_warm_start{suffix}.json").write_text(json.dumps(rec, indent=1))
    if not args.skip_newton:
        split, draws = ([64, 64], [0]) if args.quick else (args.newton_split, args.newton_draws)
        rec = {"machine": dict(machine(), quick=args.quick), "width": args.width, "noise_var": args.noise_var,
               **newton_vs_continuation(split, 1, draws, width=args.width, noise_var=args.noise_var)}
        rec["machine_after"] = machine()
        (args.out / f"eos_newton{suffix}.json").write_text(json.dumps(rec, indent=1))
    if not args.skip_warm_routes:
        split, draws = ([48, 80], 2) if args.quick else (args.warm_routes_split, args.warm_routes_draws)
        rec = {"machine": dict(machine(), quick=args.quick), "width": args.width, "noise_var": args.noise_var,
               **warm_routes(split, [1, 2], draws, width=args.width, noise_var=args.noise_var)}
        rec["machine_after"] = machine()
        (args.out / f"eos_warm_routes{suffix}.json").write_text(json.dumps(rec, indent=1))
    if not args.skip_floor_routes:
        families = ({"xor": [16, 16], "four-class": [8, 8, 8, 8]} if args.quick else
                    {"four-class": [64, 64, 64, 64], "anisotropic": [128, 128], "xor": [128, 128], "shells": [128, 128]})
        rec = {"machine": dict(machine(), quick=args.quick), "width": args.width, "noise_var": args.noise_var,
               **floor_routes(families, 2 if args.quick else args.floor_routes_draws, width=args.width,
                              noise_var=args.noise_var, large=not args.quick)}
        rec["machine_after"] = machine()
        (args.out / f"eos_floor_routes{suffix}.json").write_text(json.dumps(rec, indent=1))
    if not args.skip_inverse:
        Ns_inv, d0_inv = ([128, 256], 16) if args.quick else (args.inverse_Ns, 128)
        rec = {"machine": dict(machine(), quick=args.quick), "width": args.width, "noise_var": args.noise_var,
               **inverse_routes(Ns_inv, d0_inv, args.inverse_threads, noise_var=args.noise_var,
                                reps=3 if args.quick else 7)}
        rec["machine_after"] = machine()
        (args.out / f"eos_inverse{suffix}.json").write_text(json.dumps(rec, indent=1))
    if not args.skip_scaling:
        rec = {"machine": dict(machine(), quick=args.quick), "width": args.width, "noise_var": args.noise_var, "label_term": "reference",
               **scaling(Ns, d0_scaling, width=args.width, noise_var=args.noise_var)}
        rec["machine_after"] = machine()
        (args.out / f"eos_scaling{suffix}.json").write_text(json.dumps(rec, indent=1))


if __name__ == "__main__":
    main()
