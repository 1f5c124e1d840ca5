"""Chapter 4's kernel-NC1 grid: streamed fused family (the package) against full kernel matrices (baseline).

Baseline: form each N x N kernel with nngp / ntk / the as-coded NTK and reduce it with
nc1_from_kernel, as a straightforward port would. Both run on the same cells in one process; the
script prints both times, their ratio and the largest NC1 difference, then (without --quick) times
the whole paper-scale grid of the chapter (balanced 4 N x 5 d0 x 10 draws, imbalanced 4 splits x 5 d0 x 10).

    python benchmarks/bench_grid.py [--quick] [--threads 2] [--device cpu]
"""
from __future__ import annotations

import argparse
import time

import torch

import nckernels as nk
from nckernels import reference
from nckernels.grids import kernel_nc1_grid, two_layer_family_nc1


def baseline_family(X, labels):
    out = {}
    for act in ("erf", "relu"):
        out[f"NNGP {act}"] = nk.nc1_from_kernel(nk.nngp(X, activation=act), labels)
        out[f"NTK {act}"] = nk.nc1_from_kernel(nk.ntk(X, activation=act), labels)
    out["NTK erf (as coded)"] = nk.nc1_from_kernel(reference.erf_ntk_as_coded(X), labels)
    return out


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small cells only (a smoke run)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    splits = [[64, 64]] if args.quick else [[1024, 1024], [256, 1792]]
    d0s = [1, 128]
    cells = [nk.gaussian_classes(s, d0, generator=torch.Generator().manual_seed(i), device=device)
             for i, (s, d0) in enumerate((s, d0) for s in splits for d0 in d0s)]
    timings, worst = {}, 0.0
    for name, fn in (("baseline (full matrices)", baseline_family), ("streamed fused family", two_layer_family_nc1)):
        fn(cells[0].X, cells[0].labels)  # warm-up
        sync(device)
        t0 = time.perf_counter()
        results = [fn(c.X, c.labels) for c in cells]
        sync(device)
        timings[name] = time.perf_counter() - t0
        if name.startswith("baseline"):
            base = results
        else:
            worst = max(abs(r[k].nc1 / b[k].nc1 - 1) for r, b in zip(results, base) for k in r)
    (tb, ts) = timings.values()
    print(f"threads={torch.get_num_threads()} device={device} cells={len(cells)} (splits {splits}, d0 {d0s})")
    print(f"baseline (full N x N matrices): {tb:8.3f} s")
    print(f"streamed fused family:          {ts:8.3f} s")
    print(f"speed-up: {tb / ts:.2f}x   largest relative NC1 difference: {worst:.2e}")
    if not args.quick:
        t0 = time.perf_counter()
        bal = kernel_nc1_grid([[n // 2, n // 2] for n in (128, 256, 512, 1024)], [1, 2, 8, 32, 128], 10, device=device)
        t1 = time.perf_counter()
        imb = kernel_nc1_grid([[1024, 1024], [768, 1280], [512, 1536], [256, 1792]], [1, 2, 8, 32, 128], 10, seed=1, device=device)
        t2 = time.perf_counter()
        failed = int((bal.status != "ok").sum() + (imb.status != "ok").sum())
        print(f"paper-scale grid of chapter 4: balanced {t1 - t0:.1f} s + imbalanced {t2 - t1:.1f} s = {t2 - t0:.1f} s; failed rows: {failed}")


if __name__ == "__main__":
    main()
