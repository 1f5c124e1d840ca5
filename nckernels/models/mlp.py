r"""The one multi-layer perceptron of the package: x -> phi(W_1 x + b_1) -> ... -> phi(W_L h + b_L) -> W_out h + b_out.

Layer 4 (models). Used by chapters ``09_empirical_ntk`` (:class:`MLPClassifier`, He-normal initialisation)
and ``11_agop_trained`` (:class:`nckernels.models.agop.MLP`, PyTorch's default uniform initialisation);
both are thin subclasses of :class:`MLPNetwork` that fix its ``init``.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..validation import check_choice, check_device, check_float_dtype, check_generator, check_int, check_positive

__all__ = ["MLP_ACTIVATIONS", "MLP_INITS", "MLPNetwork", "MLPClassifier"]

MLP_ACTIVATIONS = {"relu": (nn.ReLU, torch.relu, 2.0), "tanh": (nn.Tanh, torch.tanh, 1.0)}
MLP_INITS = ("uniform", "normal")


class MLPNetwork(nn.Module):
    """Hidden layers ``hidden`` (nn.Linear each, widths ``widths``), activation phi, linear ``head``.

    Initialisation (``init``), drawn from ``generator`` layer by layer, hidden layers first, then the head:

    * "uniform": every weight, then its bias, ~ U(-b, b) with b = init_scale / sqrt(fan_in) (PyTorch's default
      bound, times ``init_scale``);
    * "normal": weights ~ N(0, init_scale^2 g / fan_in) (g = 2 for relu, 1 for tanh; the head uses g = 1),
      biases 0 (standard parametrisation).
    Chapters ``09_empirical_ntk`` and ``11_agop_trained``.
    """

    def __init__(self, d_in: int, widths, num_classes: int, *, activation: str = "relu", init: str = "uniform",
                 init_scale: float = 1.0, generator: torch.Generator | None = None, dtype=torch.float64, device=None):
        super().__init__()
        check_choice(activation, "activation", MLP_ACTIVATIONS)
        check_choice(init, "init", MLP_INITS)
        init_scale = check_positive(init_scale, "init_scale")
        check_float_dtype(dtype, "dtype")
        check_device(device, "device")
        check_generator(generator)
        if isinstance(widths, (str, bytes)) or not hasattr(widths, "__iter__"):
            raise TypeError(f"widths must be a sequence of hidden widths, got {widths!r}")
        widths = [check_int(w, "widths") for w in widths]
        dims = [check_int(d_in, "d_in"), *widths]
        num_classes = check_int(num_classes, "num_classes")
        if len(dims) < 2:
            raise ValueError(f"widths must list at least one hidden width, got {widths!r}")
        self.activation = activation
        self._act_module, self._phi, gain = MLP_ACTIVATIONS[activation]
        self.hidden = nn.ModuleList(nn.Linear(a, b, dtype=dtype) for a, b in zip(dims[:-1], dims[1:]))
        self.head = nn.Linear(dims[-1], num_classes, dtype=dtype)
        gdev = generator.device if generator is not None else torch.device("cpu")
        with torch.no_grad():
            for lin in [*self.hidden, self.head]:
                if init == "uniform":
                    bound = 1.0 / math.sqrt(lin.in_features)  # PyTorch's default uniform bound, drawn from generator
                    for p in (lin.weight, lin.bias):
                        u = torch.rand(p.shape, generator=generator, dtype=dtype, device=gdev)
                        p.copy_((2 * u - 1) * bound * init_scale)
                else:
                    g = 1.0 if lin is self.head else gain
                    std = init_scale * math.sqrt(g / lin.in_features)
                    lin.weight.copy_(std * torch.randn(lin.weight.shape, generator=generator, dtype=dtype, device=gdev))
                    lin.bias.zero_()
        if device is not None:
            self.to(device)

    @property
    def body(self) -> nn.Sequential:
        """The hidden layers with their activations as one ``nn.Sequential`` (the same parameters)."""
        layers = []
        for lin in self.hidden:
            layers += [lin, self._act_module()]
        return nn.Sequential(*layers)

    def tail(self, h: torch.Tensor, start: int) -> torch.Tensor:
        """The network from the input of hidden layer ``start`` (0-based) to the output."""
        for lin in self.hidden[start:]:
            h = self._phi(lin(h))
        return self.head(h)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features h_L(x): (B, d_in) -> (B, p)."""
        for lin in self.hidden:
            x = self._phi(lin(x))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(x, 0)

    def layer_inputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """[h_0 = x, h_1, ..., h_L]: the input of every hidden layer and the last hidden output."""
        hs = [x]
        for lin in self.hidden:
            hs.append(self._phi(lin(hs[-1])))
        return hs


class MLPClassifier(MLPNetwork):
    """f(x) = W h(x) + b with h the MLP body (``features``), ``hidden`` = (n_1, ..., n_L), He-normal init.

    :class:`MLPNetwork` with ``init="normal"`` (chapter ``09_empirical_ntk``).
    """

    def __init__(self, d_in: int, hidden, num_classes: int, *, activation: str = "relu", init_scale: float = 1.0,
                 generator: torch.Generator | None = None, dtype=torch.float64, device=None):
        if isinstance(hidden, (str, bytes)) or not hasattr(hidden, "__iter__"):
            raise TypeError(f"hidden must be a sequence of hidden widths, got {hidden!r}")
        widths = [check_int(h, "hidden") for h in hidden]
        num_classes = check_int(num_classes, "num_classes", minimum=2)
        super().__init__(d_in, widths, num_classes, activation=activation, init="normal",
                         init_scale=init_scale, generator=generator, dtype=dtype, device=device)
