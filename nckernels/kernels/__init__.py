"""Layer 3, kernels: dual activations, the NNGP and NTK of two-layer networks (closed forms and population
limits), deep nets' kernels (``deep``) and Gauss-Hermite duals of any activation (``quadrature``), the reference
code's variants, and the empirical NTK of any torch model.

May import: :mod:`nckernels.validation`, :mod:`nckernels.data`, :mod:`nckernels.metrics`.
"""
from .duals import *  # noqa: F401,F403
from .duals import __all__ as _duals
from .deep import *  # noqa: F401,F403
from .deep import __all__ as _deep
from .empirical import *  # noqa: F401,F403
from .empirical import __all__ as _empirical
from .population import *  # noqa: F401,F403
from .population import __all__ as _population
from .quadrature import *  # noqa: F401,F403
from .quadrature import __all__ as _quadrature
from .reference import *  # noqa: F401,F403
from .reference import __all__ as _reference
from .two_layer import *  # noqa: F401,F403
from .two_layer import __all__ as _two_layer

__all__ = [*_duals, *_deep, *_empirical, *_population, *_quadrature, *_reference, *_two_layer]
