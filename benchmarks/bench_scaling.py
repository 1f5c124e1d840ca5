"""How each heavy step's time grows with its size, recorded for the book's appendix (appendix_scaling).

* kernels: the streamed NC1 of the chapter-4 kernel family (NNGP and NTK of erf and ReLU plus the
  reference's NTK) at d0 = 128, N from 1024 up to 65536 (expected O(N^2 d0): every pair once);
* training: one epoch of ``nk.train_networks`` (10 networks, d0 = 128, float32) against N at width 500 and
  against the width at N = 1024 (expected O(N h d0));

Each size is timed once after a warm-up; the ratio of two sizes is the measurement, so the machine's
drift between runs matters less than within one. Writes book/data/benchmarks/scaling.json (machine facts
and one row per measurement).

    python benchmarks/bench_scaling.py [--quick] [--threads 2] [--max-N 65536] [--out PATH]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import platform
import time

import torch

import nckernels as nk
from nckernels.experiments.grids import two_layer_family_nc1
from nckernels.experiments.scales import ALLOCATOR_ENV

ROOT = pathlib.Path(__file__).resolve().parents[1]


def time_kernels(N: int, d0: int = 128) -> float:
    data = nk.gaussian_classes([N // 2, N - N // 2], d0, generator=torch.Generator().manual_seed(N))
    t0 = time.perf_counter()
    two_layer_family_nc1(data.X, data.labels)
    return time.perf_counter() - t0


def time_training(N: int, width: int, d0: int = 128, repeats: int = 10, epochs: int = 10) -> float:
    """Seconds per epoch: the difference of an epochs+1- and a 1-epoch run, divided by epochs (fixed costs cancel)."""
    data = [nk.gaussian_classes([N // 2, N - N // 2], d0, generator=torch.Generator().manual_seed(r)) for r in range(repeats)]
    X = torch.stack([d.X for d in data]).float()
    labels = torch.stack([d.labels for d in data])
    out = []
    for e in (1, epochs + 1):
        config = nk.TrainingConfig(width=width, epochs=e, record_epochs=(0,))
        t0 = time.perf_counter()
        nk.train_networks(X, labels, list(range(repeats)), config, fused=False)
        out.append(time.perf_counter() - t0)
    return max(out[1] - out[0], 1e-9) / epochs


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes only (a smoke run)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-N", type=int, default=65536, help="largest N of the kernel scan")
    ap.add_argument("--out", type=pathlib.Path, default=ROOT / "book" / "data" / "benchmarks" / "scaling.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    kernel_Ns = [512, 1024] if args.quick else [n for n in (1024, 2048, 4096, 8192, 16384, 32768, 65536) if n <= args.max_N]
    time_kernels(256)  # warm-up
    for N in kernel_Ns:
        s = time_kernels(N)
        rows.append({"step": "kernels", "size_name": "N", "size": N, "d0": 128, "seconds": s, "expected_order": 2})
        print(f"kernels   N={N:6d}  {s:8.3f} s", flush=True)
    train_Ns = [256, 512] if args.quick else [256, 512, 1024, 2048, 4096]
    widths = [125, 250] if args.quick else [125, 250, 500, 1000, 2000]
    for N in train_Ns:
        s = time_training(N, 500)
        rows.append({"step": "training (N)", "size_name": "N", "size": N, "width": 500, "seconds": s, "expected_order": 1})
        print(f"training  N={N:6d}  h=500   {s * 1e3:8.2f} ms/epoch", flush=True)
    for h in widths:
        s = time_training(1024, h)
        rows.append({"step": "training (width)", "size_name": "width", "size": h, "N": 1024, "seconds": s,
                     "expected_order": 1})
        print(f"training  N=  1024  h={h:5d} {s * 1e3:8.2f} ms/epoch", flush=True)
    machine = {"threads": torch.get_num_threads(), "cpus": os.cpu_count(), "torch": torch.__version__,
               "processor": platform.processor() or platform.machine(), "device": "cpu",
               "date": datetime.date.today().isoformat(), "quick": bool(args.quick),
               "load_average_1_5_15": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,  # its own threads included
               # glibc malloc settings of this process (the appendix says whether ALLOCATOR_ENV was in effect)
               "allocator": {k: os.environ.get(k) for k in ALLOCATOR_ENV}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(f".{args.out.name}.tmp")
    tmp.write_text(json.dumps({"machine": machine, "rows": rows}, indent=1))
    os.replace(tmp, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
