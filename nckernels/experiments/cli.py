"""Command line: ``python -m nckernels run|sweep``.

Layer 5, experiments; imports :mod:`nckernels.experiments.scales` and :mod:`nckernels.experiments.sweeps`.

``python -m nckernels run CHAPTER.md [--scale smoke|book|paper] [-p NAME VALUE ...] [--out NOTEBOOK] [--compare [BUILD]] [--html PAGE]``
``python -m nckernels sweep CHAPTER.md --grid GRID.yml --out DIR [--workers N] [--scheduler ADDRESS] [--retry-failed]``
``python -m nckernels paper [--manifest book/paper.yml] [--workers N] [--only NAME] [--export-only] [--restore]``: ``make paper``

Values are parsed as YAML 1.2 (``3``, ``1e-3``, ``[1, 2]``, ``true``, ``cuda``); names must be parameters of the
chapter. Errors are one line naming the file, parameter or grid key (``--debug`` shows the traceback); the
terminal gets one progress line per run or sweep, the kernel's log only its errors.
"""
from __future__ import annotations

import argparse
import pathlib
import sys

from .scales import SCALES, check_parameters, parse_value, run_chapter, scale_parameters

__all__ = ["build_parser", "main"]


def _run(args) -> int:
    import nbformat

    from .report import book_glue, compare_glue, format_glue_table, render_html
    from .sweeps import harvest_glue

    chapter = args.chapter
    params = scale_parameters(chapter, args.scale)
    for name, value in args.parameter or []:
        params[name] = parse_value(value, name)
    params = check_parameters(chapter, params, source="parameter")  # before anything runs
    out = args.out or pathlib.Path("results") / f"{chapter.stem}.{args.scale}.ipynb"
    log = out.with_name(f"{out.stem}.log")
    try:
        run_chapter(chapter, out, params, progress=not args.quiet, log=log)
    except Exception as exc:  # a failing cell: one line, the partial notebook named
        if args.debug:
            raise
        failed = out.with_name(f"{out.stem}.failed.ipynb")
        ename, evalue = getattr(exc, "ename", None), getattr(exc, "evalue", None)
        what = f"{ename}: {evalue}" if ename else f"{exc.__class__.__name__}: {exc}"
        cell = getattr(exc, "exec_count", None)
        where = f" in cell [{cell}]" if cell is not None else ""
        kept = f"; partial notebook {failed}" if failed.exists() else ""
        print(f"error: {chapter} failed{where}: {what.splitlines()[0] if what else ''}{kept}", file=sys.stderr)
        return 1
    glued = harvest_glue(nbformat.read(out, as_version=4))
    status = 0
    if args.compare is not None:  # this run's values next to the built book's
        table = compare_glue(glued, book_glue(chapter, args.compare))
        print(format_glue_table(table))
        differ = int((~table["same"]).sum())
        print(f"{differ} of {len(table)} glued values differ from the book built in {args.compare}")
    elif glued and not args.quiet:
        print(format_glue_table(glued))
    print(f"wrote {out}")
    if args.html is not None:
        print(f"wrote {render_html(out, args.html)}")
    return status


def _sweep(args) -> int:
    from .sweeps import run_sweep

    frame = run_sweep(args.chapter, args.grid, args.out, workers=args.workers, scheduler=args.scheduler,
                      retry_failed=args.retry_failed, progress=not args.quiet)
    failed = int((frame["status"] != "ok").sum()) if len(frame) else 0
    print(f"{len(frame)} runs in {args.out / 'results.csv'} ({failed} failed)")
    return 1 if failed else 0


def _paper(args) -> int:
    import time

    from .paper import export_paper, load_manifest, restore_paper, run_paper

    start = time.perf_counter()
    manifest = load_manifest(args.manifest)
    names = args.only or None
    failed = 0
    if args.restore:
        restore_paper(manifest, names=names, progress=not args.quiet)
    if not args.export_only:
        runs = run_paper(manifest, workers=args.workers, names=names, retry_failed=args.retry_failed,
                         progress=not args.quiet, device=args.device)
        failed = int((runs["status"] != "ok").sum()) if len(runs) else 0
    command = " ".join(["python -m nckernels", *sys.argv[1:]])
    sets = export_paper(manifest, names=names, command=command, progress=not args.quiet, device=args.device)
    wall = time.perf_counter() - start
    print(f"paper: {len(sets)} result sets, {int(sets['written'].sum())} exported to {manifest.results}; "
          f"{failed} runs failed this session; total wall time {wall / 60:.1f} min ({wall:.0f} s)")
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m nckernels", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show the traceback of an error")
    common.add_argument("--quiet", action="store_true", help="no progress bar")
    run = sub.add_parser("run", parents=[common], help="execute one chapter with papermill at a scale, with overrides")
    run.add_argument("chapter", type=pathlib.Path, help="a chapter's .md file in book/")
    run.add_argument("--scale", choices=SCALES, default="book")
    run.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"),
                     help="override one parameter (VALUE is parsed as YAML 1.2: 3, 1e-3, [1, 2], true)")
    run.add_argument("--out", type=pathlib.Path, help="executed notebook path (default results/CHAPTER.SCALE.ipynb)")
    run.add_argument("--compare", nargs="?", const=pathlib.Path("_build"), type=pathlib.Path, metavar="BUILD_DIR",
                     help="print this run's glued values next to those of the book built in BUILD_DIR (default _build)")
    run.add_argument("--html", type=pathlib.Path, metavar="PAGE",
                     help="also write the executed chapter as one standalone HTML page, glued values in the prose")
    run.set_defaults(func=_run)
    sweep = sub.add_parser("sweep", parents=[common],
                           help="execute one chapter once per grid point (papermill), rows in DIR/results.csv")
    sweep.add_argument("chapter", type=pathlib.Path, help="a chapter's .md file in book/")
    sweep.add_argument("--grid", type=pathlib.Path, required=True, help="grid YAML (scale, parameters, grid, points)")
    sweep.add_argument("--out", type=pathlib.Path, required=True, help="output directory (results.csv, records/, runs/, logs/)")
    sweep.add_argument("--workers", type=int, default=1, help="parallel processes on this machine")
    sweep.add_argument("--scheduler", help="address of a running Dask distributed scheduler (tcp://host:port)")
    sweep.add_argument("--retry-failed", action="store_true", help="re-run points whose last run failed")
    sweep.set_defaults(func=_sweep)
    paper = sub.add_parser("paper", parents=[common],
                           help="run every paper-scale sweep of the manifest (resumable), then export tidy CSVs")
    paper.add_argument("--manifest", type=pathlib.Path, default=None, help="manifest YAML (default book/paper.yml)")
    paper.add_argument("--workers", type=int, default=1, help="runs at a time, across all sweeps")
    paper.add_argument("--only", action="append", metavar="NAME", help="only this result set (repeatable)")
    paper.add_argument("--export-only", action="store_true", help="no runs: export what the sweeps hold")
    paper.add_argument("--retry-failed", action="store_true", help="re-run runs whose last attempt failed")
    paper.add_argument("--restore", action="store_true",
                       help="first seed the work folder from the committed sets (book/results), so that only the runs "
                            "it lacks run (remove WORK/NAME/records/RUN.json to redo a run)")
    paper.add_argument("--device", default=None, help="torch device (e.g. cuda) for the chapters with a device parameter")
    paper.set_defaults(func=_paper, chapter=None)
    return parser


def main(argv=None) -> int:
    """Parse ``argv`` and run the command; returns the exit status (2 for a bad input, 130 when interrupted)."""
    args = build_parser().parse_args(argv)
    if args.chapter is not None and not args.chapter.is_file():
        print(f"error: chapter {args.chapter} does not exist", file=sys.stderr)
        return 2
    try:
        return args.func(args)
    except ValueError as exc:
        if args.debug:
            raise
        print(f"error: {str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__}", file=sys.stderr)
        return 2
    except OSError as exc:
        if args.debug:
            raise
        print(f"error: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # e.g. the sweep's worker processes died
        if args.debug:
            raise
        print(f"error: {str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("interrupted: finished runs are recorded; run the same command again to resume", file=sys.stderr)
        return 130
