r"""Speed of a config's jitted training step on any host: step time, steps/s, FLOP/s, MFU, peak memory.

    python -m benchmarks.train_speed --config configs/synthetic.py          # the config's own batch
    benchmarks/accelerator.sh                                   # configs/movi_c.py, 64 clips per device
    python -m benchmarks.train_speed --config configs/movi_e.py --per_device_batch 64 --dtypes bfloat16

The config's model and objective (SSync active) train on random frames, at the config's global
batch or at `--per_device_batch` clips per device (the authors': 64 per GPU) over every device of
the host, data parallel as main.py shards it, with the backbone's random weights (no download).
For each of `--dtypes` (the compute dtype of the trainable parts and of the backbone; parameters
and optimizer state stay float32; `config`: the config's own): compilation, then `--steps` steps
dispatched back to back and timed to the last one's end. The input pipeline and the loop around the
step are not timed (`benchmarks/loop_speed.py` compares the two).

Printed per dtype: seconds per step, steps/s and the hours `num_train_steps` would take at that
speed, examples (clips) per second, the trainable part's FLOPs per
step (XLA's cost analysis of the whole step minus that of the frozen backbone's forward pass, which
the authors' MFU-free setting runs every step too), its achieved FLOP/s, MFU against the device's
dense peak for that dtype (`PEAK_TFLOPS`, or `--peak_tflops`; float32 is measured against the
TF32/bf16-pass peak XLA uses by default on GPUs and TPUs), and the device's peak bytes in use
(where the backend reports it). Runs in a few minutes on one GPU or TPU host; on a CPU it runs at
any size you can wait for (the tests run it at a tiny one) and prints no MFU.
"""

from ssync_jax import cli  # First: it quiets TensorFlow before anything loads it.

import time

import jax
import jax.numpy as jnp
import ml_collections
from absl import app, flags
from ml_collections import config_flags

from benchmarks import machine
from ssync_jax import costs, sharding, train_state
from ssync_jax.models import build_model

# Dense peak TFLOP/s per chip by device kind (prefix match) and compute dtype.
PEAK_TFLOPS = {
    "NVIDIA H200": {"bfloat16": 989.0, "float32": 494.0},
    "NVIDIA H100": {"bfloat16": 989.0, "float32": 494.0},
    "NVIDIA A100": {"bfloat16": 312.0, "float32": 156.0},
    "NVIDIA L4": {"bfloat16": 121.0, "float32": 60.0},
    "TPU v4": {"bfloat16": 275.0, "float32": 275.0},
    "TPU v5 lite": {"bfloat16": 197.0, "float32": 197.0},
    "TPU v5p": {"bfloat16": 459.0, "float32": 459.0},
    "TPU v6 lite": {"bfloat16": 918.0, "float32": 918.0},
}


def peak_flops(device_kind: str, dtype: str, override: float | None) -> float | None:
    """The dense peak FLOP/s of one chip, or None when unknown (CPUs)."""
    if override:
        return override * 1e12
    for prefix, peaks in PEAK_TFLOPS.items():
        if device_kind.startswith(prefix):
            return peaks[dtype] * 1e12
    return None


def measure(
    config: ml_collections.ConfigDict,
    dtype: str,
    per_device_batch: int | None,
    steps: int,
    peak_tflops: float | None = None,
) -> dict[str, float]:
    """Times `steps` training steps of `config` in `dtype` ("config": its own); see the module docstring."""
    config = config.copy_and_resolve_references()
    if dtype != "config":
        config.model.dtype = config.model.encoder.backbone_dtype = dtype
    if config.model.encoder.backbone == "dinov2":
        config.model.encoder.weights = None
    mesh = sharding.make_mesh()
    batch_size = config.data.global_batch_size if per_device_batch is None else per_device_batch * jax.device_count()
    config.data.global_batch_size = batch_size
    if config.loss_group_size and batch_size % config.loss_group_size:
        config.loss_group_size = None  # Fewer clips than one of the authors' groups: one group.
    model = build_model(config.model)
    layout = train_state.state_layout(model, config, mesh)
    state = jax.jit(layout.init_state, out_shardings=layout.shardings)(jax.random.key(0))
    state = state.replace(step=jnp.int32(config.num_train_steps - 1))  # Every loss active.
    shape = (batch_size, config.data.chunk_length, *config.data.image_size, 3)
    video = jax.device_put(jax.random.normal(jax.random.key(1), shape), sharding.batch_sharding(mesh))
    step_fn = jax.jit(
        train_state.make_train_step(model, layout.tx, layout.schedule, config),
        donate_argnums=0,
        out_shardings=(layout.shardings, sharding.replicated(mesh)),
    )
    compiled = step_fn.lower(state, {"video": video}).compile()
    frames = video.reshape(-1, *video.shape[2:])
    backbone = jax.jit(lambda p, x: model.apply({"params": p}, x, method=lambda m, v: m.encoder.backbone(v)))
    backbone_flops = _flops(backbone.lower(state.params, frames).compile())
    state, scalars = compiled(state, {"video": video})  # Warm-up.
    jax.block_until_ready(scalars)
    start = time.perf_counter()
    for _ in range(steps):
        state, scalars = compiled(state, {"video": video})
    jax.block_until_ready(scalars)
    seconds = (time.perf_counter() - start) / steps
    cost = costs.step_cost(compiled, state)
    trainable_flops = cost.flops - backbone_flops
    peak = peak_flops(jax.devices()[0].device_kind, config.model.dtype, peak_tflops)
    memory = jax.devices()[0].memory_stats() or {}
    return {
        "seconds_per_step": seconds,
        "steps_per_second": 1 / seconds,
        "hours_for_the_run": config.num_train_steps * seconds / 3600,
        "examples_per_second": batch_size / seconds,
        "trainable_tflops_per_step": trainable_flops / 1e12,
        "achieved_tflops": trainable_flops / seconds / 1e12,
        "mfu": trainable_flops / seconds / (peak * jax.device_count()) if peak else float("nan"),
        "peak_memory_gib": memory.get("peak_bytes_in_use", float("nan")) / 2**30,
        "buffer_mib": cost.buffer_bytes / 2**20,
    }


def _flops(compiled) -> float:
    return costs.step_cost(compiled, ()).flops


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    options = flags.FLAGS
    config = options.config
    clips = (
        f"{config.data.global_batch_size} clips (the config's batch)"
        if options.per_device_batch is None
        else f"{options.per_device_batch} clips per device"
    )
    print(
        f"{machine.describe()}; {jax.device_count()} devices; {clips} of {config.data.chunk_length} x "
        f"{config.data.image_size[0]}x{config.data.image_size[1]}; mean of {options.steps} steps after compilation"
    )
    for dtype in options.dtypes:
        result = measure(config, dtype, options.per_device_batch, options.steps, options.peak_tflops)
        print(
            f"  {dtype:9s} {result['seconds_per_step']:8.3f} s/step = {result['steps_per_second']:.2f} steps/s "
            f"({config.num_train_steps} steps ~ {result['hours_for_the_run']:.2f} h)  "
            f"{result['examples_per_second']:8.1f} clips/s  "
            f"trainable {result['trainable_tflops_per_step']:.3g} TFLOP/step {result['achieved_tflops']:.3g} TFLOP/s  "
            f"MFU {100 * result['mfu']:5.1f} %  peak memory {result['peak_memory_gib']:6.2f} GiB"
        )


if __name__ == "__main__":
    config_flags.DEFINE_config_file("config", "configs/synthetic.py", "Experiment config (model and objective).")
    flags.DEFINE_integer(
        "per_device_batch", None, "Clips per device (the authors': 64 per GPU); default the config's global batch.",
        lower_bound=1,
    )
    flags.DEFINE_integer("steps", 10, "Timed steps per dtype.", lower_bound=1)
    flags.DEFINE_list("dtypes", ["config"], "Compute dtypes to measure: float32, bfloat16, or config (its own).")
    flags.DEFINE_float("peak_tflops", None, "Dense peak TFLOP/s of one chip, for devices not in PEAK_TFLOPS.")
    cli.run(main)
