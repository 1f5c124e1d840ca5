r"""Committed paper-scale results must still come out of the code: a cheap part of each result set, re-computed.

Layer 5, experiments; imports :mod:`nckernels.experiments.paper` (the result sets), and, for the re-computation,
the grids of :mod:`nckernels.experiments.grids` and :mod:`nckernels.experiments.beyond` and the models below.
:func:`reproduce_cell` re-computes, from the parameters and seed the provenance recorded, rows of a committed set
that take seconds (the smallest grid cell's kernels; a deep model's first layer; a network at initialisation) and
returns them next to the committed values; ``tests/test_paper.py`` requires them equal to 1e-10 (relative).
Book chapters ``05_adaptive_kernel``, ``06_trained_networks`` and ``09_empirical_ntk`` to ``13_hard_data``.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .paper import PaperResults

__all__ = ["reproduce_cell"]


def _run_parameters(result: PaperResults, run: str) -> dict:
    for entry in result.provenance.get("runs", []):
        if entry.get("run") == run:
            return dict(entry.get("parameters") or {})
    raise ValueError(f"{result.name}: run {run} has no parameters in the provenance")


def reproduce_cell(result: PaperResults) -> pd.DataFrame:
    """Re-compute the data and kernel rows of the smallest cell (least N, least d0) and draw 0 of ``result``.

    The cell is drawn and measured as its chapter did, from the parameters the provenance recorded for its
    run: chapter ``06_trained_networks`` (data, NNGP, NTK, adaptive: no training), chapter
    ``05_adaptive_kernel`` (data, NNGP, both adaptive kernels), ``09_empirical_ntk``, ``10_deep_rfm`` and ``11_agop_trained``
    (initialisation and first-layer rows, see their private helpers in this module), ``12_depth_and_activation`` (data and the deep
    NNGP and NTK of every activation and depth of its kernel grid), ``13_hard_data`` (data, NNGP, NTK and the
    adaptive kernel of the smallest family cell). Returns the committed rows joined with the re-computed ones:
    columns kernel (and depth, activation, family where the set has them), nc1 (committed), nc1_now, status,
    status_now.
    """
    from .beyond import deep_kernel_grid, hard_data_grid
    from .cells import Cell, Measure, run_grid
    from .grids import adaptive_measure, network_kernels
    from ..kernels.two_layer import nngp
    from ..models.adaptive import LABEL_TERMS, resolve_variances
    from ..models.training import TrainingConfig

    frame = result.frame
    chapter = str(result.provenance.get("chapter", ""))
    for suffix, recompute in _BY_CHAPTER.items():
        if chapter.endswith(suffix):
            return recompute(result)
    data = frame[(frame["draw"] == 0) & (frame["kernel"] == "data")]
    if data.empty:
        raise ValueError(f"{result.name}: no data row of draw 0")
    first = data.sort_values(["N", "d0", "split"]).iloc[0]
    same = (frame["run"] == first["run"]) & (frame["split"] == first["split"]) & (frame["d0"] == first["d0"]) \
        & (frame["draw"] == 0)
    for column in ("part", "family"):
        if column in frame.columns:
            same &= frame[column] == first[column]
    cell_rows = frame[same]
    keys = ["kernel"] + [c for c in ("depth", "activation", "family") if c in frame.columns]
    params = _run_parameters(result, first["run"])
    split = tuple(int(n) for n in str(first["split"]).split("/"))
    cell = Cell(split, int(first["d0"]), 0, seed=params.get("seed", 0))
    now = None
    if chapter.endswith("06_trained_networks.md"):
        config = TrainingConfig(width=params["width"], lr=params["lr"], weight_decay=params["weight_decay"],
                                sigma_a=params["sigma_a"], epochs=params["epochs"])
        kernels = network_kernels(config, adaptive_max_N=params["adaptive_max_N"])
        measures = [Measure(k, fn) for k, fn in kernels.items()]
        between = config.between_weights
    elif chapter.endswith("05_adaptive_kernel.md"):
        sigma_a2 = params.get("sigma_a2", 1 / 128)
        sigma_w_nngp = math.sqrt(resolve_variances(sigma_a2=sigma_a2)[0])
        measures = [Measure("NNGP", lambda d: nngp(d.X, sigma_w=sigma_w_nngp))]
        measures += [Measure(f"adaptive ({lt})", adaptive_measure(lt, width=params.get("width", 500),
                                                                  noise_var=params.get("noise_var", 1e-6),
                                                                  sigma_a2=sigma_a2, tol=params.get("tol", 1e-10)))
                     for lt in LABEL_TERMS]
        between = "uniform"
    elif chapter.endswith("12_depth_and_activation.md"):
        mean = params.get("mean", 2.0)
        now = deep_kernel_grid([list(split)], [int(first["d0"])], 1, activations=params["grid_activations"],
                               depths=params["grid_depths"], means=(-mean, mean), std=params.get("std", 0.5),
                               seed=params.get("seed", 0))
    elif chapter.endswith("13_hard_data.md"):
        config = TrainingConfig(width=params["width"], lr=params["lr"], weight_decay=params["weight_decay"],
                                sigma_a=params["sigma_a"], epochs=params["epochs"])
        family, d0 = str(first["family"]), int(first["d0"])
        solver = dict(noise_var=params["noise_var"], schedule=params["schedule"], max_iter=params["max_iter"])
        solved = d0 in set(int(d) for d in params["adaptive_d0s"]) and params["adaptive_draws"] >= 1
        now = hard_data_grid({family: list(split)}, [d0], 1, config=config,
                             options={"anisotropic": {"stds": params["aniso_stds"]}},
                             adaptive=solver if solved else None, seed=params.get("seed", 0), train=False)
        cell_rows = cell_rows[cell_rows["kernel"] != "adaptive"] if not solved else cell_rows
    else:
        raise ValueError(f"{result.name}: no cheap re-computation is defined for chapter {chapter or '?'}")
    if now is None:
        now = run_grid([cell], measures, between_weights=between)
    merged = cell_rows[keys + ["nc1", "status"]].merge(
        now[keys + ["nc1", "status"]].rename(columns={"nc1": "nc1_now", "status": "status_now"}), on=keys, how="left")
    return merged.reset_index(drop=True)


def _status(out: pd.DataFrame) -> pd.DataFrame:
    """Columns status and status_now: "ok" where the committed / re-computed value is finite."""
    return out.assign(status=np.where(np.isfinite(out["nc1"]), "ok", "failed"),
                      status_now=np.where(np.isfinite(out["nc1_now"]), "ok", "failed"))


def _reproduce_deep_rfm(result: PaperResults) -> pd.DataFrame:
    """Chapter ``10_deep_rfm``: layer 0 (input, AGOP projection, random features) of the digits and Gaussian Deep
    RFM runs and of the default ablation, and the comparison rows that need no EoS solve, drawn as the chapter
    draws them (same generators and seeds). Columns kernel (what the row is), nc1, nc1_now, status, status_now."""
    import torch

    from ..data.datasets import load_digits
    from ..data.synthetic import gaussian_classes
    from ..kernels.two_layer import nngp
    from ..metrics import nc1_from_features, nc1_from_kernel, psd_sqrt
    from ..models.rfm import deep_rfm, kernel_agop, krr_fit

    entry = result.provenance["runs"][0]
    p = dict(entry["parameters"])
    seed = p.get("seed", 0)
    frame = result.frame
    if "run" in frame.columns:
        frame = frame[frame["run"] == entry["run"]]
    committed, now = {}, {}
    X, labels = load_digits()
    gen = torch.Generator().manual_seed(seed)  # the chapter's split and generator; layer 0 of depth 1 = of the run
    perm = torch.randperm(X.shape[0], generator=gen)
    train, test = perm[: p["digits_train"]], perm[p["digits_train"]:]
    layer0 = {"digits": deep_rfm(X[train], labels[train], X_test=X[test], labels_test=labels[test], depth=1,
                                 width=p["width"], bandwidth=p["bandwidth"], ridge=p["ridge"], generator=gen).frame}
    ggen = torch.Generator().manual_seed(seed + 1)
    gmeans = torch.randn(len(p["gauss_sizes"]), p["gauss_d"], generator=ggen, dtype=torch.float64) / math.sqrt(p["gauss_d"])
    gdata = gaussian_classes(p["gauss_sizes"], p["gauss_d"], means=gmeans, std=p["gauss_std"], generator=ggen)
    layer0["gauss"] = deep_rfm(gdata.X, gdata.labels, depth=1, width=p["gauss_width"], bandwidth=p["bandwidth"],
                               ridge=p["ridge"], generator=ggen).frame
    sub = torch.randperm(X.shape[0], generator=torch.Generator().manual_seed(seed + 2))[: p["ablation_train"]]
    layer0["ablation"] = deep_rfm(X[sub], labels[sub], depth=1, width=p["ablation_width"], bandwidth=p["bandwidth"],
                                  ridge=p["ridge"], generator=torch.Generator().manual_seed(seed + 3)).frame
    for part, new in layer0.items():
        rows = frame[(frame["part"] == part) & (frame["layer"] == 0)]
        if part == "ablation":
            rows = rows[rows["setting"] == "default"]
        for stage in ("input",) if part == "ablation" else ("input", "projected", "features"):
            key = f"{part}{' default' if part == 'ablation' else ''}, layer 0, nc1_{stage}"
            committed[key] = float(rows[f"nc1_{stage}"].iloc[0]) if len(rows) else math.nan
            now[key] = float(new[f"nc1_{stage}"].iloc[0])
    egen = torch.Generator().manual_seed(seed + 4)
    edata = gaussian_classes([p["eos_per_class"], p["eos_per_class"]], p["eos_d"], std=p["eos_std"], generator=egen)
    Xn = edata.X / edata.X.norm(dim=1, keepdim=True)
    G0 = kernel_agop(krr_fit(Xn, edata.y, bandwidth=p["bandwidth"], ridge=p["ridge"]))
    M0 = G0 / G0.abs().max()
    comparison = {"data X": nc1_from_features(edata.X, edata.labels).nc1,
                  "erf NNGP": nc1_from_kernel(nngp(edata.X, activation="erf"), edata.labels).nc1,
                  "normalised data": nc1_from_features(Xn, edata.labels).nc1,
                  "AGOP projection X M^1/2 (layer 0)": nc1_from_features(Xn @ psd_sqrt(M0), edata.labels).nc1}
    rows = frame[frame["part"] == "comparison"].set_index("representation")["nc1"]
    for name, value in comparison.items():
        committed[f"comparison, {name}"] = float(rows.get(name, math.nan))
        now[f"comparison, {name}"] = float(value)
    return _status(pd.DataFrame({"kernel": list(committed), "nc1": list(committed.values()),
                                 "nc1_now": [now[k] for k in committed]}))


def _reproduce_agop_trained(result: PaperResults) -> pd.DataFrame:
    """Chapter ``11_agop_trained``: the data NC1 (the input of hidden layer 1) and, per initialisation, each hidden
    layer's NC1 and the loss at epoch 0, from the initial MLP drawn as ``train_mlp`` draws it (generator seed + 1)
    on the chapter's training split (randperm of seed); no training, no AGOP."""
    import torch

    from ..data.datasets import load_digits
    from ..data.targets import class_targets
    from ..models.agop import MLP, mlp_layer_analysis
    from ..validation import check_labels

    frame = result.frame
    run = frame["run"].iloc[0]
    params = _run_parameters(result, run)
    seed, n = params.get("seed", 0), params["train_size"]
    X, labels = load_digits()
    perm = torch.randperm(X.shape[0], generator=torch.Generator().manual_seed(seed))
    X, labels = X[perm[:n]], labels[perm[:n]]
    index, sizes = check_labels(labels, n)
    Y = class_targets(index, sizes.numel(), encoding="onehot", dtype=X.dtype)  # as train_mlp builds it
    rows = frame[frame["run"] == run]
    got = []
    for name, scale in (("small init", params["small_init"]), ("standard init", params["standard_init"])):
        model = MLP(X.shape[1], params["width"], params["depth"], sizes.numel(), init_scale=scale, dtype=X.dtype,
                    generator=torch.Generator().manual_seed(seed + 1))
        layers = mlp_layer_analysis(model, X, index, with_agop=False)
        with torch.no_grad():
            values = {"loss": float(((model(X) - Y) ** 2).sum(1).mean())}
        values.update({f"nc1_{int(r['layer'])}": float(r["nc1_output"]) for _, r in layers.iterrows()})
        start = rows[(rows["part"] == "history") & (rows["init"] == name) & (rows["epoch"] == 0)]
        start = start.set_index("metric")["value"]
        got += [{"kernel": f"{name}, epoch 0, {metric}", "nc1": float(start.get(metric, math.nan)), "nc1_now": value}
                for metric, value in values.items()]
    data = rows[(rows["part"] == "layers") & (rows["layer"] == 1) & (rows["metric"] == "nc1_input")]["value"]
    got.append({"kernel": "data", "nc1": float(data.iloc[0]), "nc1_now": float(layers["nc1_input"].iloc[0])})
    return _status(pd.DataFrame(got))


def _reproduce_empirical_ntk(result: PaperResults) -> pd.DataFrame:
    """Chapter ``09_empirical_ntk``: the wide network's relative NTK error at the smallest width (draw 0), and the
    step-0 probe (data, initial weights and probe samples only) of the Gaussian and digits trainings and of the first
    ablation setting that trained, drawn as the chapter draws them. Invariant statistics, ``nc1_pinv`` and accuracy
    are left out (a pseudo-inverse, and a value that can be 0). Columns kernel, nc1, nc1_now, status, status_now."""
    import torch

    from ..data.datasets import class_balanced_subset, load_digits
    from ..data.synthetic import gaussian_classes
    from ..kernels.empirical import empirical_ntk
    from ..kernels.two_layer import ntk
    from ..models.probed import TwoLayerNTKNet, train_probed_mlp

    run = str(result.frame["run"].iloc[0])
    frame = result.frame[result.frame["run"] == run]
    p = _run_parameters(result, run)
    seed = p.get("seed", 0)
    out = []
    gen = torch.Generator().manual_seed(seed)  # the wide network against its closed-form NTK, the chapter's draws
    Xw = torch.randn(p["wide_points"], p["wide_d0"], dtype=torch.float64, generator=gen)
    net_kw = dict(activation="erf", sigma_w=1.5, sigma_b=0.5, sigma_a=1.0)  # the chapter's network
    h = p["wide_widths"][0]
    emp = empirical_ntk(TwoLayerNTKNet(p["wide_d0"], h, generator=gen, **net_kw), Xw)[:, :, 0, 0]
    theta = ntk(Xw, **net_kw)
    wide = frame[(frame["part"] == "wide") & (frame["width"] == h) & (frame["draw"] == 0)].iloc[0]
    out.append({"kernel": f"wide h={h} draw 0: rel. error", "nc1": float(wide["rel. error"]), "status": wide["status"],
                "nc1_now": float(torch.linalg.matrix_norm(emp - theta) / torch.linalg.matrix_norm(theta)),
                "status_now": "ok"})
    gen = torch.Generator().manual_seed(seed)  # the step-0 probes (one step is taken; the step-0 row precedes it)
    C, d = p["gauss_classes"], p["gauss_d"]
    gauss = gaussian_classes([p["gauss_per_class"]] * C, d, means=torch.randn(C, d, dtype=torch.float64, generator=gen),
                             std=1.0, generator=gen, shuffle=True)
    Xd_all, ld_all = load_digits()
    sub = class_balanced_subset(ld_all, p["digits_per_class"], generator=gen)
    opt = dict(seed=seed, probe_per_class=p["probe_per_class"], momentum=p["momentum"], weight_decay=p["weight_decay"],
               steps=1, probe_every=1)
    training = frame[frame["part"] == "training"]
    ablation = frame[(frame["part"] == "ablation") & (frame["status"] == "ok")].sort_values(["init scale", "lr", "step"])
    first = ablation.iloc[0]
    cases = [("Gaussian classes", training[training["data"] == "Gaussian classes"], gauss.X, gauss.labels,
              dict(hidden=p["gauss_hidden"], lr=p["gauss_lr"], init_scale=p["gauss_init_scale"])),
             ("digits", training[training["data"] == "digits"], Xd_all[sub], ld_all[sub],
              dict(hidden=p["digits_hidden"], lr=p["digits_lr"])),
             (f"ablation s={first['init scale']:g} lr={first['lr']:g}",
              ablation[(ablation["init scale"] == first["init scale"]) & (ablation["lr"] == first["lr"])],
              gauss.X, gauss.labels, dict(hidden=p["gauss_hidden"], lr=float(first["lr"]),
                                          init_scale=float(first["init scale"])))]
    metrics = ("loss", "nc1", "nc2", "nc3", "alignment feature", "alignment output",
               "kappa_d", "kappa_c", "kappa_n", "gamma_d", "gamma_c", "gamma_n")
    for label, committed, X, labels, kw in cases:
        row = committed.sort_values("step").iloc[0]
        if float(row["step"]) != 0:
            raise ValueError(f"{result.name}: no step-0 row for {label}")
        now = train_probed_mlp(X, labels, kw.pop("hidden"), **kw, **opt).frame.iloc[0]
        out += [{"kernel": f"{label} step 0: {m}", "nc1": float(row[m]), "nc1_now": float(now[m]),
                 "status": row["status"], "status_now": "ok"} for m in metrics]
    return pd.DataFrame(out, columns=["kernel", "nc1", "nc1_now", "status", "status_now"])


_BY_CHAPTER = {"09_empirical_ntk.md": _reproduce_empirical_ntk, "10_deep_rfm.md": _reproduce_deep_rfm,
               "11_agop_trained.md": _reproduce_agop_trained}
