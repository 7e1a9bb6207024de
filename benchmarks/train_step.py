r"""Forward+backward time of the MOVi-C model, part by part, at the paper's input size.

    python -m benchmarks.train_step                       # batch 2 x 4 frames x 336², float32
    python -m benchmarks.train_step --backbone_dtype bfloat16

Each part is jitted alone on the shapes it sees in training (frames folded into the batch) and
timed as value_and_grad of the sum of its outputs w.r.t. its parameters and inputs; the frozen
backbone is timed forward only, as in training. The corrector runs its 2 iterations on every frame
(training gives the first frame 3). The full step is value_and_grad of the feature MSE through the
whole model. Prints the median of --repeats runs after one warm-up (compilation excluded).
"""

import argparse
import os
import platform
import statistics
import time

import jax
import jax.numpy as jnp

from ssync_jax.models import build_model
from ssync_jax.models.config import dinov2_feature_model
from ssync_jax.models.corrector import SlotAttention
from ssync_jax.models.decoders import MLPDecoder
from ssync_jax.models.layers import MLP
from ssync_jax.models.predictor import TransformerPredictor


def median_seconds(fn, args, repeats: int) -> float:
    """Median wall time of `fn(*args)` over `repeats` runs, after a warm-up that compiles it."""
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def forward_backward(module, params, *inputs):
    """A jitted value_and_grad of sum(module outputs) w.r.t. params and inputs."""

    def loss(p, *x):
        out = module.apply({"params": p}, *x)
        return sum(jnp.sum(leaf.astype(jnp.float32)) for leaf in jax.tree.leaves(out))

    return jax.jit(jax.value_and_grad(loss, argnums=tuple(range(1 + len(inputs)))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--image_size", type=int, default=336)
    parser.add_argument("--backbone_dtype", default="float32")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    config = dinov2_feature_model("vit_s14", num_slots=11, slot_dim=64, image_size=(args.image_size,) * 2)
    config.encoder.backbone_dtype = args.backbone_dtype
    model = build_model(config)
    keys = iter(jax.random.split(jax.random.key(0), 16))
    video = jax.random.normal(next(keys), (args.batch, args.frames, args.image_size, args.image_size, 3))
    params = jax.jit(model.init)(next(keys), video[:, :1])["params"]
    frames = args.batch * args.frames
    patches = (args.image_size // 14) ** 2
    slots = jax.random.normal(next(keys), (frames, 11, 64))  # [B*T, S, D]
    tokens = jax.random.normal(next(keys), (frames, patches, 384))  # [B*T, N, C]
    features = jax.random.normal(next(keys), (frames, patches, 64))  # [B*T, N, D]

    backbone = jax.jit(lambda p, x: model.apply({"params": p}, x, method=lambda m, v: m.encoder.backbone(v)))
    parts = {
        "backbone (forward only, frozen)": (backbone, (params, video.reshape(frames, *video.shape[2:]))),
        "output transform": (
            forward_backward(MLP((768,), 64, input_norm=True), params["encoder"]["output_transform"], tokens),
            (params["encoder"]["output_transform"], tokens),
        ),
        "corrector (2 iterations)": (
            forward_backward(SlotAttention(2), params["processor"]["corrector"], slots, features),
            (params["processor"]["corrector"], slots, features),
        ),
        "predictor": (
            forward_backward(TransformerPredictor(), params["processor"]["predictor"], slots),
            (params["processor"]["predictor"], slots),
        ),
        "MLP decoder": (
            forward_backward(MLPDecoder(384, patches), params["decoder"], slots),
            (params["decoder"], slots),
        ),
    }

    def full_loss(p, v):
        out = model.apply({"params": p}, v)
        return jnp.mean((out["reconstruction"] - out["target"]) ** 2)

    full_step = jax.jit(jax.value_and_grad(full_loss))

    print(
        f"MOVi-C model, batch {args.batch} x {args.frames} frames x {args.image_size}², backbone "
        f"{args.backbone_dtype}; {jax.devices()[0].device_kind} ({platform.machine()}, {os.cpu_count()} CPUs), "
        f"jax {jax.__version__}; median of {args.repeats}"
    )
    total = 0.0
    for name, (fn, fn_args) in parts.items():
        seconds = median_seconds(fn, fn_args, args.repeats)
        total += seconds
        print(f"  {name:34s} {seconds * 1e3:9.1f} ms")
    print(f"  {'sum of parts':34s} {total * 1e3:9.1f} ms")
    full = median_seconds(full_step, (params, video), args.repeats)
    print(f"  {'full model forward+backward':34s} {full * 1e3:9.1f} ms  (sum of parts / full = {total / full:.2f})")


if __name__ == "__main__":
    main()
