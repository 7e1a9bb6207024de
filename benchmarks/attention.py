r"""The frozen ViT's self-attention on XLA:CPU: the batched form against the per-head form, side by side.

    python -m benchmarks.attention                   # MOVi-C: 8 frames of 577 tokens, 6 heads of 64
    python -m benchmarks.attention --frames 2 --repeats 3

Printed, for float32 and bfloat16 (median of --repeats after a compiling run), in ms and in GFLOP/s
(4·B·H·L²·Dh for the two products):

- `precision.attention` in each form on the same q, k, v: batched ([B, H, L, L] products and softmax,
  which XLA:CPU fuses into one slow kernel) and per head (a `lax.map` over frames x heads of plain
  row-major products), and their ratio;
- the whole frozen DINOv2 ViT-S/14 forward at 336² (random weights) as the model runs it, in GFLOP/s
  and as a fraction of a plain [4616, 384] @ [384, 1536] product's rate in the same dtype (the ViT's
  MLP product at this batch: the matrix-product rate the backbone can reach here).
"""

import jax
import jax.numpy as jnp
from absl import app, flags

from benchmarks import machine
from benchmarks.train_step import median_seconds
from ssync_jax.models import dinov2, precision

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
EMBED, HEADS, PATCH, IMAGE = 384, 6, 14, 336


def vit_flop(frames: int, depth: int) -> float:
    """Forward FLOP of ViT-S/14 at 336²: the patch embedding and, per block, q/k/v, the projection, the
    MLP and the two attention products."""
    tokens, patches = (IMAGE // PATCH) ** 2 + 1, (IMAGE // PATCH) ** 2
    block = 2 * tokens * EMBED * (3 * EMBED + EMBED + 2 * 4 * EMBED) + 4 * tokens**2 * EMBED
    return frames * (2 * patches * PATCH**2 * 3 * EMBED + depth * block)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    options = flags.FLAGS
    frames, repeats = options.frames, options.repeats
    length, head_dim = (IMAGE // PATCH) ** 2 + 1, EMBED // HEADS
    print(
        f"Self-attention of the frozen ViT-S/14: {frames} frames x {length} tokens x {HEADS} heads of {head_dim}; "
        f"{machine.describe()}; median of {repeats}"
    )
    keys = jax.random.split(jax.random.key(0), 4)
    attention_flop = 4 * frames * HEADS * length**2 * head_dim
    for name, dtype in DTYPES.items():
        q, k, v = (jax.random.normal(key, (frames, length, HEADS, head_dim)).astype(dtype) for key in keys[:3])
        ms = {}
        for form, per_head in (("batched", False), ("per head", True)):
            fn = jax.jit(lambda q, k, v, per_head=per_head: precision.attention(q, k, v, head_dim**-0.5, per_head))
            ms[form] = 1e3 * median_seconds(fn, (q, k, v), repeats)
            print(f"  {name:8s} attention, {form:8s} {ms[form]:8.1f} ms  {attention_flop / ms[form] / 1e6:6.1f} GFLOP/s")
        print(f"  {name:8s} attention, per head over batched: {ms['batched'] / ms['per head']:.2f}x faster")

        model = dinov2.DinoV2ViT(EMBED, options.depth, HEADS, PATCH, dtype=dtype)
        images = jax.random.normal(keys[3], (frames, IMAGE, IMAGE, 3)).astype(dtype)
        params = jax.jit(model.init)(jax.random.key(1), images[:1])
        vit_ms = 1e3 * median_seconds(jax.jit(model.apply), (params, images), repeats)
        rows = frames * length
        x, w = jnp.ones((rows, EMBED), dtype), jnp.ones((EMBED, 4 * EMBED), dtype)
        matmul_ms = 1e3 * median_seconds(jax.jit(precision.dense), (x, w), repeats)
        matmul_rate = 2 * rows * EMBED * 4 * EMBED / matmul_ms / 1e6
        vit_rate = vit_flop(frames, options.depth) / vit_ms / 1e6
        print(
            f"  {name:8s} ViT-S/14 forward ({options.depth} blocks) {vit_ms:8.1f} ms  {vit_rate:6.1f} GFLOP/s = "
            f"{vit_rate / matmul_rate:.0%} of the [{rows}, {EMBED}] @ [{EMBED}, {4 * EMBED}] product's {matmul_rate:.0f}"
        )


if __name__ == "__main__":
    flags.DEFINE_integer("frames", 8, "Frames per call (batch x clip length; MOVi-C's step: 2 x 4).", lower_bound=1)
    flags.DEFINE_integer("depth", 12, "ViT blocks (ViT-S/14 has 12; fewer for a quick check).", lower_bound=1)
    flags.DEFINE_integer("repeats", 5, "Timed calls per figure (the median is printed).", lower_bound=1)
    app.run(main)
