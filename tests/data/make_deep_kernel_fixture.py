"""Write tests/data/deep_kernels_nt.npz: neural-tangents' stax NNGP/NTK of deep fully connected nets (the oracle).

Run OUTSIDE the project's .venv, in a throwaway venv (never add jax or neural-tangents to the lock):

    python3 -m venv /tmp/ntvenv && /tmp/ntvenv/bin/pip install neural-tangents "jax==0.4.30" "jaxlib==0.4.30" numpy
    # neural-tangents 0.6.5 needs jax 0.4.x; its experimental module imports tf2jax (unused): an empty tf2jax.py stub will do
    /tmp/ntvenv/bin/python tests/data/make_deep_kernel_fixture.py

Network: stax.serial(*[Dense(1, W_std=sigma_w, b_std=sigma_b, parameterization='ntk'), Act()] * depth,
Dense(1, W_std=sigma_a, b_std=None)); Act in Erf() (= erf(x): a=b=1, c=0), Relu(), Gelu(approximate=False)
(= x Phi(x)), and tanh through ElementwiseNumerical(jnp.tanh, deg=DEG_TANH) (neural-tangents' own
Gauss-Hermite, an independent implementation of the same integral). The returned nngp is the read-out's
kernel, sigma_a^2 times nckernels' deep_nngp (the last hidden layer's post-activation kernel); the ntk is
nckernels' deep_ntk itself.
"""
import pathlib

import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from neural_tangents import stax  # noqa: E402

DEG_TANH = 200
X = np.array([[0.3, -1.2, 0.8], [1.5, 0.2, -0.4], [-0.7, -0.9, 0.1],
              [0.05, 0.6, 1.9], [-2.1, 0.4, -0.3], [0.9, 1.1, 1.0]])
Z = np.array([[1.0, -0.5, 0.25], [-0.2, 2.0, -1.1], [0.6, 0.6, -0.6], [-1.4, -0.3, 0.9]])
SETTINGS = {"a": dict(sigma_w=1.5, sigma_b=0.3, sigma_a=1.2), "b": dict(sigma_w=1.0, sigma_b=0.0, sigma_a=1.0)}
DEPTHS = (1, 2, 3, 5)
ACTS = {"erf": stax.Erf, "relu": stax.Relu, "gelu": lambda: stax.Gelu(approximate=False),
        "tanh": lambda: stax.ElementwiseNumerical(jnp.tanh, deg=DEG_TANH)}

out = {"X": X, "Z": Z, "depths": np.array(DEPTHS)}
for key, s in SETTINGS.items():
    out[f"{key}/settings"] = np.array([s["sigma_w"], s["sigma_b"], s["sigma_a"]])
    for name, act in ACTS.items():
        depths = DEPTHS[:2] if name == "tanh" else DEPTHS
        for pair, (A, B) in {"XX": (X, None), "XZ": (X, Z)}.items():
            stack = []  # (depth, [nngp, ntk], n, m)
            for depth in depths:
                layers = [stax.Dense(1, W_std=s["sigma_w"], b_std=s["sigma_b"], parameterization="ntk"), act()] * depth
                readout = stax.Dense(1, W_std=s["sigma_a"], b_std=None, parameterization="ntk")
                k = stax.serial(*layers, readout)[2](A, B, ("nngp", "ntk"))
                stack.append([np.asarray(k.nngp), np.asarray(k.ntk)])
            out[f"{key}/{name}/{pair}"] = np.array(stack)
path = pathlib.Path(__file__).with_name("deep_kernels_nt.npz")
np.savez_compressed(path, **out)
print(f"wrote {path} ({path.stat().st_size} bytes, {len(out)} arrays)")
