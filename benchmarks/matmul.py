r"""bfloat16 matrix products on XLA: Flax's plain form against ssync_jax.models.precision's, side by side.

    python -m benchmarks.matmul                      # [50688, 1024] @ [1024, 1024]: one MOVi-C decoder layer
    python -m benchmarks.matmul --rows 4096 --repeats 2

The shape is a hidden layer of the MOVi-C MLP decoder at batch 2 x 4 frames (11 slots x 576 patches
= 50,688 rows). Printed, as GFLOP/s (2·M·K·N per product, median of --repeats after a compiling run):

- each product alone, in every form a layer's forward and backward make (x @ w, g @ wᵀ, xᵀ @ g):
  float32; bfloat16 as XLA gets it from Flax and autodiff (bfloat16 result, transposes folded into
  the product); bfloat16 as `precision.affine` writes it (float32 result, transposed copies);
- a whole layer, relu(x @ w + b), forward + backward (3 products and the bias gradient): float32
  `nn.Dense`; bfloat16 `nn.Dense`; bfloat16 `ssync_jax.models.layers.Dense` (every Dense layer of our
  models: `precision.dense`); each one's speed-up over float32.
"""

import jax
import jax.numpy as jnp
from absl import app, flags
from flax import linen as nn

from benchmarks import machine
from benchmarks.train_step import median_seconds
from ssync_jax.models import layers, precision


def product_forms(rows: int, width: int) -> dict[str, tuple]:
    """Name -> (function, arguments) of each product form at [rows, width] @ [width, width]."""
    keys = jax.random.split(jax.random.key(0), 3)
    x, g = (jax.random.normal(key, (rows, width)) for key in keys[:2])  # activations, output gradients
    w = jax.random.normal(keys[2], (width, width))
    bf16 = [a.astype(jnp.bfloat16) for a in (x, g, w)]
    f32 = jnp.float32
    fast_t = precision.transposed_copy
    return {
        "float32       x @ w": (lambda x, w: x @ w, (x, w)),
        "float32       g @ wᵀ": (lambda g, w: g @ w.T, (g, w)),
        "float32       xᵀ @ g": (lambda x, g: x.T @ g, (x, g)),
        "bf16 plain    x @ w": (lambda x, w: x @ w, (bf16[0], bf16[2])),
        "bf16 plain    g @ wᵀ": (lambda g, w: g @ w.T, (bf16[1], bf16[2])),
        "bf16 plain    xᵀ @ g": (lambda x, g: x.T @ g, (bf16[0], bf16[1])),
        "bf16 ours     x @ w": (lambda x, w: jnp.dot(x, w, preferred_element_type=f32), (bf16[0], bf16[2])),
        "bf16 ours     g @ wᵀ": (lambda g, w: jnp.dot(g, fast_t(w), preferred_element_type=f32), (bf16[1], bf16[2])),
        "bf16 ours     xᵀ @ g": (lambda x, g: jnp.dot(fast_t(x), g, preferred_element_type=f32), (bf16[0], bf16[1])),
    }


def layer_step(rows: int, width: int, layer: nn.Module):
    """Jitted forward + backward of relu(layer(x)) (w.r.t. x and the parameters), and its arguments."""
    x = jax.random.normal(jax.random.key(1), (rows, width))
    params = layer.init(jax.random.key(2), x[:1])

    def loss(params, x):
        return jnp.sum(nn.relu(layer.apply(params, x)).astype(jnp.float32) ** 2)

    return jax.jit(jax.grad(loss, argnums=(0, 1))), (params, x)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    options = flags.FLAGS
    rows, width, repeats = options.rows, options.width, options.repeats
    flops = 2 * rows * width * width
    print(f"[{rows}, {width}] @ [{width}, {width}]; {machine.describe()}; median of {repeats}")
    print("  one product, GFLOP/s:")
    for name, (fn, args) in product_forms(rows, width).items():
        print(f"    {name:24s} {flops / median_seconds(jax.jit(fn), args, repeats) / 1e9:7.1f}")
    print("  a Dense + ReLU layer, forward + backward, ms:")
    bf16 = jnp.bfloat16
    steps = {
        "float32 nn.Dense": layer_step(rows, width, nn.Dense(width)),
        "bfloat16 nn.Dense": layer_step(rows, width, nn.Dense(width, dtype=bf16)),
        "bfloat16 layers.Dense": layer_step(rows, width, layers.Dense(width, dtype=bf16)),
    }
    seconds = {name: median_seconds(fn, args, repeats) for name, (fn, args) in steps.items()}
    for name, value in seconds.items():
        ratio = seconds["float32 nn.Dense"] / value
        print(f"    {name:34s} {value * 1e3:8.1f}   {3 * flops / value / 1e9:5.0f} GFLOP/s   {ratio:4.2f}x float32")


if __name__ == "__main__":
    # Defined here, not at import, so that importing this module beside other CLIs' flags cannot clash.
    flags.DEFINE_integer("rows", 50688, "M: rows of the activations (slots x patches x frames x batch).")
    flags.DEFINE_integer("width", 1024, "K = N: the layer's width.")
    flags.DEFINE_integer("repeats", 3, "Timed calls per figure (the median is printed).", lower_bound=1)
    app.run(main)
