"""Command line.

``python -m nckernels run CHAPTER.md [--scale smoke|book|paper] [-p NAME VALUE ...]``
``python -m nckernels sweep CHAPTER.md --grid GRID.yml --out DIR [--workers N] [--scheduler ADDRESS]``
"""
from __future__ import annotations

import argparse
import pathlib
import sys

import yaml

from .experiments.scales import SCALES, run_chapter, scale_parameters


def _run(args) -> int:
    params = scale_parameters(args.chapter, args.scale)
    for name, value in args.parameter or []:
        params[name] = yaml.safe_load(value)
    out = args.out or pathlib.Path("results") / f"{pathlib.Path(args.chapter).stem}.{args.scale}.ipynb"
    run_chapter(args.chapter, out, params)
    print(f"wrote {out}")
    return 0


def _sweep(args) -> int:
    from .experiments.sweeps import run_sweep

    frame = run_sweep(args.chapter, args.grid, args.out, workers=args.workers, scheduler=args.scheduler,
                      retry_failed=args.retry_failed, progress=not args.quiet)
    failed = int((frame["status"] != "ok").sum()) if len(frame) else 0
    print(f"{len(frame)} runs in {args.out / 'results.csv'} ({failed} failed)")
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m nckernels", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute one chapter with papermill at a scale, with overrides")
    run.add_argument("chapter", type=pathlib.Path, help="a chapter's .md file in book/")
    run.add_argument("--scale", choices=SCALES, default="book")
    run.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"),
                     help="override one parameter (VALUE is parsed as YAML: 3, [1, 2], true)")
    run.add_argument("--out", type=pathlib.Path, help="executed notebook path (default results/CHAPTER.SCALE.ipynb)")
    run.set_defaults(func=_run)
    sweep = sub.add_parser("sweep", help="execute one chapter once per grid point (papermill), rows in DIR/results.csv")
    sweep.add_argument("chapter", type=pathlib.Path, help="a chapter's .md file in book/")
    sweep.add_argument("--grid", type=pathlib.Path, required=True, help="grid YAML (scale, parameters, grid, points)")
    sweep.add_argument("--out", type=pathlib.Path, required=True, help="output directory (results.csv, runs/)")
    sweep.add_argument("--workers", type=int, default=1, help="parallel processes on this machine")
    sweep.add_argument("--scheduler", help="address of a running Dask distributed scheduler (tcp://host:port)")
    sweep.add_argument("--retry-failed", action="store_true", help="re-run points whose last run failed")
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")
    sweep.set_defaults(func=_sweep)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
