"""Layer 5, experiments: one grid engine (cells, measures, one row schema, summaries), the book's grids, the
papermill sweep engine, the three scales, and reading sweep results back.

May import every layer below: :mod:`nckernels.errors`, :mod:`nckernels.validation`, :mod:`nckernels.data`,
:mod:`nckernels.metrics`, :mod:`nckernels.kernels`, :mod:`nckernels.models`. Within the layer:
cells, solves <- grids <- beyond; scales <- sweeps <- solves, results, paper <- reproduce, report.
"""
from .cells import *  # noqa: F401,F403
from .cells import __all__ as _cells
from .solves import *  # noqa: F401,F403
from .solves import __all__ as _solves
from .grids import *  # noqa: F401,F403
from .grids import __all__ as _grids
from .beyond import *  # noqa: F401,F403
from .beyond import __all__ as _beyond
from .scales import *  # noqa: F401,F403
from .scales import __all__ as _scales
from .sweeps import *  # noqa: F401,F403
from .sweeps import __all__ as _sweeps
from .results import *  # noqa: F401,F403
from .results import __all__ as _results
from .paper import *  # noqa: F401,F403
from .paper import __all__ as _paper
from .reproduce import *  # noqa: F401,F403
from .reproduce import __all__ as _reproduce
from .report import *  # noqa: F401,F403
from .report import __all__ as _report

__all__ = [*_cells, *_solves, *_grids, *_beyond, *_scales, *_sweeps, *_results, *_paper, *_reproduce, *_report]
