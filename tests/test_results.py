"""Reading a grid sweep's results.csv back into the summary schema (book chapter 06_trained_networks)."""
import json
import math

import pandas as pd
import pytest

import nckernels as nk
from nckernels.experiments.results import TRAINED_GRID_SLUGS, cell_scalars, read_cell_results


def _run(run, status, N, d0, base):
    row = {"run": run, "status": status, "error": "" if status == "ok" else "CellExecutionError: x", "seconds": 1.0,
           "finished": "2026-01-01T00:00:00", "notebook": f"runs/{run}.ipynb", "N_values": json.dumps([N]),
           "d0_values": json.dumps([d0]), "draws": 10, "epochs": 1000}
    if status == "ok":
        for i, slug in enumerate(TRAINED_GRID_SLUGS.values()):
            row.update({f"tn_cell_{slug}_log_mean": base + i, f"tn_cell_{slug}_log_std": 0.1,
                        f"tn_cell_{slug}_log_count": 10, f"tn_cell_{slug}_rel_mean": float(i),
                        f"tn_cell_{slug}_rel_std": 0.2, f"tn_cell_{slug}_rel_count": 10, f"tn_cell_{slug}_failed": i % 2})
    return row


def test_read_cell_results(tmp_path):
    out = tmp_path / "06_balanced"
    out.mkdir()
    rows = [_run("a", "ok", 128, 1, -2.0), _run("b", "ok", 256, 32, -1.0), _run("c", "failed", 512, 1, 0.0)]
    pd.DataFrame(rows).to_csv(out / "results.csv", index=False)
    sweep = read_cell_results(out, group="N", group_param="N_values")
    assert sweep.runs == 3 and sweep.failed_runs == 1 and sweep.draws == 10 and sweep.epochs == 1000
    assert sweep.source == f"read from {tmp_path.name}/06_balanced: 3 runs of 10 draws and 1000 epochs each, 1 failed"
    s = sweep.summary
    assert list(s.columns[:3]) == ["kernel", "N", "d0"] and len(s) == 2 * len(TRAINED_GRID_SLUGS)
    net = s[(s.kernel == "trained net") & (s.N == 256)].iloc[0]
    assert net["d0"] == 32 and net["log10_nc1_mean"] == -1.0 + 4 and net["relative_std"] == 0.2 and net["failed"] == 0
    assert s[(s.kernel == "NNGP") & (s.N == 128)]["failed"].iloc[0] == 1
    # the glued scalars of the last cell round-trip
    scalars = cell_scalars(s.sort_values(["kernel", "N", "d0"]).reset_index(drop=True), group="N")
    assert scalars["tn_cell_net_log_mean"] == 3.0 and scalars["tn_cell_net_log_count"] == 10
    assert scalars["tn_cell_nngp_failed"] == 1 and scalars["tn_cell_data_rel_mean"] == 0.0
    assert read_cell_results(tmp_path / "missing", group="N", group_param="N_values") is None


def test_read_cell_results_splits_and_defaults(tmp_path):
    out = tmp_path / "06_imbalanced"
    out.mkdir()
    row = _run("a", "ok", 0, 8, -2.0)
    row.pop("draws")
    row.pop("N_values")
    row["splits"] = json.dumps([[96, 160]])
    pd.DataFrame([row]).to_csv(out / "results.csv", index=False)
    sweep = read_cell_results(out, group="split", group_param="splits", draws=3, label="results/06_imbalanced")
    assert set(sweep.summary["split"]) == {"96/160"} and sweep.draws == 3
    assert sweep.source.startswith("read from results/06_imbalanced: 1 runs of 3 draws")


def test_cell_scalars_of_a_computed_grid():
    frame = nk.trained_network_grid([[4, 4], [6, 6]], [1, 2], 2, nk.TrainingConfig(width=6, epochs=2),
                                    kernels={"NNGP": lambda d: nk.nngp(d.X)})
    summary = nk.summarize(frame, by=("kernel", "N", "d0"))
    scalars = cell_scalars(summary, group="N")
    cell = frame[(frame.N == 12) & (frame.d0 == 2)]
    net = cell[cell.kernel == "trained net"]["log10_nc1"]
    assert scalars["tn_cell_net_log_mean"] == pytest.approx(net.mean(), rel=1e-12)
    assert scalars["tn_cell_net_log_count"] == 2 and scalars["tn_cell_nngp_failed"] == 0
    assert math.isnan(scalars["tn_cell_adaptive_log_mean"]) and scalars["tn_cell_adaptive_log_count"] == 0
    assert scalars["tn_cell_data_rel_mean"] == 0.0
    with pytest.raises(ValueError, match="group"):
        cell_scalars(summary, group="split")
