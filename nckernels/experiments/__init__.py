"""Layer 5, experiments: grids of cells with their seeds, the papermill sweep engine, the three scales, and
reading results back.

May import every layer below: :mod:`nckernels.validation`, :mod:`nckernels.data`, :mod:`nckernels.metrics`,
:mod:`nckernels.kernels`, :mod:`nckernels.models`.
"""
from .grids import *  # noqa: F401,F403
from .grids import __all__ as _grids
from .scales import *  # noqa: F401,F403
from .scales import __all__ as _scales
from .sweeps import *  # noqa: F401,F403
from .sweeps import __all__ as _sweeps

__all__ = [*_grids, *_scales, *_sweeps]
