"""nckernels: kernel analysis of neural collapse (NC1) in shallow networks.

Every formula the book uses lives in this package; each function's docstring names the book equation or
chapter that derives it. The folders are layers, and data flows one way (a module imports only from the
layers before it)::

    0 core         validation (argument checks), errors (the package's exceptions)
    1 data         data/         synthetic Gaussian classes, bundled digits
    2 metrics      metrics.py    NC1 (features, kernel, block sums, batched), NC2, NC3, alignment, NFA
    3 kernels      kernels/      dual activations, NNGP/NTK, population limits, reference variants, empirical NTK
    4 models       models/       finite networks and their solvers (training, EoS, block NTK flow, Deep RFM, MLPs)
    5 experiments  experiments/  grids and seeds, sweeps, scales, results
    6 figures      plotting.py   one figure style; plot functions (ax, data, *, ...)

Metrics sit below kernels and models because they are pure functions of features or Gram matrices: a model
monitors them while it trains, and a kernel's NC1 is a metric of its Gram matrix. The names below are the
public API (``nckernels.X``); the old flat module paths (``nckernels.collapse``, ``nckernels.training``,
...) remain importable as aliases of their new homes.
"""
import importlib as _importlib
import sys as _sys
import warnings as _warnings

# tqdm.auto falls back to a text bar in a kernel without ipywidgets; its warning about that is noise in every
# executed chapter and on the terminal of `python -m nckernels run`
_warnings.filterwarnings("ignore", message="IProgress not found", module="tqdm")

from .errors import *  # noqa: F401,F403
from .data import *  # noqa: F401,F403
from .metrics import *  # noqa: F401,F403
from .kernels import *  # noqa: F401,F403
from .models import *  # noqa: F401,F403
from .experiments import *  # noqa: F401,F403
from .plotting import *  # noqa: F401,F403
from . import plotting, style  # noqa: F401 - nk.style.use_book_style(), nk.plotting

__version__ = "0.1.0"

# Flat module paths of versions <= 0.1 -> their homes in the layered layout (kept so old notebooks import).
_MOVED = {
    "collapse": "metrics", "data": "data.synthetic", "datasets": "data.datasets", "duals": "kernels.duals",
    "two_layer": "kernels.two_layer", "limits": "kernels.population", "reference": "kernels.reference",
    "empirical_ntk": "models.probed", "training": "models.training", "fused": "models.fused",
    "adaptive": "models.adaptive", "ntk_collapse": "models.block_ntk", "rfm": "models.rfm", "agop": "models.agop",
    "grids": "experiments.grids", "sweeps": "experiments.sweeps", "scales": "experiments.scales",
}
for _old, _new in _MOVED.items():
    if _old != "data":  # nckernels.data is the data layer itself, which re-exports data.synthetic's names
        _sys.modules.setdefault(f"{__name__}.{_old}", _importlib.import_module(f".{_new}", __name__))
