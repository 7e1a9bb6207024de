r"""Where the time of a MOVi-C training step goes: the model's parts, the SSync objective's share,
and training from pre-extracted backbone tokens.

    python -m benchmarks.train_step                                # batch 2 x 4 frames x 336², float32
    python -m benchmarks.train_step --batch 1 --image_size 112     # a quick run
    python -m benchmarks.train_step --dtype bfloat16 --backbone_dtype bfloat16   # mixed precision

The model and objective are configs/movi_c.py's (frozen DINOv2 ViT-S/14, here with random weights;
11 slots; feature MSE + SlotContrast + SSync boundary and interior, SSync active), at --batch x
--frames x --image_size². Every figure is the median of --repeats runs after a warm-up (compilation
excluded):

- parts: each part jitted alone on the shapes it sees in training (frames folded into the batch), as
  value_and_grad of the sum of its outputs w.r.t. its parameters and inputs; the frozen backbone
  forward only. The corrector runs 2 iterations on every frame (training gives the first frame 3).
- train step: `ssync_jax.train_state.make_train_step` jitted (model, the four losses, clipping, Adam) on a
  batch of frames, and on the same frames' backbone tokens (float16, as
  `ssync_jax.tools.extract_features` stores them, the backbone skipped): the pre-extraction speed-up.
- SSync objective: the two SSync terms of `ssync_jax.objectives.total_loss` alone (pseudo-labels,
  slot merging, boundary/interior masks, both losses, statistics), forward and backward through the
  model's real encoder and decoder logits; its share of the train step.
- memory: XLA's buffers of each compiled step (arguments + outputs + temporaries, from
  `memory_analysis`), the process's peak RSS (resource.getrusage; compilation included) and, where the
  device reports it (GPU, TPU), its peak bytes in use.
"""

import resource
import statistics
import time

import jax
import jax.numpy as jnp
from absl import app, flags

from benchmarks import machine
from configs import movi_c
from ssync_jax import train_state
from ssync_jax.models import build_model
from ssync_jax.models.corrector import SlotAttention
from ssync_jax.models.decoders import MLPDecoder
from ssync_jax.models.layers import MLP
from ssync_jax.models.predictor import TransformerPredictor
from ssync_jax.objectives import total_loss

SSYNC_TERMS = ("ssync_boundary", "ssync_interior")


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


def compiled_with_buffers(jitted, *args) -> tuple:
    """`jitted` compiled for `args`, and the MB of arguments, outputs and temporaries XLA allocates for one
    call (NaN where the backend does not say)."""
    compiled = jitted.lower(*args).compile()
    analysis = compiled.memory_analysis()
    if analysis is None:
        return compiled, float("nan")
    total = analysis.argument_size_in_bytes + analysis.output_size_in_bytes + analysis.temp_size_in_bytes
    return compiled, total / 2**20


def movi_c_config(batch: int, image_size: int, frames: int, backbone_dtype: str, dtype: str = "float32"):
    """configs/movi_c.py at the benchmark's size, random backbone weights, SSync active at step 0."""
    config = movi_c.get_config()
    config.model.encoder.weights = None
    config.model.encoder.backbone_dtype = backbone_dtype
    config.model.dtype = dtype
    config.data.image_size = config.model.image_size = (image_size, image_size)
    config.data.chunk_length = frames
    if config.loss_group_size and batch % config.loss_group_size:
        config.loss_group_size = None  # Fewer clips than one of the authors' loss groups: one group.
    return config


def part_timings(model, params, video: jax.Array, config, repeats: int) -> dict[str, float]:
    """Seconds of each part alone (see the module docstring)."""
    keys = iter(jax.random.split(jax.random.key(1), 4))
    batch, frames = video.shape[:2]
    images = video.reshape(batch * frames, *video.shape[2:])  # [B*T, H, W, 3]
    backbone = jax.jit(lambda p, x: model.apply({"params": p}, x, method=lambda m, v: m.encoder.backbone(v)))
    tokens = backbone(params, images)  # [B*T, N, C]
    num_patches, width = tokens.shape[1:]
    num_slots, slot_dim = config.model.num_slots, config.model.slot_dim
    slots = jax.random.normal(next(keys), (batch * frames, num_slots, slot_dim))  # [B*T, S, D]
    features = jax.random.normal(next(keys), (batch * frames, num_patches, slot_dim))  # [B*T, N, D]
    corrector = config.model.corrector
    dtype = config.model.dtype
    predictor = config.model.predictor
    p = params
    parts = {
        "backbone (forward only, frozen)": (backbone, (p, images)),
        "output transform": (
            forward_backward(
                MLP((2 * width,), slot_dim, input_norm=True, dtype=dtype), p["encoder"]["output_transform"], tokens
            ),
            (p["encoder"]["output_transform"], tokens),
        ),
        f"corrector ({corrector.num_iterations} iterations)": (
            forward_backward(
                SlotAttention(corrector.num_iterations, dtype=dtype), p["processor"]["corrector"], slots, features
            ),
            (p["processor"]["corrector"], slots, features),
        ),
        "predictor": (
            forward_backward(
                TransformerPredictor(predictor.num_blocks, predictor.num_heads, dtype=dtype), p["processor"]["predictor"], slots
            ),
            (p["processor"]["predictor"], slots),
        ),
        "MLP decoder": (
            forward_backward(
                MLPDecoder(width, num_patches, tuple(config.model.decoder.hidden_sizes), dtype=dtype), p["decoder"], slots
            ),
            (p["decoder"], slots),
        ),
    }
    return {name: median_seconds(fn, fn_args, repeats) for name, (fn, fn_args) in parts.items()}


def ssync_objective(config):
    """Jitted value_and_grad of the SSync terms of the configured objective w.r.t. (enc_logits, dec_logits)."""
    losses = {name: config.losses[name] for name in SSYNC_TERMS}
    loss_fn = total_loss.build_loss_fn(losses, config.ssync)

    def objective(enc_logits: jax.Array, dec_logits: jax.Array):
        total, _, stats = loss_fn({"enc_logits": enc_logits, "dec_logits": dec_logits}, 1, 1)
        return total, stats

    return jax.jit(jax.value_and_grad(objective, argnums=(0, 1), has_aux=True))


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    options = flags.FLAGS
    config = movi_c_config(options.batch, options.image_size, options.frames, options.backbone_dtype, options.dtype)
    model = build_model(config.model)
    init_state, tx, schedule = train_state.make_initializer(model, config)
    state = jax.jit(init_state)(jax.random.key(0))
    state = state.replace(step=jnp.asarray(config.num_train_steps - 1, jnp.int32))  # SSync active.
    shape = (options.batch, options.frames, options.image_size, options.image_size, 3)
    video = jax.random.normal(jax.random.key(2), shape)  # [B, T, H, W, 3]
    outputs = jax.jit(model.apply)({"params": state.params}, video)
    tokens = outputs["target"].astype(jnp.float16)  # [B, T, N, C], as stored by extract_features

    print(
        f"MOVi-C train step (configs/movi_c.py, random DINOv2 ViT-S/14), batch {options.batch} x {options.frames} "
        f"frames x {options.image_size}², trainable parts {options.dtype}, backbone {options.backbone_dtype}; "
        f"{machine.describe()}; "
        f"median of {options.repeats}"
    )
    parts = part_timings(model, state.params, video, config, options.repeats)

    step = jax.jit(train_state.make_train_step(model, tx, schedule, config))
    video_batch, token_batch = {"video": video}, {"tokens": tokens}
    logits = (outputs["enc_logits"], outputs["dec_logits"])  # [B, T, N, S] each
    video_step, video_mb = compiled_with_buffers(step, state, video_batch)
    token_step, tokens_mb = compiled_with_buffers(step, state, token_batch)
    ssync_step, ssync_mb = compiled_with_buffers(ssync_objective(config), *logits)
    on_video = median_seconds(video_step, (state, video_batch), options.repeats)
    on_tokens = median_seconds(token_step, (state, token_batch), options.repeats)
    ssync_seconds = median_seconds(ssync_step, logits, options.repeats)

    print("  parts, forward+backward:")
    for name, seconds in parts.items():
        print(f"    {name:34s} {seconds * 1e3:9.1f} ms")
    total = sum(parts.values())
    print(f"    {'sum of parts':34s} {total * 1e3:9.1f} ms   ({total / on_video:.2f} of the train step)")
    print("  train step (model, 4 losses, Adam):")
    print(f"    {'on frames':34s} {on_video * 1e3:9.1f} ms   XLA buffers {video_mb:8.0f} MB")
    print(f"    {'on pre-extracted tokens':34s} {on_tokens * 1e3:9.1f} ms   XLA buffers {tokens_mb:8.0f} MB")
    print(f"    {'speed-up of pre-extraction':34s} {on_video / on_tokens:9.2f} x")
    print("  SSync objective (targets, merging, masks, 2 losses; forward+backward):")
    print(f"    {'time':34s} {ssync_seconds * 1e3:9.2f} ms   XLA buffers {ssync_mb:8.2f} MB")
    print(f"    {'share of the step on frames':34s} {100 * ssync_seconds / on_video:9.2f} %")
    print(f"    {'share of the step on tokens':34s} {100 * ssync_seconds / on_tokens:9.2f} %")
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10  # Linux reports KiB.
    device_stats = jax.devices()[0].memory_stats() or {}
    device_peak = device_stats.get("peak_bytes_in_use")
    device = f"{device_peak / 2**20:.0f} MB" if device_peak is not None else "not reported by this device"
    print(f"  peak memory: process RSS {peak_rss:.0f} MB (whole run); device {device}")


if __name__ == "__main__":
    # Defined here, not at import, so that importing this module beside other CLIs' flags cannot clash.
    flags.DEFINE_integer("batch", 2, "Videos per batch.")
    flags.DEFINE_integer("frames", 4, "Frames per video.")
    flags.DEFINE_integer("image_size", 336, "Square frame size, a multiple of 14.")
    flags.DEFINE_string("backbone_dtype", "float32", "The frozen backbone's compute dtype.")
    flags.DEFINE_string("dtype", "float32", "The trainable parts' compute dtype (config.model.dtype).")
    flags.DEFINE_integer("repeats", 3, "Timed runs per figure (the median is printed).")
    app.run(main)
