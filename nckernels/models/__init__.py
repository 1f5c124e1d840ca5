"""Layer 4, models: finite networks and the solvers that fit them: batched two-layer training (``training``: the
trainer and its fused CPU step; ``training_config``: configuration, initialisation, history; ``training_oracle``: the
autograd oracle), the adaptive kernel of the Equations of State (package ``adaptive``: problem, map, solver), the block
NTK gradient flow (``block_ntk``), Deep RFM (``rfm``), the one MLP (``mlp``), the NTK-probed training of chapter 09
(``probed``), trained MLPs analysed layer by layer (``agop``) and deep fully connected nets trained by full-batch
gradient descent (``deep_net``).

The two-layer network itself (its one random draw and forward map, both parametrisations) is defined next to its
kernels in :mod:`nckernels.kernels.two_layer`; every model here uses that definition.

May import: :mod:`nckernels.validation`, :mod:`nckernels.errors`, :mod:`nckernels.data`, :mod:`nckernels.metrics`,
:mod:`nckernels.kernels`.
"""
from .adaptive import *  # noqa: F401,F403
from .adaptive import __all__ as _adaptive
from .agop import *  # noqa: F401,F403
from .agop import __all__ as _agop
from .block_ntk import *  # noqa: F401,F403
from .block_ntk import __all__ as _block_ntk
from .deep_net import *  # noqa: F401,F403
from .deep_net import __all__ as _deep_net
from .mlp import *  # noqa: F401,F403
from .mlp import __all__ as _mlp
from .probed import *  # noqa: F401,F403
from .probed import __all__ as _probed
from .rfm import *  # noqa: F401,F403
from .rfm import __all__ as _rfm
from .training import *  # noqa: F401,F403
from .training import __all__ as _training

__all__ = [*_adaptive, *_agop, *_block_ntk, *_deep_net, *_mlp, *_probed, *_rfm, *_training]
