"""Batched training of R two-layer networks against a per-network loop (the reference code's approach).

The paper's balanced FCN sweep cell: h = 500, 1000 epochs, N = 1024, d0 = 128, 10 repeats (data draws
and initialisations), erf, lr 1e-3, weight decay 1e-6, float32. Both trainers start from the same seeds;
the script prints both wall times, their ratio and the largest difference in final NC1.

    python benchmarks/bench_training.py            # the paper's cell (several minutes on 2 cores)
    python benchmarks/bench_training.py --quick    # a smoke run (seconds)
    python benchmarks/bench_training.py --estimate-sweep   # also time the whole paper FCN sweep by sampling

``--estimate-sweep`` trains every cell of the balanced and imbalanced paper grids (10 draws each) for
``--sample-epochs`` and twice as many epochs with the batched trainer (the step that a full run picks),
and adds up each cell's time per epoch times 1000 plus its fixed costs; ``--estimate-eager`` makes the
same estimate with the eager step everywhere (the fused step's baseline).
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

import torch

import nckernels as nk
from nckernels.grids import cell_seed
from nckernels.training import FUSED_AUTO_MIN_WORK, TrainingConfig, train_networks, train_networks_loop


def cell_data(split, d0, draws, dtype, device, seed=0):
    datas = [nk.gaussian_classes(split, d0, generator=torch.Generator().manual_seed(cell_seed(seed, tuple(split), d0, r)))
             for r in range(draws)]
    X = torch.stack([d.X for d in datas]).to(dtype=dtype, device=device)
    labels = torch.stack([d.labels for d in datas]).to(device)
    seeds = [cell_seed(seed, tuple(split), d0, r, "init") for r in range(draws)]
    return X, labels, seeds


def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def would_fuse(R, N, width, epochs, device):
    """What train_networks(fused="auto") picks for a full run of this size."""
    return torch.device(device).type == "cpu" and R * N * width * epochs >= FUSED_AUTO_MIN_WORK


def _timed_training(X, labels, seeds, config, device, fused):
    """Wall time of train_networks after a one-epoch warm-up of the same shapes (compilation, caches)."""
    t0 = time.perf_counter()
    train_networks(X, labels, seeds, replace(config, epochs=1, record_epochs=None), fused=fused)
    _sync(device)
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = train_networks(X, labels, seeds, config, fused=fused)
    _sync(device)
    return result, time.perf_counter() - t0, warm


def compare(N, d0, draws, epochs, width, dtype, device, skip_loop=False):
    X, labels, seeds = cell_data([N // 2, N - N // 2], d0, draws, dtype, device)
    config = TrainingConfig(width=width, epochs=epochs)
    fused = would_fuse(draws, N, width, epochs, device)
    batched, t_batched, warm = _timed_training(X, labels, seeds, config, device, fused)
    out = {"cell": {"N": N, "d0": d0, "draws": draws, "epochs": epochs, "width": width, "dtype": str(dtype),
                    "device": str(device), "threads": torch.get_num_threads()},
           "batched_step": batched.step, "batched_s": round(t_batched, 2), "batched_warmup_s": round(warm, 2)}
    if fused:
        eager, t_eager, _ = _timed_training(X, labels, seeds, config, device, False)
        out["batched_eager_s"] = round(t_eager, 2)
        out["max_rel_nc1_diff_fused_vs_eager"] = float(
            ((batched.final()["nc1"] - eager.final()["nc1"]).abs() / eager.final()["nc1"]).max())
    if not skip_loop:
        t0 = time.perf_counter()
        loop = train_networks_loop(X, labels, seeds, config)
        _sync(device)
        t_loop = time.perf_counter() - t0
        diff = (batched.final()["nc1"] - loop.final()["nc1"]).abs().max()
        rel = ((batched.final()["nc1"] - loop.final()["nc1"]).abs() / loop.final()["nc1"]).max()
        out.update(loop_s=round(t_loop, 2), speedup=round(t_loop / t_batched, 2), max_abs_nc1_diff=float(diff),
                   max_rel_nc1_diff=float(rel))
        if "batched_eager_s" in out:
            out["speedup_eager"] = round(t_loop / out["batched_eager_s"], 2)
    out["final_log10_nc1_mean"] = float(batched.final()["nc1"].apply(lambda v: __import__("math").log10(v)).mean())
    return out


def gemm_bound(N, d0, draws, epochs, width, dtype, device, reps=20):
    """Seconds that the two large GEMMs of an epoch alone take over ``epochs``: the forward Z = X W^T (inner
    dimension d0) and the gradient of [W, b], [X, 1]^T P (d0 + 1 rows), at full N: any trainer does them."""
    X = torch.randn(draws, N, d0 + 1, dtype=dtype, device=device)
    W = torch.randn(draws, width, d0, dtype=dtype, device=device)
    P = torch.randn(draws, N, width, dtype=dtype, device=device)
    Z, G = torch.empty_like(P), torch.zeros(draws, d0 + 1, width, dtype=dtype, device=device)

    def epoch():
        torch.bmm(X[..., :d0], W.transpose(1, 2), out=Z)
        G.baddbmm_(X.transpose(1, 2), P)

    epoch()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(reps):
        epoch()
    _sync(device)
    return (time.perf_counter() - t0) / reps * epochs


def estimate_sweep(sample_epochs, dtype, device, width=500, draws=10, epochs=1000, verbose=True, eager=False):
    """Seconds the paper FCN sweep's training takes: each cell's time per epoch from runs of ``sample_epochs``
    and twice as many epochs (after a one-epoch warm-up that compiles the fused step where the full run would
    use it), times ``epochs``, plus the fixed cost of a call, two NC1 recordings and the warm-up (compilation
    on a cold cache, first touch; also reported in total as ``warmups_s``)."""
    balanced = [[n // 2, n // 2] for n in (128, 256, 512, 1024)]
    imbalanced = [[1024, 1024], [768, 1280], [512, 1536], [256, 1792]]
    total, per, warm_total = 0.0, {}, 0.0
    for name, splits in (("balanced", balanced), ("imbalanced", imbalanced)):
        part = 0.0
        for split in splits:
            for d0 in (1, 2, 8, 32, 128):
                X, labels, seeds = cell_data(split, d0, draws, dtype, device)
                # Per-epoch time from two sampled runs (s and 2s epochs, recording nothing), so that a call's fixed
                # cost is not scaled up with the epochs; a full run pays that cost once and records twice
                # (epochs 0 and 1000), timed apart.
                fused = not eager and would_fuse(draws, sum(split), width, epochs, device)
                t = {}
                for n in (sample_epochs, 2 * sample_epochs):
                    cfg = TrainingConfig(width=width, epochs=n, record_epochs=())
                    _, t[n], warm = _timed_training(X, labels, seeds, cfg, device, fused)
                per_epoch = (t[2 * sample_epochs] - t[sample_epochs]) / sample_epochs
                fixed = max(0.0, t[sample_epochs] - sample_epochs * per_epoch)
                _, record, _ = _timed_training(X, labels, seeds, TrainingConfig(width=width, epochs=0), device, fused)
                part += fixed + epochs * per_epoch + 2 * record + warm
                if verbose:
                    print(f"  {name} {split} d0={d0}: {per_epoch * 1e3:.1f} ms/epoch, fixed {fixed:.2f} s, "
                          f"record {record:.2f} s, warm-up {warm:.2f} s", flush=True)
                warm_total += warm
        per[name] = round(part, 1)
        total += part
    return {"estimated_sweep_s": round(total, 1), "per_grid_s": per, "warmups_s": round(warm_total, 1),
            "sample_epochs": sample_epochs}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run: N = 256, d0 = 32, 4 repeats, 40 epochs")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--skip-loop", action="store_true", help="time the batched trainer only")
    parser.add_argument("--estimate-sweep", action="store_true", help="also estimate the whole paper FCN sweep")
    parser.add_argument("--sample-epochs", type=int, default=20)
    parser.add_argument("--estimate-eager", action="store_true",
                        help="estimate the sweep with the eager step everywhere (the fused step's baseline)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    if args.quick:
        res = compare(256, 32, 4, args.epochs or 40, 500, dtype, args.device, args.skip_loop)
    else:
        res = compare(1024, 128, 10, args.epochs or 1000, 500, dtype, args.device, args.skip_loop)
    cell = res["cell"]
    bound = gemm_bound(cell["N"], cell["d0"], cell["draws"], cell["epochs"], cell["width"], dtype, args.device)
    res["gemm_bound_s"] = round(bound, 2)
    res["batched_over_bound"] = round(res["batched_s"] / bound, 2)
    if args.estimate_sweep:
        res.update(estimate_sweep(5 if args.quick else args.sample_epochs, dtype, args.device,
                                  eager=args.estimate_eager))
        res["estimate_step"] = "eager" if args.estimate_eager else "auto"
    print(json.dumps(res, indent=1))
    if "speedup" in res:
        print(f"batched ({res['batched_step']} step) {res['batched_s']:.1f} s, loop {res['loop_s']:.1f} s, "
              f"ratio {res['speedup']:.2f}x, max |NC1 diff| {res['max_abs_nc1_diff']:.2e}")
    if "batched_eager_s" in res:
        print(f"batched (eager step) {res['batched_eager_s']:.1f} s: the fused step is "
              f"{res['batched_eager_s'] / res['batched_s']:.2f}x faster")
    print(f"GEMM-only bound {res['gemm_bound_s']:.1f} s: batched at {res['batched_over_bound']:.2f}x of it"
          + (f", loop at {res['loop_s'] / res['gemm_bound_s']:.2f}x" if "loop_s" in res else ""))
    return res


if __name__ == "__main__":
    main()
