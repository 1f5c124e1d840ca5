"""glibc malloc's default against the settings chapter runs get (nckernels.experiments.scales.ALLOCATOR_ENV).

glibc serves an allocation above its mmap threshold (at most 32 MiB) with a fresh mmap, unmapped again when
freed, so each N x N float64 temporary from N = 2048 on is page-faulted in at first touch. The same script runs
in child processes, alternately with the default environment (the variables removed) and with ALLOCATOR_ENV, one
torch thread each, and times per N (d0 = 128, two classes):

* the erf NNGP and NTK of ``nk.nngp`` / ``nk.ntk``;
* NC1 from the NNGP kernel (``nk.nc1_from_kernel``, its input checks included);
* the input checks of a kernel as they were before this benchmark's change (``isfinite``, ``abs().max()``,
  ``(K - K.T).abs().max()``) and as they are (``check_matrix(K, symmetric=True)``);
* one evaluation of the EoS map (chapter 5's solver, its workspace reused, as in a solve).

Each child reports the median of its repetitions; the script reports the median over the children of each
environment and the ratio default / tuned. Writes book/data/benchmarks/allocator.json (machine facts, rows).

    python benchmarks/bench_allocator.py [--quick] [--rounds 3] [--out PATH]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
OUT = ROOT / "book" / "data" / "benchmarks" / "allocator.json"


def child(sizes, reps):
    """Median seconds of each operation at each N, in this process's environment (one thread)."""
    import torch

    import nckernels as nk
    from nckernels.models.adaptive.map import EoSWorkspace, evaluate, make_problem
    from nckernels.validation import check_matrix

    torch.set_num_threads(1)

    def checks_before(K):
        assert bool(torch.isfinite(K).all())
        scale = float(K.abs().max())
        assert float((K - K.T).abs().max()) <= 1e-8 * scale

    rows = []
    for N in sizes:
        data = nk.gaussian_classes([N // 2, N - N // 2], 128, generator=torch.Generator().manual_seed(N))
        X, labels = data.X, data.labels
        K = nk.nngp(X)
        problem = make_problem(X, data.y, noise_var=1e-6)
        ws = EoSWorkspace(problem)
        Sigma = torch.eye(128, dtype=X.dtype) / 128
        ops = {"erf NNGP": lambda: nk.nngp(X), "erf NTK": lambda: nk.ntk(X, sigma_a=1.97),
               "NC1 from a kernel": lambda: nk.nc1_from_kernel(K, labels),
               "kernel checks, before": lambda: checks_before(K),
               "kernel checks, now": lambda: check_matrix(K, "K", symmetric=True),
               "EoS evaluation": lambda: evaluate(problem, Sigma, 500.0, workspace=ws)}
        for name, fn in ops.items():
            fn()  # warm-up
            times = []
            for _ in range(reps if N < 4096 else max(2, reps // 2)):
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
            rows.append({"operation": name, "N": N, "seconds": statistics.median(times)})
    return rows


def machine():
    import torch

    return {"date": datetime.date.today().isoformat(),
            "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "threads": 1, "cpu_count": os.cpu_count(), "device": "cpu",
            "load_average_1_5_15": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            "torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform(),
            "libc": " ".join(platform.libc_ver())}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="N = 256 and 512, two rounds (a smoke run)")
    ap.add_argument("--rounds", type=int, default=3, help="child processes per environment, alternating")
    ap.add_argument("--reps", type=int, default=5, help="repetitions of each operation in a child")
    ap.add_argument("--out", type=pathlib.Path, default=None, help=f"JSON output (default {OUT}; --quick: none)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        sizes, reps = json.loads(args.child)
        print(json.dumps(child(sizes, reps)))
        return
    sys.path.insert(0, str(ROOT))
    from nckernels.experiments.scales import ALLOCATOR_ENV

    sizes = [256, 512] if args.quick else [1024, 2048, 4096]
    rounds = 2 if args.quick else args.rounds
    base = {k: v for k, v in os.environ.items() if k not in ALLOCATOR_ENV}
    envs = {"default": base, "tuned": {**base, **ALLOCATOR_ENV}}
    runs = {name: [] for name in envs}
    for r in range(rounds):
        for name in (envs if r % 2 == 0 else reversed(list(envs))):  # alternate which goes first
            out = subprocess.run([sys.executable, __file__, "--child", json.dumps([sizes, args.reps])],
                                 env=envs[name], capture_output=True, text=True, check=True)
            runs[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"round {r + 1}/{rounds}: {name} done", file=sys.stderr)
    rows = []
    for i, row in enumerate(runs["default"][0]):
        d = statistics.median(run[i]["seconds"] for run in runs["default"])
        t = statistics.median(run[i]["seconds"] for run in runs["tuned"])
        rows.append({"operation": row["operation"], "N": row["N"], "default_s": d, "tuned_s": t, "ratio": d / t})
    width = max(len(r["operation"]) for r in rows)
    print(f"{'operation':{width}}  {'N':>5}  {'default (s)':>11}  {'tuned (s)':>9}  ratio")
    for r in rows:
        print(f"{r['operation']:{width}}  {r['N']:5d}  {r['default_s']:11.4f}  {r['tuned_s']:9.4f}  {r['ratio']:.2f}x")
    out = args.out if args.out is not None else (None if args.quick else OUT)
    if out is not None:
        payload = {"machine": machine(), "environment": ALLOCATOR_ENV, "rounds": rounds, "reps": args.reps,
                   "rows": rows}
        tmp = out.with_suffix(".json.partial")
        tmp.write_text(json.dumps(payload, indent=1) + "\n")
        os.replace(tmp, out)
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
