r"""What each shipped config costs: step FLOPs, measured time and memory here, estimates on accelerators.

    python -m benchmarks.costs                       # every config in configs/, measured on this machine
    python -m benchmarks.costs --configs synthetic,movi_c --nomeasure    # FLOPs and estimates only

For each config (its default variant; the paper configs with random backbone weights, no download):
- step FLOPs at the config's own global batch: XLA's cost analysis of its compiled train step
  (`ssync_jax.costs`), compiled for this machine's backend but not run;
- measured here (unless --nomeasure): seconds per step and the step's peak memory (the compiled
  step's buffers), at the config's own batch, or for configs whose batch does not fit a CPU at
  `--cpu_clips` clips (the MOVi recipes: 128 clips of 4 frames at 336² would take minutes a step),
  which the table says;
- estimates, labelled as such, for the paper's schedule (the config's `num_train_steps` at its
  global batch: MOVi-C 100k steps x 128 clips, MOVi-E 300k) on one chip of each kind in
  `ssync_jax.costs.PEAK_BF16_TFLOPS`: hours = steps x FLOPs per step / (peak bf16 FLOP/s x
  utilisation), utilisation `ssync_jax.costs.ASSUMED_UTILISATION`. Real runs split the batch over
  several chips; chip-hours stay about the same. For the small CPU configs these are floors: their
  steps are too small to keep an accelerator busy, so per-step overheads dominate there.
"""

from ssync_jax import cli  # First: it quiets TensorFlow before anything loads it.

import importlib
import pathlib

import jax
import jax.numpy as jnp
from absl import app, flags

from benchmarks import machine, train_speed
from ssync_jax import costs, sharding, train_state
from ssync_jax.models import build_model

CONFIG_DIR = pathlib.Path(__file__).resolve().parents[1] / "configs"
# Configs whose global batch is too large to time a step of on a CPU.
_LARGE_BATCH = 32


def shipped_configs() -> list[str]:
    return sorted(path.stem for path in CONFIG_DIR.glob("*.py") if "def get_config" in path.read_text())


def load(name: str):
    config = importlib.import_module(f"configs.{name}").get_config()
    if config.model.encoder.backbone == "dinov2":
        config.model.encoder.weights = None  # Random backbone weights: the cost is the same.
    return config


def step_flops(config) -> costs.StepCost:
    """The cost of one step at the config's own batch, from the compiled (not run) step."""
    model = build_model(config.model)
    mesh = sharding.make_mesh(jax.devices()[:1])
    layout = train_state.state_layout(model, config, mesh)
    batch = {
        "video": jax.ShapeDtypeStruct(
            (config.data.global_batch_size, config.data.chunk_length, *config.data.image_size, 3), jnp.float32
        )
    }
    step = jax.jit(train_state.make_train_step(model, layout.tx, layout.schedule, config), donate_argnums=0)
    return costs.step_cost(step.lower(layout.abstract, batch).compile(), layout.abstract)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    options = flags.FLAGS
    names = options.configs or shipped_configs()
    chips = list(costs.PEAK_BF16_TFLOPS)
    print(f"{machine.describe()}; estimates at {100 * costs.ASSUMED_UTILISATION:.0f} % of each chip's peak bf16 FLOP/s")
    print(
        "| config | clips x frames x size | steps | GFLOP/step | measured here: s/step (clips) | peak memory here | "
        + " | ".join(f"estimate {chip}: s/step, h" for chip in chips)
        + " |"
    )
    print("|---|---|---:|---:|---:|---:|" + "---:|" * len(chips))
    for name in names:
        config = load(name)
        cost = step_flops(config)
        shape = f"{config.data.global_batch_size} x {config.data.chunk_length} x {config.data.image_size[0]}²"
        measured, memory = "–", "–"
        if options.measure:
            clips = None if config.data.global_batch_size <= _LARGE_BATCH else options.cpu_clips
            result = train_speed.measure(config, "config", clips, options.steps)
            measured = f"{result['seconds_per_step']:.3g} ({clips or config.data.global_batch_size})"
            memory = f"{result['buffer_mib']:.0f} MiB"
        estimates = []
        for chip in chips:
            seconds = cost.flops / (costs.PEAK_BF16_TFLOPS[chip] * 1e12 * costs.ASSUMED_UTILISATION)
            hours = costs.accelerator_hours(cost.flops, config.num_train_steps, costs.PEAK_BF16_TFLOPS[chip])
            estimates.append(f"{seconds:.3g} s, {hours:.3g} h")
        print(
            f"| {name} | {shape} | {config.num_train_steps} | {cost.flops / 1e9:.4g} | {measured} | {memory} | "
            + " | ".join(estimates)
            + " |"
        )


if __name__ == "__main__":
    flags.DEFINE_list("configs", None, "Config names (files in configs/); default every shipped config.")
    flags.DEFINE_bool("measure", True, "Also time steps and read the memory on this machine.")
    flags.DEFINE_integer("cpu_clips", 2, "Clips per step for configs whose batch is too large to time here.")
    flags.DEFINE_integer("steps", 5, "Timed steps per config.", lower_bound=1)
    cli.run(main)
