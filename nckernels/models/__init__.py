"""Layer 4, models: finite networks and the solvers that fit them (batched two-layer training and its fused CPU
step, the adaptive kernel of the Equations of State, the block NTK gradient flow, Deep RFM, trained MLPs).

May import: :mod:`nckernels.validation`, :mod:`nckernels.data`, :mod:`nckernels.metrics`, :mod:`nckernels.kernels`.
"""
from .adaptive import *  # noqa: F401,F403
from .adaptive import __all__ as _adaptive
from .agop import *  # noqa: F401,F403
from .agop import __all__ as _agop
from .block_ntk import *  # noqa: F401,F403
from .block_ntk import __all__ as _block_ntk
from .rfm import *  # noqa: F401,F403
from .rfm import __all__ as _rfm
from .training import *  # noqa: F401,F403
from .training import __all__ as _training

__all__ = [*_adaptive, *_agop, *_block_ntk, *_rfm, *_training]
