r"""A store of converged EoS solves, each named by everything that determines it: a solve met again is read back.

Layer 5, experiments. Imports :mod:`nckernels.models.adaptive` and, for atomic writes,
:func:`~nckernels.experiments.sweeps.write_atomic`.

Chapters 5 and 6 solve the same equations on the same data: chapter 5's imbalanced grid (N = 2048, draws 0-2 of
each split and d0) is a subset of chapter 6's (draws 0-9), with the same solver settings and the same warm starts,
and one run of chapter 5 holds every solve of its grids. With a store, a paper run reads the solves another run
(or an interrupted attempt of itself) already made. The grids' solver (:func:`stored_solve`, through
:func:`~nckernels.experiments.grids.adaptive_measure` and :func:`~nckernels.experiments.grids.network_kernels`)
uses the folder named by the environment variable :data:`SOLVE_STORE_ENV`, which ``make paper``
(:func:`~nckernels.experiments.paper.run_paper`) sets to ``WORK/solves`` for its chapters' kernels; without it
nothing is stored.

A solve's name (:func:`solve_key`) is a SHA-256 of the bytes of X, y, the labels and the warm start, every solver
setting after defaults (the prior scales resolved to variances, ``strict`` and ``progress`` left out: they do not
change a converged answer), the dtype, device type and torch thread count, torch's version, and the source of the
solver and the metrics (:func:`code_fingerprint`): a change to any of them is a different name, so a stale entry is
never read. Only converged solves are stored (a failure is recomputed). An entry holds Sigma, the posterior mean,
the history and the scalars; the kernel is recomputed from Sigma by the solver's own arithmetic
(:func:`~nckernels.models.adaptive.solver_kernel`), so a result read back equals the solved one bit for bit
(``tests/test_solves.py``). Entries are written atomically; two runs that make the same solve at once write the
same bytes.
"""
from __future__ import annotations

import functools
import hashlib
import inspect
import io
import json
import math
import os
import pathlib

import pandas as pd
import torch

from ..models.adaptive import AdaptiveKernelResult, make_problem, resolve_variances, solve_adaptive_kernel, solver_kernel
from .sweeps import write_atomic

__all__ = ["SOLVE_STORE_ENV", "code_fingerprint", "solve_key", "solve_store", "stored_solve"]

SOLVE_STORE_ENV = "NCKERNELS_SOLVE_STORE"
"""Environment variable naming the store's folder (created when needed); unset or empty: no store."""

_KEY_VERSION = 1
_SIGNATURE = inspect.signature(solve_adaptive_kernel)  # the solver's parameters and defaults
_IGNORED = ("X", "y", "labels", "init", "strict", "progress", "sigma_w", "sigma_a", "sigma_w2", "sigma_a2")


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """SHA-256 of the source of :mod:`nckernels.models.adaptive` and :mod:`nckernels.metrics` (what a stored
    solve and its history depend on)."""
    root = pathlib.Path(__file__).resolve().parents[1]
    files = sorted((root / "models" / "adaptive").glob("*.py")) + [root / "metrics.py", root / "validation.py"]
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def _tensor_bytes(h, name: str, t) -> None:
    if t is None:
        h.update(f"{name}:none;".encode())
        return
    t = t.detach().to("cpu").contiguous()
    h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
    h.update(t.numpy().tobytes())


def _settings(X, y, labels, init, solver: dict) -> dict:
    """The solver's settings after defaults, the scales as variances, and what else decides the bits."""
    bound = _SIGNATURE.bind(X, y, labels=labels, init=init, **solver)
    bound.apply_defaults()
    args = dict(bound.arguments)
    sw2, sa2 = resolve_variances(args["sigma_w"], args["sigma_a"], sigma_w2=args["sigma_w2"], sigma_a2=args["sigma_a2"])
    for name in _IGNORED:
        args.pop(name)
    schedule = args["schedule"]
    if schedule is not None and not isinstance(schedule, str):
        args["schedule"] = [float(k) for k in schedule]
    return {**{k: (float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v) for k, v in args.items()},
            "sigma_w2": float(sw2), "sigma_a2": float(sa2), "version": _KEY_VERSION, "code": code_fingerprint(),
            "torch": torch.__version__, "threads": torch.get_num_threads(), "device": torch.as_tensor(X).device.type}


def solve_key(X, y, *, labels=None, init=None, **solver) -> str:
    """The store's name of ``solve_adaptive_kernel(X, y, labels=labels, init=init, **solver)`` (64 hex digits).

    Equal for calls that differ only in ``strict``, ``progress`` or the form of a scale (``sigma_a`` or the
    deprecated ``sigma_a2``, explicit or default); different for any other change (module docstring).
    """
    return _key(_settings(X, y, labels, init, solver), X, y, labels, init)


def _key(settings: dict, X, y, labels, init) -> str:
    h = hashlib.sha256(json.dumps(settings, sort_keys=True, default=repr).encode())
    for name, t in (("X", X), ("y", y), ("labels", labels), ("init", init)):
        _tensor_bytes(h, name, None if t is None else torch.as_tensor(t))
    return h.hexdigest()


def solve_store() -> pathlib.Path | None:
    """The folder of :data:`SOLVE_STORE_ENV`, or None when it is unset or empty."""
    value = os.environ.get(SOLVE_STORE_ENV, "").strip()
    return pathlib.Path(value) if value else None


def _save(path: pathlib.Path, res: AdaptiveKernelResult) -> None:
    meta = {"converged": bool(res.converged), "residual": float(res.residual), "evaluations": int(res.evaluations),
            "history": res.history.to_dict(orient="list"), "columns": list(res.history.columns),
            "label_term": res.label_term, "width": float(res.width), "noise_var": float(res.noise_var),
            "tol": float(res.tol), "at_floor": bool(res.at_floor)}
    buffer = io.BytesIO()
    torch.save({"Sigma": res.Sigma.detach().cpu(), "fbar": res.fbar.detach().cpu(), "meta": json.dumps(meta)}, buffer)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, buffer.getvalue())


def _load(path: pathlib.Path, X, y, settings: dict) -> AdaptiveKernelResult | None:
    """The stored result, its kernel recomputed; None when the entry cannot be read (it is then solved again)."""
    try:
        entry = torch.load(path, map_location="cpu", weights_only=True)
        meta = json.loads(entry["meta"])
        history = pd.DataFrame(meta["history"], columns=meta["columns"])
    except Exception:  # noqa: BLE001 - a truncated or foreign file is a miss, and is overwritten
        return None
    problem = make_problem(X, y, noise_var=settings["noise_var"], sigma_w2=settings["sigma_w2"],
                           sigma_a2=settings["sigma_a2"], label_term=settings["label_term"])
    Sigma = entry["Sigma"].to(dtype=problem.X.dtype, device=problem.X.device)
    return AdaptiveKernelResult(Sigma, solver_kernel(problem, Sigma), entry["fbar"].to(problem.X.device),
                                meta["converged"], meta["residual"], meta["evaluations"], history, meta["label_term"],
                                meta["width"], meta["noise_var"], meta["tol"], at_floor=meta["at_floor"])


def stored_solve(X, y, *, labels=None, init=None, store=None, **solver) -> tuple[AdaptiveKernelResult, bool]:
    """``solve_adaptive_kernel(X, y, labels=labels, init=init, **solver)``, read from the store when it holds that
    solve: (result, True); else solved, stored when it converged, (result, False). ``store``: a folder; None: the
    one of :data:`SOLVE_STORE_ENV` (none: a plain solve). Chapters ``05_adaptive_kernel`` and ``06_trained_networks``.
    """
    store = solve_store() if store is None else pathlib.Path(store)
    if store is None:
        return solve_adaptive_kernel(X, y, labels=labels, init=init, **solver), False
    settings = _settings(X, y, labels, init, solver)
    path = store / f"{_key(settings, X, y, labels, init)}.pt"
    if path.is_file():
        res = _load(path, X, y, settings)
        if res is not None:
            return res, True
    res = solve_adaptive_kernel(X, y, labels=labels, init=init, **solver)
    if res.converged and math.isfinite(res.residual):
        _save(path, res)
    return res, False
