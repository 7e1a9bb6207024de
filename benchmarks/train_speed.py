r"""Speed of the jitted training step of a config on random frames (no dataset needed).

    python -m benchmarks.train_speed --config configs/synthetic.py --steps 10
    python -m benchmarks.train_speed --config configs/synthetic.py:base --config.data.global_batch_size=4

Prints the compile time, seconds per step and steps/s, and the hours `num_train_steps` would take
at that speed (input pipeline and evaluation excluded).
"""

import time

import jax
import numpy as np
from absl import app, flags
from ml_collections import config_flags

from ssync_jax import sharding, train_state
from ssync_jax.models import build_model


def main(argv: list[str]) -> None:
    del argv
    options = flags.FLAGS
    config = options.config
    mesh = sharding.make_mesh()
    model = build_model(config.model)
    init_state, tx, schedule = train_state.make_initializer(model, config)
    shardings = sharding.state_shardings(jax.eval_shape(init_state, jax.random.key(0)), mesh, config.shard_params)
    state = jax.jit(init_state, out_shardings=shardings)(jax.random.key(config.seed))
    step_fn = jax.jit(
        train_state.make_train_step(model, tx, schedule, config),
        donate_argnums=0,
        out_shardings=(shardings, sharding.replicated(mesh)),
    )
    shape = (config.data.global_batch_size, config.data.chunk_length, *config.data.image_size, 3)
    video = np.random.default_rng(0).uniform(size=shape).astype(np.float32)
    batch = sharding.global_batch({"video": video}, mesh)

    start = time.perf_counter()
    state, scalars = step_fn(state, batch)
    jax.block_until_ready(scalars)
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(options.steps):
        state, scalars = step_fn(state, batch)
    jax.block_until_ready(scalars)
    per_step = (time.perf_counter() - start) / options.steps
    print(
        f"{jax.device_count()} x {jax.devices()[0].device_kind}: batch {shape}, first step (compile) "
        f"{compile_s:.1f} s, {per_step:.3f} s/step = {1 / per_step:.2f} steps/s; "
        f"{config.num_train_steps} steps ~ {config.num_train_steps * per_step / 3600:.2f} h"
    )


if __name__ == "__main__":
    # Defined here, not at import, so that importing this module beside other CLIs' flags cannot clash.
    config_flags.DEFINE_config_file("config", "configs/synthetic.py", "Experiment config file.")
    flags.DEFINE_integer("steps", 10, "Timed steps after the first (compiling) one.", lower_bound=1)
    app.run(main)
